//! The only door to the Rust side: every backend command and event goes through here, and no
//! other file touches `window.__TAURI__`. Commands take camelCase arguments (Tauri's
//! convention) and return the backend's snake_case JSON untouched.

/** A failed command, always shaped `{kind, message}`; branch on `kind`, show `message`. */
export class CommandError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = "CommandError";
    this.kind = kind;
  }
}

function tauri() {
  const bridge = window.__TAURI__;
  if (!bridge?.core?.invoke) {
    throw new CommandError("no_backend", "Derm Desk's window cannot reach its back end. Restart the app.");
  }
  return bridge;
}

/** Normalises whatever a rejected invoke gives (object, string, Error) to a CommandError. */
function toCommandError(error) {
  if (error instanceof CommandError) return error;
  if (error && typeof error === "object" && typeof error.kind === "string") {
    return new CommandError(error.kind, String(error.message ?? error.kind));
  }
  if (typeof error === "string") return new CommandError("unknown", error);
  return new CommandError("unknown", error?.message ?? "Something went wrong in Derm Desk's back end.");
}

async function invoke(command, args) {
  try {
    return await tauri().core.invoke(command, args);
  } catch (error) {
    throw toCommandError(error);
  }
}

/** Status: online, syncing, progress, last sync, outbox size, last error, consultant, demo. */
export const status = () => invoke("status");

/** Rows for the worklist, already sorted by urgency then due date. */
export const worklist = () => invoke("worklist");

/**
 * One page of the worklist: `query` = {statuses, urgencies, practice, search, offset, limit};
 * returns {rows, total_matching, counts_by_status, practices}.
 */
export const worklistQuery = (query) => invoke("worklist_query", { query });

/** The worklist's filters and scroll as last left (kept in the encrypted cache), or null. */
export const worklistView = () => invoke("worklist_view");

/** Remembers the worklist's filters and scroll (a small object). */
export const saveWorklistView = (view) => invoke("save_worklist_view", { view });

/** {referrals_total, referrals_ready, photos_total, photos_ready, bytes_ready, bytes_missing, missing, ready, summary, sync_problem}. */
export const readiness = () => invoke("readiness");

/** Runs a full sync now and returns readiness (progress arrives as status events). */
export const prepareForOffline = () => invoke("prepare_for_offline");

/** Worklist rows falling due from `from` to `to` ("YYYY-MM-DD", London dates, both included). */
export const dueWithin = (from, to) => invoke("due_within", { from, to });

/** One referral with its photos and outcome; the back end marks it opened. */
export const referral = (referralId) => invoke("referral", { referralId });

/** Signs the outcome with this computer's key and queues it; returns the OutcomeView. */
/** Signs what the consultant saw: the core refuses if the cached referral is another version. */
export const signAndSend = (referralId, referralVersion, outcome) =>
  invoke("sign_and_send", { referralId, referralVersion, outcome });

export const syncNow = () => invoke("sync_now");

/** The diagnosis picklist: [{concept_id, term, synonyms, group, suspected_malignancy, patient_information, plan_template}]. */
export const diagnoses = () => invoke("diagnoses");

/** Per outcome kind: {kind, permission: allowed|needs_reason|blocked, rule, why} for this referral and diagnosis. */
export const outcomeAdvice = (referralId, diagnosisCode) => invoke("outcome_advice", { referralId, diagnosisCode });

/** Stops the sync in progress; what arrived is kept and downloads resume next time. */
export const cancelSync = () => invoke("cancel_sync");

/** Saves the unsigned outcome form (encrypted, in the cache); `null` discards it. */
export const saveDraft = (referralId, draft) => invoke("save_draft", { referralId, draft });

/** The version of Derm Desk running, e.g. "0.1.0". */
export const appVersion = () => invoke("app_version");

/** This device: {consultant_name, hub_url, device_id, key_id, earlier_key_ids, rotation_pending, hub_key_id} or null. */
export const device = () => invoke("device");

/** Replaces the device's signing key (needs the service); returns the new device view. */
export const rotateKey = () => invoke("rotate_key");

/** Saves the referral's signed outcome as a verifiable file; returns the file's path. */
export const exportOutcome = (referralId) => invoke("export_outcome", { referralId });

/** Tells the shell the first worklist is on screen (a screenshot tool waits for it). */
export const uiReady = () => invoke("ui_ready");

/**
 * The life cycle's stage: {state: starting|failed|connect|connecting|choose_passphrase|locked|
 * unlocked|recheck, failures, notice, service_url, service_url_locked}.
 */
export const lockStatus = () => invoke("lock_status");
/** Connects this computer to the service at `address` with a one-time enrolment code. */
export const connect = (address, code) => invoke("connect", { address, code });
/** The enrolment code as typed so far: {state: empty|incomplete|complete|invalid, missing?, formatted?, problem?}. */
export const checkCode = (code) => invoke("check_code", { code });
export const choosePassphrase = (passphrase) => invoke("choose_passphrase", { passphrase });
export const unlock = (passphrase) => invoke("unlock", { passphrase });
export const lock = () => invoke("lock");
/** The consultant did something (keeps the idle lock away). */
export const reportActivity = () => invoke("activity");
/** The passphrase again before signing. */
export const reauthenticate = (passphrase) => invoke("reauthenticate", { passphrase });
/** The passphrase check before signing was cancelled. */
export const cancelReauthentication = () => invoke("cancel_reauthentication");
/** Erases this computer's cache and keys; refuses with kind `unsent_outcomes` unless confirmed. */
export const signOut = (confirmUnsent) => invoke("sign_out", { confirmUnsent });

async function listen(name, handler) {
  return tauri().event.listen(name, (event) => handler(event.payload));
}

/** The update on offer ({version, headline, action, note, release_notes, ...}) or null. */
export const updateOffer = () => invoke("update_offer");

/** Downloads, verifies and installs the offered update, then restarts; rejects with the reason. */
export const installUpdate = () => invoke("install_update");

/** An update offer (or null) whenever the back end looked for one. */
export const onUpdateOffer = (handler) => listen("update-offer", handler);

/** Status on every change. Returns a promise of an unlisten function. */
export const onStatus = (handler) => listen("status", handler);

/** Locked, unlocked, wiped: payload as lockStatus. */
export const onLockState = (handler) => listen("lock-state", handler);

/** The worklist or a referral changed: re-fetch both. */
export const onReferralsChanged = (handler) => listen("referrals-changed", handler);

/** An outcome moved on (queued → sent, conflict, rejected); payload `{referral_id}`. */
export const onOutcomeChanged = (handler) => listen("outcome-changed", handler);
