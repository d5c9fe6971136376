//! What the consultant sees, as plain serialisable values: the worklist, a referral, an
//! outcome, the sync status. Built from cache rows by pure functions.

use chrono::{DateTime, NaiveDate, Utc};
use dermdesk_protocol::{Consultant, Nation, Outcome, PhotoMeta, Referral, RemovalReason, Urgency};
use serde::{Deserialize, Serialize};

use crate::cache::{CachedReferral, OutboxRow, WorklistEntry};
use crate::deadline::{self, BankHolidays};
use crate::plan::OutboxState;
use crate::ErrorKind;

/// Where a referral stands for the consultant (the worklist's status filter and its counts).
/// Declared in the order the UI lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralStatus {
    New,
    Opened,
    /// Opened, and an unsigned outcome is saved.
    Draft,
    /// Signed and waiting to go.
    Queued,
    Sent,
    Conflict,
    Rejected,
}

impl ReferralStatus {
    pub const ALL: [ReferralStatus; 7] = [
        ReferralStatus::New,
        ReferralStatus::Opened,
        ReferralStatus::Draft,
        ReferralStatus::Queued,
        ReferralStatus::Sent,
        ReferralStatus::Conflict,
        ReferralStatus::Rejected,
    ];

    /// As stored in the cache's worklist table (the same words as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            ReferralStatus::New => "new",
            ReferralStatus::Opened => "opened",
            ReferralStatus::Draft => "draft",
            ReferralStatus::Queued => "queued",
            ReferralStatus::Sent => "sent",
            ReferralStatus::Conflict => "conflict",
            ReferralStatus::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<ReferralStatus> {
        ReferralStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// Everything a referral's status depends on. The cache stores the status it computes from
/// these with [`referral_status`] whenever one of them changes, so the worklist can filter and
/// count by status with an index; nothing else decides a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatusInputs {
    /// The service no longer has the referral for this consultant (withdrawn or reassigned).
    pub removed: bool,
    /// The state of the newest outcome signed for it, if any.
    pub outcome: Option<OutboxState>,
    pub has_draft: bool,
    pub opened: bool,
}

/// The status rule: a removed referral is in conflict unless its outcome was delivered; then the
/// newest outcome's state; then draft, opened, new.
pub fn referral_status(inputs: StatusInputs) -> ReferralStatus {
    if inputs.removed && inputs.outcome != Some(OutboxState::Sent) {
        return ReferralStatus::Conflict;
    }
    match inputs.outcome {
        Some(OutboxState::Queued) => ReferralStatus::Queued,
        Some(OutboxState::Sent) => ReferralStatus::Sent,
        Some(OutboxState::Conflict) => ReferralStatus::Conflict,
        Some(OutboxState::Rejected) => ReferralStatus::Rejected,
        None if inputs.has_draft => ReferralStatus::Draft,
        None if inputs.opened => ReferralStatus::Opened,
        None => ReferralStatus::New,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct WorklistRow {
    pub referral_id: String,
    pub patient_name: String,
    pub nhs_number: String,
    pub date_of_birth: NaiveDate,
    pub practice_name: String,
    /// ODS code of the referring practice (the worklist's practice filter).
    pub practice_ods: String,
    pub urgency: Urgency,
    pub received_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// How `due_at` stands now, in working days (flattened: `due_label`, `overdue`, ...).
    #[serde(flatten)]
    pub due: DueView,
    pub status: ReferralStatus,
    /// Why the referral is in conflict, in the consultant's words.
    pub conflict: Option<String>,
    pub has_draft: bool,
    pub photos_total: usize,
    pub photos_ready: usize,
    /// Set when the NHS number fails its check ([`nhs_number_problem`]); the number is still
    /// shown as received.
    pub nhs_number_problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhotoItem {
    pub meta: PhotoMeta,
    /// Downloaded and verified against its content id.
    pub ready: bool,
    /// Set by the shell: where the webview can load it from.
    pub url: Option<String>,
    /// Why the last download of it was refused (it is retried at every sync).
    pub problem: Option<String>,
    /// How good the photo looks (made at sync time); `None` until it is measured.
    pub quality: Option<PhotoQuality>,
}

/// A photo's quality flags, the measures they come from, and what is wrong in plain English
/// ("looks out of focus", "too dark", "too bright"; docs/PHOTO-QUALITY.md).
#[derive(Debug, Clone, Serialize)]
pub struct PhotoQuality {
    pub flags: dermdesk_imaging::QualityFlags,
    pub metrics: dermdesk_imaging::QualityMetrics,
    pub problem: Option<String>,
    /// The photo had transparent areas (shown as neutral grey, never what is under them).
    pub transparent: bool,
    /// What to tell the consultant about the photo's colours, if anything ("colours may be
    /// off: ..."); `None` when they were converted from its profile or it had none (sRGB).
    pub colour_note: Option<String>,
}

/// The quality of a photo from its kept measures (JSON), judged by today's thresholds; `None`
/// if the measures cannot be read.
pub fn photo_quality(metrics_json: &str) -> Option<PhotoQuality> {
    let metrics: dermdesk_imaging::QualityMetrics = serde_json::from_str(metrics_json).ok()?;
    let flags = dermdesk_imaging::quality::assess(&metrics);
    let colour_note = match metrics.colour {
        dermdesk_imaging::ColourSource::Untagged | dermdesk_imaging::ColourSource::Profile => None,
        dermdesk_imaging::ColourSource::UntaggedCmyk => Some(
            "Colours may be off: this CMYK photo has no colour profile, so its inks were converted \
             by a plain formula. The original is kept as sent; ask the practice for an RGB photo \
             if colour matters."
                .to_owned(),
        ),
        dermdesk_imaging::ColourSource::UnusableProfile => Some(
            "Colours may be off: this photo's colour profile could not be read, so it is shown as \
             if sRGB. The original is kept as sent; ask the practice to send it again if colour \
             matters."
                .to_owned(),
        ),
    };
    Some(PhotoQuality {
        flags,
        metrics,
        problem: flags.problem(),
        transparent: metrics.transparent_fraction > 0.0,
        colour_note,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct OutcomeView {
    pub outcome_id: String,
    pub outcome: Outcome,
    pub referral_version: u64,
    pub state: OutboxState,
    pub signed_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// Why it is in conflict or rejected, or why the last attempt failed.
    pub problem: Option<String>,
    /// The service's receipt: proof of delivery, once sent.
    pub receipt: Option<ReceiptView>,
}

/// The service's receipt for a delivered outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptView {
    pub received_at: DateTime<Utc>,
    /// SHA-256 of the signed outcome as the service received it (what the receipt names).
    pub payload_sha256: String,
    /// The service key that signed the receipt (empty from services older than signed receipts).
    pub hub_key_id: String,
    /// The receipt's signature verified against the service's key for exactly this outcome.
    pub verified: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReferralView {
    pub referral: Referral,
    pub due_at: DateTime<Utc>,
    /// How `due_at` stands now, in working days (flattened: `due_label`, `overdue`, ...).
    #[serde(flatten)]
    pub due: DueView,
    /// Set when the referral is no longer assigned to this consultant.
    pub removed_reason: Option<String>,
    pub photos: Vec<PhotoItem>,
    pub outcome: Option<OutcomeView>,
    /// Why the referral is in conflict, in the consultant's words.
    pub conflict: Option<String>,
    /// The unsigned outcome form as last typed.
    pub draft: Option<serde_json::Value>,
    /// What the practice changed since the version the latest outcome was signed for.
    pub changes_since_signed: Vec<FieldChange>,
    /// The signed outcome was refused because the referral changed: review and sign again.
    pub can_sign_again: bool,
    pub draft_saved_at: Option<DateTime<Utc>>,
    /// The same patient's earlier referrals in the cache (by NHS number), newest first.
    pub priors: Vec<PriorReferral>,
    /// Set when the NHS number fails its check ([`nhs_number_problem`]).
    pub nhs_number_problem: Option<String>,
}

/// What the consultant is told about an NHS number the service sent that fails the protocol's
/// check (a cache from before the hub checked, or another service): the number is still shown,
/// never hidden, and identity is to be confirmed before acting on the referral.
pub fn nhs_number_problem(nhs_number: &str) -> Option<String> {
    dermdesk_protocol::check_nhs_number(nhs_number)
        .err()
        .map(|_| "NHS number fails its check digit — confirm identity with the practice".to_owned())
}

/// Direction controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) are made visible
/// as their code points, e.g. `[U+202E]`: in an identifier they have no business and could make
/// "Y99001" read as "10099Y". Everything else is left as it is.
pub fn visible_controls(identifier: &str) -> String {
    let is_control = |c: char| matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !identifier.chars().any(is_control) {
        return identifier.to_owned();
    }
    identifier
        .chars()
        .map(|c| if is_control(c) { format!("[U+{:04X}]", u32::from(c)) } else { c.to_string() })
        .collect()
}

/// An earlier referral of the same patient: its photos can go beside the current ones.
#[derive(Debug, Clone, Serialize)]
pub struct PriorReferral {
    pub referral_id: String,
    pub received_at: DateTime<Utc>,
    pub question: String,
    pub photos: Vec<PhotoItem>,
}

/// Where a referral stands against its due date when the view is built, in working days of
/// its practice's nation (rules in `deadline.rs`). The UI shows these as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DueView {
    /// "Due today", "Due in 2 working days", "Overdue by 1 working day".
    pub due_label: String,
    /// The due time has passed: the row should stand out.
    pub overdue: bool,
    /// 0 on the due day, positive before it, negative when overdue.
    pub working_days_left: i32,
    /// Set when the bank holiday calendar does not cover the dates involved (only weekends
    /// were skipped there): a warning to show beside the due date.
    pub due_note: Option<String>,
}

/// How the cached referral's due date stands at `now`.
pub fn due_view(cached: &CachedReferral, now: DateTime<Utc>, calendar: &BankHolidays) -> DueView {
    let referral = &cached.referral;
    due_view_of(referral.practice.nation, referral.received_at, cached.due_at, now, calendar)
}

/// How `due_at` of a referral from `nation` received at `received_at` stands at `now`.
pub fn due_view_of(
    nation: Nation,
    received_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
    now: DateTime<Utc>,
    calendar: &BankHolidays,
) -> DueView {
    let status = deadline::due_status(due_at, now, nation, calendar);
    DueView {
        due_label: status.label(),
        overdue: status.overdue(),
        working_days_left: status.working_days_left(),
        due_note: deadline::coverage_note(received_at, due_at, now, nation, calendar),
    }
}

/// One difference between two versions of a referral, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub before: String,
    pub after: String,
}

/// What changed between the referral the consultant reviewed and the current one.
pub fn referral_changes(before: &Referral, after: &Referral) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    let mut compare = |field: &str, a: String, b: String| {
        if a != b {
            changes.push(FieldChange { field: field.to_owned(), before: a, after: b });
        }
    };
    compare("Urgency", before.urgency.as_str().replace('_', " "), after.urgency.as_str().replace('_', " "));
    compare("GP's question", before.clinical.question.clone(), after.clinical.question.clone());
    compare("History", before.clinical.history.clone(), after.clinical.history.clone());
    compare("Duration", before.clinical.duration.clone(), after.clinical.duration.clone());
    compare("Medications", before.clinical.medications.clone(), after.clinical.medications.clone());
    let consent = |r: &Referral| if r.consent.given { "given".to_owned() } else { "not recorded".to_owned() };
    compare("Consent", consent(before), consent(after));
    compare("Patient", before.patient.name.clone(), after.patient.name.clone());
    compare("NHS number", before.patient.nhs_number.clone(), after.patient.nhs_number.clone());
    compare(
        "Date of birth",
        before.patient.date_of_birth.to_string(),
        after.patient.date_of_birth.to_string(),
    );
    let added =
        after.photos.iter().filter(|p| !before.photos.iter().any(|q| q.content_id == p.content_id)).count();
    let removed =
        before.photos.iter().filter(|p| !after.photos.iter().any(|q| q.content_id == p.content_id)).count();
    if added + removed > 0 {
        changes.push(FieldChange {
            field: "Photos".into(),
            before: format!("{} photo(s)", before.photos.len()),
            after: format!("{} photo(s): {added} added, {removed} removed", after.photos.len()),
        });
    }
    changes
}

/// Phase of the sync engine, for the progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SyncPhase {
    #[default]
    Idle,
    Enrolling,
    Feed,
    Photos,
    Outbox,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct SyncProgress {
    pub referrals_done: u64,
    pub referrals_total: u64,
    pub photos_done: u64,
    pub photos_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct SyncStatus {
    /// None until the first attempt to reach the service.
    pub online: Option<bool>,
    pub syncing: bool,
    pub phase: SyncPhase,
    pub progress: SyncProgress,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub outbox_waiting: u32,
    pub last_error: Option<StatusError>,
    pub consultant: Option<Consultant>,
    pub demo: bool,
}

pub fn outcome_view(row: &OutboxRow) -> OutcomeView {
    OutcomeView {
        outcome_id: row.outcome_id.clone(),
        outcome: row.signed.payload.outcome.clone(),
        referral_version: row.signed.payload.referral_version,
        state: row.state,
        signed_at: row.signed.payload.signed_at,
        sent_at: row.sent_at,
        problem: row.problem.clone(),
        receipt: row.receipt.as_ref().map(|receipt| ReceiptView {
            received_at: receipt.received_at,
            payload_sha256: receipt.payload_sha256.clone(),
            hub_key_id: receipt.hub_key_id.clone(),
            verified: row.receipt_verified,
        }),
    }
}

/// Why a referral is in conflict, if it is: the service no longer has it for this consultant
/// while their work on it (a draft or an outcome not yet acknowledged) is still here, or the
/// service refused the signed outcome with a conflict.
pub fn conflict_reason(
    cached: &CachedReferral,
    outcome: Option<&OutboxRow>,
    has_draft: bool,
) -> Option<String> {
    conflict_reason_of(
        cached.removed_reason,
        outcome.map(|row| row.state),
        outcome.and_then(|row| row.problem.as_deref()),
        has_draft,
    )
}

/// [`conflict_reason`] from the stored parts: why it was removed, the newest outcome's state
/// and problem, whether a draft is kept.
pub fn conflict_reason_of(
    removed_reason: Option<RemovalReason>,
    state: Option<OutboxState>,
    problem: Option<&str>,
    has_draft: bool,
) -> Option<String> {
    if let Some(reason) = removed_reason {
        let what = match reason {
            dermdesk_protocol::RemovalReason::Withdrawn => "The GP practice withdrew this referral",
            dermdesk_protocol::RemovalReason::Reassigned => {
                "This referral was reassigned to another consultant"
            }
        };
        let kept = match state {
            Some(OutboxState::Queued) => {
                "your signed outcome is kept here but the service will not accept it"
            }
            Some(OutboxState::Conflict | OutboxState::Rejected) => "your signed outcome is kept here",
            Some(OutboxState::Sent) => return None,
            None if has_draft => "your draft is kept here",
            None => return None,
        };
        return Some(format!("{what} after you started on it; {kept}."));
    }
    match state {
        Some(OutboxState::Conflict) => {
            Some(problem.map(str::to_owned).unwrap_or_else(|| "The service refused the outcome.".into()))
        }
        _ => None,
    }
}

/// One worklist row from its stored entry; `now` and `calendar` decide its due status.
pub fn worklist_row(entry: &WorklistEntry, now: DateTime<Utc>, calendar: &BankHolidays) -> WorklistRow {
    WorklistRow {
        referral_id: entry.referral_id.clone(),
        patient_name: entry.patient_name.clone(),
        nhs_number: visible_controls(&entry.nhs_number),
        date_of_birth: entry.date_of_birth,
        practice_name: entry.practice_name.clone(),
        practice_ods: entry.practice_ods.clone(),
        urgency: entry.urgency,
        received_at: entry.received_at,
        due_at: entry.due_at,
        due: due_view_of(entry.nation, entry.received_at, entry.due_at, now, calendar),
        status: entry.status,
        conflict: conflict_reason_of(
            entry.removed_reason,
            entry.outcome_state,
            entry.outcome_problem.as_deref(),
            entry.has_draft,
        ),
        has_draft: entry.has_draft,
        photos_total: entry.photos_total,
        photos_ready: entry.photos_ready,
        nhs_number_problem: nhs_number_problem(&entry.nhs_number),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Duration, NaiveTime, TimeZone};
    use chrono_tz::Europe::London;
    use dermdesk_protocol::Nation;
    use dermdesk_synth::{build_demo_set, DemoOptions, PhotoScale, DEFAULT_REFERRALS};

    use crate::deadline::{DeadlinePolicy, Division};

    /// The hub's demo seed (`dermdesk_hub::demo::DEMO_SEED`; the hub is not a dependency here).
    const HUB_DEMO_SEED: u64 = 20_261_123;

    fn cached(referral: Referral, due_at: DateTime<Utc>) -> CachedReferral {
        CachedReferral { referral, due_at, opened_at: None, removed_reason: None }
    }

    #[test]
    fn the_due_view_says_where_a_referral_stands() {
        let policy = DeadlinePolicy::default();
        let mut referral = crate::plan::tests::referral("R1", 1); // Monday 23 Nov 2026, 09:00
        referral.practice.nation = Nation::Scotland;
        let due_at = policy.due(referral.received_at, Nation::Scotland).due_at; // Thu 26 Nov, 17:00
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        let view = |now: &str| due_view(&cached(referral.clone(), due_at), at(now), &policy.calendar);
        let expect = |label: &str, overdue: bool, left: i32| DueView {
            due_label: label.into(),
            overdue,
            working_days_left: left,
            due_note: None,
        };
        assert_eq!(view("2026-11-24T10:00:00Z"), expect("Due in 2 working days", false, 2));
        assert_eq!(view("2026-11-26T16:59:00Z"), expect("Due today", false, 0));
        assert_eq!(view("2026-11-27T09:00:00Z"), expect("Overdue by 1 working day", true, -1));
        // Monday 30 November is St Andrew's Day: 2 working days late on Tuesday, not 3.
        assert_eq!(view("2026-12-01T09:00:00Z"), expect("Overdue by 2 working days", true, -2));
        // The worklist row carries them as plain members beside `due_at`.
        let entry = WorklistEntry {
            referral_id: referral.id.clone(),
            patient_name: referral.patient.name.clone(),
            nhs_number: referral.patient.nhs_number.clone(),
            date_of_birth: referral.patient.date_of_birth,
            practice_ods: referral.practice.ods_code.clone(),
            practice_name: referral.practice.name.clone(),
            nation: referral.practice.nation,
            urgency: referral.urgency,
            received_at: referral.received_at,
            due_at,
            status: ReferralStatus::New,
            has_draft: false,
            outcome_state: None,
            outcome_problem: None,
            removed_reason: None,
            photos_total: 0,
            photos_ready: 0,
        };
        let row = worklist_row(&entry, at("2026-11-27T09:00:00Z"), &policy.calendar);
        let json = serde_json::to_value(row).unwrap();
        assert_eq!(json["due_at"], "2026-11-26T17:00:00Z");
        assert_eq!(
            (&json["due_label"], &json["overdue"], &json["working_days_left"], &json["due_note"]),
            (&"Overdue by 1 working day".into(), &true.into(), &(-1).into(), &serde_json::Value::Null)
        );
        assert!(view("2029-01-02T09:00:00Z").due_note.is_some(), "2029 is beyond the calendar");
    }

    #[test]
    fn the_status_rule() {
        use OutboxState::*;
        use ReferralStatus as S;
        // (removed, newest outcome, draft, opened) -> status
        let table = [
            (false, None, false, false, S::New),
            (false, None, false, true, S::Opened),
            (false, None, true, true, S::Draft),
            (false, None, true, false, S::Draft),
            (false, Some(Queued), false, true, S::Queued),
            (false, Some(Sent), false, true, S::Sent),
            (false, Some(Conflict), true, true, S::Conflict),
            (false, Some(Rejected), false, true, S::Rejected),
            (true, None, false, false, S::Conflict),
            (true, None, true, true, S::Conflict),
            (true, Some(Queued), false, true, S::Conflict),
            (true, Some(Rejected), false, true, S::Conflict),
            // Delivered before it was withdrawn: done, nothing to resolve.
            (true, Some(Sent), false, true, S::Sent),
        ];
        for (removed, outcome, has_draft, opened, expected) in table {
            let inputs = StatusInputs { removed, outcome, has_draft, opened };
            assert_eq!(referral_status(inputs), expected, "{inputs:?}");
        }
        for status in ReferralStatus::ALL {
            assert_eq!(ReferralStatus::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }

    /// The demo the hub seeds (dates relative to `now`) keeps a spread of due states with the
    /// working-day calendar: every working day of 2026, morning and late afternoon, has some
    /// referrals overdue, some due today and some due later; weekends and bank holidays have
    /// none due today (nothing is due on a non-working day) but still overdue and later ones.
    #[test]
    fn the_demo_has_overdue_due_today_and_later_referrals_every_working_day() {
        let policy = DeadlinePolicy::default();
        let dir = tempfile::tempdir().unwrap();
        let mut date = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let mut problems = Vec::new();
        while date.year() == 2026 {
            for time in
                [NaiveTime::from_hms_opt(9, 30, 0).unwrap(), NaiveTime::from_hms_opt(16, 30, 0).unwrap()]
            {
                let now = London.from_local_datetime(&date.and_time(time)).unwrap().with_timezone(&Utc);
                let options = DemoOptions {
                    seed: HUB_DEMO_SEED,
                    referrals: DEFAULT_REFERRALS,
                    photo_scale: PhotoScale::Small(32),
                    now,
                };
                let (mut overdue, mut today, mut later) = (0, 0, 0);
                // The earlier referrals of a returning patient (months old) are left out.
                let recent = build_demo_set(dir.path(), &options)
                    .unwrap()
                    .referrals
                    .into_iter()
                    .filter(|referral| now - referral.received_at < Duration::days(30));
                for referral in recent {
                    let due_at = policy.due(referral.received_at, referral.practice.nation).due_at;
                    let view = due_view(&cached(referral, due_at), now, &policy.calendar);
                    match view.working_days_left {
                        _ if view.overdue => overdue += 1,
                        0 => today += 1,
                        _ => later += 1,
                    }
                }
                let working_day = policy.calendar.is_working_day(Division::EnglandAndWales, date);
                if overdue == 0 || later == 0 || (working_day && today == 0) {
                    problems.push(format!("{now}: {overdue} overdue, {today} due today, {later} later"));
                }
            }
            date += Duration::days(1);
        }
        assert!(problems.is_empty(), "\n{}", problems.join("\n"));
    }
}

#[cfg(test)]
mod identity_tests {
    use super::*;

    #[test]
    fn an_invalid_nhs_number_is_flagged_and_still_shown() {
        assert_eq!(nhs_number_problem("9434765919"), None);
        for bad in ["9434765918", "12AB<i>x</i>", ""] {
            assert_eq!(
                nhs_number_problem(bad).as_deref(),
                Some("NHS number fails its check digit — confirm identity with the practice"),
                "{bad}"
            );
        }
    }

    #[test]
    fn direction_controls_in_identifiers_are_shown_as_code_points() {
        assert_eq!(visible_controls("Y99001"), "Y99001");
        assert_eq!(visible_controls("\u{202e}Y99001"), "[U+202E]Y99001");
        assert_eq!(visible_controls("943\u{2067}4765919\u{2069}"), "943[U+2067]4765919[U+2069]");
        // Right-to-left letters are not controls: names in Arabic or Hebrew are left alone.
        assert_eq!(visible_controls("\u{0633}\u{0627}\u{0631}\u{0629}"), "\u{0633}\u{0627}\u{0631}\u{0629}");
    }
}
