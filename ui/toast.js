//! Small, non-blocking messages in the corner (the `#toasts` live region): command failures and
//! confirmations. They never cover the photo or the outcome form and never need a click.

import { byId, h } from "./dom.js";

const INFO_TIMEOUT_MS = 6_000;
const ERROR_TIMEOUT_MS = 15_000;
const MAX_TOASTS = 4;

/** Shows `message`; `tone` is "error" or "info". Returns a function that dismisses it. */
export function notify(message, { tone = "info", timeout } = {}) {
  const region = byId("toasts");
  const dismiss = () => toast.remove();
  const toast = h(
    "div",
    { class: ["toast", `toast-${tone}`] },
    h("p", { class: "toast-text", text: message }),
    h("button", {
      type: "button",
      class: "toast-close",
      text: "×",
      title: "Dismiss",
      attrs: { "aria-label": "Dismiss message" },
      on: { click: dismiss },
    }),
  );
  region.append(toast);
  while (region.children.length > MAX_TOASTS) region.firstElementChild.remove();
  setTimeout(dismiss, timeout ?? (tone === "error" ? ERROR_TIMEOUT_MS : INFO_TIMEOUT_MS));
  return dismiss;
}

/** Shows a failed command's message (the back end writes it for people). */
export function notifyError(error, context) {
  const message = error?.message ?? String(error);
  notify(context ? `${context}: ${message}` : message, { tone: "error" });
}
