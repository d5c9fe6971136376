//! Tests for the pure formatting in ui/format.js: run with `node --test ui/tests/` (no packages).
//! Times are chosen around the clock change so Europe/London is really exercised.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ageInYears,
  dueTone,
  formatBirthDate,
  formatDate,
  formatDateTime,
  formatMegabytes,
  formatNhsNumber,
  formatShortInstant,
  londonDay,
} from "../../ui/format.js";

test("dates and times are UK style in London time", () => {
  assert.equal(formatDateTime("2026-11-23T10:42:00Z"), "Mon 23 Nov 2026, 10:42");
  // British Summer Time: 23:30 UTC is already the next day in London.
  assert.equal(formatDateTime("2026-07-01T23:30:00Z"), "Thu 2 Jul 2026, 00:30");
  assert.equal(formatDate("2026-07-01T23:30:00Z"), "Thu 2 Jul 2026");
  assert.equal(formatDateTime(null), "–");
  assert.equal(formatDateTime("not a date"), "–");
});

test("a date of birth never shifts by a day", () => {
  assert.equal(formatBirthDate("1958-03-12"), "12 Mar 1958");
  assert.equal(formatBirthDate("garbage"), "garbage");
});

test("NHS numbers are grouped 3 3 4, anything else is shown as it came", () => {
  assert.equal(formatNhsNumber("9434765919"), "943 476 5919");
  assert.equal(formatNhsNumber("943 476 5919"), "943 476 5919");
  assert.equal(formatNhsNumber("12345"), "12345");
  assert.equal(formatNhsNumber(null), "");
});

test("age counts whole years on the London calendar day", () => {
  const now = new Date("2026-03-11T23:30:00Z"); // still 11 March in London (GMT)
  assert.equal(ageInYears("1958-03-12", now), 67);
  assert.equal(ageInYears("1958-03-12", new Date("2026-03-12T00:00:00Z")), 68);
  assert.equal(ageInYears("nonsense", now), null);
});

test("due tone follows the core's working-day count", () => {
  assert.equal(dueTone({ overdue: true, working_days_left: -2 }), "overdue");
  // Past 17:00 on the due day the core says overdue even with 0 days left.
  assert.equal(dueTone({ overdue: true, working_days_left: 0 }), "overdue");
  assert.equal(dueTone({ overdue: false, working_days_left: 0 }), "today");
  assert.equal(dueTone({ overdue: false, working_days_left: 1 }), "tomorrow");
  assert.equal(dueTone({ overdue: false, working_days_left: 3 }), "later");
});

test("last sync is a time today, 'Yesterday' or a short date", () => {
  const now = new Date("2026-11-23T12:00:00Z");
  assert.equal(formatShortInstant("2026-11-23T10:42:00Z", now), "10:42");
  assert.equal(formatShortInstant("2026-11-22T18:05:00Z", now), "Yesterday 18:05");
  assert.equal(formatShortInstant("2026-11-20T18:05:00Z", now), "Fri 20 Nov, 18:05");
  assert.equal(londonDay(new Date("2026-07-01T23:30:00Z")), "2026-07-02");
});

test("megabytes are decimal, one place below ten", () => {
  assert.equal(formatMegabytes(1_234_567), "1.2");
  assert.equal(formatMegabytes(118_900_000), "119");
  assert.equal(formatMegabytes(undefined), "0.0");
});
