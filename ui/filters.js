//! The worklist's filters: a search box (patient name, NHS number with or without spaces,
//! referral id), status chips with their counts, urgency and GP practice. The query itself runs
//! in the core (`worklist_query`); this module only holds what the consultant chose, draws the
//! counts the core returns, and says when the choice changed.

import { byId, h, replaceChildren } from "./dom.js";
import { STATUS_LABELS, plural } from "./format.js";

/** The status chips, in the order a day's work moves through them. */
const STATUS_ORDER = ["new", "opened", "draft", "queued", "sent", "conflict", "rejected"];
/** Chips always shown; the others only when some referral has that status. */
const ALWAYS_SHOWN = new Set(["new", "opened", "draft", "queued", "sent", "conflict"]);

const SEARCH_DELAY_MS = 150;

export const EMPTY_FILTERS = Object.freeze({ statuses: [], urgencies: [], practice: null, search: "" });

export class WorklistFilters {
  /** @param {{onChange: () => void}} callbacks */
  constructor({ onChange }) {
    this.onChange = onChange;
    this.value = { ...EMPTY_FILTERS };
    this.search = byId("worklist-search");
    this.chips = byId("status-chips");
    this.urgency = byId("filter-urgency");
    this.practice = byId("filter-practice");
    this.summary = byId("filter-summary");
    this.clear = byId("filter-clear");
    this.searchTimer = null;

    this.search.addEventListener("input", () => {
      clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => this.#set({ search: this.search.value }), SEARCH_DELAY_MS);
    });
    this.search.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.search.value) {
        this.search.value = "";
        this.#set({ search: "" });
        event.preventDefault();
        event.stopPropagation();
      }
    });
    this.chips.addEventListener("click", (event) => {
      const chip = event.target.closest("button[data-status]");
      if (!chip) return;
      const status = chip.dataset.status;
      if (status === "all") return this.#set({ statuses: [] });
      const chosen = new Set(this.value.statuses);
      if (chosen.has(status)) chosen.delete(status);
      else chosen.add(status);
      this.#set({ statuses: STATUS_ORDER.filter((s) => chosen.has(s)) });
    });
    this.urgency.addEventListener("change", () => this.#set({ urgencies: this.urgency.value ? [this.urgency.value] : [] }));
    this.practice.addEventListener("change", () => this.#set({ practice: this.practice.value || null }));
    this.clear.addEventListener("click", () => this.reset());
  }

  /** What `worklist_query` needs (without paging). */
  query() {
    const search = this.value.search.trim();
    return {
      statuses: this.value.statuses,
      urgencies: this.value.urgencies,
      practice: this.value.practice,
      search: search || null,
    };
  }

  isFiltered() {
    const v = this.value;
    return v.statuses.length > 0 || v.urgencies.length > 0 || v.practice !== null || v.search.trim() !== "";
  }

  /** Restores a remembered choice without announcing it (the caller queries next). */
  restore(remembered) {
    const statuses = Array.isArray(remembered?.statuses) ? remembered.statuses.filter((s) => STATUS_ORDER.includes(s)) : [];
    const urgencies = Array.isArray(remembered?.urgencies) ? remembered.urgencies.filter((u) => typeof u === "string") : [];
    const practice = typeof remembered?.practice === "string" ? remembered.practice : null;
    const search = typeof remembered?.search === "string" ? remembered.search : "";
    this.value = { statuses, urgencies, practice, search };
    this.search.value = search;
    this.urgency.value = urgencies[0] ?? "";
  }

  reset() {
    this.search.value = "";
    this.#set({ ...EMPTY_FILTERS });
  }

  focusSearch() {
    this.search.focus();
    this.search.select();
  }

  /** Draws the counts of a `WorklistPage`: per status, per practice, and how many match. */
  renderFacets(page, shown) {
    const counts = page?.counts_by_status ?? {};
    const all = Object.values(counts).reduce((sum, n) => sum + n, 0);
    const chosen = new Set(this.value.statuses);
    const chip = (status, text, count, pressed) =>
      h(
        "button",
        {
          type: "button",
          class: ["chip", `chip-${status}`],
          dataset: { status, count: String(count) },
          attrs: { "aria-pressed": pressed ? "true" : "false" },
        },
        h("span", { class: "chip-label", text }),
        h("span", { class: "chip-count", text: String(count) }),
      );
    replaceChildren(
      this.chips,
      chip("all", "All", all, chosen.size === 0),
      STATUS_ORDER.filter((status) => ALWAYS_SHOWN.has(status) || (counts[status] ?? 0) > 0 || chosen.has(status)).map((status) =>
        chip(status, STATUS_LABELS[status] ?? status, counts[status] ?? 0, chosen.has(status)),
      ),
    );

    const practices = page?.practices ?? [];
    const selected = this.value.practice;
    const options = [h("option", { value: "", text: "All practices" })];
    for (const practice of practices) {
      options.push(h("option", { value: practice.ods_code, text: `${practice.name} (${practice.count})` }));
    }
    if (selected && !practices.some((p) => p.ods_code === selected)) {
      options.push(h("option", { value: selected, text: `${selected} (0)` }));
    }
    replaceChildren(this.practice, options);
    this.practice.value = selected ?? "";

    const total = page?.total_matching ?? 0;
    let text;
    if (!this.isFiltered()) text = total > shown ? `Showing the first ${shown} of ${total}` : "";
    else if (total === 0) text = "No referral matches these filters.";
    else if (total > shown) text = `Showing the first ${shown} of ${total} matching`;
    else text = `${plural(total, "referral")} match${total === 1 ? "es" : ""}`;
    this.summary.textContent = text;
    this.clear.hidden = !this.isFiltered();
    this.summary.parentElement.hidden = !text && !this.isFiltered();
  }

  #set(change) {
    this.value = { ...this.value, ...change };
    if ("urgencies" in change) this.urgency.value = this.value.urgencies[0] ?? "";
    this.onChange();
  }
}
