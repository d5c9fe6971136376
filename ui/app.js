//! Derm Desk's main module: holds the little state the UI needs (status, worklist rows, the
//! open referral), wires back-end events to re-renders, and routes global keys. Everything
//! it draws comes from the other modules; everything it asks goes through api.js.

import * as api from "./api.js";
import { ReferralDetail } from "./detail.js";
import { SHORTCUTS as PHOTO_SHORTCUTS } from "./compare.js";
import { DeviceDialog } from "./device.js";
import { byId, h, isTypingTarget, replaceChildren } from "./dom.js";
import { WorklistFilters } from "./filters.js";
import { OutcomePanel } from "./outcome.js";
import { renderStatus } from "./statusbar.js";
import { notify, notifyError } from "./toast.js";
import { TripDialog } from "./trip.js";
import { UpdateOffer } from "./update.js";
import { Worklist } from "./worklist.js";

const CLOCK_TICK_MS = 30_000; // "due today", "overdue" and "Last sync" are relative to now.
const PAGE_SIZE = 200; // Rows drawn at once; "Show more" adds another page.
const SAVE_VIEW_DELAY_MS = 400;

const state = {
  status: null,
  rows: [],
  /** The last `WorklistPage` (counts per status and practice, total matching). */
  page: null,
  limit: PAGE_SIZE,
  worklistLoaded: false,
  /** The remembered filters and search were read back (needs the cache open). */
  viewRestored: false,
  openId: null,
  openView: null,
  /** Version of the open referral when the consultant opened it, to notice GP updates. */
  openedVersion: null,
};

const worklist = new Worklist({ onOpen: (referralId) => openReferral(referralId) });
const filters = new WorklistFilters({
  onChange: () => {
    state.limit = PAGE_SIZE;
    worklist.scrollTop = 0;
    refreshWorklist();
    saveViewSoon();
  },
});
const trip = new TripDialog({
  onOpenReferral: (referralId) => {
    worklist.select(referralId);
    openReferral(referralId);
  },
  onWindowChange: () => saveViewSoon(),
});
const detail = new ReferralDetail();
const updateOffer = new UpdateOffer();
const outcomePanel = new OutcomePanel({
  sign: (referralId, referralVersion, outcome) => api.signAndSend(referralId, referralVersion, outcome),
  saveDraft: (referralId, draft) => api.saveDraft(referralId, draft),
  diagnoses: () => api.diagnoses(),
  advice: (referralId, diagnosisCode) => api.outcomeAdvice(referralId, diagnosisCode),
  exportOutcome: (referralId) => api.exportOutcome(referralId),
  signed: (referralId, outcomeView) => {
    if (state.openView?.referral.id === referralId) {
      state.openView = { ...state.openView, outcome: outcomeView };
      renderOpenReferral();
    }
    notify("Outcome signed and queued. Derm Desk sends it to the GP practice automatically.");
    refreshWorklist();
    refreshOpenReferral();
  },
});

// ---------------------------------------------------------------------------------------------
// Rendering

function worklistEmptyText() {
  const status = state.status;
  // Before the first query has answered there is nothing to say (and nothing false to flash).
  if (!state.worklistLoaded) return "";
  if (filters.isFiltered() && state.page) return "No referral matches these filters. Clear them to see every referral.";
  if (status && !status.syncing && status.online === null && status.last_error) {
    return "Derm Desk could not open its encrypted cache. The message above says why; nothing was stored.";
  }
  if (!status || status.online === null || status.syncing) return "No referrals assigned yet — syncing…";
  if (!status.consultant) return "This computer is not enrolled yet.";
  if (status.online === false) return "No referrals on this computer. Connect to download your worklist.";
  return "No referrals assigned to you. New referrals appear here when they are synced.";
}

function renderWorklist() {
  const all = Object.values(state.page?.counts_by_status ?? {}).reduce((sum, n) => sum + n, 0);
  worklist.render(state.rows, { emptyText: worklistEmptyText(), total: all });
  worklist.setOpen(state.openId);
  filters.renderFacets(state.page, state.rows.length);
  const more = byId("worklist-more");
  const remaining = (state.page?.total_matching ?? 0) - state.rows.length;
  more.hidden = remaining <= 0;
  more.textContent = `Show ${Math.min(remaining, PAGE_SIZE)} more`;
}

// ---------------------------------------------------------------------------------------------
// The remembered view: filters, search, scroll and trip dates, kept in the encrypted cache
// (never in the webview's storage, since a search may hold a patient's name).

let saveViewTimer = null;
function saveViewSoon() {
  if (!state.viewRestored) return; // Never overwrite what was remembered before reading it.
  clearTimeout(saveViewTimer);
  saveViewTimer = setTimeout(() => {
    const view = {
      ...filters.value,
      trip: { from: byId("trip-from").value, to: byId("trip-to").value },
    };
    api.saveWorklistView(view).catch((error) => console.warn("the worklist view was not remembered", error?.kind));
  }, SAVE_VIEW_DELAY_MS);
}

async function restoreViewOnce() {
  if (state.viewRestored) return;
  const view = await api.worklistView(); // Throws "starting" until the cache is open.
  state.viewRestored = true;
  if (!view) return;
  filters.restore(view);
  trip.restoreWindow(view.trip);
  // The filters and search come back; the list itself opens at its top, on the most urgent
  // referral (a scroll position from another session would show a stale place).
}

function openReferralNotices() {
  const view = state.openView;
  if (!view || view.outcome || state.openedVersion === null || view.referral.version === state.openedVersion) return [];
  return [
    {
      tone: "warning",
      text: `The GP practice updated this referral while it was open (now version ${view.referral.version}). Check the details and photos again before signing.`,
    },
  ];
}

function renderOpenReferral() {
  const view = state.openView;
  if (!view) {
    detail.showEmpty();
    outcomePanel.clear();
    return;
  }
  detail.render(view, { notices: openReferralNotices() });
  outcomePanel.render(view, {
    consultantName: state.status?.consultant?.display_name,
    online: state.status?.online ?? null,
  });
}

// ---------------------------------------------------------------------------------------------
// Fetching. Events can arrive in bursts during a sync: each refresher runs one request at a
// time and, if asked again meanwhile, once more afterwards with the latest data.

function coalesced(task) {
  let running = null;
  let again = false;
  return function run() {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await task();
        } while (again);
      } finally {
        running = null;
      }
    })();
    return running;
  };
}

const refreshWorklist = coalesced(async () => {
  try {
    await restoreViewOnce();
    const page = await api.worklistQuery({ ...filters.query(), offset: 0, limit: state.limit });
    state.page = page;
    state.rows = page.rows;
    state.worklistLoaded = true;
  } catch (error) {
    // While the cache is still opening, the status bar already says so; the back end sends
    // `referrals-changed` once it is open.
    // A start-up failure is already shown in the status bar; say it once.
    const startUpFailure = state.status?.last_error && !state.status?.consultant && error?.kind === state.status.last_error.kind;
    // Locked or not set up: the lock or Connect screen says so; the worklist loads when the
    // back end reports it unlocked.
    const notOpenYet = ["starting", "locked", "not_now"].includes(error?.kind);
    if (!notOpenYet && !startUpFailure) {
      notifyError(error, "The worklist could not be loaded");
    }
  }
  renderWorklist();
  reportReadyOnce();
});

// Tells the back end (once) that the worklist is on screen: rows shown and the sync settled, or
// a settled sync with nothing to show or an error. A headless screenshot run waits for this.
let reportedReady = false;
function reportReadyOnce() {
  const status = state.status;
  if (reportedReady || !status || status.syncing) return;
  const settled = state.rows.length > 0 || status.last_error || status.last_sync_at;
  if (!settled) return;
  reportedReady = true;
  api.uiReady().catch((error) => console.warn("ui_ready failed", error));
}

let openRequest = 0;

const refreshOpenReferral = coalesced(async () => {
  const referralId = state.openId;
  if (!referralId) return;
  const request = ++openRequest;
  try {
    const view = await api.referral(referralId);
    if (request !== openRequest || state.openId !== referralId) return; // The consultant moved on.
    state.openView = view;
    if (outcomePanel.referralChanged(view)) {
      notify("This referral changed while you were confirming. Nothing was signed: check it and sign again.", { tone: "error" });
    }
    renderOpenReferral();
  } catch (error) {
    if (request !== openRequest) return;
    if (error.kind === "unknown_referral") {
      // Removed from this computer (e.g. reassigned): there is nothing left to show.
      notify(error.message, { tone: "error" });
      state.openId = null;
      state.openView = null;
      worklist.setOpen(null);
      renderOpenReferral();
      return;
    }
    notifyError(error, "The referral could not be refreshed");
  }
});

async function openReferral(referralId) {
  if (referralId === state.openId && state.openView) return;
  state.openId = referralId;
  state.openedVersion = null;
  worklist.setOpen(referralId);
  const request = ++openRequest;
  try {
    const view = await api.referral(referralId);
    if (request !== openRequest) return;
    state.openView = view;
    state.openedVersion = view.referral.version;
    renderOpenReferral();
    refreshWorklist(); // The back end marked it opened.
  } catch (error) {
    if (request !== openRequest) return;
    notifyError(error, "The referral could not be opened");
    state.openId = null;
    state.openView = null;
    worklist.setOpen(null);
    renderOpenReferral();
  }
}

function applyStatus(status) {
  const wasOnline = state.status?.online;
  const wasSyncing = state.status?.syncing;
  const wasWaiting = state.status?.outbox_waiting;
  state.status = status;
  // The offer's note counts the signed outcomes waiting.
  if (wasWaiting !== status.outbox_waiting) updateOffer.refresh();
  renderStatus(status);
  trip.showStatus(status);
  if (wasSyncing && !status.syncing) trip.refresh();
  if (!state.rows.length) renderWorklist(); // The empty text depends on syncing/online.
  // The offline note under the form depends on `online`.
  if (state.openView && wasOnline !== status.online) renderOpenReferral();
  reportReadyOnce();
}

// ---------------------------------------------------------------------------------------------
// Keys: j/k anywhere outside a text field move the worklist cursor; o jumps into the outcome form;
// Alt+1…4 pick the decision and Ctrl+Enter asks to sign (outcome.js); + − 0 1 drive the viewer.
// The worklist and the viewer handle their own keys when they have focus.

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented) return;
  if (state.openView && outcomePanel.handleShortcut(event)) {
    event.preventDefault();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target === byId("worklist-search")) {
    if ((event.key === "ArrowDown" || event.key === "Enter") && state.rows.length) {
      // From the search straight into the list: ↓ goes to the first match, Enter opens it.
      const first = state.rows[0].referral_id;
      worklist.select(first);
      if (event.key === "Enter") openReferral(first);
      else worklist.focus();
      event.preventDefault();
    }
    return;
  }
  if (isTypingTarget(event.target) || document.querySelector("dialog[open]")) return;
  if (event.key === "/") {
    filters.focusSearch();
    event.preventDefault();
    return;
  }
  if (event.key === "t") {
    trip.open();
    event.preventDefault();
    return;
  }
  const inViewer = event.target instanceof Element && event.target.closest("#photo-viewer");
  if (event.key === "?" && !inViewer) {
    openHelp();
    event.preventDefault();
    return;
  }
  if (event.key === "o" && state.openView && outcomePanel.focusForm()) {
    event.preventDefault();
    return;
  }
  if (event.target instanceof Element && event.target.closest("#worklist")) return;
  if (event.key === "j" || event.key === "k") {
    worklist.move(event.key === "j" ? 1 : -1);
    event.preventDefault();
    return;
  }
  if (event.target instanceof HTMLInputElement && event.target.type === "radio") return;
  // Arrows pan only when the photos have the focus; elsewhere they scroll as usual.
  const inPhotos = event.target instanceof Element && event.target.closest("#photo-viewer");
  if (!inPhotos && event.key.startsWith("Arrow")) return;
  if (state.openView && detail.photoViewer.handleKey(event)) event.preventDefault();
});

/** Every key in one place: the worklist's, the outcome's and the photo viewer's. */
const HELP = [
  [
    "Worklist",
    [
      ["j / k, ↓ / ↑", "Next / previous referral"],
      ["Enter", "Open the selected referral"],
      ["/", "Search by name, NHS number or referral id (Enter opens the first match, Esc clears)"],
      ["Home / End, PgUp / PgDn", "First / last, ten at a time"],
      ["t", "Trip: prepare for offline, what falls due while away"],
    ],
  ],
  [
    "Outcome",
    [
      ["o", "Write the outcome of the open referral"],
      ["Alt+1 … Alt+4", "Treatment plan, face to face, more information, advice and discharge"],
      ["Ctrl+Enter (⌘+Enter)", "Sign and send (asks to confirm first)"],
    ],
  ],
  ["Photos (when the photos have the focus)", PHOTO_SHORTCUTS],
];

function openHelp() {
  replaceChildren(
    byId("help-columns"),
    HELP.map(([title, keys]) =>
      h(
        "section",
        { class: "help-group" },
        h("h3", { class: "section-title", text: title }),
        h("dl", { class: "help-list" }, keys.flatMap(([key, what]) => [h("dt", {}, h("kbd", { text: key })), h("dd", { text: what })])),
      ),
    ),
  );
  byId("help-dialog").showModal();
}

byId("open-trip").addEventListener("click", () => trip.open());
byId("worklist-more").addEventListener("click", () => {
  state.limit += PAGE_SIZE;
  refreshWorklist();
});

const deviceDialog = new DeviceDialog();
byId("consultant").addEventListener("click", () => deviceDialog.open());

// One button: "Sync now" when idle, "Stop" while a sync runs (what arrived is kept).
byId("sync-now").addEventListener("click", async () => {
  const stopping = state.status?.syncing;
  try {
    await (stopping ? api.cancelSync() : api.syncNow());
  } catch (error) {
    notifyError(error, stopping ? "Sync could not be stopped" : "Sync could not start");
  }
});

// ---------------------------------------------------------------------------------------------
// Start-up

async function start() {
  renderStatus({
    online: null,
    syncing: false,
    phase: "idle",
    progress: {},
    last_sync_at: null,
    outbox_waiting: 0,
    last_error: null,
    consultant: null,
    demo: false,
  });
  detail.showEmpty();

  try {
    await Promise.all([
      api.onStatus(applyStatus),
      api.onReferralsChanged(() => {
        refreshWorklist();
        refreshOpenReferral();
      }),
      api.onOutcomeChanged((payload) => {
        refreshWorklist();
        if (payload?.referral_id === state.openId) refreshOpenReferral();
      }),
    ]);
  } catch (error) {
    notifyError(error, "Live updates are not available");
  }

  try {
    applyStatus(await api.status());
  } catch (error) {
    notifyError(error, "The sync status could not be read");
  }
  await refreshWorklist();

  // Due labels are counted by the core at query time: ask again as the clock moves on.
  setInterval(() => {
    if (state.status) renderStatus(state.status);
    refreshWorklist();
    // The open referral is redrawn, not fetched again (fetching records a view).
    if (state.openView) detail.render(state.openView, { notices: openReferralNotices() });
    trip.refresh();
  }, CLOCK_TICK_MS);
}

start();
