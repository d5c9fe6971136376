//! The Connect screen: the service's address and a one-time enrolment code, on first start,
//! after sign-out and after the service revoked this computer. What is valid (https only,
//! http only to this computer, the code's alphabet and length) is the core's: the code is
//! checked by it as typed, the address when Connect is pressed. Every failure leaves the
//! screen usable, with the back end's message saying what happened and what to do.

import * as api from "./api.js";
import { byId } from "./dom.js";

const screen = byId("connect-screen");
const form = byId("connect-form");
const notice = byId("connect-notice");
const service = byId("connect-service");
const serviceHint = byId("connect-service-hint");
const code = byId("connect-code");
const codeHint = byId("connect-code-hint");
const error = byId("connect-error");
const submit = byId("connect-submit");

const CODE_HINT = codeHint.textContent;
const SERVICE_HINT = serviceHint.textContent;
let busy = false;

/** Shows the screen for the stage `view` (connect or connecting). */
export function showConnect(view) {
  screen.dataset.state = view.state;
  notice.textContent = view.notice ?? "";
  notice.hidden = !view.notice;
  if (view.service_url && !service.value) service.value = view.service_url;
  service.readOnly = !!view.service_url_locked;
  serviceHint.textContent = view.service_url_locked
    ? "Set by your organisation for this computer."
    : SERVICE_HINT;
  setBusy(view.state === "connecting");
  if (!screen.open) screen.showModal();
  (service.value ? code : service).focus();
}

export function hideConnect() {
  if (screen.open) screen.close();
}

function setBusy(on) {
  busy = on;
  submit.disabled = on;
  submit.textContent = on ? "Connecting…" : "Connect";
  form.setAttribute("aria-busy", String(on));
}

// The code is checked as it is typed (by the core): how many characters are still missing,
// or why it cannot be a code. The field keeps what was typed; Connect sends it as it is.
let checking = 0;
code.addEventListener("input", async () => {
  const mine = ++checking;
  const check = await api.checkCode(code.value).catch(() => null);
  if (mine !== checking || !check) return;
  code.setAttribute("aria-invalid", String(check.state === "invalid"));
  codeHint.dataset.state = check.state;
  codeHint.textContent =
    check.state === "invalid"
      ? `${capitalise(check.problem)}.`
      : check.state === "incomplete"
        ? `${check.formatted} — ${check.missing} more to go.`
        : check.state === "complete"
          ? `${check.formatted} — complete.`
          : CODE_HINT;
});

function capitalise(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : "";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (busy) return;
  error.hidden = true;
  setBusy(true);
  try {
    await api.connect(service.value, code.value);
    // The stage moves on (to the passphrase): lock.js shows it from the lock-state event.
    code.value = "";
    codeHint.textContent = CODE_HINT;
    delete codeHint.dataset.state;
  } catch (problem) {
    error.textContent = problem?.message ?? String(problem);
    error.hidden = false;
    const field = problem?.kind === "bad_enrolment_code" || problem?.kind === "hub" ? code : service;
    field.focus();
  } finally {
    setBusy(false);
  }
});

// Escape does not close the Connect screen: there is nothing behind it yet.
screen.addEventListener("cancel", (event) => event.preventDefault());
