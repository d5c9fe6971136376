//! One photo pane: an OpenSeadragon deep-zoom viewer over the photo scheme's tiles, which the
//! Rust side cuts from the encrypted cache (`photo://localhost/<id>/…`, never written to disk).
//!
//! - First pixels come from `preview.jpg` (a small, fast preview); the tile pyramid
//!   (`info.json` + `tiles/<level>/<col>_<row>.jpg`, Deep Zoom geometry) loads above it.
//! - EXIF orientation is applied at display time, per image (OpenSeadragon rotation + flip),
//!   from `info.json` (rotation_degrees, flip_horizontal), so the pixels are never rotated in
//!   memory and never shown on their side; all eight orientations are checked on screen by
//!   tests/e2e/orientation.rs.
//! - Rotate 90° / flip act on the view; brightness, contrast and gamma are CSS/SVG filters on
//!   the pane (per photo, reset with one click); nothing changes the photo itself.
//! - A ruler measures in image pixels; once calibrated (a line drawn over a known length, e.g. a
//!   ruler in the photo) lengths show in millimetres, otherwise they say "uncalibrated".

import { h } from "./dom.js";

const OSD = () => window.OpenSeadragon;
const SVG_NS = "http://www.w3.org/2000/svg";
const MAX_ZOOM_PIXEL_RATIO = 8; // 800 %: enough for a dermoscopic border
let paneCount = 0;

/** Where each resource of a photo lives, from the base URL the back end gives. */
export const photoResource = {
  info: (url) => `${url}/info.json`,
  preview: (url) => `${url}/preview.jpg`,
  thumb: (url) => `${url}/thumb.jpg`,
  tile: (url, level, col, row) => `${url}/tiles/${level}/${col}_${row}.jpg`,
};

export const DEFAULT_ADJUST = Object.freeze({ brightness: 1, contrast: 1, gamma: 1 });

/** Millimetres per image pixel for calibrated photos, by content id (kept while the app runs). */
export const calibrations = new Map();

export class PhotoPane {
  /**
   * @param {HTMLElement} container emptied and owned by the pane.
   * @param {{onViewChange?: (pane: PhotoPane) => void, onActivate?: (pane: PhotoPane) => void,
   *          onPick?: (pane: PhotoPane) => void}} hooks
   */
  constructor(container, hooks = {}) {
    this.id = ++paneCount;
    this.container = container;
    this.hooks = hooks;
    this.photo = null;
    this.info = null;
    this.item = null; // the tiled image (full resolution pyramid)
    this.adjust = { ...DEFAULT_ADJUST };
    this.tool = null; // null | "measure" | "calibrate" | "pick"
    this.lines = []; // measured lines, image coordinates: {a: {x, y}, b: {x, y}}
    this.anchor = null; // picked point for manual sync, image coordinates
    this.requestToken = 0;

    this.message = h("p", { class: "viewer-message" });
    this.osdHost = h("div", { class: "osd-host" });
    this.overlay = document.createElementNS(SVG_NS, "svg");
    this.overlay.classList.add("viewer-overlay");
    this.filterSvg = this.#buildGammaFilter();
    this.readout = h("output", { class: "pane-readout", attrs: { "aria-live": "polite" } });
    this.calibrateForm = this.#buildCalibrateForm();
    // Who the photo is of, on the pane itself (every pane, full screen too): a photo is never
    // seen without its patient, and an earlier referral's photo says so.
    this.identity = h("p", { class: "pane-identity", attrs: { "aria-label": "Patient in this pane" } });
    container.replaceChildren(this.osdHost, this.overlay, this.filterSvg, this.message, this.readout, this.calibrateForm, this.identity);
    container.classList.add("photo-pane");
    container.dataset.pane = String(this.id);
    container.addEventListener("pointerdown", () => hooks.onActivate?.(this), { capture: true });
    container.addEventListener("focusin", () => hooks.onActivate?.(this));

    this.overlay.addEventListener("pointerdown", (event) => this.#onToolPointerDown(event));
    this.overlay.addEventListener("pointermove", (event) => this.#onToolPointerMove(event));
    this.overlay.addEventListener("pointerup", (event) => this.#onToolPointerUp(event));

    if (!OSD()) {
      this.viewer = null;
      this.#setMessage("The photo viewer (OpenSeadragon) is missing from this build. Run `cargo xtask demo` to set it up.");
      return;
    }
    this.viewer = OSD()({
      element: this.osdHost,
      showNavigationControl: false,
      crossOriginPolicy: "Anonymous",
      // WebGL where it works, else a 2D canvas; tiles carry CORS headers for WebGL.
      drawer: ["webgl", "canvas"],
      maxZoomPixelRatio: MAX_ZOOM_PIXEL_RATIO,
      visibilityRatio: 0.5,
      constrainDuringPan: true,
      animationTime: 0.25,
      springStiffness: 10,
      blendTime: 0,
      immediateRender: true,
      imageLoaderLimit: 6,
      preserveImageSizeOnResize: true,
      gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: true, flickEnabled: false },
      gestureSettingsTouch: { pinchToZoom: true, flickEnabled: true },
      keyboardNavEnabled: false, // our keys (handleKey): OpenSeadragon's w/a/s/d would clash
      silenceMultiImageWarnings: true,
    });
    this.viewer.addHandler("viewport-change", () => {
      this.#drawOverlay();
      this.#updateReadout();
      this.hooks.onViewChange?.(this);
    });
    // While the photo is as fitted (nothing zoomed or panned since), a change of the pane's size
    // fits it again: a banner that appears after the first fit (quality, identity) would
    // otherwise cut off its top, as `preserveImageSizeOnResize` keeps the image's size.
    this.fitted = false;
    for (const name of ["canvas-drag", "canvas-scroll", "canvas-pinch", "canvas-double-click"]) {
      this.viewer.addHandler(name, () => {
        this.fitted = false;
      });
    }
    this.viewer.addHandler("resize", () => {
      if (this.fitted && this.photo) this.viewer.viewport.goHome(true);
      this.#drawOverlay();
    });
    this.showMessage("No photo selected");
  }

  #showIdentity(photo) {
    const who = photo.identity;
    const part = (cls, text) => h("bdi", { class: cls, text });
    this.identity.replaceChildren(
      ...(who
        ? [
            part("pane-patient-name", who.name),
            " · NHS No. ",
            part(who.nhsProblem ? "pane-nhs-number is-invalid" : "pane-nhs-number", who.nhsNumber),
            " · born ",
            part("pane-born", who.born),
          ]
        : []),
      ...(photo.earlier ? [h("span", { class: "pane-earlier", text: photo.earlier })] : []),
    );
    this.identity.title = who?.nhsProblem ?? "";
    this.identity.hidden = !who && !photo.earlier;
  }

  /** The photo on show, or null. */
  get contentId() {
    return this.photo?.meta?.content_id ?? null;
  }

  get ready() {
    return Boolean(this.item);
  }

  /** Shows a photo: `{url, label, meta}`. Showing the one already on screen keeps the view. */
  async show(photo) {
    if (!this.viewer) return;
    if (this.photo?.url === photo.url && this.item) return;
    const token = ++this.requestToken;
    this.photo = photo;
    this.item = null;
    this.info = null;
    this.lines = [];
    this.anchor = null;
    this.viewer.viewport.setRotation(0, true);
    this.viewer.viewport.setFlip(false);
    this.container.dataset.contentId = photo.meta.content_id;
    this.container.dataset.loaded = "false";
    this.#showIdentity(photo);
    this.#setMessage("Loading photo…");
    let info;
    try {
      const response = await fetch(photoResource.info(photo.url), { cache: "no-store" });
      if (!response.ok) throw new Error((await response.text()) || `HTTP ${response.status}`);
      info = await response.json();
    } catch (error) {
      if (token !== this.requestToken) return;
      this.#fail(error);
      return;
    }
    if (token !== this.requestToken) return;
    this.info = info;
    // The core turns EXIF orientation into the display transform (dermdesk-imaging's
    // display_transform): rotate clockwise, then mirror left-right. OpenSeadragon applies an
    // image's `flipped` first (it mirrors the tiles within the unturned image) and its
    // `degrees` after, and mirroring then turning by d equals turning by -d then mirroring:
    // so a mirrored photo is given the opposite turn. Only EXIF 5 and 7 (90°/270° + mirror)
    // are affected; passed as is they showed upside down (tests/e2e/orientation.rs).
    const flipped = info.flip_horizontal;
    const rotation = flipped ? (360 - info.rotation_degrees) % 360 : info.rotation_degrees;
    const url = photo.url;
    const maxLevel = info.levels - 1;
    const tileSource = {
      width: info.width,
      height: info.height,
      tileSize: info.tile_size,
      tileOverlap: info.overlap,
      // Skip the tiny levels: the preview covers them.
      minLevel: Math.max(0, maxLevel - Math.ceil(Math.log2(Math.max(info.width, info.height) / info.tile_size))),
      maxLevel,
      getTileUrl: (level, col, row) => photoResource.tile(url, level, col, row),
    };
    this.viewer.world.removeAll();
    const common = { x: 0, y: 0, width: 1, degrees: rotation, flipped };
    this.viewer.addTiledImage({
      ...common,
      index: 0,
      tileSource: { type: "image", url: photoResource.preview(url), crossOriginPolicy: "Anonymous" },
      success: () => {
        if (token !== this.requestToken) return;
        this.#setMessage("");
        this.viewer.viewport.goHome(true);
        this.fitted = true;
      },
      error: (event) => token === this.requestToken && !this.item && this.#fail(event?.message),
    });
    this.viewer.addTiledImage({
      ...common,
      index: 1,
      tileSource,
      success: (event) => {
        if (token !== this.requestToken) return;
        this.item = event.item;
        this.#setMessage("");
        event.item.addHandler("fully-loaded-change", (change) => {
          this.container.dataset.loaded = String(change.fullyLoaded);
        });
        this.#applyFilters();
        this.#updateReadout();
      },
      error: (event) => token === this.requestToken && this.#fail(event?.message),
    });
  }

  /** Replaces the photo with a short message, e.g. "Downloading…". */
  showMessage(text) {
    this.requestToken++;
    this.photo = null;
    this.item = null;
    this.info = null;
    this.lines = [];
    this.anchor = null;
    delete this.container.dataset.contentId;
    this.container.dataset.loaded = "false";
    this.viewer?.world.removeAll();
    this.#setMessage(text);
    this.#drawOverlay();
    this.#updateReadout();
  }

  fit() {
    this.viewer?.viewport.goHome();
    this.fitted = true;
  }

  /** One image pixel on one screen pixel. */
  actualSize() {
    if (!this.item) return;
    const zoom = this.item.imageToViewportZoom(1 / (window.devicePixelRatio || 1));
    this.fitted = false;
    this.viewer.viewport.zoomTo(zoom, null);
  }

  zoomBy(factor) {
    this.fitted = false;
    this.viewer?.viewport.zoomBy(factor);
    this.viewer?.viewport.applyConstraints();
  }

  /** Rotates the view 90° clockwise (or back); the photo itself is untouched. */
  rotate(step = 90) {
    if (!this.viewer) return;
    // Read back, not tracked: OpenSeadragon's own keys (r, f on its canvas) change it too.
    const degrees = this.viewer.viewport.getRotation() + (this.viewer.viewport.getFlip() ? -step : step);
    this.viewer.viewport.setRotation(((degrees % 360) + 360) % 360);
  }

  flip() {
    this.viewer?.viewport.setFlip(!this.viewer.viewport.getFlip());
  }

  /** Zoom and centre, in viewport coordinates (photo width = 1): for linking panes. */
  getView() {
    if (!this.viewer) return null;
    const center = this.viewer.viewport.getCenter(false);
    return { x: center.x, y: center.y, zoom: this.viewer.viewport.getZoom(false) };
  }

  setView({ x, y, zoom }) {
    if (!this.viewer) return;
    // Linked to another pane's view: this pane follows it, not its own fit.
    this.fitted = false;
    this.viewer.viewport.zoomTo(zoom, null, true);
    this.viewer.viewport.panTo(new (OSD().Point)(x, y), true);
  }

  /** The picked point in viewport coordinates, if any. */
  anchorViewport() {
    if (!this.anchor || !this.item) return null;
    const point = this.item.imageToViewportCoordinates(this.anchor.x, this.anchor.y, true);
    return { x: point.x, y: point.y };
  }

  setAdjust(adjust) {
    this.adjust = { ...this.adjust, ...adjust };
    this.#applyFilters();
  }

  resetAdjust() {
    this.setAdjust(DEFAULT_ADJUST);
  }

  /** null, "measure", "calibrate" or "pick". */
  setTool(tool) {
    this.tool = tool;
    this.container.dataset.tool = tool ?? "";
    this.calibrateForm.hidden = true;
    this.#updateReadout();
  }

  clearMeasurements() {
    this.lines = [];
    this.#drawOverlay();
    this.#updateReadout();
  }

  /** The pane's keys (when it, or nothing else, has the focus). True when used. */
  handleKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || !this.item) return false;
    switch (event.key) {
      case "+":
      case "=":
        this.zoomBy(1.5);
        return true;
      case "-":
      case "_":
        this.zoomBy(1 / 1.5);
        return true;
      case "0":
        this.fit();
        return true;
      case "1":
        this.actualSize();
        return true;
      case "r":
        this.rotate(90);
        return true;
      case "R":
        this.rotate(-90);
        return true;
      case "f":
        this.flip();
        return true;
    }
    const pan = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[event.key];
    if (!pan) return false;
    const step = this.viewer.viewport.deltaPointsFromPixels(
      new (OSD().Point)(pan[0] * this.osdHost.clientWidth * 0.1, pan[1] * this.osdHost.clientHeight * 0.1),
    );
    this.viewer.viewport.panBy(step);
    this.viewer.viewport.applyConstraints();
    return true;
  }

  destroy() {
    this.viewer?.destroy();
    this.container.replaceChildren();
  }

  // -- private -------------------------------------------------------------------------------

  #fail(error) {
    const text = typeof error === "string" ? error : error?.message;
    this.container.dataset.loaded = "error";
    this.#setMessage(
      `This photo could not be shown${text ? ` (${text})` : ""}. It is kept safe on this computer; try another photo or sync again.`,
    );
  }

  #setMessage(text) {
    this.message.textContent = text;
    this.message.hidden = !text;
  }

  #buildGammaFilter() {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("class", "gamma-filter");
    svg.setAttribute("aria-hidden", "true");
    const filter = document.createElementNS(SVG_NS, "filter");
    filter.id = `gamma-${this.id}`;
    filter.setAttribute("color-interpolation-filters", "sRGB");
    const transfer = document.createElementNS(SVG_NS, "feComponentTransfer");
    this.gammaFunctions = ["feFuncR", "feFuncG", "feFuncB"].map((name) => {
      const func = document.createElementNS(SVG_NS, name);
      func.setAttribute("type", "gamma");
      func.setAttribute("amplitude", "1");
      func.setAttribute("offset", "0");
      func.setAttribute("exponent", "1");
      transfer.append(func);
      return func;
    });
    filter.append(transfer);
    svg.append(filter);
    return svg;
  }

  #applyFilters() {
    const { brightness, contrast, gamma } = this.adjust;
    for (const func of this.gammaFunctions) func.setAttribute("exponent", String(1 / gamma));
    const parts = [];
    if (gamma !== 1) parts.push(`url(#gamma-${this.id})`);
    if (brightness !== 1) parts.push(`brightness(${brightness})`);
    if (contrast !== 1) parts.push(`contrast(${contrast})`);
    this.osdHost.style.filter = parts.join(" ");
    this.container.dataset.adjusted = String(parts.length > 0);
  }

  #elementPoint(event) {
    const rect = this.osdHost.getBoundingClientRect();
    return new (OSD().Point)(event.clientX - rect.left, event.clientY - rect.top);
  }

  #imagePoint(event) {
    const point = this.item.viewerElementToImageCoordinates(this.#elementPoint(event));
    return { x: point.x, y: point.y };
  }

  #onToolPointerDown(event) {
    if (!this.tool || !this.item || event.button !== 0) return;
    event.preventDefault();
    const point = this.#imagePoint(event);
    if (this.tool === "pick") {
      this.anchor = point;
      this.#drawOverlay();
      this.hooks.onPick?.(this);
      return;
    }
    this.overlay.setPointerCapture(event.pointerId);
    this.drawing = { a: point, b: point, pointerId: event.pointerId };
    if (this.tool === "calibrate") this.lines = this.lines.filter((line) => !line.calibration);
    this.#drawOverlay();
  }

  #onToolPointerMove(event) {
    if (!this.drawing || event.pointerId !== this.drawing.pointerId) return;
    this.drawing.b = this.#imagePoint(event);
    this.#drawOverlay();
    this.#updateReadout();
  }

  #onToolPointerUp(event) {
    if (!this.drawing || event.pointerId !== this.drawing.pointerId) return;
    const line = { a: this.drawing.a, b: this.drawing.b, calibration: this.tool === "calibrate" };
    this.drawing = null;
    if (lengthPx(line) < 3) {
      this.#drawOverlay();
      return;
    }
    this.lines.push(line);
    this.#drawOverlay();
    this.#updateReadout();
    if (line.calibration) {
      this.pendingCalibration = line;
      this.calibrateForm.hidden = false;
      this.calibrateInput.value = "";
      this.calibrateInput.focus();
    }
  }

  #buildCalibrateForm() {
    this.calibrateInput = h("input", {
      type: "number",
      class: "calibrate-input",
      id: `calibrate-mm-${this.id}`,
      min: "0.1",
      step: "0.1",
      attrs: { inputmode: "decimal", "aria-label": "Known length of the line, in millimetres" },
    });
    const form = h(
      "form",
      {
        class: "calibrate-form",
        hidden: true,
        on: {
          submit: (event) => {
            event.preventDefault();
            const mm = Number(this.calibrateInput.value);
            if (!(mm > 0) || !this.pendingCalibration || !this.contentId) return;
            calibrations.set(this.contentId, mm / lengthPx(this.pendingCalibration));
            this.pendingCalibration = null;
            form.hidden = true;
            this.setTool("measure");
            this.#updateReadout();
          },
        },
      },
      h("label", { attrs: { for: `calibrate-mm-${this.id}` }, text: "This line is" }),
      this.calibrateInput,
      h("span", { text: "mm" }),
      h("button", { type: "submit", class: "viewer-button", text: "Set scale" }),
    );
    return form;
  }

  /** Length of a line in words: millimetres when calibrated, else pixels and "uncalibrated". */
  describe(line) {
    const px = lengthPx(line);
    const mmPerPx = calibrations.get(this.contentId);
    return mmPerPx ? `${(px * mmPerPx).toFixed(1)} mm` : `${Math.round(px)} px (uncalibrated)`;
  }

  #updateReadout() {
    const parts = [];
    if (this.item) parts.push(`${Math.round(this.item.viewportToImageZoom(this.viewer.viewport.getZoom(true)) * (window.devicePixelRatio || 1) * 100)} %`);
    const last = this.drawing ?? this.lines.at(-1);
    if (last && (this.tool === "measure" || this.tool === "calibrate" || this.lines.length)) parts.push(this.describe(last));
    else if (this.tool === "measure") parts.push(calibrations.has(this.contentId) ? "Ruler: drag across the photo" : "Ruler (uncalibrated): drag across the photo");
    else if (this.tool === "calibrate") parts.push("Draw a line over a known length");
    else if (this.tool === "pick") parts.push(this.anchor ? "Point picked" : "Click the same point on each photo");
    this.readout.textContent = parts.join(" · ");
  }

  #drawOverlay() {
    const overlay = this.overlay;
    overlay.replaceChildren();
    if (!this.item) return;
    const toScreen = (p) => this.item.imageToViewerElementCoordinates(new (OSD().Point)(p.x, p.y));
    const lines = this.drawing ? [...this.lines, this.drawing] : this.lines;
    for (const line of lines) {
      const a = toScreen(line.a);
      const b = toScreen(line.b);
      const element = document.createElementNS(SVG_NS, "line");
      element.setAttribute("x1", a.x);
      element.setAttribute("y1", a.y);
      element.setAttribute("x2", b.x);
      element.setAttribute("y2", b.y);
      element.setAttribute("class", line.calibration ? "measure-line is-calibration" : "measure-line");
      overlay.append(element);
      const text = document.createElementNS(SVG_NS, "text");
      text.setAttribute("x", (a.x + b.x) / 2 + 6);
      text.setAttribute("y", (a.y + b.y) / 2 - 6);
      text.setAttribute("class", "measure-label");
      text.textContent = this.describe(line);
      overlay.append(text);
    }
    if (this.anchor) {
      const p = toScreen(this.anchor);
      const ring = document.createElementNS(SVG_NS, "circle");
      ring.setAttribute("cx", p.x);
      ring.setAttribute("cy", p.y);
      ring.setAttribute("r", "9");
      ring.setAttribute("class", "anchor-mark");
      overlay.append(ring);
    }
  }
}

function lengthPx(line) {
  return Math.hypot(line.b.x - line.a.x, line.b.y - line.a.y);
}
