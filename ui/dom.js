//! The one way the UI builds elements. Referral data is untrusted text written by others, so
//! everything here goes through createElement and textContent; there is deliberately no
//! helper that takes HTML.

/**
 * Creates an element. `props` sets classes (`class`, a string or array), `dataset` entries,
 * ARIA and other attributes (`attrs`), event listeners (`on`), and any plain DOM property
 * (`hidden`, `type`, `value`, `tabIndex`…). Children are nodes or strings (as text nodes);
 * null, undefined and false are skipped so callers can write `condition && element`.
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null) continue;
    if (key === "class") {
      const classes = Array.isArray(value) ? value.filter(Boolean) : String(value).split(/\s+/).filter(Boolean);
      element.classList.add(...classes);
    } else if (key === "dataset") {
      Object.assign(element.dataset, value);
    } else if (key === "attrs") {
      for (const [name, attributeValue] of Object.entries(value)) {
        if (attributeValue != null && attributeValue !== false) element.setAttribute(name, String(attributeValue));
      }
    } else if (key === "on") {
      for (const [event, listener] of Object.entries(value)) element.addEventListener(event, listener);
    } else if (key === "text") {
      element.textContent = String(value);
    } else {
      element[key] = value;
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces all children of `element`. */
export function replaceChildren(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

/** Shorthand for `document.getElementById` that fails loudly when the page is out of step. */
export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`index.html has no #${id}`);
  return element;
}

/** True when keystrokes belong to a text field, select or other control the user is typing in. */
export function isTypingTarget(target) {
  if (!(target instanceof Element)) return false;
  if (target.isContentEditable) return true;
  if (target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
  if (target instanceof HTMLInputElement) {
    return !["radio", "checkbox", "button", "submit", "reset"].includes(target.type);
  }
  return false;
}
