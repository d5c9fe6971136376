//! The outcome: a form (kind, appointment urgency for face-to-face, diagnosis, plan), a
//! confirmation dialog that shows exactly what will be signed, and, once signed, a read-only
//! record with its delivery state. Unsigned drafts are kept per referral in memory (so a
//! background re-render never loses typing) and saved, a moment after the last keystroke, into
//! the encrypted cache through the back end (so they survive a crash). Nothing goes to web storage.

import { byId, h, replaceChildren } from "./dom.js";
import {
  OUTCOME_KIND_LABELS,
  URGENCY_LONG_LABELS,
  formatBirthDate,
  formatDateTime,
  formatNhsNumber,
  label,
} from "./format.js";

const MAX_TEXT = 20_000; // The protocol's MAX_OUTCOME_TEXT.

const KINDS = ["gp_treatment_plan", "face_to_face", "request_more_information"];
const APPOINTMENT_URGENCIES = ["two_week_wait", "urgent", "routine"];

const EMPTY_DRAFT = { kind: "", appointment_urgency: "", diagnosis: "", plan: "" };
const DRAFT_SAVE_DELAY_MS = 600;

const PLAN_HINTS = {
  gp_treatment_plan: "What the GP practice should do: treatment, duration, follow-up and safety-netting.",
  face_to_face: "Anything the clinic or GP practice should know before the appointment.",
  request_more_information: "What the GP practice should send: information or better photographs.",
};

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
  constructor({ sign, signed, saveDraft }) {
    this.section = byId("outcome");
    this.dialog = byId("confirm-dialog");
    this.confirmButton = byId("confirm-sign");
    this.confirmError = byId("confirm-error");
    this.sign = sign;
    this.signed = signed;
    this.persistDraft = saveDraft;
    this.saveTimers = new Map();
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

    if (view.outcome) {
      this.formReferralId = null;
      this.drafts.delete(referralId);
      this.#renderSigned(view.outcome);
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
    for (const control of [this.urgencySelect, this.diagnosisInput, this.planInput]) control.disabled = removed;
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
    if (view.referral.version !== this.pending.version || view.outcome || view.removed_reason) {
      this.dialog.close("stale");
      return true;
    }
    return false;
  }

  #renderSigned(outcomeView) {
    this.form = null;
    // Background refreshes re-render often: keep the element (and focus) unless something changed.
    const signature = JSON.stringify([outcomeView.outcome_id, outcomeView.state, outcomeView.sent_at, outcomeView.problem]);
    if (this.signedSignature === signature && this.section.querySelector("#outcome-state")) return;
    this.signedSignature = signature;
    const hadFocus = this.section.contains(document.activeElement);
    const outcome = outcomeView.outcome;
    const entries = [["Outcome", label(OUTCOME_KIND_LABELS, outcome.kind)]];
    if (outcome.kind === "face_to_face") entries.push(["Appointment", label(URGENCY_LONG_LABELS, outcome.appointment_urgency)]);
    entries.push(["Diagnosis", outcome.diagnosis || "Not given", "summary-text"]);
    entries.push(["Plan", outcome.plan, "summary-text"]);
    entries.push(["Signed", formatDateTime(outcomeView.signed_at)]);
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
        h("dl", { class: "summary-list" }, summaryRows(entries)),
      ),
    );
    if (hadFocus) document.getElementById("outcome-state")?.focus();
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

  #renderForm(referralId, savedAt) {
    this.signedSignature = null;
    const draft = this.drafts.get(referralId) ?? EMPTY_DRAFT;
    const saveDraft = () => this.#scheduleSave(referralId);

    const kindError = h("p", { class: "field-error", id: "kind-error", hidden: true });
    const urgencyError = h("p", { class: "field-error", id: "urgency-error", hidden: true });
    const planError = h("p", { class: "field-error", id: "plan-error", hidden: true });

    const radios = KINDS.map((kind) =>
      h(
        "label",
        { class: "choice" },
        h("input", {
          type: "radio",
          name: "outcome-kind",
          id: `kind-${kind}`,
          value: kind,
          checked: draft.kind === kind,
          on: { change: () => this.#onKindChange() },
        }),
        h("span", { text: label(OUTCOME_KIND_LABELS, kind) }),
      ),
    );

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

    this.diagnosisInput = h("input", {
      type: "text",
      id: "diagnosis",
      name: "diagnosis",
      maxLength: MAX_TEXT,
      autocomplete: "off",
      spellcheck: true,
      value: draft.diagnosis,
    });
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

    this.signButton = h("button", { type: "submit", class: ["button", "button-primary", "sign-button"], id: "sign-and-send", text: "Sign & send…" });
    this.offlineNote = h("p", { class: "field-hint offline-note", text: "You are offline: the signed outcome will wait on this computer and go when you are back online.", hidden: true });
    this.draftNote = h("p", {
      class: "field-hint draft-note",
      id: "draft-state",
      attrs: { "aria-live": "polite" },
      text: savedAt ? `Draft saved ${formatDateTime(savedAt)}` : "",
    });

    this.errors = { kind: kindError, urgency: urgencyError, plan: planError };
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
      h("div", { class: "field" }, h("label", { class: "field-label", attrs: { for: "diagnosis" }, text: "Diagnosis" }), this.diagnosisInput),
      h("div", { class: "field" }, h("label", { class: "field-label", attrs: { for: "plan" }, text: "Plan" }), this.planHint, this.planInput, planError),
      h("div", { class: "form-actions" }, this.signButton, this.offlineNote),
      this.draftNote,
    );

    replaceChildren(this.section, h("h2", { class: "section-heading", id: "outcome-title", text: "Your outcome" }), this.form);
  }

  #readForm() {
    const kind = this.form?.querySelector('input[name="outcome-kind"]:checked')?.value ?? "";
    return {
      kind,
      appointment_urgency: this.urgencySelect.value,
      diagnosis: this.diagnosisInput.value,
      plan: this.planInput.value,
    };
  }

  #onKindChange() {
    const { kind } = this.#readForm();
    this.urgencyField.hidden = kind !== "face_to_face";
    this.planHint.textContent = PLAN_HINTS[kind] ?? "What the GP practice should do next.";
    this.#showError("kind", "");
    if (kind !== "face_to_face") this.#showError("urgency", "");
  }

  #showError(field, message) {
    const element = this.errors[field];
    element.textContent = message;
    element.hidden = !message;
    const control = { kind: null, urgency: this.urgencySelect, plan: this.planInput }[field];
    if (control) control.setAttribute("aria-invalid", message ? "true" : "false");
  }

  /** Checks the form; returns the Outcome to sign, or null after showing what is missing. */
  #validate() {
    const draft = this.#readForm();
    const problems = [];
    this.#showError("kind", draft.kind ? "" : "Choose what should happen next.");
    if (!draft.kind) problems.push(this.form.querySelector('input[name="outcome-kind"]'));
    const needsUrgency = draft.kind === "face_to_face" && !draft.appointment_urgency;
    this.#showError("urgency", needsUrgency ? "Choose how soon the appointment is needed." : "");
    if (needsUrgency) problems.push(this.urgencySelect);
    const planMissing = draft.plan.trim() === "";
    this.#showError("plan", planMissing ? "Write the plan: what the GP practice should do." : "");
    if (planMissing) problems.push(this.planInput);
    if (problems.length) {
      problems[0].focus();
      return null;
    }
    return {
      kind: draft.kind,
      appointment_urgency: draft.kind === "face_to_face" ? draft.appointment_urgency : null,
      diagnosis: draft.diagnosis.trim(),
      plan: draft.plan.trim(),
    };
  }

  #onSignRequested() {
    const view = this.view;
    if (!view || view.outcome || view.removed_reason) return;
    const outcome = this.#validate();
    if (!outcome) return;
    const { referral } = view;
    this.pending = { referralId: referral.id, version: referral.version, outcome };

    const entries = [
      ["Patient", referral.patient.name],
      ["NHS No.", formatNhsNumber(referral.patient.nhs_number)],
      ["Born", formatBirthDate(referral.patient.date_of_birth)],
      ["Referral", `${referral.id} · version ${referral.version}`],
      ["Outcome", label(OUTCOME_KIND_LABELS, outcome.kind)],
    ];
    if (outcome.kind === "face_to_face") entries.push(["Appointment", label(URGENCY_LONG_LABELS, outcome.appointment_urgency)]);
    entries.push(["Diagnosis", outcome.diagnosis || "Not given", "summary-text"]);
    entries.push(["Plan", outcome.plan, "summary-text"]);

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
      const outcomeView = await this.sign(pending.referralId, pending.version, pending.outcome);
      // Signing removed the stored draft in the same transaction; drop the pending save too.
      clearTimeout(this.saveTimers.get(pending.referralId));
      this.saveTimers.delete(pending.referralId);
      this.drafts.delete(pending.referralId);
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
