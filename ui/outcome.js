//! The outcome: a form (kind, appointment urgency for face-to-face, diagnosis, plan), a
//! confirmation dialog that shows exactly what will be signed, and, once signed, a read-only
//! record with its delivery state. Unsigned drafts are kept per referral in memory (so a
//! background re-render never loses typing) and saved, a moment after the last keystroke, into
//! the encrypted cache through the back end (so they survive a crash). Nothing goes to web storage.

import { photoLabel } from "./detail.js";
import { byId, h, replaceChildren } from "./dom.js";
import { requestPassphrase } from "./lock.js";
import {
  OUTCOME_KIND_LABELS,
  URGENCY_LONG_LABELS,
  formatBirthDate,
  formatDateTime,
  formatNhsNumber,
  label,
} from "./format.js";

const MAX_TEXT = 20_000; // The protocol's MAX_OUTCOME_TEXT.

const KINDS = ["gp_treatment_plan", "face_to_face", "request_more_information", "advice_and_discharge"];
const APPOINTMENT_URGENCIES = ["two_week_wait", "urgent", "routine"];
const CERTAINTIES = { provisional: "Provisional", differential: "Differential", confirmed: "Confirmed" };
const MISSING_VIEWS = { overview: "Overview", close_up: "Close-up", dermoscopic: "Dermoscopic", other_angle: "Other angle" };

const EMPTY_DRAFT = {
  kind: "",
  appointment_urgency: "",
  diagnosis: "",
  diagnosis_code: "",
  certainty: "",
  plan: "",
  missing_views: [],
  patient_information_url: "",
  key_photos: [],
  governance_reason: "",
};
const DRAFT_SAVE_DELAY_MS = 600;

const PLAN_HINTS = {
  gp_treatment_plan: "What the GP practice should do: treatment, duration, follow-up and safety-netting.",
  face_to_face: "Anything the clinic or GP practice should know before the appointment.",
  request_more_information: "What the GP practice should send: information or better photographs.",
  advice_and_discharge: "Your advice to the GP; the patient is discharged from the service.",
};

/**
 * "Request better photos": picks the Request more information outcome in the form on screen,
 * ticks the photographs needed (`views`, e.g. ["close_up"]) and puts `text` in its plan (after
 * anything already typed there). Uses the same events as the consultant's own input, so the
 * form's rules run and the draft is saved. False if the form is not showing or that outcome is
 * not available (the referral is signed, or governance blocks it).
 */
export function prefillPhotoRequest(text, views = []) {
  const kind = document.getElementById("kind-request_more_information");
  const plan = document.getElementById("plan");
  if (!kind || !plan || kind.disabled) return false;
  kind.checked = true;
  kind.dispatchEvent(new Event("change", { bubbles: true }));
  for (const view of views) {
    const box = document.getElementById(`missing-${view}`);
    if (box && !box.checked) {
      box.checked = true;
      box.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }
  const current = plan.value.trim();
  if (!current.includes(text)) plan.value = current ? `${current}\n\n${text}` : text;
  plan.dispatchEvent(new Event("input", { bubbles: true }));
  plan.focus();
  return true;
}

/** Fields of the signed record and the confirmation, shared so both always show the same. */
export function outcomeEntries(outcome, photoLabels = new Map()) {
  const entries = [["Outcome", label(OUTCOME_KIND_LABELS, outcome.kind)]];
  if (outcome.kind === "face_to_face") entries.push(["Appointment", label(URGENCY_LONG_LABELS, outcome.appointment_urgency)]);
  const coded = outcome.diagnosis_code ? ` (SNOMED CT ${outcome.diagnosis_code})` : "";
  const certainty = outcome.certainty ? ` · ${CERTAINTIES[outcome.certainty] ?? outcome.certainty}` : "";
  entries.push(["Diagnosis", outcome.diagnosis ? `${outcome.diagnosis}${coded}${certainty}` : "Not given", "summary-text"]);
  if (outcome.missing_views?.length) entries.push(["Photos needed", outcome.missing_views.map((v) => MISSING_VIEWS[v] ?? v).join(", ")]);
  entries.push(["Plan", outcome.plan, "summary-text"]);
  if (outcome.patient_information_url) entries.push(["Patient leaflet", outcome.patient_information_url, "summary-text"]);
  if (outcome.key_photos?.length) entries.push(["Key photos", outcome.key_photos.map((id) => photoLabels.get(id) ?? id.slice(0, 12)).join("; "), "summary-text"]);
  if (outcome.governance_reason) entries.push(["Reason (governance)", outcome.governance_reason, "summary-text"]);
  return entries;
}

/** The words on `#outcome-state` for an OutcomeView. */
export function outcomeStateText(view) {
  switch (view.state) {
    case "queued":
      return "Queued — waiting to send";
    case "sent":
      return view.sent_at ? `Sent ${formatDateTime(view.sent_at)}` : "Sent";
    case "conflict":
      return `Conflict: ${view.problem || "the referral changed on the service after you signed."}`;
    case "rejected":
      return `Rejected: ${view.problem || "the service did not accept this outcome."}`;
    default:
      return String(view.state);
  }
}

const STATE_NOTES = {
  queued: "Signed on this computer and kept safe. Derm Desk sends it automatically when it is online.",
  sent: "The teledermatology service has acknowledged this outcome.",
  conflict: "The signed outcome is kept on this computer and was not changed. Contact the teledermatology service to resolve it.",
  rejected: "The signed outcome is kept on this computer and was not changed. Contact the teledermatology service to resolve it.",
};

function summaryRows(entries) {
  return entries.flatMap(([term, value, extraClass]) => [
    h("dt", { text: term }),
    h("dd", { class: extraClass, text: value }),
  ]);
}

export class OutcomePanel {
  /**
   * @param {{sign: (referralId: string, outcome: object) => Promise<object>,
   *          signed: (referralId: string, view: object) => void}} callbacks
   *   `sign` calls the back end and rejects with a CommandError; `signed` is told the result.
   */
  constructor({ sign, signed, saveDraft, diagnoses, advice, exportOutcome }) {
    this.section = byId("outcome");
    this.dialog = byId("confirm-dialog");
    this.confirmButton = byId("confirm-sign");
    this.confirmError = byId("confirm-error");
    this.sign = sign;
    this.signed = signed;
    this.persistDraft = saveDraft;
    this.exportOutcome = exportOutcome;
    this.exportedPath = new Map(); // referral id -> where its signed outcome was last saved
    this.saveTimers = new Map();
    this.fetchAdvice = advice;
    this.adviceByKind = new Map();
    this.picklist = [];
    this.byTerm = new Map();
    this.byCode = new Map();
    diagnoses().then(
      (list) => {
        this.picklist = list;
        for (const entry of list) {
          if (entry.concept_id) this.byCode.set(entry.concept_id, entry);
          for (const name of [entry.term, ...(entry.synonyms ?? [])]) {
            if (!this.byTerm.has(name.toLowerCase())) this.byTerm.set(name.toLowerCase(), entry);
          }
        }
        if (this.form) this.#fillDatalist();
      },
      () => {}, // Free text still works without the list.
    );
    this.drafts = new Map();
    this.formReferralId = null;
    this.view = null;
    this.pending = null; // {referralId, version, outcome} while the dialog is open

    byId("confirm-form").addEventListener("submit", (event) => this.#onConfirmSubmit(event));
    this.dialog.addEventListener("close", () => {
      this.pending = null;
      this.confirmError.hidden = true;
      this.confirmButton.disabled = false;
      this.confirmButton.textContent = "Sign";
    });
  }

  /** Draws the form or the signed record for a ReferralView. */
  render(view, { consultantName, online }) {
    this.view = view;
    this.consultantName = consultantName;
    const referralId = view.referral.id;

    const resigning = this.resigning === referralId && view.can_sign_again;
    if (view.outcome && !resigning) {
      this.formReferralId = null;
      this.drafts.delete(referralId);
      this.#renderSigned(view.outcome, view);
      return;
    }
    if (!this.drafts.has(referralId) && view.draft && typeof view.draft === "object") {
      this.drafts.set(referralId, { ...EMPTY_DRAFT, ...view.draft });
    }
    if (this.formReferralId !== referralId || !this.form) {
      this.formReferralId = referralId;
      this.#renderForm(referralId, view.draft_saved_at);
    }
    const removed = Boolean(view.removed_reason);
    this.signButton.disabled = removed;
    // In conflict the draft stays readable but cannot be changed or signed.
    this.form.querySelector("fieldset.choices").disabled = removed;
    if (removed) for (const control of this.form.elements) control.disabled = true;
    this.offlineNote.hidden = online !== false || removed;
  }

  clear() {
    this.signedSignature = null;
    this.formReferralId = null;
    this.form = null;
    this.view = null;
    replaceChildren(this.section);
  }

  /** Called when the open referral changed under an open dialog: what was shown is stale. */
  referralChanged(view) {
    if (!this.pending || !this.dialog.open) return;
    if (view.referral.id !== this.pending.referralId) return;
    if (view.referral.version !== this.pending.version || (view.outcome && view.outcome.state !== "conflict") || view.removed_reason) {
      this.dialog.close("stale");
      return true;
    }
    return false;
  }

  /** Opens the form again, filled with the refused outcome, for the referral's current version. */
  #signAgain(view) {
    const { outcome } = view.outcome;
    const draft = { ...EMPTY_DRAFT };
    for (const key of Object.keys(EMPTY_DRAFT)) if (outcome[key] != null) draft[key] = outcome[key];
    this.drafts.set(view.referral.id, draft);
    this.resigning = view.referral.id;
    this.formReferralId = null;
    this.render(view, { consultantName: this.consultantName, online: null });
    this.section.querySelector("#plan")?.focus();
  }

  #renderSigned(outcomeView, view) {
    this.form = null;
    // Background refreshes re-render often: keep the element (and focus) unless something changed.
    const signature = JSON.stringify([
      outcomeView.outcome_id,
      outcomeView.state,
      outcomeView.sent_at,
      outcomeView.problem,
      outcomeView.receipt?.verified,
      view.can_sign_again,
      view.changes_since_signed,
    ]);
    if (this.signedSignature === signature && this.section.querySelector("#outcome-state")) return;
    this.signedSignature = signature;
    const hadFocus = this.section.contains(document.activeElement);
    const outcome = outcomeView.outcome;
    const entries = outcomeEntries(outcome, this.#photoLabels());
    entries.push(["Signed", formatDateTime(outcomeView.signed_at)]);
    const receipt = outcomeView.receipt;
    if (receipt) {
      // Proof of delivery: the service's own signature over what it received.
      entries.push([
        "Delivery receipt",
        `${receipt.verified ? "Verified: signed by the service" : "Not verified"} · received ${formatDateTime(receipt.received_at)} · service key ${String(receipt.hub_key_id ?? "").slice(0, 12)}…`,
        "summary-text receipt",
      ]);
    }
    if (outcomeView.referral_version != null) entries.push(["Referral version", String(outcomeView.referral_version)]);

    replaceChildren(
      this.section,
      h("h2", { class: "section-heading", id: "outcome-title", text: "Outcome" }),
      h(
        "div",
        { class: ["outcome-signed", `state-${outcomeView.state}`] },
        h("p", {
          id: "outcome-state",
          class: ["outcome-state", `state-${outcomeView.state}`],
          dataset: { state: outcomeView.state },
          tabIndex: -1, // Focus lands here after signing, where the Sign button was.
          attrs: { role: "status" },
          text: outcomeStateText(outcomeView),
        }),
        h("p", { class: "outcome-state-note", text: STATE_NOTES[outcomeView.state] ?? "" }),
        view.changes_since_signed?.length
          ? h(
              "div",
              { class: ["notice", "notice-warning", "referral-changes"], id: "referral-changes" },
              h("p", { class: "changes-title", text: `The GP practice changed the referral after you signed (you signed version ${outcomeView.referral_version}, it is now version ${view.referral.version}):` }),
              h(
                "dl",
                { class: "summary-list" },
                view.changes_since_signed.flatMap((change) => [
                  h("dt", { text: change.field }),
                  h("dd", { class: "summary-text" }, h("del", { text: change.before || "(empty)" }), " → ", h("ins", { text: change.after || "(empty)" })),
                ]),
              ),
            )
          : null,
        view.can_sign_again
          ? h("button", {
              type: "button",
              class: ["button", "button-primary"],
              id: "sign-again",
              text: "Review and sign again…",
              on: { click: () => this.#signAgain(view) },
            })
          : null,
        h("dl", { class: "summary-list" }, summaryRows(entries)),
        this.#exportTools(view.referral.id),
      ),
    );
    if (hadFocus) document.getElementById("outcome-state")?.focus();
  }

  /**
   * Keyboard shortcuts while a referral's form is on screen, wherever the focus is: Alt+1…4
   * choose the decision, Ctrl+Enter (⌘+Enter) asks to sign, and `o` (outside a text field)
   * jumps into the form. Returns true when the key was used.
   */
  handleShortcut(event) {
    if (!this.form || this.dialog.open) return false;
    // By key position (`code`): on a Mac, Option+1 types "¡".
    const digit = /^Digit([1-4])$/.exec(event.code)?.[1] ?? (/^[1-4]$/.test(event.key) ? event.key : null);
    if (event.altKey && !event.ctrlKey && !event.metaKey && digit) {
      const input = this.form.querySelector(`#kind-${KINDS[Number(digit) - 1]}`);
      if (!input || input.disabled) return true; // Blocked: the note beside it says why.
      input.checked = true;
      input.focus();
      input.dispatchEvent(new Event("change", { bubbles: true }));
      return true;
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !event.altKey) {
      this.#onSignRequested();
      return true;
    }
    return false;
  }

  /** Puts the focus in the form: on the chosen decision, else the first one allowed. */
  focusForm() {
    if (!this.form) return false;
    const target =
      this.form.querySelector('input[name="outcome-kind"]:checked') ??
      this.form.querySelector('input[name="outcome-kind"]:not(:disabled)') ??
      this.form.querySelector("#diagnosis");
    target?.focus();
    return Boolean(target);
  }

  /** "Save a verifiable copy…": the signed outcome as a file for the GP practice (docs/VERIFY.md). */
  #exportTools(referralId) {
    const note = h("p", { class: "field-hint export-note", id: "export-note", attrs: { "aria-live": "polite" } });
    const showSaved = (path) => {
      note.textContent = `Saved: ${path}. The practice can check it with \`cargo xtask verify\` (docs/VERIFY.md).`;
    };
    if (this.exportedPath.has(referralId)) showSaved(this.exportedPath.get(referralId));
    const button = h("button", {
      type: "button",
      class: ["button", "button-small"],
      id: "export-outcome",
      text: "Save a verifiable copy",
      title: "Writes the signed outcome, your public key and the service's receipt to a file the GP practice can verify",
      on: {
        click: async () => {
          button.disabled = true;
          try {
            const path = await this.exportOutcome(referralId);
            this.exportedPath.set(referralId, path);
            showSaved(path);
          } catch (error) {
            note.textContent = `Not saved: ${error?.message ?? error}`;
          } finally {
            button.disabled = false;
          }
        },
      },
    });
    return h("div", { class: "export-tools" }, button, note);
  }

  /** Keeps the typing in memory now and in the encrypted cache shortly after the last key. */
  #scheduleSave(referralId) {
    const draft = this.#readForm();
    this.drafts.set(referralId, draft);
    clearTimeout(this.saveTimers.get(referralId));
    this.saveTimers.set(
      referralId,
      setTimeout(() => {
        this.saveTimers.delete(referralId);
        const empty = Object.values(draft).every((value) => !String(value ?? "").trim());
        this.persistDraft(referralId, empty ? null : draft).then(
          () => this.#showDraftState(referralId, empty ? "" : `Draft saved ${new Date().toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" })}`),
          (error) => this.#showDraftState(referralId, `Draft not saved: ${error.message}`, true),
        );
      }, DRAFT_SAVE_DELAY_MS),
    );
  }

  #showDraftState(referralId, text, isError = false) {
    if (this.formReferralId !== referralId || !this.draftNote) return;
    this.draftNote.textContent = text;
    this.draftNote.dataset.tone = isError ? "error" : "info";
  }

  #photoLabels() {
    const photos = this.view?.photos ?? [];
    return new Map(photos.map((photo, index) => [photo.meta.content_id, `Photo ${index + 1}: ${photoLabel(photo.meta)}`]));
  }

  #fillDatalist() {
    const list = this.section.querySelector("#diagnosis-options");
    if (!list) return;
    replaceChildren(
      list,
      this.picklist.map((entry) => h("option", { value: entry.term, label: entry.synonyms?.length ? entry.synonyms.join(", ") : entry.term })),
    );
  }

  /** The picklist entry the diagnosis text names exactly (term or synonym), if any. */
  #codedEntry(text) {
    return this.byTerm.get(String(text ?? "").trim().toLowerCase()) ?? null;
  }

  #renderForm(referralId, savedAt) {
    this.signedSignature = null;
    const draft = { ...EMPTY_DRAFT, ...(this.drafts.get(referralId) ?? {}) };
    const saveDraft = () => this.#scheduleSave(referralId);

    const kindError = h("p", { class: "field-error", id: "kind-error", hidden: true });
    const urgencyError = h("p", { class: "field-error", id: "urgency-error", hidden: true });
    const planError = h("p", { class: "field-error", id: "plan-error", hidden: true });
    const reasonError = h("p", { class: "field-error", id: "reason-error", hidden: true });

    this.kindNotes = new Map();
    const radios = KINDS.map((kind, index) => {
      const note = h("span", { class: "choice-note", id: `kind-note-${kind}` });
      this.kindNotes.set(kind, note);
      return h(
        "label",
        { class: "choice", id: `choice-${kind}` },
        h("input", {
          type: "radio",
          name: "outcome-kind",
          id: `kind-${kind}`,
          value: kind,
          checked: draft.kind === kind,
          attrs: { "aria-describedby": `kind-note-${kind}`, "aria-keyshortcuts": `Alt+${index + 1}` },
          on: { change: () => this.#onKindChange() },
        }),
        h(
          "span",
          { class: "choice-text" },
          h("span", { text: label(OUTCOME_KIND_LABELS, kind) }),
          h("kbd", { class: "choice-key", text: `Alt ${index + 1}`, attrs: { "aria-hidden": "true" } }),
          note,
        ),
      );
    });

    this.urgencySelect = h(
      "select",
      { id: "appointment-urgency", name: "appointment-urgency", attrs: { "aria-describedby": "urgency-error" } },
      h("option", { value: "", text: "Choose urgency…" }),
      APPOINTMENT_URGENCIES.map((urgency) => h("option", { value: urgency, text: label(URGENCY_LONG_LABELS, urgency) })),
    );
    this.urgencySelect.value = draft.appointment_urgency ?? "";
    this.urgencyField = h(
      "div",
      { class: "field", hidden: draft.kind !== "face_to_face" },
      h("label", { class: "field-label", attrs: { for: "appointment-urgency" }, text: "Appointment urgency" }),
      this.urgencySelect,
      urgencyError,
    );

    this.missingViewBoxes = Object.entries(MISSING_VIEWS).map(([value, text]) =>
      h(
        "label",
        { class: "check" },
        h("input", { type: "checkbox", name: "missing-view", id: `missing-${value}`, value, checked: draft.missing_views?.includes(value) }),
        h("span", { text }),
      ),
    );
    this.missingField = h(
      "fieldset",
      { class: ["field", "checks"], id: "missing-views", hidden: draft.kind !== "request_more_information" },
      h("legend", { class: "field-label", text: "Photographs needed (say which are missing)" }),
      this.missingViewBoxes,
    );

    this.diagnosisInput = h("input", {
      type: "text",
      id: "diagnosis",
      name: "diagnosis",
      maxLength: MAX_TEXT,
      autocomplete: "off",
      spellcheck: true,
      value: draft.diagnosis,
      attrs: { list: "diagnosis-options", "aria-describedby": "diagnosis-code" },
      on: { change: () => this.#onDiagnosisChange(true), input: () => this.#onDiagnosisChange(false) },
    });
    this.diagnosisCode = h("p", { class: "field-hint", id: "diagnosis-code" });
    this.certaintySelect = h(
      "select",
      { id: "certainty", name: "certainty" },
      h("option", { value: "", text: "Certainty…" }),
      Object.entries(CERTAINTIES).map(([value, text]) => h("option", { value, text })),
    );
    this.certaintySelect.value = draft.certainty ?? "";

    this.planHint = h("p", { class: "field-hint", id: "plan-hint", text: PLAN_HINTS[draft.kind] ?? "What the GP practice should do next." });
    this.planInput = h("textarea", {
      id: "plan",
      name: "plan",
      rows: 7,
      maxLength: MAX_TEXT,
      spellcheck: true,
      value: draft.plan,
      attrs: { "aria-describedby": "plan-hint plan-error" },
    });
    this.templateButton = h("button", {
      type: "button",
      class: ["button", "button-small"],
      id: "use-template",
      text: "Use the template for this diagnosis",
      hidden: true,
      on: { click: () => this.#useTemplate(true) },
    });
    this.leafletBox = h("input", { type: "checkbox", id: "include-leaflet", checked: Boolean(draft.patient_information_url) });
    this.leafletText = h("span", { id: "leaflet-title" });
    this.leafletField = h("label", { class: ["check", "leaflet"], hidden: true }, this.leafletBox, this.leafletText);

    this.keyPhotoBoxes = (this.view?.photos ?? []).map((photo, index) =>
      h(
        "label",
        { class: "check" },
        h("input", { type: "checkbox", name: "key-photo", value: photo.meta.content_id, checked: draft.key_photos?.includes(photo.meta.content_id) }),
        h("span", { text: `Photo ${index + 1}: ${photoLabel(photo.meta)}` }),
      ),
    );

    this.reasonInput = h("textarea", {
      id: "governance-reason",
      name: "governance-reason",
      rows: 3,
      maxLength: MAX_TEXT,
      value: draft.governance_reason ?? "",
      attrs: { "aria-describedby": "reason-hint reason-error" },
    });
    this.reasonHint = h("p", { class: "field-hint", id: "reason-hint" });
    this.reasonField = h(
      "div",
      { class: ["field", "governance-reason"], hidden: true },
      h("label", { class: "field-label", attrs: { for: "governance-reason" }, text: "Your reason (signed with the outcome)" }),
      this.reasonHint,
      this.reasonInput,
      reasonError,
    );

    this.signButton = h("button", { type: "submit", class: ["button", "button-primary", "sign-button"], id: "sign-and-send", text: "Sign & send…" });
    this.offlineNote = h("p", { class: "field-hint offline-note", text: "You are offline: the signed outcome will wait on this computer and go when you are back online.", hidden: true });
    this.draftNote = h("p", {
      class: "field-hint draft-note",
      id: "draft-state",
      attrs: { "aria-live": "polite" },
      text: savedAt ? `Draft saved ${formatDateTime(savedAt)}` : "",
    });

    this.errors = { kind: kindError, urgency: urgencyError, plan: planError, reason: reasonError };
    this.form = h(
      "form",
      {
        class: "outcome-form",
        id: "outcome-form",
        noValidate: true,
        on: {
          input: saveDraft,
          change: saveDraft,
          submit: (event) => {
            event.preventDefault();
            this.#onSignRequested();
          },
        },
      },
      h(
        "fieldset",
        { class: "choices", attrs: { "aria-describedby": "kind-error" } },
        h("legend", { class: "field-label", text: "Decision" }),
        radios,
        kindError,
      ),
      this.urgencyField,
      this.missingField,
      this.reasonField,
      h(
        "div",
        { class: ["field", "diagnosis-field"] },
        h("label", { class: "field-label", attrs: { for: "diagnosis" }, text: "Diagnosis (search the list, or write your own)" }),
        h("div", { class: "diagnosis-row" }, this.diagnosisInput, this.certaintySelect),
        h("datalist", { id: "diagnosis-options" }),
        this.diagnosisCode,
      ),
      h(
        "div",
        { class: "field" },
        h("label", { class: "field-label", attrs: { for: "plan" }, text: "Plan" }),
        this.planHint,
        this.planInput,
        h("div", { class: "plan-tools" }, this.templateButton, this.leafletField),
        planError,
      ),
      this.keyPhotoBoxes.length
        ? h("fieldset", { class: ["field", "checks", "key-photos"], id: "key-photos" }, h("legend", { class: "field-label", text: "Key photos (support the outcome)" }), this.keyPhotoBoxes)
        : null,
      h("div", { class: "form-actions" }, this.signButton, this.offlineNote),
      this.draftNote,
    );

    replaceChildren(this.section, h("h2", { class: "section-heading", id: "outcome-title", text: "Your outcome" }), this.form);
    this.#fillDatalist();
    this.#onDiagnosisChange(false, { quiet: true });
    this.#refreshAdvice();
  }

  /** Asks the core which outcomes the rules allow (consent, two-week wait, suspected cancer). */
  async #refreshAdvice() {
    const referralId = this.formReferralId;
    const code = this.#codedEntry(this.diagnosisInput?.value)?.concept_id ?? null;
    let advice;
    try {
      advice = await this.fetchAdvice(referralId, code);
    } catch {
      return; // The core checks again at signing; the form stays usable.
    }
    if (referralId !== this.formReferralId || !this.form) return;
    this.adviceByKind = new Map(advice.map((item) => [item.kind, item]));
    const removed = Boolean(this.view?.removed_reason);
    for (const kind of KINDS) {
      const item = this.adviceByKind.get(kind);
      const input = this.form.querySelector(`#kind-${kind}`);
      const blocked = item?.permission === "blocked";
      input.disabled = blocked || removed;
      if (blocked && input.checked) input.checked = false;
      input.closest(".choice").dataset.permission = item?.permission ?? "allowed";
      this.kindNotes.get(kind).textContent =
        item?.permission === "blocked" ? "Not allowed here" : item?.permission === "needs_reason" ? "Needs your reason" : "";
    }
    this.#onKindChange();
  }

  #onDiagnosisChange(committed, { quiet = false } = {}) {
    const entry = this.#codedEntry(this.diagnosisInput.value);
    const previous = this.pickedTerm ?? null;
    this.pickedTerm = entry?.term ?? null;
    const warning = entry?.suspected_malignancy ? " · suspected malignancy: face to face only" : "";
    this.diagnosisCode.textContent = entry
      ? entry.concept_id
        ? `SNOMED CT ${entry.concept_id}${warning}`
        : "On the list, not coded yet (its SNOMED CT id is being confirmed): signed as text"
      : this.diagnosisInput.value.trim()
        ? "Free text (not on the list)"
        : "";
    this.templateButton.hidden = !entry;
    const info = entry?.patient_information;
    this.leafletField.hidden = !info;
    if (info) {
      this.leafletText.textContent = `Add the patient leaflet: ${info.title}`;
      this.leafletBox.value = info.url;
    }
    if (quiet) return;
    if (previous !== this.pickedTerm) {
      if (info) this.leafletBox.checked = true;
      if (committed || entry) this.#useTemplate(false);
      this.#refreshAdvice();
    }
  }

  /** Puts the diagnosis' plan template in the plan: always when asked, else only into an empty plan. */
  #useTemplate(replace) {
    const entry = this.#codedEntry(this.diagnosisInput.value);
    if (!entry?.plan_template) return;
    const current = this.planInput.value.trim();
    const isTemplate = this.picklist.some((other) => other.plan_template === current);
    if (replace || current === "" || isTemplate) {
      this.planInput.value = entry.plan_template;
      this.#scheduleSave(this.formReferralId);
    }
  }

  #readForm() {
    const kind = this.form?.querySelector('input[name="outcome-kind"]:checked')?.value ?? "";
    const checked = (name) => [...this.form.querySelectorAll(`input[name="${name}"]:checked`)].map((box) => box.value);
    const entry = this.#codedEntry(this.diagnosisInput.value);
    return {
      kind,
      appointment_urgency: this.urgencySelect.value,
      diagnosis_code: entry?.concept_id ?? "",
      // The GP reads the picklist's term when one was picked by a synonym ("BCC").
      diagnosis: entry ? entry.term : this.diagnosisInput.value,
      certainty: this.certaintySelect.value,
      plan: this.planInput.value,
      missing_views: checked("missing-view"),
      patient_information_url: !this.leafletField.hidden && this.leafletBox.checked ? this.leafletBox.value : "",
      key_photos: checked("key-photo"),
      governance_reason: this.reasonInput.value,
    };
  }

  #onKindChange() {
    const { kind } = this.#readForm();
    this.urgencyField.hidden = kind !== "face_to_face";
    this.missingField.hidden = kind !== "request_more_information";
    this.planHint.textContent = PLAN_HINTS[kind] ?? "What the GP practice should do next.";
    const advice = this.adviceByKind.get(kind);
    const needsReason = advice?.permission === "needs_reason" || this.#isDowngrade();
    this.reasonField.hidden = !needsReason;
    this.reasonHint.textContent = needsReason ? (advice?.why ?? this.adviceByKind.get("gp_treatment_plan")?.why ?? "") : "";
    this.#showError("kind", "");
    if (kind !== "face_to_face") this.#showError("urgency", "");
    this.#showBlocked();
  }

  /** A face-to-face answer at a lower urgency than the two-week wait the GP asked for. */
  #isDowngrade() {
    const kind = this.form?.querySelector('input[name="outcome-kind"]:checked')?.value;
    return this.view?.referral.urgency === "two_week_wait" && kind === "face_to_face" && this.urgencySelect.value && this.urgencySelect.value !== "two_week_wait";
  }

  /** Says, under the choices, why any of them is unavailable. */
  #showBlocked() {
    const reasons = [...new Set([...this.adviceByKind.values()].filter((a) => a.permission === "blocked").map((a) => a.why))];
    let note = this.form.querySelector("#governance-note");
    if (!note) {
      note = h("p", { class: ["notice", "notice-warning", "governance-note"], id: "governance-note", attrs: { role: "note" } });
      this.form.querySelector("fieldset.choices").append(note);
    }
    note.textContent = reasons.join(" ");
    note.hidden = reasons.length === 0;
  }

  #showError(field, message) {
    const element = this.errors[field];
    element.textContent = message;
    element.hidden = !message;
    const control = { kind: null, urgency: this.urgencySelect, plan: this.planInput, reason: this.reasonInput }[field];
    if (control) control.setAttribute("aria-invalid", message ? "true" : "false");
  }

  /** Checks the form; returns the Outcome to sign, or null after showing what is missing. */
  #validate() {
    const draft = this.#readForm();
    const problems = [];
    this.#showError("kind", draft.kind ? "" : "Choose what should happen next.");
    if (!draft.kind) problems.push(this.form.querySelector('input[name="outcome-kind"]:not(:disabled)'));
    const needsUrgency = draft.kind === "face_to_face" && !draft.appointment_urgency;
    this.#showError("urgency", needsUrgency ? "Choose how soon the appointment is needed." : "");
    if (needsUrgency) problems.push(this.urgencySelect);
    const needsReason = !this.reasonField.hidden && draft.governance_reason.trim() === "";
    this.#showError("reason", needsReason ? "Give your reason: it is signed with the outcome." : "");
    if (needsReason) problems.push(this.reasonInput);
    const planMissing = draft.plan.trim() === "";
    this.#showError("plan", planMissing ? "Write the plan: what the GP practice should do." : "");
    if (planMissing) problems.push(this.planInput);
    if (problems.length) {
      problems[0]?.focus();
      return null;
    }
    return {
      kind: draft.kind,
      appointment_urgency: draft.kind === "face_to_face" ? draft.appointment_urgency : null,
      diagnosis: draft.diagnosis.trim(),
      diagnosis_code: draft.diagnosis_code || null,
      certainty: draft.diagnosis.trim() && draft.certainty ? draft.certainty : null,
      plan: draft.plan.trim(),
      missing_views: draft.kind === "request_more_information" ? draft.missing_views : [],
      patient_information_url: draft.patient_information_url || null,
      key_photos: draft.key_photos,
      governance_reason: this.reasonField.hidden ? null : draft.governance_reason.trim(),
    };
  }

  #onSignRequested() {
    const view = this.view;
    if (!view || (view.outcome && !view.can_sign_again) || view.removed_reason) return;
    const outcome = this.#validate();
    if (!outcome) return;
    const { referral } = view;
    this.pending = { referralId: referral.id, version: referral.version, outcome };

    const entries = [
      ["Patient", referral.patient.name],
      ["NHS No.", formatNhsNumber(referral.patient.nhs_number)],
      ["Born", formatBirthDate(referral.patient.date_of_birth)],
      ["Referral", `${referral.id} · version ${referral.version}`],
      ...outcomeEntries(outcome, this.#photoLabels()),
    ];

    byId("confirm-intro").textContent =
      `You are signing as ${this.consultantName ?? "the enrolled consultant"}. A signed outcome cannot be changed; ` +
      "it is sent to the GP practice as shown here.";
    replaceChildren(byId("confirm-summary"), summaryRows(entries));
    this.confirmError.hidden = true;
    this.confirmButton.disabled = false;
    this.confirmButton.textContent = "Sign";
    this.dialog.showModal();
  }

  async #onConfirmSubmit(event) {
    if (event.submitter?.value !== "sign") return; // Cancel closes the dialog the normal way.
    event.preventDefault();
    const pending = this.pending;
    if (!pending || this.confirmButton.disabled) return;
    this.confirmButton.disabled = true;
    this.confirmButton.textContent = "Signing…";
    this.confirmError.hidden = true;
    try {
      let outcomeView;
      try {
        outcomeView = await this.sign(pending.referralId, pending.version, pending.outcome);
      } catch (error) {
        // The last unlock is a few minutes old: the passphrase again, then sign (lock.js).
        if (error?.kind !== "reauth_required" || !(await requestPassphrase())) throw error;
        outcomeView = await this.sign(pending.referralId, pending.version, pending.outcome);
      }
      // Signing removed the stored draft in the same transaction; drop the pending save too.
      clearTimeout(this.saveTimers.get(pending.referralId));
      this.saveTimers.delete(pending.referralId);
      this.drafts.delete(pending.referralId);
      this.resigning = null;
      this.dialog.close("signed");
      this.signed(pending.referralId, outcomeView);
      document.getElementById("outcome-state")?.focus();
    } catch (error) {
      this.confirmError.textContent = error?.message ?? String(error);
      this.confirmError.hidden = false;
      this.confirmButton.disabled = false;
      this.confirmButton.textContent = "Sign";
    }
  }
}
