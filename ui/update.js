//! The update offer, a strip under the top bar: the core's words as they are, one button.
//! Nothing is installed without the click; a refusal shows the core's message (what failed, that nothing
//! was changed) and the offer stays.

import * as api from "./api.js";
import { byId } from "./dom.js";

export class UpdateOffer {
  constructor() {
    this.root = byId("update-offer");
    this.button = byId("update-install");
    this.error = byId("update-offer-error");
    this.installing = false;
    this.button.addEventListener("click", () => this.install());
    api.onUpdateOffer((offer) => this.render(offer));
  }

  /** Asks again (the note counts the outcomes waiting now). */
  async refresh() {
    try {
      this.render(await api.updateOffer());
    } catch {
      // Locked or starting: nothing to offer yet.
    }
  }

  render(offer) {
    if (this.installing) return;
    this.root.hidden = !offer;
    if (!offer) return;
    byId("update-offer-headline").textContent = offer.headline;
    byId("update-offer-note").textContent = offer.note ?? "";
    this.button.textContent = offer.action;
    this.root.title = offer.release_notes ?? "";
  }

  async install() {
    this.installing = true;
    this.button.disabled = true;
    this.error.hidden = true;
    this.button.textContent = "Installing…";
    try {
      await api.installUpdate();
    } catch (error) {
      this.error.textContent = error.message;
      this.error.hidden = false;
      this.installing = false;
      this.button.disabled = false;
      await this.refresh();
    }
  }
}
