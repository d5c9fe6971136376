//! The top bar: consultant, demo badge and the always-visible sync state (connection, last
//! sync, outcomes waiting, progress while syncing, last error). Every slot keeps its size
//! whatever the state, so the bar never shifts while a sync runs.

import { byId } from "./dom.js";
import { PHASE_LABELS, formatDateTime, formatMegabytes, formatShortInstant, plural } from "./format.js";

/** Sets text only when it changed, so live regions do not repeat themselves every event. */
function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function connectionText(status) {
  if (status.online === true) return "Online";
  if (status.online === false) return "Offline";
  // Start-up stopped before any connection was tried (e.g. no keychain).
  if (!status.syncing && status.last_error) return "Not connected";
  return "Connecting…";
}

function progressCounts(progress) {
  const parts = [];
  if (progress.referrals_total > 0) {
    parts.push(`Referrals ${progress.referrals_done}/${progress.referrals_total}`);
  }
  if (progress.photos_total > 0) parts.push(`Photos ${progress.photos_done}/${progress.photos_total}`);
  if (progress.bytes_total > 0) {
    parts.push(`${formatMegabytes(progress.bytes_done)}/${formatMegabytes(progress.bytes_total)} MB`);
  }
  return parts.join(" · ");
}

/** Fraction done, preferring bytes (smooth for photos), then photos, then referrals. */
function progressFraction(progress) {
  for (const [done, total] of [
    [progress.bytes_done, progress.bytes_total],
    [progress.photos_done, progress.photos_total],
    [progress.referrals_done, progress.referrals_total],
  ]) {
    if (total > 0) return Math.min(1, Math.max(0, done / total));
  }
  return null;
}

/**
 * What the message slot says when no sync is running: the last error (the back end writes it
 * for people), or, when simply offline, that the work is safe. Offline is normal on a train.
 */
function messageFor(status) {
  if (status.last_error) {
    // Offline or a busy service is ordinary travelling weather, not an error.
    const tone = ["offline", "busy"].includes(status.last_error.kind) ? "info" : "error";
    return { tone, text: status.last_error.message || "The last sync did not finish. Everything already here is kept; try Sync now." };
  }
  if (status.online === false) {
    return { tone: "info", text: "Working offline: referrals and photos on this computer are available, and signed outcomes wait here until you are back online." };
  }
  return { tone: "none", text: "" };
}

export function renderStatus(status, now = new Date()) {
  const demoBadge = byId("demo-badge");
  demoBadge.hidden = !status.demo;

  setText(byId("consultant"), status.consultant?.display_name ?? "Not enrolled");

  const connection = byId("sync-connection");
  connection.dataset.online = status.online === true ? "online" : status.online === false ? "offline" : "unknown";
  setText(byId("sync-connection-text"), connectionText(status));

  const last = byId("sync-last");
  setText(last, status.last_sync_at ? `Last sync ${formatShortInstant(status.last_sync_at, now)}` : "Not synced yet");
  last.title = status.last_sync_at ? `Last complete sync: ${formatDateTime(status.last_sync_at)}` : "";

  const waiting = status.outbox_waiting ?? 0;
  const outbox = byId("sync-outbox");
  setText(outbox, waiting > 0 ? `${plural(waiting, "outcome")} waiting to go` : "No outcomes waiting");
  outbox.dataset.waiting = waiting > 0 ? "true" : "false";

  const progressArea = byId("sync-progress");
  progressArea.dataset.active = status.syncing ? "true" : "false";
  progressArea.setAttribute("aria-hidden", status.syncing ? "false" : "true");
  const progress = status.progress ?? {};
  setText(byId("sync-phase"), status.syncing ? PHASE_LABELS[status.phase] || "Syncing…" : "");
  setText(byId("sync-counts"), status.syncing ? progressCounts(progress) : "");
  const fraction = status.syncing ? progressFraction(progress) : 0;
  const bar = byId("sync-progress-bar");
  bar.dataset.indeterminate = fraction === null ? "true" : "false";
  byId("sync-progress-fill").style.width = `${Math.round((fraction ?? 0) * 100)}%`;
  if (fraction === null) bar.removeAttribute("aria-valuenow");
  else bar.setAttribute("aria-valuenow", String(Math.round(fraction * 100)));

  const message = byId("sync-message");
  const { tone, text } = messageFor(status);
  message.hidden = Boolean(status.syncing);
  setText(message, text);
  message.title = text;
  message.dataset.tone = tone;

  const syncButton = byId("sync-now");
  syncButton.disabled = false;
  setText(syncButton, status.syncing ? "Stop sync" : "Sync now");
  syncButton.title = status.syncing ? "Stop this sync; everything received so far is kept and downloads resume next time." : "";
}
