//! The worklist on the left: one `.worklist-row` per referral (in the back end's order: urgency,
//! then due), a keyboard cursor ("selected") that ↑ ↓ j k move, and the referral shown on the
//! right ("open"), which only Enter or a click changes, because opening is recorded.

import { byId, h, replaceChildren } from "./dom.js";
import {
  STATUS_LABELS,
  URGENCY_LABELS,
  URGENCY_LONG_LABELS,
  dueTone,
  formatDateTime,
  formatNhsNumber,
  formatDayMonth,
  label,
} from "./format.js";

export class Worklist {
  /** @param {{onOpen: (referralId: string) => void}} callbacks */
  constructor({ onOpen }) {
    this.list = byId("worklist");
    this.empty = byId("worklist-empty");
    this.count = byId("worklist-count");
    this.onOpen = onOpen;
    this.rows = [];
    this.selectedId = null;
    this.openId = null;

    this.list.addEventListener("click", (event) => {
      const row = event.target.closest(".worklist-row");
      if (!row) return;
      this.select(row.dataset.referralId);
      this.onOpen(row.dataset.referralId);
    });
    this.list.addEventListener("keydown", (event) => this.#onKeyDown(event));
    this.list.addEventListener("focus", () => {
      if (!this.selectedId && this.rows.length) this.select(this.rows[0].referral_id);
    });
  }

  /**
   * Draws the rows; `emptyText` explains an empty list (e.g. still syncing); `total` is how
   * many referrals are on this computer (the header's count).
   */
  render(rows, { emptyText = "No referrals assigned to you.", total = rows.length } = {}) {
    this.rows = rows;
    if (this.selectedId && !rows.some((row) => row.referral_id === this.selectedId)) this.selectedId = null;

    replaceChildren(this.list, rows.map((row, index) => this.#row(row, index)));
    this.list.hidden = rows.length === 0;
    this.empty.hidden = rows.length > 0;
    this.empty.textContent = emptyText;
    this.count.textContent = total ? String(total) : "";
    this.#syncActiveDescendant();
  }

  /** The list's scroll position (remembered with the filters). */
  get scrollTop() {
    return this.list.scrollTop;
  }

  set scrollTop(value) {
    this.list.scrollTop = value;
  }

  /** Marks the referral shown on the right. */
  setOpen(referralId) {
    this.openId = referralId;
    for (const row of this.list.children) {
      const open = row.dataset.referralId === referralId;
      row.classList.toggle("is-open", open);
      if (open) row.setAttribute("aria-current", "true");
      else row.removeAttribute("aria-current");
    }
  }

  select(referralId) {
    this.selectedId = referralId;
    for (const row of this.list.children) {
      const selected = row.dataset.referralId === referralId;
      row.classList.toggle("is-selected", selected);
      row.setAttribute("aria-selected", selected ? "true" : "false");
      if (selected) row.scrollIntoView({ block: "nearest" });
    }
    this.#syncActiveDescendant();
  }

  /** Moves the keyboard cursor by `step` rows (clamped), and focuses the list. */
  move(step) {
    if (!this.rows.length) return;
    const current = this.rows.findIndex((row) => row.referral_id === (this.selectedId ?? this.openId));
    const next = current === -1 ? (step > 0 ? 0 : this.rows.length - 1) : Math.min(this.rows.length - 1, Math.max(0, current + step));
    this.select(this.rows[next].referral_id);
    if (document.activeElement !== this.list) this.list.focus({ preventScroll: true });
  }

  focus() {
    this.list.focus();
  }

  #syncActiveDescendant() {
    const row = [...this.list.children].find((element) => element.dataset.referralId === this.selectedId);
    if (row) this.list.setAttribute("aria-activedescendant", row.id);
    else this.list.removeAttribute("aria-activedescendant");
  }

  #onKeyDown(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const moves = { ArrowDown: 1, j: 1, ArrowUp: -1, k: -1, PageDown: 10, PageUp: -10 };
    if (event.key in moves) {
      this.move(moves[event.key]);
    } else if (event.key === "Home" && this.rows.length) {
      this.select(this.rows[0].referral_id);
    } else if (event.key === "End" && this.rows.length) {
      this.select(this.rows[this.rows.length - 1].referral_id);
    } else if ((event.key === "Enter" || event.key === " ") && this.selectedId) {
      this.onOpen(this.selectedId);
    } else {
      return;
    }
    event.preventDefault();
  }

  #row(row, index) {
    // Once signed, the due date is history: no flag.
    const answered = row.status === "queued" || row.status === "sent";
    const due = answered ? "done" : dueTone(row);
    const selected = row.referral_id === this.selectedId;
    const open = row.referral_id === this.openId;
    const photosComplete = row.photos_ready >= row.photos_total;
    return h(
      "li",
      {
        id: `worklist-row-${index}`,
        class: ["worklist-row", `urgency-${row.urgency}`, `status-${row.status}`, selected && "is-selected", open && "is-open"],
        dataset: { referralId: row.referral_id, due, receivedAt: row.received_at },
        attrs: { role: "option", "aria-selected": selected ? "true" : "false", "aria-current": open ? "true" : null },
      },
      h("span", {
        class: ["urgency-badge", `urgency-${row.urgency}`],
        text: label(URGENCY_LABELS, row.urgency),
        title: label(URGENCY_LONG_LABELS, row.urgency),
      }),
      h("span", { class: "row-name", text: row.patient_name }),
      h("span", { class: ["status-badge", `status-${row.status}`], text: label(STATUS_LABELS, row.status) }),
      h(
        "span",
        { class: "row-line row-identity" },
        h("span", {
          class: ["nhs-number", row.nhs_number_problem && "is-invalid"],
          text: formatNhsNumber(row.nhs_number),
          title: row.nhs_number_problem ?? "",
          attrs: { "aria-label": `NHS number ${formatNhsNumber(row.nhs_number)}${row.nhs_number_problem ? `: ${row.nhs_number_problem}` : ""}` },
        }),
        row.nhs_number_problem && h("span", { class: "identity-problem-badge", text: "check NHS No.", title: row.nhs_number_problem }),
        h("span", { class: "row-separator", text: "·", attrs: { "aria-hidden": "true" } }),
        h("span", { class: "row-practice", text: row.practice_name }),
      ),
      h("span", {
        class: ["row-photos", photosComplete ? "is-complete" : "is-downloading"],
        text: `Photos ${row.photos_ready}/${row.photos_total}`,
        title: photosComplete ? "All photos are on this computer" : "Some photos are still downloading",
      }),
      h(
        "span",
        { class: "row-line row-dates" },
        !answered && h("span", { class: ["due-flag", `due-${due}`], text: row.due_label }),
        h("span", {
          class: ["row-due", `due-${due}`],
          text: answered ? `Due ${formatDayMonth(row.due_at)}` : formatDayMonth(row.due_at),
          title: [`Due ${formatDateTime(row.due_at)}`, row.due_note].filter(Boolean).join(". "),
        }),
        h("span", { class: "row-separator", text: "·", attrs: { "aria-hidden": "true" } }),
        h("span", { class: "row-received", text: `Received ${formatDayMonth(row.received_at)}`, title: formatDateTime(row.received_at) }),
      ),
    );
  }
}
