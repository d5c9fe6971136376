//! The device dialog (opened from the consultant's name in the top bar): which service this
//! computer is enrolled with, the key it signs with, the keys it signed with before, and
//! "Replace signing key". Replacing needs the service; if it cannot be reached the current key
//! stays in use and a started replacement finishes at the next sync (the core decides).
//! "Sign out…" erases this computer's cache and keys; signed outcomes not yet sent are named
//! and must be confirmed (the core refuses otherwise), never lost silently.

import * as api from "./api.js";
import { byId, h, replaceChildren } from "./dom.js";
import { notify } from "./toast.js";

const shortKey = (keyId) => (keyId ? `${String(keyId).slice(0, 16)}…` : "—");

export class DeviceDialog {
  constructor() {
    this.dialog = byId("device-dialog");
    this.summary = byId("device-summary");
    this.error = byId("device-error");
    this.rotateButton = byId("rotate-key");
    this.rotateButton.addEventListener("click", () => this.#rotate());
    this.signOutButton = document.createElement("button");
    this.signOutButton.type = "button";
    this.signOutButton.className = "button button-danger";
    this.signOutButton.id = "sign-out";
    this.signOutButton.textContent = "Sign out…";
    this.rotateButton.after(this.signOutButton);
    this.signOutButton.addEventListener("click", () => this.#askSignOut());
    this.signOutDialog = byId("sign-out-dialog");
    this.signOutWarning = byId("sign-out-warning");
    this.signOutConfirm = byId("sign-out-confirm");
    byId("sign-out-form").addEventListener("submit", (event) => this.#onSignOutSubmit(event));
  }

  #askSignOut() {
    this.signOutWarning.hidden = true;
    this.signOutConfirm.dataset.confirmUnsent = "false";
    this.signOutConfirm.textContent = "Sign out";
    this.signOutConfirm.disabled = false;
    this.dialog.close();
    this.signOutDialog.showModal();
  }

  async #onSignOutSubmit(event) {
    if (event.submitter?.value !== "sign-out") return;
    event.preventDefault();
    const confirmUnsent = this.signOutConfirm.dataset.confirmUnsent === "true";
    this.signOutConfirm.disabled = true;
    try {
      await api.signOut(confirmUnsent);
      // The back end reports the new lock state; the page starts over on the lock screen.
      this.signOutDialog.close();
    } catch (error) {
      this.signOutWarning.textContent = error?.message ?? String(error);
      this.signOutWarning.hidden = false;
      if (error?.kind === "unsent_outcomes") {
        this.signOutConfirm.dataset.confirmUnsent = "true";
        this.signOutConfirm.textContent = "Erase them and sign out";
      }
      this.signOutConfirm.disabled = false;
    }
  }

  async open() {
    this.error.hidden = true;
    this.rotateButton.disabled = false;
    this.rotateButton.textContent = "Replace signing key";
    try {
      this.version ??= await api.appVersion();
      this.#render(await api.device());
    } catch (error) {
      this.#render(null);
      this.#showError(error);
    }
    if (!this.dialog.open) this.dialog.showModal();
  }

  #render(device) {
    this.rotateButton.hidden = !device;
    this.signOutButton.hidden = !device;
    const version = [h("dt", { text: "Derm Desk" }), h("dd", { id: "app-version", text: this.version ?? "" })];
    if (!device) {
      replaceChildren(this.summary, h("dt", { text: "Enrolment" }), h("dd", { text: "This computer is not enrolled yet." }), version);
      return;
    }
    const rows = [
      ["Consultant", device.consultant_name],
      ["Service", device.hub_url],
      ["Device", device.device_id],
      ["Signing key", device.key_id, "device-key"],
      ["Earlier keys", device.earlier_key_ids.length ? device.earlier_key_ids.map(shortKey).join(", ") : "None"],
      ["Service receipt key", shortKey(device.hub_key_id)],
    ];
    if (device.rotation_pending) rows.push(["Replacement", "Started; the service confirms it at the next sync"]);
    replaceChildren(
      this.summary,
      rows.flatMap(([term, value, id]) => [h("dt", { text: term }), h("dd", { id, text: value })]),
      version,
    );
  }

  async #rotate() {
    this.rotateButton.disabled = true;
    this.rotateButton.textContent = "Replacing…";
    this.error.hidden = true;
    try {
      const device = await api.rotateKey();
      this.#render(device);
      notify("New signing key in use. Outcomes signed before still verify with the old key.");
    } catch (error) {
      this.#showError(error);
      api.device().then((device) => this.#render(device), () => {});
    } finally {
      this.rotateButton.disabled = false;
      this.rotateButton.textContent = "Replace signing key";
    }
  }

  #showError(error) {
    this.error.textContent = `${error?.message ?? error} The current key stays in use.`;
    this.error.hidden = false;
  }
}
