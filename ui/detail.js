//! The referral on the right: patient header, notices, the GP's clinical details, consent and
//! the photos (filmstrip + main viewer). Re-rendering the same referral keeps the chosen photo
//! and its zoom, so a sync in the background never yanks the image away.

import { byId, h, replaceChildren } from "./dom.js";
import {
  SEX_LABELS,
  SOURCE_LABELS,
  URGENCY_LONG_LABELS,
  VIEW_LABELS,
  ageInYears,
  betterPhotosRequest,
  dueTone,
  formatBirthDate,
  formatDateTime,
  formatDate,
  formatNhsNumber,
  label,
} from "./format.js";
import { PhotoWorkspace } from "./compare.js";
import { prefillPhotoRequest } from "./outcome.js";
import { photoResource } from "./viewer.js";

/** "Close-up · left forearm · Patient link": how a photo is named everywhere. */
export function photoLabel(meta) {
  return [label(VIEW_LABELS, meta.view), meta.body_site, label(SOURCE_LABELS, meta.source)].filter(Boolean).join(" · ");
}

export class ReferralDetail {
  constructor() {
    this.empty = byId("detail-empty");
    this.content = byId("detail-content");
    this.viewer = new PhotoWorkspace(byId("photo-viewer"), {
      onActivePaneChange: () => this.#markFilmstrip(),
      onLayoutChange: (layout, previous) => this.#fillPanes(layout, previous),
    });
    this.referralId = null;
    this.view = null;
    this.selectedPhotoByReferral = new Map();

    // ← → step through the photos once a thumbnail has focus.
    byId("filmstrip").addEventListener("keydown", (event) => {
      const step = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
      if (!step || !this.view) return;
      const thumbs = [...byId("filmstrip").querySelectorAll(".thumb")];
      const index = thumbs.indexOf(document.activeElement);
      const next = thumbs[index + step];
      if (index === -1 || !next) return;
      event.preventDefault();
      this.#selectPhoto(this.view.referral.id, next.dataset.contentId);
    });
  }

  showEmpty() {
    this.referralId = null;
    this.view = null;
    this.empty.hidden = false;
    this.content.hidden = true;
    this.viewer.showMessage("No photo selected");
  }

  /**
   * Draws a ReferralView. `notices` are extra banners from the app (e.g. "updated while open").
   */
  render(view, { now = new Date(), notices = [] } = {}) {
    const referral = view.referral;
    const sameReferral = this.referralId === referral.id;
    this.referralId = referral.id;
    this.view = view;
    this.empty.hidden = true;
    this.content.hidden = false;
    this.content.dataset.referralId = referral.id;

    this.#renderHeader(view, now);
    this.#renderNotices(view, notices);
    this.#renderClinical(referral);
    this.#renderPhotos(view, sameReferral);
    if (!sameReferral) byId("detail-side").scrollTop = 0;
  }

  /** The photo workspace, for global keys (+ − 0 1 r f …). */
  get photoViewer() {
    return this.viewer;
  }

  #renderHeader(view, now) {
    const { patient, practice, referrer } = view.referral;
    const urgency = view.referral.urgency;
    const due = view.outcome ? "done" : dueTone(view);
    const age = ageInYears(patient.date_of_birth, now);
    const fact = (name, value, extraClass) =>
      h("span", { class: ["fact", ...[extraClass].flat()] }, h("span", { class: "fact-name", text: name }), " ", h("span", { class: "fact-value", text: value }));

    replaceChildren(
      byId("patient-header"),
      h(
        "div",
        { class: "patient-identity" },
        h("h2", { class: "patient-name", text: patient.name }),
        h(
          "p",
          { class: "patient-facts" },
          fact("NHS No.", formatNhsNumber(patient.nhs_number), ["nhs-number", view.nhs_number_problem && "is-invalid"]),
          // Never hidden: the number is shown as received, and the check's failure beside it.
          view.nhs_number_problem && h("span", { class: "identity-problem", attrs: { role: "alert" }, text: view.nhs_number_problem }),
          fact("Born", `${formatBirthDate(patient.date_of_birth)}${age === null ? "" : ` (${age} y)`}`),
          fact("Sex", label(SEX_LABELS, patient.sex)),
        ),
        h(
          "p",
          { class: "referral-facts" },
          // Name and code apart, each isolated for direction: a control character in one cannot
          // reorder the other ("Y99001" shown as "(10099Y)").
          h(
            "span",
            { class: "fact" },
            h("span", { class: "fact-name", text: "Practice" }),
            " ",
            h("bdi", { class: "fact-value", text: practice.name }),
            " (",
            h("bdi", { class: "fact-value practice-code", text: practice.ods_code }),
            ")",
          ),
          fact("Referred by", referrer.role ? `${referrer.name}, ${referrer.role}` : referrer.name),
        ),
      ),
      h(
        "div",
        { class: "referral-timing" },
        h("span", { class: ["urgency-badge", "urgency-badge-large", `urgency-${urgency}`], text: label(URGENCY_LONG_LABELS, urgency) }),
        h(
          "p",
          { class: ["timing-due", `due-${due}`] },
          h("span", { class: "fact-name", text: "Due" }),
          " ",
          h("span", { class: "fact-value", text: formatDateTime(view.due_at) }),
          due !== "done" && h("span", { class: ["due-flag", `due-${due}`], text: view.due_label }),
          view.due_note && h("span", { class: "due-note", text: view.due_note }),
        ),
        h(
          "p",
          { class: "timing-received" },
          h("span", { class: "fact-name", text: "Received" }),
          " ",
          h("span", { class: "fact-value", text: formatDateTime(view.referral.received_at) }),
        ),
        h("p", { class: "referral-id", text: `Referral ${view.referral.id} · version ${view.referral.version}` }),
      ),
    );
  }

  #renderNotices(view, notices) {
    const banners = [...notices];
    if (view.conflict) {
      // The core says why, in the consultant's words (withdrawn / reassigned / refused), and what was kept.
      banners.unshift({ tone: "error", text: `Conflict: ${view.conflict}${view.removed_reason && !view.outcome ? " It cannot be signed." : ""}` });
    } else if (view.removed_reason) {
      banners.unshift({
        tone: "error",
        text: `This referral is no longer assigned to you: ${view.removed_reason}. It cannot be signed.`,
      });
    }
    replaceChildren(
      byId("referral-notices"),
      banners.map((notice) => h("p", { class: ["notice", `notice-${notice.tone}`], attrs: { role: notice.tone === "error" ? "alert" : null }, text: notice.text })),
    );
  }

  #renderClinical(referral) {
    const { clinical, consent } = referral;
    const block = (title, text, extraClass) =>
      h(
        "div",
        { class: ["clinical-block", extraClass] },
        h("h3", { class: "section-title", text: title }),
        h("p", { class: ["clinical-text", !text && "is-missing"], text: text || "Not given" }),
      );

    let consentBlock;
    if (consent.given) {
      const who = consent.recorded_by ? `Recorded by ${consent.recorded_by}` : "Who recorded it is not stated";
      const when = consent.recorded_at ? `, ${formatDateTime(consent.recorded_at)}` : "";
      consentBlock = h(
        "div",
        { class: "consent consent-given" },
        h("h3", { class: "section-title", text: "Consent" }),
        h("p", { class: "consent-text" }, h("strong", { text: "Consent given for photographs and remote review. " }), `${who}${when}.`),
      );
    } else {
      consentBlock = h(
        "div",
        { class: "consent consent-missing", attrs: { role: "note" } },
        h("h3", { class: "section-title", text: "Consent" }),
        h("p", { class: "consent-text" }, h("strong", { text: "No consent recorded. " }), "Check with the GP practice before relying on these photographs."),
      );
    }

    replaceChildren(
      byId("clinical"),
      block("GP's question", clinical.question, "clinical-question"),
      block("History", clinical.history),
      h("div", { class: "clinical-pair" }, block("Duration", clinical.duration), block("Medications", clinical.medications)),
      consentBlock,
    );
  }

  #renderPhotos(view, sameReferral = true) {
    const photos = view.photos ?? [];
    const referralId = view.referral.id;
    let selectedId = this.selectedPhotoByReferral.get(referralId);
    if (!photos.some((photo) => photo.meta.content_id === selectedId)) {
      selectedId = (photos.find((photo) => photo.ready && photo.url) ?? photos[0])?.meta.content_id ?? null;
      this.selectedPhotoByReferral.set(referralId, selectedId);
    }

    const filmstrip = byId("filmstrip");
    // Reuse loaded thumbnails and keep keyboard focus: a background sync re-renders often.
    const loadedImages = new Map([...filmstrip.querySelectorAll("img")].map((image) => [image.getAttribute("src"), image]));
    const focusedContentId = filmstrip.contains(document.activeElement) ? document.activeElement.dataset.contentId : null;
    const thumb = (photo, index, count, prior) => {
      const meta = photo.meta;
      const ready = photo.ready && photo.url;
      const selected = meta.content_id === selectedId;
      const when = prior ? `Earlier referral, ${formatDate(prior.received_at)}: ` : "";
      return h(
        "li",
        { class: ["filmstrip-item", prior && "is-prior"] },
        h(
          "button",
          {
            type: "button",
            class: [
              "thumb",
              selected && "is-selected",
              !ready && "is-downloading",
              !ready && photo.problem && "has-problem",
              ready && photo.quality?.problem && "has-quality-problem",
            ],
            dataset: { contentId: meta.content_id, prior: prior ? prior.referral_id : "" },
            title: when + photoLabel(meta) + (ready && photo.quality?.problem ? ` — ${photo.quality.problem}` : ""),
            attrs: {
              "aria-pressed": selected ? "true" : "false",
              "aria-label": `${when}Photo ${index + 1} of ${count}: ${photoLabel(meta)}${ready ? (photo.quality?.problem ? `, ${photo.quality.problem}` : "") + (photo.quality?.transparent ? ", had transparent areas (shown as grey)" : "") : photo.problem ? ", not yet usable" : ", downloading"}`,
            },
            on: { click: () => this.#selectPhoto(referralId, meta.content_id) },
          },
          ready && photo.quality?.transparent
            ? h("span", {
                class: "transparency-badge",
                text: "◩",
                title: "This photo had transparent areas: they are shown as grey, never what is under them",
                attrs: { "aria-hidden": "true" },
              })
            : null,
          ready && photo.quality?.problem
            ? h("span", {
                class: "quality-badge",
                text: "!",
                title: `This photo ${photo.quality.problem.startsWith("looks") ? "" : "is "}${photo.quality.problem}`,
                attrs: { "aria-hidden": "true" },
              })
            : null,
          ready
            ? loadedImages.get(photoResource.thumb(photo.url)) ??
                h("img", { class: "thumb-image", src: photoResource.thumb(photo.url), alt: "", loading: "lazy", decoding: "async", draggable: false })
            : h("span", {
                class: "thumb-placeholder",
                // A photo that arrived damaged is never shown; say so, and that it is retried.
                text: photo.problem ? "Arrived damaged — retrying at next sync" : "Downloading…",
                title: photo.problem ?? "",
              }),
          h(
            "span",
            { class: "thumb-label" },
            h("span", { class: ["thumb-view", `source-${meta.source}`], text: `${label(VIEW_LABELS, meta.view)} · ${label(SOURCE_LABELS, meta.source)}` }),
            h("span", { class: "thumb-site", text: prior ? formatDate(prior.received_at) : meta.body_site || "Body site not given" }),
          ),
        ),
      );
    };
    const priors = view.priors ?? [];
    replaceChildren(
      filmstrip,
      photos.map((photo, index) => thumb(photo, index, photos.length, null)),
      priors.map((prior) => [
        h("li", { class: "filmstrip-divider", attrs: { role: "presentation" } }, h("span", { text: `Earlier · ${formatDate(prior.received_at)}` })),
        prior.photos.map((photo, index) => thumb(photo, index, prior.photos.length, prior)),
      ]),
    );
    filmstrip.hidden = photos.length === 0;
    this.#renderPhotoRequest(view, filmstrip);
    if (focusedContentId) filmstrip.querySelector(`[data-content-id="${CSS.escape(focusedContentId)}"]`)?.focus();

    const selected = photos.find((photo) => photo.meta.content_id === selectedId);
    if (!selected) {
      this.viewer.showMessage("This referral has no photos.");
      byId("photo-caption").textContent = "";
      return;
    }
    if (!sameReferral) {
      // Another referral: start from its chosen photo in the first pane, the next ones beside it.
      for (const pane of this.viewer.panes) pane.showMessage("");
      this.viewer.setActive(this.viewer.panes[0]);
    }
    // A background refresh never replaces what the consultant put in a pane.
    const pane = this.viewer.active;
    if (!pane.contentId) {
      if (selected.ready && selected.url) this.viewer.show(this.#paneItem(selected));
      else pane.showMessage("Downloading… This photo will appear when it is on this computer.");
    }
    if (!sameReferral) this.#fillPanes(this.viewer.layout, null);
    this.#markFilmstrip();
  }

  /**
   * "Request better photos" under the filmstrip when any of this referral's photos is flagged
   * (out of focus, too dark, too bright): one click picks Request more information and fills
   * in what is wrong with which photo. Not for a referral already signed.
   */
  #renderPhotoRequest(view, filmstrip) {
    let bar = document.getElementById("photo-request");
    if (!bar) {
      bar = h("div", { class: "photo-request", id: "photo-request", attrs: { role: "group", "aria-label": "Photo quality" } });
      filmstrip.after(bar);
    }
    const photos = view.photos ?? [];
    const flagged = photos
      .map((photo, index) => ({ photo, number: index + 1 }))
      .filter(({ photo }) => photo.ready && photo.quality?.problem)
      .map(({ photo, number }) => ({
        number,
        view: label(VIEW_LABELS, photo.meta.view),
        viewKey: photo.meta.view,
        problem: photo.quality.problem,
        flags: photo.quality.flags,
      }));
    const signed = Boolean(view.outcome);
    bar.hidden = flagged.length === 0 || signed;
    if (bar.hidden) {
      replaceChildren(bar);
      return;
    }
    const summary = flagged.length === 1 ? "1 photo may not be good enough to judge" : `${flagged.length} photos may not be good enough to judge`;
    const note = h("p", { class: "photo-request-note", id: "photo-request-note", attrs: { "aria-live": "polite" } });
    replaceChildren(
      bar,
      h("span", { class: "quality-badge", text: "!", attrs: { "aria-hidden": "true" } }),
      h("span", { class: "photo-request-summary", text: summary }),
      h("button", {
        type: "button",
        class: "button",
        id: "request-better-photos",
        text: "Request better photos",
        title: flagged.map((photo) => `Photo ${photo.number}: ${photo.problem}`).join("\n"),
        on: {
          click: () => {
            const views = [...new Set(flagged.map((photo) => photo.viewKey))];
            const done = prefillPhotoRequest(betterPhotosRequest(flagged), views);
            note.textContent = done
              ? "Request more information is chosen and its text filled in: check it and sign."
              : "The outcome form is not available for this referral.";
          },
        },
      }),
      note,
    );
  }

  /** Every photo this referral (or an earlier one) can put in a pane, in filmstrip order. */
  /**
   * What a pane is given to show: the photo, and who it is of — the patient's name, NHS number
   * and date of birth on every pane (and so in full screen), and for an earlier referral's
   * photo "Earlier referral, <date>" on the pane itself.
   */
  #paneItem(photo) {
    const patient = this.view?.referral.patient;
    return {
      url: photo.url,
      label: photoLabel(photo.meta),
      meta: photo.meta,
      identity: patient
        ? {
            name: patient.name,
            nhsNumber: formatNhsNumber(patient.nhs_number),
            nhsProblem: this.view.nhs_number_problem ?? null,
            born: formatBirthDate(patient.date_of_birth),
          }
        : null,
      earlier: photo.prior ? `Earlier referral, ${formatDate(photo.prior.received_at)}` : null,
    };
  }

  #allPhotos() {
    const current = this.view?.photos ?? [];
    const earlier = (this.view?.priors ?? []).flatMap((prior) => prior.photos.map((photo) => ({ ...photo, prior })));
    return [...current, ...earlier].filter((photo) => photo.ready && photo.url);
  }

  /** Going from one pane to several: fill the empty panes with the next photos. */
  #fillPanes(layout, previous) {
    if (!this.viewer || !this.view || layout === previous) return;
    const photos = this.#allPhotos();
    const shown = new Set(this.viewer.visiblePanes.map((pane) => pane.contentId).filter(Boolean));
    const unused = photos.filter((photo) => !shown.has(photo.meta.content_id));
    for (const pane of this.viewer.visiblePanes) {
      if (pane.contentId) continue;
      const photo = unused.shift() ?? photos[0];
      if (photo) pane.show(this.#paneItem(photo));
    }
    this.#markFilmstrip();
  }

  /** Filmstrip marks: the active pane's photo is selected; others show their pane number. */
  #markFilmstrip() {
    if (!this.viewer) return; // called while the workspace is being built
    const panes = this.viewer.visiblePanes;
    const activeId = this.viewer.active.contentId;
    for (const thumb of byId("filmstrip").querySelectorAll(".thumb")) {
      const id = thumb.dataset.contentId;
      const inPanes = panes.map((pane, index) => (pane.contentId === id ? index + 1 : null)).filter(Boolean);
      thumb.classList.toggle("is-selected", id === activeId);
      thumb.setAttribute("aria-pressed", String(id === activeId));
      thumb.dataset.panes = panes.length > 1 ? inPanes.join(" ") : "";
    }
    const photo = this.#allPhotos().find((candidate) => candidate.meta.content_id === activeId);
    const earlier = photo?.prior ? `Earlier referral (${formatDate(photo.prior.received_at)}) · ` : "";
    // What the core found in the photo's pixels: transparent areas (shown as grey, never what
    // is under them) and colours that could not be managed.
    const notes = [
      photo?.quality?.transparent ? "had transparent areas: shown as grey, never what is under them" : null,
      photo?.quality?.colour_note ?? null,
    ].filter(Boolean);
    byId("photo-caption").textContent = photo
      ? `${panes.length > 1 ? `Pane ${panes.indexOf(this.viewer.active) + 1}: ` : ""}${earlier}${photoLabel(photo.meta)} · taken ${formatDateTime(photo.meta.captured_at)} · ${photo.meta.width} × ${photo.meta.height} px${notes.map((note) => ` · ${note}`).join("")}`
      : "";
  }

  #selectPhoto(referralId, contentId) {
    this.selectedPhotoByReferral.set(referralId, contentId);
    const photo = this.#allPhotos().find((candidate) => candidate.meta.content_id === contentId);
    if (photo && this.view?.referral.id === referralId) {
      this.viewer.show(this.#paneItem(photo));
      this.#markFilmstrip();
    } else if (this.view && this.view.referral.id === referralId) {
      this.#renderPhotos(this.view);
    }
    const button = [...byId("filmstrip").querySelectorAll(".thumb")].find((element) => element.dataset.contentId === contentId);
    button?.focus();
  }
}
