//! The trip screen: is everything on this computer for working offline ("Ready: 48 of 48
//! referrals, 212 photos, 1.9 GB", or what is missing and why), a "Prepare for offline" that
//! syncs everything now with a progress bar, and the referrals falling due during a trip window.
//! Every figure and sentence comes from the core (`readiness`, `prepare_for_offline`,
//! `due_within`); this module only draws them.

import * as api from "./api.js";
import { byId, h, replaceChildren } from "./dom.js";
import {
  STATUS_LABELS,
  URGENCY_LABELS,
  URGENCY_LONG_LABELS,
  dueTone,
  formatDayMonth,
  formatMegabytes,
  formatNhsNumber,
  label,
  londonDay,
  plural,
} from "./format.js";
import { notifyError } from "./toast.js";

const DEFAULT_TRIP_DAYS = 7;

function addDays(day, days) {
  const [y, m, d] = day.split("-").map(Number);
  const date = new Date(Date.UTC(y, m - 1, d + days));
  return date.toISOString().slice(0, 10);
}

export class TripDialog {
  /** @param {{onOpenReferral: (id: string) => void, onWindowChange: (window: {from: string, to: string}) => void}} callbacks */
  constructor({ onOpenReferral, onWindowChange }) {
    this.dialog = byId("trip-dialog");
    this.summary = byId("readiness-summary");
    this.missing = byId("readiness-missing");
    this.progress = byId("trip-progress");
    this.progressFill = byId("trip-progress-fill");
    this.progressText = byId("trip-progress-text");
    this.prepare = byId("prepare-offline");
    this.from = byId("trip-from");
    this.to = byId("trip-to");
    this.dueSummary = byId("trip-due-summary");
    this.dueList = byId("trip-due");
    this.onOpenReferral = onOpenReferral;
    this.onWindowChange = onWindowChange;
    this.preparing = false;

    const today = londonDay(new Date());
    this.from.value = today;
    this.to.value = addDays(today, DEFAULT_TRIP_DAYS);

    this.prepare.addEventListener("click", () => this.#prepare());
    for (const input of [this.from, this.to]) {
      input.addEventListener("change", () => {
        this.onWindowChange({ from: this.from.value, to: this.to.value });
        this.#refreshDue();
      });
    }
    this.dueList.addEventListener("click", (event) => {
      const row = event.target.closest("[data-referral-id]");
      if (!row) return;
      this.dialog.close();
      this.onOpenReferral(row.dataset.referralId);
    });
    this.dueList.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== " ") return;
      const row = event.target.closest("[data-referral-id]");
      if (!row) return;
      event.preventDefault();
      this.dialog.close();
      this.onOpenReferral(row.dataset.referralId);
    });
  }

  /** A remembered trip window (from the worklist's saved view), if it is still ahead. */
  restoreWindow(window) {
    const today = londonDay(new Date());
    if (typeof window?.from === "string" && typeof window?.to === "string" && window.to >= today) {
      this.from.value = window.from;
      this.to.value = window.to;
    }
  }

  get isOpen() {
    return this.dialog.open;
  }

  open() {
    if (!this.dialog.open) this.dialog.showModal();
    this.refresh();
  }

  /** Re-reads readiness and the trip list (after a sync, or when the clock moves on). */
  refresh() {
    if (!this.dialog.open) return;
    if (!this.preparing) this.#refreshReadiness();
    this.#refreshDue();
  }

  /** Follows the sync's progress while preparing (status events). */
  showStatus(status) {
    if (!this.dialog.open) return;
    const progress = status.progress ?? {};
    const active = Boolean(status.syncing);
    this.progress.dataset.active = active || this.preparing ? "true" : "false";
    let fraction = null;
    for (const [done, total] of [
      [progress.bytes_done, progress.bytes_total],
      [progress.photos_done, progress.photos_total],
      [progress.referrals_done, progress.referrals_total],
    ]) {
      if (total > 0) {
        fraction = Math.min(1, done / total);
        break;
      }
    }
    this.progressFill.style.width = `${Math.round((fraction ?? (active ? 0 : 1)) * 100)}%`;
    this.progress.dataset.indeterminate = active && fraction === null ? "true" : "false";
    if (fraction === null) this.progress.removeAttribute("aria-valuenow");
    else this.progress.setAttribute("aria-valuenow", String(Math.round(fraction * 100)));
    const parts = [];
    if (progress.photos_total > 0) parts.push(`Photos ${progress.photos_done} of ${progress.photos_total}`);
    if (progress.bytes_total > 0) parts.push(`${formatMegabytes(progress.bytes_done)} of ${formatMegabytes(progress.bytes_total)} MB`);
    this.progressText.textContent = active ? parts.join(" · ") || "Checking the service for changes…" : "";
  }

  async #prepare() {
    if (this.preparing) return;
    this.preparing = true;
    this.prepare.disabled = true;
    this.prepare.textContent = "Preparing…";
    this.progress.dataset.active = "true";
    this.summary.dataset.state = "working";
    this.summary.textContent = "Downloading and checking everything assigned to you…";
    try {
      this.#showReadiness(await api.prepareForOffline());
    } catch (error) {
      notifyError(error, "Preparing for offline did not finish");
      await this.#refreshReadiness();
    } finally {
      this.preparing = false;
      this.prepare.disabled = false;
      this.prepare.textContent = "Prepare for offline";
      this.progress.dataset.active = "false";
      this.progressText.textContent = "";
    }
    this.#refreshDue();
  }

  async #refreshReadiness() {
    try {
      this.#showReadiness(await api.readiness());
    } catch (error) {
      this.summary.dataset.state = "missing";
      this.summary.textContent = error.message;
    }
  }

  #showReadiness(readiness) {
    this.summary.dataset.state = readiness.ready ? "ready" : "missing";
    this.summary.textContent = readiness.summary;
    const items = [];
    if (readiness.sync_problem) {
      items.push(h("li", { class: "missing-problem", text: `The last sync stopped: ${readiness.sync_problem}` }));
    }
    for (const item of readiness.missing ?? []) {
      items.push(
        h(
          "li",
          {},
          h("span", { class: "missing-name", text: item.patient_name }),
          " — ",
          h("span", { class: "missing-what", text: item.what }),
        ),
      );
    }
    replaceChildren(this.missing, items);
    this.missing.hidden = items.length === 0;
    this.prepare.classList.toggle("button-primary", !readiness.ready);
  }

  async #refreshDue() {
    const from = this.from.value;
    const to = this.to.value;
    if (!from || !to) return;
    if (to < from) {
      this.dueSummary.textContent = "The trip ends before it starts: choose the dates again.";
      replaceChildren(this.dueList);
      return;
    }
    let rows;
    try {
      rows = await api.dueWithin(from, to);
    } catch (error) {
      this.dueSummary.textContent = error.message;
      return;
    }
    const days = `${formatDayMonth(`${from}T12:00:00Z`)} – ${formatDayMonth(`${to}T12:00:00Z`)}`;
    this.dueSummary.textContent = rows.length
      ? `${plural(rows.length, "referral")} fall${rows.length === 1 ? "s" : ""} due ${days}.`
      : `Nothing falls due ${days}.`;
    replaceChildren(
      this.dueList,
      rows.map((row) => {
        const tone = dueTone(row);
        return h(
          "li",
          { class: "trip-row", tabIndex: 0, dataset: { referralId: row.referral_id }, attrs: { role: "button" } },
          h("span", {
            class: ["urgency-badge", `urgency-${row.urgency}`],
            text: label(URGENCY_LABELS, row.urgency),
            title: label(URGENCY_LONG_LABELS, row.urgency),
          }),
          h("span", { class: "trip-name", text: row.patient_name }),
          h("span", { class: "trip-nhs nhs-number", text: formatNhsNumber(row.nhs_number) }),
          h("span", { class: ["status-badge", `status-${row.status}`], text: label(STATUS_LABELS, row.status) }),
          h("span", { class: ["trip-due-day", `due-${tone}`], text: `Due ${formatDayMonth(row.due_at)}` }),
          h("span", { class: ["due-flag", `due-${tone}`], text: row.due_label }),
        );
      }),
    );
  }
}
