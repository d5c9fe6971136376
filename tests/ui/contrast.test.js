//! WCAG AA contrast of the stylesheet's colour pairs, in the light and the dark theme: every
//! text colour on the background it is drawn on reaches 4.5:1 (body text), and the urgency
//! badges, focus ring and online dot reach 3:1 (large text and graphics). Reads ui/styles.css
//! itself, so a colour change that breaks contrast fails here. Run with `node --test tests/ui/`.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

const css = readFileSync(new URL("../../ui/styles.css", import.meta.url), "utf8");

/** The custom properties of the first `:root { … }` after `from` in the stylesheet. */
function properties(from) {
  const start = css.indexOf(":root {", from);
  assert.ok(start >= 0, "a :root block");
  const body = css.slice(start, css.indexOf("}", start));
  return Object.fromEntries([...body.matchAll(/--([\w-]+):\s*([^;]+);/g)].map((m) => [m[1], m[2].trim()]));
}

const light = properties(0);
const dark = { ...light, ...properties(css.indexOf("@media (prefers-color-scheme: dark)")) };

function rgb(value) {
  const hex = /^#([0-9a-f]{6})$/i.exec(value);
  assert.ok(hex, `an opaque #rrggbb colour, not ${value}`);
  return [0, 2, 4].map((i) => parseInt(hex[1].slice(i, i + 2), 16) / 255);
}

function luminance(value) {
  const [r, g, b] = rgb(value).map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

export function contrast(a, b) {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

/** [foreground, background, minimum ratio] by custom property name. */
const PAIRS = [
  ["text", "bg", 4.5],
  ["text", "surface", 4.5],
  ["text", "surface-subtle", 4.5],
  ["text", "row-selected", 4.5],
  ["text", "row-open", 4.5],
  ["text-muted", "surface", 4.5],
  ["text-muted", "surface-subtle", 4.5],
  ["text-muted", "bg", 4.5],
  ["text-muted", "row-open", 4.5],
  ["accent", "surface", 4.5],
  ["accent-text", "accent", 4.5],
  ["danger-text", "danger-soft", 4.5],
  ["danger-text", "surface", 4.5],
  ["warning-text", "warning-soft", 4.5],
  ["warning-text", "surface", 4.5],
  ["success-text", "success-soft", 4.5],
  ["queued-text", "queued-soft", 4.5],
  ["urgency-2ww-text", "urgency-2ww-bg", 4.5],
  ["urgency-urgent-text", "urgency-urgent-bg", 4.5],
  ["urgency-routine-text", "urgency-routine-bg", 4.5],
  ["photo-text", "photo-bg", 4.5],
  // Non-text: the focus ring and the overdue edge against the surface (WCAG 1.4.11).
  ["focus", "surface", 3],
  ["online", "surface", 3],
  ["border-strong", "surface", 3],
];

for (const [theme, colours] of [
  ["light", light],
  ["dark", dark],
]) {
  test(`${theme} theme: text and controls reach WCAG AA contrast`, () => {
    const failures = [];
    for (const [fg, bg, minimum] of PAIRS) {
      assert.ok(colours[fg] && colours[bg], `--${fg} and --${bg} are defined`);
      const ratio = contrast(colours[fg], colours[bg]);
      if (ratio < minimum) failures.push(`--${fg} on --${bg}: ${ratio.toFixed(2)} < ${minimum}`);
    }
    assert.deepEqual(failures, []);
  });
}

test("the contrast formula matches WCAG's reference values", () => {
  assert.equal(contrast("#000000", "#ffffff").toFixed(1), "21.0");
  assert.equal(contrast("#777777", "#ffffff").toFixed(2), "4.48");
});
