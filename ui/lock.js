//! The lock screen: choose a passphrase at first start, unlock at start and after the idle lock,
//! re-enter it before signing when the last unlock is a few minutes old, and the Lock button.
//! The rules (lengths, delays, attempts, idle time) are the core's; this file shows what the
//! back end says. Locking reloads the page, so nothing of a referral stays in the DOM.

import * as api from "./api.js";
import { byId } from "./dom.js";
import { hideConnect, showConnect } from "./connect.js";

const ACTIVITY_EVERY_MS = 5_000;

const screen = byId("lock-screen");
const form = byId("lock-form");
const title = byId("lock-title");
const intro = byId("lock-intro");
const notice = byId("lock-notice");
const passphrase = byId("lock-passphrase");
const again = byId("lock-passphrase-again");
const againLabel = byId("lock-again-label");
const error = byId("lock-error");
const submit = byId("lock-submit");
const cancel = byId("lock-cancel");

let current = "starting";
/** Set while signing waits for the passphrase: resolves true (entered) or false (cancelled). */
let reauthentication = null;
let countdown = null;

const TEXT = {
  starting: ["Derm Desk is starting…", "Opening the keychain.", "Unlock"],
  failed: ["Derm Desk could not start", "Nothing was written. The message below says why and what to do.", "Unlock"],
  choose_passphrase: [
    "Choose a passphrase",
    "It protects the patient data on this computer: without it the encrypted cache cannot be opened, " +
      "even by someone who has this computer and its keychain. Use at least 10 characters. " +
      "Derm Desk asks for it at start, after 15 minutes without activity, and before signing.",
    "Set passphrase",
  ],
  locked: ["Derm Desk is locked", "Enter your passphrase to unlock.", "Unlock"],
  reauth: [
    "Confirm it is you",
    "Signing needs your passphrase again, because it was last entered more than a few minutes ago.",
    "Confirm and sign",
  ],
};

function render(mode, view) {
  screen.dataset.state = mode;
  const [heading, introText, action] = TEXT[mode] ?? TEXT.locked;
  title.textContent = heading;
  intro.textContent = introText;
  submit.textContent = action;
  const choosing = mode === "choose_passphrase";
  again.hidden = againLabel.hidden = !choosing;
  again.required = choosing;
  passphrase.autocomplete = choosing ? "new-password" : "current-password";
  cancel.hidden = mode !== "reauth";
  submit.disabled = mode === "starting" || mode === "failed" || countdown !== null;
  notice.textContent = view?.notice ?? "";
  notice.hidden = !view?.notice;
  if (!screen.open) screen.showModal();
  passphrase.focus();
}

function showError(problem) {
  error.textContent = problem?.message ?? String(problem);
  error.hidden = false;
  const wait = Number(/Wait (\d+) s/.exec(error.textContent)?.[1] ?? 0);
  if (problem?.kind === "wrong_passphrase" || problem?.kind === "unlock_delayed") holdFor(wait);
}

/** Keeps the button disabled for the delay the core asked for, counting down. */
function holdFor(seconds) {
  clearInterval(countdown);
  if (!seconds) {
    countdown = null;
    return;
  }
  let left = seconds;
  submit.disabled = true;
  submit.dataset.wait = String(left);
  countdown = setInterval(() => {
    left -= 1;
    submit.dataset.wait = String(left);
    if (left <= 0) {
      clearInterval(countdown);
      countdown = null;
      delete submit.dataset.wait;
      submit.disabled = false;
    }
  }, 1000);
}

const OPEN = new Set(["unlocked", "recheck"]);

function apply(view) {
  const wasOpen = OPEN.has(current);
  current = view.state;
  if (OPEN.has(current)) {
    hideConnect();
    if (!reauthentication && screen.open) screen.close();
    addLockButton();
    return;
  }
  // Locked, signed out or wiped while patient data is on screen: start the page over.
  if (wasOpen) {
    window.location.reload();
    return;
  }
  if (current === "connect" || current === "connecting") {
    if (screen.open) screen.close();
    showConnect(view);
    return;
  }
  hideConnect();
  render(current, view);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (submit.disabled) return;
  error.hidden = true;
  const mode = screen.dataset.state;
  if (mode === "choose_passphrase" && passphrase.value !== again.value) {
    showError({ message: "The two passphrases are not the same. Nothing was stored; type them again." });
    return;
  }
  submit.disabled = true;
  const label = submit.textContent;
  submit.textContent = mode === "choose_passphrase" ? "Setting…" : "Checking…";
  try {
    if (mode === "reauth") {
      await api.reauthenticate(passphrase.value);
      finishReauthentication(true);
    } else {
      apply(await (mode === "choose_passphrase" ? api.choosePassphrase(passphrase.value) : api.unlock(passphrase.value)));
    }
    passphrase.value = again.value = "";
  } catch (problem) {
    passphrase.value = again.value = "";
    showError(problem);
    passphrase.focus();
  } finally {
    submit.textContent = label;
    if (countdown === null) submit.disabled = false;
  }
});

// Escape closes a modal dialog: only the passphrase check before signing may be cancelled.
screen.addEventListener("cancel", (event) => {
  event.preventDefault();
  if (reauthentication) finishReauthentication(false);
});
cancel.addEventListener("click", () => finishReauthentication(false));

function finishReauthentication(entered) {
  const resolve = reauthentication;
  reauthentication = null;
  screen.close();
  if (!entered) api.cancelReauthentication().catch(() => {});
  resolve?.(entered);
}

/** Before signing: asks for the passphrase again. True once it was entered, false if cancelled. */
export function requestPassphrase() {
  error.hidden = true;
  return new Promise((resolve) => {
    reauthentication = resolve;
    render("reauth", null);
  });
}

function addLockButton() {
  if (document.getElementById("lock-now")) return;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button button-quiet";
  button.id = "lock-now";
  button.textContent = "Lock";
  button.title = "Lock Derm Desk now (the passphrase unlocks it)";
  button.addEventListener("click", () => api.lock().catch((problem) => showError(problem)));
  byId("consultant").before(button);
}

// Activity keeps the idle lock away; reported at most every few seconds.
let lastReported = 0;
function activity() {
  const now = Date.now();
  if (!OPEN.has(current) || now - lastReported < ACTIVITY_EVERY_MS) return;
  lastReported = now;
  api.reportActivity().catch(() => {});
}
for (const name of ["keydown", "pointerdown", "wheel"]) {
  document.addEventListener(name, activity, { capture: true, passive: true });
}

async function start() {
  await api.onLockState(apply).catch(() => {});
  // Until the back end has its keychain, ask again shortly.
  for (;;) {
    const view = await api.lockStatus().catch(() => ({ state: "starting" }));
    apply(view);
    if (view.state !== "starting") break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

start();
