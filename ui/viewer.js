//! The main photo viewer: one full-resolution photo inside an overflow-hidden stage, zoomed and
//! panned with a CSS transform (wheel zooms around the cursor, drag pans, Fit / 1:1 / + / −,
//! keys + − 0 1). A later issue replaces this file with OpenSeadragon, so the rest of the UI
//! only uses the small interface of `PhotoViewer` (show, showMessage, handleKey, destroy).
//!
//! Orientation: photos may carry EXIF orientation 6. We rely on CSS `image-orientation:
//! from-image` (the default), and read the displayed size from `naturalWidth/Height`, which
//! modern engines report after orientation, rather than from the referral's pixel metadata.

import { h } from "./dom.js";

const MAX_SCALE = 8; // 800 % of the photo's own pixels: enough to inspect a dermoscopic border.
const BUTTON_STEP = 1.5;
const KEY_PAN_FRACTION = 0.1;

export class PhotoViewer {
  /** @param {HTMLElement} container emptied and owned by the viewer from now on. */
  constructor(container) {
    this.container = container;
    this.url = null;
    this.naturalWidth = 0;
    this.naturalHeight = 0;
    this.scale = 1;
    this.x = 0;
    this.y = 0;
    this.mode = "fit"; // "fit" keeps fitting on resize; "free" after the user zooms or pans.
    this.drag = null;

    this.image = h("img", {
      class: "viewer-image",
      alt: "",
      draggable: false,
      decoding: "async",
      on: { load: () => this.#onLoad(), error: () => this.#onError() },
    });
    this.message = h("p", { class: "viewer-message" });
    this.stage = h(
      "div",
      {
        class: "viewer-stage",
        tabIndex: 0,
        attrs: {
          role: "group",
          "aria-roledescription": "photo viewer",
          "aria-label": "Photo. Plus and minus zoom, 0 fits, 1 shows actual pixels, arrow keys or drag pan.",
        },
        on: {
          wheel: (event) => this.#onWheel(event),
          pointerdown: (event) => this.#onPointerDown(event),
          pointermove: (event) => this.#onPointerMove(event),
          pointerup: (event) => this.#onPointerUp(event),
          pointercancel: (event) => this.#onPointerUp(event),
          dblclick: (event) => this.#onDoubleClick(event),
          keydown: (event) => {
            if (this.handleKey(event, { arrows: true })) event.preventDefault();
          },
        },
      },
      this.image,
      this.message,
    );
    this.zoomReadout = h("output", { class: "viewer-zoom", attrs: { "aria-live": "off" } });
    const button = (text, title, action, extraClass) =>
      h("button", {
        type: "button",
        class: ["viewer-button", extraClass],
        text,
        title,
        attrs: { "aria-label": title },
        on: { click: action },
      });
    this.buttons = [
      button("Fit", "Fit photo to the window (0)", () => this.fit()),
      button("1:1", "Actual pixels (1)", () => this.actualSize()),
      button("−", "Zoom out (−)", () => this.zoomBy(1 / BUTTON_STEP)),
      button("+", "Zoom in (+)", () => this.zoomBy(BUTTON_STEP)),
    ];
    this.toolbar = h("div", { class: "viewer-toolbar", attrs: { role: "toolbar", "aria-label": "Zoom" } }, this.buttons, this.zoomReadout);

    container.replaceChildren(this.stage, this.toolbar);
    container.classList.add("viewer");

    this.resizeObserver = new ResizeObserver(() => this.#onResize());
    this.resizeObserver.observe(this.stage);
    this.showMessage("No photo selected");
  }

  /** Shows a photo. Showing the URL already on screen keeps the current zoom and pan. */
  show({ url, label }) {
    this.image.alt = label ?? "";
    if (url === this.url) return;
    this.url = url;
    this.naturalWidth = 0;
    this.naturalHeight = 0;
    this.mode = "fit";
    this.image.hidden = true;
    this.#setMessage("Loading photo…");
    this.#setEnabled(false);
    this.image.src = url;
  }

  /** Replaces the photo with a short message, e.g. "Downloading…". */
  showMessage(text) {
    this.url = null;
    this.image.hidden = true;
    this.image.removeAttribute("src");
    this.#setMessage(text);
    this.#setEnabled(false);
  }

  fit() {
    if (!this.#hasImage()) return;
    this.mode = "fit";
    const { width, height } = this.#stageSize();
    this.scale = this.#fitScale();
    this.x = (width - this.naturalWidth * this.scale) / 2;
    this.y = (height - this.naturalHeight * this.scale) / 2;
    this.#apply();
  }

  actualSize() {
    const { width, height } = this.#stageSize();
    this.zoomTo(1, width / 2, height / 2);
  }

  zoomBy(factor) {
    const { width, height } = this.#stageSize();
    this.zoomTo(this.scale * factor, width / 2, height / 2);
  }

  /** Zooms so that the photo point under stage point (px, py) stays under it. */
  zoomTo(scale, px, py) {
    if (!this.#hasImage()) return;
    const next = Math.min(MAX_SCALE, Math.max(this.#minScale(), scale));
    this.x = px - (px - this.x) * (next / this.scale);
    this.y = py - (py - this.y) * (next / this.scale);
    this.scale = next;
    this.mode = "free";
    this.#apply();
  }

  panBy(dx, dy) {
    if (!this.#hasImage()) return;
    this.x += dx;
    this.y += dy;
    this.mode = "free";
    this.#apply();
  }

  /**
   * Handles + − 0 1 (and arrows, when asked) for a keydown that was not typed into a field.
   * Returns true when the key was used, so the caller can preventDefault.
   */
  handleKey(event, { arrows = false } = {}) {
    if (event.ctrlKey || event.metaKey || event.altKey || !this.#hasImage()) return false;
    const { width, height } = this.#stageSize();
    switch (event.key) {
      case "+":
      case "=":
        this.zoomBy(BUTTON_STEP);
        return true;
      case "-":
      case "_":
        this.zoomBy(1 / BUTTON_STEP);
        return true;
      case "0":
        this.fit();
        return true;
      case "1":
        this.actualSize();
        return true;
    }
    if (!arrows) return false;
    const step = { ArrowLeft: [1, 0], ArrowRight: [-1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] }[event.key];
    if (!step) return false;
    this.panBy(step[0] * width * KEY_PAN_FRACTION, step[1] * height * KEY_PAN_FRACTION);
    return true;
  }

  destroy() {
    this.resizeObserver.disconnect();
    this.container.replaceChildren();
  }

  #hasImage() {
    return this.url !== null && this.naturalWidth > 0 && this.naturalHeight > 0;
  }

  #stageSize() {
    return { width: this.stage.clientWidth || 1, height: this.stage.clientHeight || 1 };
  }

  #fitScale() {
    const { width, height } = this.#stageSize();
    return Math.min(width / this.naturalWidth, height / this.naturalHeight);
  }

  #minScale() {
    // Never smaller than fitting (or actual size, for a photo smaller than the stage).
    return Math.min(this.#fitScale(), 1);
  }

  /** Keeps the photo on screen: centred along an axis where it is smaller than the stage,
   * otherwise with no empty gap at either edge. */
  #clamp() {
    const { width, height } = this.#stageSize();
    const shownWidth = this.naturalWidth * this.scale;
    const shownHeight = this.naturalHeight * this.scale;
    this.x = shownWidth <= width ? (width - shownWidth) / 2 : Math.min(0, Math.max(width - shownWidth, this.x));
    this.y = shownHeight <= height ? (height - shownHeight) / 2 : Math.min(0, Math.max(height - shownHeight, this.y));
  }

  #apply() {
    this.#clamp();
    this.image.style.transform = `translate(${this.x}px, ${this.y}px) scale(${this.scale})`;
    this.zoomReadout.textContent = `${Math.round(this.scale * 100)} %`;
    this.stage.classList.toggle("is-zoomed", this.mode === "free");
  }

  #setMessage(text) {
    this.message.textContent = text;
    this.message.hidden = !text;
  }

  #setEnabled(enabled) {
    for (const button of this.buttons) button.disabled = !enabled;
    if (!enabled) this.zoomReadout.textContent = "";
  }

  #onLoad() {
    if (!this.url) return;
    this.naturalWidth = this.image.naturalWidth;
    this.naturalHeight = this.image.naturalHeight;
    this.image.style.width = `${this.naturalWidth}px`;
    this.image.style.height = `${this.naturalHeight}px`;
    this.image.hidden = false;
    this.#setMessage("");
    this.#setEnabled(true);
    this.fit();
  }

  #onError() {
    if (!this.url) return;
    this.image.hidden = true;
    this.naturalWidth = 0;
    this.#setMessage("This photo could not be shown. It is kept safe on this computer; try another photo or sync again.");
    this.#setEnabled(false);
  }

  #onResize() {
    if (!this.#hasImage()) return;
    if (this.mode === "fit") this.fit();
    else this.#apply();
  }

  #stagePoint(event) {
    const rect = this.stage.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }

  #onWheel(event) {
    if (!this.#hasImage()) return;
    event.preventDefault();
    // Lines and pages are turned into pixels so mice and trackpads feel alike.
    const unit = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? this.#stageSize().height : 1;
    const factor = Math.exp(-event.deltaY * unit * 0.0015);
    const [px, py] = this.#stagePoint(event);
    this.zoomTo(this.scale * factor, px, py);
  }

  #onPointerDown(event) {
    if (event.button !== 0 || !this.#hasImage()) return;
    this.stage.focus({ preventScroll: true });
    this.stage.setPointerCapture(event.pointerId);
    this.drag = { id: event.pointerId, x: event.clientX, y: event.clientY };
    this.stage.classList.add("is-dragging");
  }

  #onPointerMove(event) {
    if (!this.drag || event.pointerId !== this.drag.id) return;
    const dx = event.clientX - this.drag.x;
    const dy = event.clientY - this.drag.y;
    this.drag.x = event.clientX;
    this.drag.y = event.clientY;
    if (dx || dy) this.panBy(dx, dy);
  }

  #onPointerUp(event) {
    if (!this.drag || event.pointerId !== this.drag.id) return;
    this.drag = null;
    this.stage.classList.remove("is-dragging");
    if (this.stage.hasPointerCapture(event.pointerId)) this.stage.releasePointerCapture(event.pointerId);
  }

  #onDoubleClick(event) {
    if (!this.#hasImage()) return;
    if (this.mode === "fit") {
      const [px, py] = this.#stagePoint(event);
      this.zoomTo(1, px, py);
    } else {
      this.fit();
    }
  }
}
