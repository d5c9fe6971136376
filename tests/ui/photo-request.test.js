//! Tests for the request-for-better-photos text in ui/format.js: run with `node --test tests/ui/`.

import assert from "node:assert/strict";
import { test } from "node:test";

import { betterPhotosRequest } from "../../ui/format.js";

test("says which photo has which problem and how to retake them", () => {
  const text = betterPhotosRequest([
    { number: 2, view: "Close-up", problem: "looks out of focus", flags: { blurred: true } },
    { number: 3, view: "Dermoscopic", problem: "too dark", flags: { underexposed: true } },
  ]);
  assert.equal(
    text,
    "Photo 2 (close-up) looks out of focus; photo 3 (dermoscopic) is too dark. Please retake them: hold the camera " +
      "steady and let it focus on the lesion before taking the photo; take them in good, even light, and send them " +
      "with this referral.",
  );
});

test("one photo, too bright", () => {
  assert.equal(
    betterPhotosRequest([{ number: 1, view: "Overview", problem: "too bright", flags: { overexposed: true } }]),
    "Photo 1 (overview) is too bright. Please retake it: avoid the flash and direct sunlight on the skin, and send it with this referral.",
  );
  assert.equal(betterPhotosRequest([]), "");
});

test("a photo too small to judge asks for the full-size original", () => {
  assert.equal(
    betterPhotosRequest([{ number: 1, view: "Close-up", problem: "too small to judge", flags: { too_small: true } }]),
    "Photo 1 (close-up) is too small to judge. Please retake it: send the photo as the camera took it (not a screenshot " +
      "or a reduced copy), close enough that the lesion fills much of the frame, and send it with this referral.",
  );
});
