//! The photo workspace: one, two or four panes side by side, or two photos stacked for a swipe
//! (curtain) or flicker comparison; a toolbar acting on the active pane; linking.
//!
//! Linking keeps the panes' views together. When it is switched on (or points are picked), each
//! pane's anchor and zoom are captured; from then on, moving one pane moves the others so that
//! the same screen offset from the anchor shows in each, at the captured zoom ratio:
//!
//!   zoom_B   = zoom_A · (zoom_B0 / zoom_A0)
//!   center_B = anchor_B + (center_A − anchor_A) · zoom_A / zoom_B
//!
//! Without picked points the anchors are the centres at link time (same framing: the photos move
//! as one). With a point picked on each photo (different framing and scale), each pane is first
//! centred on its point, so the same spot on the skin stays under the same place on screen.

import { h } from "./dom.js";
import { DEFAULT_ADJUST, PhotoPane } from "./viewer.js";

export const LAYOUTS = {
  1: { panes: 1, label: "1", title: "One photo (Shift+1)" },
  2: { panes: 2, label: "2", title: "Two side by side (Shift+2)" },
  4: { panes: 4, label: "4", title: "Four (Shift+4)" },
  swipe: { panes: 2, label: "Swipe", title: "Two photos stacked: drag the curtain (S)" },
  flicker: { panes: 2, label: "Flicker", title: "Two photos stacked, alternating (F)" },
};
const FLICKER_MS = 700;

export const SHORTCUTS = [
  ["+ / −", "Zoom in / out (wheel, pinch too)"],
  ["0", "Fit the photo"],
  ["1", "Actual pixels (1:1)"],
  ["Arrow keys / drag", "Pan"],
  ["r / R", "Rotate 90° right / left"],
  ["f", "Flip (mirror)"],
  ["Shift+1 / 2 / 4", "One, two or four photos"],
  ["s", "Swipe (curtain) between two photos"],
  ["F (Shift+f)", "Flicker between two photos"],
  ["l", "Link / unlink zoom and pan"],
  ["p", "Pick the same point on each photo, then link"],
  ["m", "Ruler; c to calibrate it on a known length"],
  ["Esc", "Leave the tool or full screen"],
  ["Tab", "Next pane; a click on a filmstrip photo puts it in the active pane"],
  ["Enter (full screen button)", "Full screen"],
  ["?", "This help"],
];

export class PhotoWorkspace {
  /**
   * @param {HTMLElement} container the workspace (grid of panes + toolbar).
   * @param {{onActivePaneChange?: () => void}} hooks
   */
  constructor(container, hooks = {}) {
    this.container = container;
    this.hooks = hooks;
    this.layout = "1";
    this.linked = false;
    this.linkAdjust = false;
    this.link = null; // {source views captured at link time}
    this.applyingLink = false;
    this.flickerTimer = null;
    this.curtain = 0.5;

    this.grid = h("div", { class: "pane-grid", dataset: { layout: this.layout } });
    this.paneElements = [0, 1, 2, 3].map((index) => h("div", { class: "pane-cell", dataset: { index: String(index) }, tabIndex: 0 }));
    this.curtainHandle = h("div", {
      class: "curtain-handle",
      hidden: true,
      tabIndex: 0,
      attrs: { role: "slider", "aria-label": "Curtain position", "aria-valuemin": "0", "aria-valuemax": "100" },
      on: {
        pointerdown: (event) => this.#onCurtainDown(event),
        pointermove: (event) => this.#onCurtainMove(event),
        pointerup: (event) => this.#onCurtainUp(event),
        keydown: (event) => {
          const step = { ArrowLeft: -0.05, ArrowRight: 0.05 }[event.key];
          if (!step) return;
          event.preventDefault();
          this.setCurtain(this.curtain + step);
        },
      },
    });
    this.grid.append(...this.paneElements, this.curtainHandle);
    this.panes = this.paneElements.map(
      (element) =>
        new PhotoPane(element, {
          onViewChange: (pane) => this.#onViewChange(pane),
          onActivate: (pane) => this.setActive(pane),
          onPick: () => this.#onPick(),
        }),
    );
    this.active = this.panes[0];
    this.toolbar = this.#buildToolbar();
    this.help = this.#buildHelp();
    container.replaceChildren(this.grid, this.toolbar, this.help);
    container.classList.add("photo-workspace");
    this.setLayout("1");
    this.setActive(this.panes[0]);
  }

  /** Panes on screen in this layout. */
  get visiblePanes() {
    return this.panes.slice(0, LAYOUTS[this.layout].panes);
  }

  setActive(pane) {
    if (!this.visiblePanes.includes(pane)) return;
    this.active = pane;
    for (const element of this.paneElements) element.classList.toggle("is-active", element === pane.container);
    this.#syncAdjustControls();
    this.hooks.onActivePaneChange?.();
  }

  /** Shows a photo in the active pane (or the given pane index). */
  show(photo, index = null) {
    const pane = index === null ? this.active : this.panes[index];
    pane.show(photo);
  }

  showMessage(text) {
    for (const pane of this.panes) pane.showMessage(text);
  }

  setLayout(layout) {
    if (!LAYOUTS[layout]) return;
    const previous = this.layout;
    this.layout = layout;
    this.grid.dataset.layout = layout;
    const count = LAYOUTS[layout].panes;
    this.paneElements.forEach((element, index) => {
      element.hidden = index >= count;
    });
    this.curtainHandle.hidden = layout !== "swipe";
    if (!this.visiblePanes.includes(this.active)) this.setActive(this.panes[0]);
    for (const [name, button] of this.layoutButtons) button.setAttribute("aria-pressed", String(name === layout));
    this.#stopFlicker();
    this.paneElements[1].style.clipPath = "";
    this.paneElements[1].style.visibility = "";
    if (layout === "swipe" || layout === "flicker") {
      // Two photos, one place: they only make sense moving together.
      this.setLinked(true);
      if (layout === "swipe") this.setCurtain(this.curtain);
      else this.#startFlicker();
    } else if (previous === "swipe" || previous === "flicker") {
      this.setLinked(false);
    }
    this.hooks.onLayoutChange?.(layout, previous);
    // OpenSeadragon measures its element: let the grid settle first.
    requestAnimationFrame(() => {
      for (const pane of this.visiblePanes) pane.viewer?.forceResize?.();
    });
  }

  setLinked(linked) {
    this.linked = linked;
    this.linkButton.setAttribute("aria-pressed", String(linked));
    this.linkButton.textContent = linked ? "Linked" : "Link";
    this.link = linked ? this.#captureLink() : null;
    this.grid.dataset.linked = String(linked);
  }

  setCurtain(fraction) {
    this.curtain = Math.min(1, Math.max(0, fraction));
    const percent = Math.round(this.curtain * 100);
    this.paneElements[1].style.clipPath = `inset(0 0 0 ${percent}%)`;
    this.curtainHandle.style.left = `${percent}%`;
    this.curtainHandle.setAttribute("aria-valuenow", String(percent));
  }

  setTool(tool) {
    const next = this.tool === tool ? null : tool;
    this.tool = next;
    for (const pane of this.panes) pane.setTool(next);
    for (const [name, button] of this.toolButtons) button.setAttribute("aria-pressed", String(name === next));
    this.grid.dataset.tool = next ?? "";
  }

  toggleHelp(show = this.help.hidden) {
    this.help.hidden = !show;
    if (show) this.help.querySelector("button")?.focus();
  }

  toggleFullscreen() {
    const on = !this.container.classList.contains("is-fullscreen");
    this.container.classList.toggle("is-fullscreen", on);
    this.fullscreenButton.setAttribute("aria-pressed", String(on));
    requestAnimationFrame(() => {
      for (const pane of this.visiblePanes) pane.viewer?.forceResize?.();
    });
  }

  /** Workspace keys; true when used. Pane keys go to the active pane. */
  handleKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return false;
    if (event.key === "Escape") {
      if (!this.help.hidden) this.toggleHelp(false);
      else if (this.tool) this.setTool(this.tool);
      else if (this.container.classList.contains("is-fullscreen")) this.toggleFullscreen();
      else return false;
      return true;
    }
    const byKey = {
      "?": () => this.toggleHelp(),
      "!": () => this.setLayout("1"), // Shift+1 on UK/US keyboards
      "@": () => this.setLayout("2"),
      '"': () => this.setLayout("2"), // Shift+2 on a UK keyboard
      $: () => this.setLayout("4"),
      s: () => this.setLayout(this.layout === "swipe" ? "2" : "swipe"),
      F: () => this.setLayout(this.layout === "flicker" ? "2" : "flicker"),
      l: () => this.setLinked(!this.linked),
      p: () => this.setTool("pick"),
      m: () => this.setTool("measure"),
      c: () => this.setTool("calibrate"),
    };
    const action = byKey[event.key];
    if (action) {
      action();
      return true;
    }
    return this.active.handleKey(event);
  }

  // -- private -------------------------------------------------------------------------------

  #captureLink() {
    const panes = this.visiblePanes.filter((pane) => pane.ready);
    const views = new Map();
    for (const pane of panes) {
      const view = pane.getView();
      const anchor = pane.anchorViewport() ?? { x: view.x, y: view.y };
      views.set(pane, { anchor, zoom: view.zoom });
    }
    return views;
  }

  #onPick() {
    const panes = this.visiblePanes;
    if (!panes.every((pane) => pane.anchor || !pane.ready)) return;
    // Every photo has its point: centre each on it and link around the points.
    for (const pane of panes) {
      const anchor = pane.anchorViewport();
      if (anchor) pane.setView({ ...anchor, zoom: pane.getView().zoom });
    }
    this.setTool("pick");
    this.setLinked(true);
  }

  #onViewChange(source) {
    if (!this.linked || this.applyingLink || !this.link) return;
    const from = this.link.get(source);
    if (!from) {
      this.link = this.#captureLink();
      return;
    }
    const view = source.getView();
    this.applyingLink = true;
    try {
      for (const pane of this.visiblePanes) {
        if (pane === source) continue;
        const to = this.link.get(pane);
        if (!to) continue;
        const zoom = view.zoom * (to.zoom / from.zoom);
        const scale = view.zoom / zoom;
        pane.setView({
          x: to.anchor.x + (view.x - from.anchor.x) * scale,
          y: to.anchor.y + (view.y - from.anchor.y) * scale,
          zoom,
        });
      }
    } finally {
      this.applyingLink = false;
    }
  }

  #startFlicker() {
    this.#stopFlicker();
    let shown = true;
    this.flickerTimer = setInterval(() => {
      shown = !shown;
      this.paneElements[1].style.visibility = shown ? "" : "hidden";
      this.grid.dataset.flicker = shown ? "b" : "a";
    }, FLICKER_MS);
  }

  #stopFlicker() {
    clearInterval(this.flickerTimer);
    this.flickerTimer = null;
    delete this.grid.dataset.flicker;
  }

  #onCurtainDown(event) {
    this.curtainHandle.setPointerCapture(event.pointerId);
    this.curtainDrag = event.pointerId;
  }

  #onCurtainMove(event) {
    if (this.curtainDrag !== event.pointerId) return;
    const rect = this.grid.getBoundingClientRect();
    this.setCurtain((event.clientX - rect.left) / rect.width);
  }

  #onCurtainUp(event) {
    if (this.curtainDrag === event.pointerId) this.curtainDrag = null;
  }

  #syncAdjustControls() {
    if (!this.adjustInputs) return;
    for (const [name, input] of this.adjustInputs) input.value = String(this.active.adjust[name]);
  }

  #setAdjust(name, value) {
    const targets = this.linkAdjust ? this.visiblePanes : [this.active];
    for (const pane of targets) pane.setAdjust({ [name]: value });
  }

  #buildToolbar() {
    const button = (text, title, action, extra = {}) =>
      h("button", {
        type: "button",
        class: "viewer-button",
        text,
        title,
        attrs: { "aria-label": title, ...(extra.attrs ?? {}) },
        id: extra.id,
        on: { click: action },
      });
    const pane = () => this.active;
    const view = h(
      "div",
      { class: "toolbar-group", attrs: { role: "group", "aria-label": "View" } },
      button("Fit", "Fit photo (0)", () => pane().fit(), { id: "viewer-fit" }),
      button("1:1", "Actual pixels (1)", () => pane().actualSize(), { id: "viewer-actual" }),
      button("−", "Zoom out (−)", () => pane().zoomBy(1 / 1.5)),
      button("+", "Zoom in (+)", () => pane().zoomBy(1.5), { id: "viewer-zoom-in" }),
      button("⟳", "Rotate 90° (r)", () => pane().rotate(90), { id: "viewer-rotate" }),
      button("⇋", "Flip (f)", () => pane().flip(), { id: "viewer-flip" }),
    );

    this.adjustInputs = new Map();
    const slider = (name, text, min, max) => {
      const input = h("input", {
        type: "range",
        min: String(min),
        max: String(max),
        step: "0.05",
        value: String(DEFAULT_ADJUST[name]),
        id: `adjust-${name}`,
        attrs: { "aria-label": text },
        on: { input: () => this.#setAdjust(name, Number(input.value)) },
      });
      this.adjustInputs.set(name, input);
      return h("label", { class: "adjust-row" }, h("span", { text }), input);
    };
    const linkAdjustBox = h("input", {
      type: "checkbox",
      id: "adjust-linked",
      on: { change: () => (this.linkAdjust = linkAdjustBox.checked) },
    });
    this.adjustPanel = h(
      "div",
      { class: "adjust-panel", id: "adjust-panel", hidden: true },
      slider("brightness", "Brightness", 0.3, 2),
      slider("contrast", "Contrast", 0.3, 2.5),
      slider("gamma", "Gamma", 0.4, 2.5),
      h("label", { class: "adjust-row adjust-link" }, linkAdjustBox, h("span", { text: "Same for all photos" })),
      button("Reset", "Reset brightness, contrast and gamma", () => {
        const targets = this.linkAdjust ? this.visiblePanes : [this.active];
        for (const target of targets) target.resetAdjust();
        this.#syncAdjustControls();
      }, { id: "adjust-reset" }),
    );
    const adjustButton = button("Adjust", "Brightness, contrast, gamma", () => {
      this.adjustPanel.hidden = !this.adjustPanel.hidden;
      adjustButton.setAttribute("aria-expanded", String(!this.adjustPanel.hidden));
      this.#syncAdjustControls();
    }, { id: "viewer-adjust", attrs: { "aria-expanded": "false", "aria-controls": "adjust-panel" } });

    this.layoutButtons = new Map();
    const layouts = h(
      "div",
      { class: "toolbar-group", attrs: { role: "group", "aria-label": "Layout" } },
      Object.entries(LAYOUTS).map(([name, layout]) => {
        const element = button(layout.label, layout.title, () => this.setLayout(name), { id: `layout-${name}`, attrs: { "aria-pressed": "false" } });
        this.layoutButtons.set(name, element);
        return element;
      }),
    );
    this.linkButton = button("Link", "Link zoom and pan (l)", () => this.setLinked(!this.linked), { id: "viewer-link", attrs: { "aria-pressed": "false" } });
    this.toolButtons = new Map([
      ["pick", button("Pick", "Pick the same point on each photo, then link (p)", () => this.setTool("pick"), { id: "tool-pick", attrs: { "aria-pressed": "false" } })],
      ["measure", button("Ruler", "Measure (m)", () => this.setTool("measure"), { id: "tool-measure", attrs: { "aria-pressed": "false" } })],
      ["calibrate", button("Calibrate", "Draw over a known length to measure in mm (c)", () => this.setTool("calibrate"), { id: "tool-calibrate", attrs: { "aria-pressed": "false" } })],
    ]);
    this.fullscreenButton = button("Full screen", "Full screen (Esc to leave)", () => this.toggleFullscreen(), { id: "viewer-fullscreen", attrs: { "aria-pressed": "false" } });
    const tools = h(
      "div",
      { class: "toolbar-group", attrs: { role: "group", "aria-label": "Compare and measure" } },
      this.linkButton,
      [...this.toolButtons.values()],
      adjustButton,
      this.fullscreenButton,
      button("?", "Keyboard shortcuts (?)", () => this.toggleHelp(), { id: "viewer-help" }),
    );
    return h("div", { class: "viewer-toolbar", attrs: { role: "toolbar", "aria-label": "Photo tools" } }, view, layouts, tools, this.adjustPanel);
  }

  #buildHelp() {
    return h(
      "div",
      { class: "viewer-help", id: "viewer-help-overlay", hidden: true, attrs: { role: "dialog", "aria-label": "Photo viewer keyboard shortcuts" } },
      h("h3", { class: "help-title", text: "Photo viewer keys" }),
      h("dl", { class: "help-list" }, SHORTCUTS.flatMap(([key, what]) => [h("dt", {}, h("kbd", { text: key })), h("dd", { text: what })])),
      h("button", { type: "button", class: "button button-small", text: "Close (Esc)", on: { click: () => this.toggleHelp(false) } }),
    );
  }
}
