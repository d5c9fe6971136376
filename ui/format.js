//! Pure formatting for the UI: UK dates and times, NHS numbers, ages, sizes and the words
//! shown for the backend's enum values. No DOM and no Tauri here, so it can be read (and
//! tested) on its own.

const LONDON = "Europe/London";

const dateTimeFormat = new Intl.DateTimeFormat("en-GB", {
  timeZone: LONDON,
  weekday: "short",
  day: "numeric",
  month: "short",
  year: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});

const dateFormat = new Intl.DateTimeFormat("en-GB", {
  timeZone: LONDON,
  weekday: "short",
  day: "numeric",
  month: "short",
  year: "numeric",
});

const shortDateFormat = new Intl.DateTimeFormat("en-GB", {
  timeZone: LONDON,
  weekday: "short",
  day: "numeric",
  month: "short",
});

const timeFormat = new Intl.DateTimeFormat("en-GB", {
  timeZone: LONDON,
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});

const calendarDayFormat = new Intl.DateTimeFormat("en-GB", {
  timeZone: LONDON,
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
});

// A date of birth is a calendar date with no time zone: format it in UTC so it never shifts.
const birthDateFormat = new Intl.DateTimeFormat("en-GB", {
  timeZone: "UTC",
  day: "numeric",
  month: "short",
  year: "numeric",
});

/** Parses an RFC 3339 string; returns null for null, undefined or nonsense. */
export function parseInstant(value) {
  if (value == null || value === "") return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** Builds "Mon 23 Nov 2026, 10:42" from parts: Intl's en-GB puts a comma after the weekday. */
function joinParts(format, date, withTime) {
  const parts = Object.fromEntries(format.formatToParts(date).map((part) => [part.type, part.value]));
  let text = [parts.weekday, parts.day, parts.month, parts.year].filter(Boolean).join(" ");
  if (withTime) text += `, ${parts.hour}:${parts.minute}`;
  return text;
}

/** "Mon 23 Nov 2026, 10:42" in UK time, or an en dash when there is no value. */
export function formatDateTime(value) {
  const date = parseInstant(value);
  return date ? joinParts(dateTimeFormat, date, true) : "–";
}

/** "Mon 23 Nov 2026" in UK time. */
export function formatDate(value) {
  const date = parseInstant(value);
  return date ? joinParts(dateFormat, date, false) : "–";
}

const dayMonthFormat = new Intl.DateTimeFormat("en-GB", { timeZone: LONDON, day: "numeric", month: "short" });

/** "21 Nov" in UK time: the tightest date, for secondary facts in lists. */
export function formatDayMonth(value) {
  const date = parseInstant(value);
  return date ? dayMonthFormat.format(date) : "–";
}

/** "10:42" in UK time. */
export function formatTime(value) {
  const date = parseInstant(value);
  return date ? timeFormat.format(date) : "–";
}

/** The UK calendar day of an instant as "YYYY-MM-DD", for same-day comparisons. */
export function londonDay(date) {
  const parts = Object.fromEntries(calendarDayFormat.formatToParts(date).map((part) => [part.type, part.value]));
  return `${parts.year}-${parts.month}-${parts.day}`;
}

/** Days between two "YYYY-MM-DD" strings (b - a). */
function dayDifference(a, b) {
  return Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86_400_000);
}

/**
 * "10:42" when it was today, "Yesterday 18:05", otherwise "Sat 21 Nov, 18:05"; the top bar
 * is narrow and the consultant only needs to know whether the copy is fresh.
 */
export function formatShortInstant(value, now = new Date()) {
  const date = parseInstant(value);
  if (!date) return "–";
  const difference = dayDifference(londonDay(date), londonDay(now));
  if (difference === 0) return formatTime(date);
  if (difference === 1) return `Yesterday ${formatTime(date)}`;
  return `${joinParts(shortDateFormat, date, false)}, ${formatTime(date)}`;
}

/**
 * How a due date stands against now: "overdue" once the instant has passed, "today" when it
 * falls later on the same UK day, "tomorrow", otherwise "later".
 */
/**
 * How a due date should look, from the core's working-day count (`working_days_left`,
 * `overdue`): "overdue", "today", "tomorrow" (next working day) or "later".
 */
export function dueTone(due) {
  if (due.overdue) return "overdue";
  if (due.working_days_left <= 0) return "today";
  if (due.working_days_left === 1) return "tomorrow";
  return "later";
}

/** "943 476 5919"; anything that is not ten digits is shown as it came, so nothing is hidden. */
export function formatNhsNumber(value) {
  const text = String(value ?? "");
  const digits = text.replace(/\s+/g, "");
  if (!/^\d{10}$/.test(digits)) return text;
  return `${digits.slice(0, 3)} ${digits.slice(3, 6)} ${digits.slice(6)}`;
}

/** "12 Mar 1958" from "1958-03-12". */
export function formatBirthDate(value) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(value ?? ""));
  if (!match) return String(value ?? "–");
  return birthDateFormat.format(new Date(Date.UTC(+match[1], +match[2] - 1, +match[3])));
}

/** Age in whole years on the UK calendar day of `now`, or null when the date is unreadable. */
export function ageInYears(dateOfBirth, now = new Date()) {
  const birth = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(dateOfBirth ?? ""));
  const today = /^(\d{4})-(\d{2})-(\d{2})$/.exec(londonDay(now));
  if (!birth || !today) return null;
  let age = +today[1] - +birth[1];
  if (+today[2] < +birth[2] || (+today[2] === +birth[2] && +today[3] < +birth[3])) age -= 1;
  return age;
}

/** "1.2 MB", "480 MB": decimal megabytes, like a file manager. */
export function formatMegabytes(bytes) {
  const megabytes = (Number(bytes) || 0) / 1_000_000;
  return megabytes < 10 ? megabytes.toFixed(1) : Math.round(megabytes).toString();
}

export const URGENCY_LABELS = {
  two_week_wait: "2WW",
  urgent: "Urgent",
  routine: "Routine",
};

export const URGENCY_LONG_LABELS = {
  two_week_wait: "Two-week wait",
  urgent: "Urgent",
  routine: "Routine",
};

export const STATUS_LABELS = {
  new: "New",
  opened: "Opened",
  draft: "Draft",
  queued: "Waiting to go",
  sent: "Sent",
  conflict: "Conflict",
  rejected: "Rejected",
};

export const OUTCOME_KIND_LABELS = {
  gp_treatment_plan: "GP treatment plan",
  face_to_face: "Face-to-face appointment",
  request_more_information: "Request more information",
  advice_and_discharge: "Advice and discharge",
};

export const VIEW_LABELS = {
  overview: "Overview",
  close_up: "Close-up",
  dermoscopic: "Dermoscopic",
};

export const SOURCE_LABELS = {
  gp_practice: "GP practice",
  patient_link: "Patient link",
};

export const SEX_LABELS = {
  female: "Female",
  male: "Male",
  other: "Other",
  not_known: "Not known",
};

export const PHASE_LABELS = {
  idle: "",
  enrolling: "Enrolling this computer…",
  feed: "Fetching referrals…",
  photos: "Downloading photos…",
  outbox: "Sending outcomes…",
};

/** A label from one of the tables above, falling back to the raw value so nothing is lost. */
export function label(table, value) {
  return table[value] ?? String(value ?? "–");
}

/** "1 outcome", "3 outcomes". */
export function plural(count, singular, pluralForm = `${singular}s`) {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}

/**
 * The request for better photos, from the photos the core flagged, in plain English:
 * `flagged` is `[{ number, view, problem, flags }]` (number from 1, view as the filmstrip names it,
 * problem and flags from the photo's `quality`). Says what is wrong with which photo, then how
 * to retake them.
 */
export function betterPhotosRequest(flagged) {
  if (flagged.length === 0) return "";
  const verb = (problem) => (problem.startsWith("looks") ? problem : `is ${problem}`);
  const parts = flagged.map(({ number, view, problem }) => `photo ${number}${view ? ` (${view.toLowerCase()})` : ""} ${verb(problem)}`);
  const sentence = parts.join("; ");
  const tips = [];
  if (flagged.some((photo) => photo.flags?.blurred)) tips.push("hold the camera steady and let it focus on the lesion before taking the photo");
  if (flagged.some((photo) => photo.flags?.underexposed)) tips.push("take them in good, even light");
  if (flagged.some((photo) => photo.flags?.overexposed)) tips.push("avoid the flash and direct sunlight on the skin");
  if (flagged.some((photo) => photo.flags?.too_small)) tips.push("send the photo as the camera took it (not a screenshot or a reduced copy), close enough that the lesion fills much of the frame");
  const them = flagged.length === 1 ? "it" : "them";
  const how = tips.length ? `: ${tips.join("; ")}` : "";
  return `${sentence.charAt(0).toUpperCase()}${sentence.slice(1)}. Please retake ${them}${how}, and send ${them} with this referral.`;
}
