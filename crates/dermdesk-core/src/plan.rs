//! Sync decisions as pure functions: what to do with a feed page given what the cache holds,
//! and what to do with an outcome after a push attempt. No I/O here; the engine executes the
//! plans, and these tests need neither a network nor a database.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dermdesk_protocol::signature::verify_receipt_for;
use dermdesk_protocol::{
    Change, ErrorCode, FeedPage, OutcomeReceipt, Referral, RemovalReason, SignedOutcome, Urgency,
};

use crate::deadline;

/// What the planner knows of one cached referral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReferral {
    pub id: String,
    pub version: u64,
    /// A signed outcome for it is queued, in conflict or rejected: the referral must stay so
    /// the consultant can see what happened to their outcome.
    pub has_unsent_outcome: bool,
    /// The consultant has started writing an outcome for it.
    pub has_draft: bool,
}

/// One change to the cache. A page's operations are applied in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheOp {
    Upsert {
        referral: Box<Referral>,
        due_at: DateTime<Utc>,
    },
    /// Keep the referral (an outcome for it is not sent) but show it as no longer assigned.
    MarkRemoved {
        referral_id: String,
        reason: RemovalReason,
    },
    /// Remove the referral and any photo no other referral uses.
    Delete {
        referral_id: String,
    },
    SetCursor(String),
}

/// Sort key of urgency in the worklist (higher first).
pub fn urgency_rank(urgency: Urgency) -> i64 {
    match urgency {
        Urgency::TwoWeekWait => 2,
        Urgency::Urgent => 1,
        Urgency::Routine => 0,
    }
}

/// The referrals one feed page names: all the planner needs to know of the cache.
pub fn referral_ids(page: &FeedPage) -> Vec<&str> {
    page.changes
        .iter()
        .map(|change| match change {
            Change::Upsert { referral } => referral.id.as_str(),
            Change::Removed { referral_id, .. } => referral_id.as_str(),
        })
        .collect()
}

/// Plans how to apply one feed page to the cache. `local` needs to hold only the cached
/// referrals the page names ([`referral_ids`]); each referral's due date is counted in its
/// practice's nation with the service's limit (`deadlines`).
pub fn plan_feed_page(
    local: &[LocalReferral],
    page: &FeedPage,
    deadlines: &deadline::DeadlinePolicy,
) -> Vec<CacheOp> {
    let mut known: HashMap<&str, &LocalReferral> = local.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut operations = Vec::with_capacity(page.changes.len() + 1);
    for change in &page.changes {
        match change {
            Change::Upsert { referral } => {
                // An older version than the cached one can only be a replay: ignore it.
                if known.get(referral.id.as_str()).is_some_and(|cached| cached.version > referral.version) {
                    continue;
                }
                let due_at = deadlines.due(referral.received_at, referral.practice.nation).due_at;
                operations.push(CacheOp::Upsert { referral: Box::new(referral.clone()), due_at });
            }
            Change::Removed { referral_id, reason } => match known.remove(referral_id.as_str()) {
                // The consultant's work on it is kept: the referral stays, marked as a conflict.
                Some(cached) if cached.has_unsent_outcome || cached.has_draft => operations
                    .push(CacheOp::MarkRemoved { referral_id: referral_id.clone(), reason: *reason }),
                _ => operations.push(CacheOp::Delete { referral_id: referral_id.clone() }),
            },
        }
    }
    operations.push(CacheOp::SetCursor(page.next_cursor.clone()));
    operations
}

/// How a photo download attempt failed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchFailure {
    /// No answer, a broken connection, or the service busy (5xx, 429): try again shortly.
    Transient,
    /// The bytes arrived but are wrong (size, fingerprint, image header): download again.
    Damaged,
    /// The service refused (4xx) or answered nonsense: not worth repeating in this sync.
    Refused,
}

/// Attempts at one photo within one sync; after that it waits for the next sync.
pub const PHOTO_ATTEMPTS_PER_SYNC: u32 = 3;

/// Whether to try a photo again in this sync after `attempts` failed attempts, and after how
/// long. `None`: stop for now (the photo stays invisible, the failure is reported, and the
/// next sync tries again).
pub fn retry_photo(failure: FetchFailure, attempts: u32) -> Option<Duration> {
    if attempts >= PHOTO_ATTEMPTS_PER_SYNC {
        return None;
    }
    match failure {
        FetchFailure::Transient => {
            Some(Duration::from_millis(250 << (2 * attempts.saturating_sub(1).min(4))))
        }
        FetchFailure::Damaged => Some(Duration::ZERO),
        FetchFailure::Refused => None,
    }
}

/// How long a referral stays cached after the hub acknowledged its outcome.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

/// A referral whose outcome the hub acknowledged (`sent_at`), as the retention rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentReferral {
    pub referral_id: String,
    pub sent_at: DateTime<Utc>,
}

/// Referrals to purge from the cache, photos with them: those whose outcome was acknowledged
/// longer ago than `retention`. Their signed outcome and receipt stay in the outbox as proof.
pub fn referrals_to_purge(sent: &[SentReferral], now: DateTime<Utc>, retention: Duration) -> Vec<String> {
    let cutoff = now - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    sent.iter().filter(|r| r.sent_at < cutoff).map(|r| r.referral_id.clone()).collect()
}

/// The life of a signed outcome in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Signed and durable locally; waiting to be pushed (or retried).
    Queued,
    /// The hub acknowledged it with a receipt.
    Sent,
    /// The hub answered 409: the referral moved on. The signed outcome is kept.
    Conflict,
    /// The hub answered 4xx other than 409 (e.g. 422): reported, never dropped.
    Rejected,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::Sent => "sent",
            OutboxState::Conflict => "conflict",
            OutboxState::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<OutboxState> {
        Some(match text {
            "queued" => OutboxState::Queued,
            "sent" => OutboxState::Sent,
            "conflict" => OutboxState::Conflict,
            "rejected" => OutboxState::Rejected,
            _ => return None,
        })
    }
}

/// What a push attempt came back with.
#[derive(Debug, Clone)]
pub enum PushResult {
    Accepted(OutcomeReceipt),
    /// The hub answered with an error status.
    Refused {
        status: u16,
        code: Option<ErrorCode>,
        message: String,
        retry_after: Option<Duration>,
    },
    /// No answer: connection refused, reset, timed out, truncated.
    Unreachable(String),
    /// The hub answered 200, but its receipt does not prove delivery of this outcome (no valid
    /// signature by the hub's key, or it names another outcome): [`prove_delivery`].
    UnprovenReceipt(String),
}

/// Turns an acknowledgement into proof of delivery, or not: only a receipt signed by the hub's
/// key (`hub_key`, kept from enrolment) for exactly this outcome makes it `sent`. Anything else
/// keeps it queued, to be sent again: the hub is idempotent and answers with the same receipt.
pub fn prove_delivery(
    result: PushResult,
    signed: &SignedOutcome,
    hub_key: Option<&ed25519_dalek::VerifyingKey>,
) -> PushResult {
    let PushResult::Accepted(receipt) = result else { return result };
    let Some(hub_key) = hub_key else {
        return PushResult::UnprovenReceipt("the service's receipt key is not known on this device".into());
    };
    match verify_receipt_for(signed, &receipt, hub_key) {
        Ok(()) => PushResult::Accepted(receipt),
        Err(error) => PushResult::UnprovenReceipt(error.to_string()),
    }
}

/// What to record after a push attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxUpdate {
    Sent(OutcomeReceipt),
    Failed { state: OutboxState, problem: String },
    RetryAt { at: DateTime<Utc>, problem: String },
}

/// First retry delay and the cap of the exponential backoff.
pub const RETRY_BASE: Duration = Duration::from_secs(2);
pub const RETRY_CAP: Duration = Duration::from_secs(300);

/// Decides the outbox update after a push. `jitter` in [0, 1) spreads retries of many clients
/// ("full jitter" between half and all of the backoff).
pub fn after_push(result: PushResult, attempts: u32, now: DateTime<Utc>, jitter: f64) -> OutboxUpdate {
    let retry = |problem: String, retry_after: Option<Duration>| {
        let exponential = RETRY_BASE.saturating_mul(1u32.checked_shl(attempts.min(16)).unwrap_or(u32::MAX));
        let backoff = exponential.min(RETRY_CAP).mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0));
        let delay = retry_after.map_or(backoff, |server| server.max(backoff));
        OutboxUpdate::RetryAt { at: now + chrono::Duration::from_std(delay).unwrap_or_default(), problem }
    };
    match result {
        PushResult::Accepted(receipt) => OutboxUpdate::Sent(receipt),
        PushResult::Unreachable(problem) => retry(format!("service not reachable: {problem}"), None),
        // Delivered, probably; but without proof it is not `sent`. Sending again is harmless.
        PushResult::UnprovenReceipt(problem) => {
            retry(format!("the service's receipt could not be verified ({problem})"), None)
        }
        PushResult::Refused { status, code, message, retry_after } => match status {
            409 => {
                OutboxUpdate::Failed { state: OutboxState::Conflict, problem: conflict_text(code, &message) }
            }
            408 | 429 | 500..=599 => retry(format!("service busy or failing ({status})"), retry_after),
            // 401: the device token was refused. Keep the outcome queued; it goes once the
            // device is enrolled again.
            401 => retry("this device's sign-in was refused by the service".into(), None),
            _ => OutboxUpdate::Failed { state: OutboxState::Rejected, problem: message },
        },
    }
}

fn conflict_text(code: Option<ErrorCode>, message: &str) -> String {
    match code {
        Some(ErrorCode::ReferralWithdrawn) => "The GP practice withdrew this referral.".into(),
        Some(ErrorCode::ReferralReassigned) => "This referral was reassigned to another consultant.".into(),
        Some(ErrorCode::AlreadyDecided) => "Another outcome was already accepted for this referral.".into(),
        Some(ErrorCode::ReferralChanged) => {
            "The GP practice changed the referral after you signed; review it and sign again.".into()
        }
        _ => message.to_owned(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use dermdesk_protocol::*;

    /// A minimal synthetic referral (also used by the cache's tests).
    pub(crate) fn referral(id: &str, version: u64) -> Referral {
        Referral {
            id: id.into(),
            version,
            patient: Patient {
                name: "Test Patient".into(),
                nhs_number: "9990000018".into(),
                date_of_birth: "1970-01-01".parse().unwrap(),
                sex: Sex::NotKnown,
            },
            practice: GpPractice {
                ods_code: "Y00001".into(),
                name: "Practice".into(),
                nation: Nation::England,
            },
            referrer: Referrer { name: "Dr GP".into(), role: "GP".into() },
            received_at: "2026-11-23T09:00:00Z".parse().unwrap(),
            urgency: Urgency::Routine,
            clinical: ClinicalDetails {
                question: String::new(),
                history: String::new(),
                duration: String::new(),
                medications: String::new(),
            },
            consent: Consent { given: true, recorded_at: None, recorded_by: None },
            photos: vec![],
        }
    }

    fn local(id: &str, version: u64, has_unsent_outcome: bool) -> LocalReferral {
        LocalReferral { id: id.into(), version, has_unsent_outcome, has_draft: false }
    }

    fn with_draft(id: &str, version: u64) -> LocalReferral {
        LocalReferral { id: id.into(), version, has_unsent_outcome: false, has_draft: true }
    }

    /// Renders a plan as one line per operation, so tests read like the plan itself.
    fn check(local: &[LocalReferral], changes: Vec<Change>, expected: &[&str]) {
        let page = FeedPage { changes, next_cursor: "42".into(), has_more: false };
        let plan: Vec<String> = plan_feed_page(local, &page, &deadline::DeadlinePolicy::default())
            .into_iter()
            .map(|op| match op {
                CacheOp::Upsert { referral, due_at } => {
                    format!("upsert {} v{} due {}", referral.id, referral.version, due_at.date_naive())
                }
                CacheOp::MarkRemoved { referral_id, reason } => format!("keep {referral_id} as {reason:?}"),
                CacheOp::Delete { referral_id } => format!("delete {referral_id}"),
                CacheOp::SetCursor(cursor) => format!("cursor {cursor}"),
            })
            .collect();
        assert_eq!(plan, expected);
    }

    #[test]
    fn new_and_newer_referrals_are_stored_with_their_due_date() {
        check(
            &[local("R1", 1, false)],
            vec![
                Change::Upsert { referral: referral("R1", 2) },
                Change::Upsert { referral: referral("R2", 1) },
            ],
            // Received Monday 23 Nov: due three working days later, Thursday 26 Nov.
            &["upsert R1 v2 due 2026-11-26", "upsert R2 v1 due 2026-11-26", "cursor 42"],
        );
    }

    #[test]
    fn due_dates_follow_the_practice_nation() {
        let friday = |id: &str, nation: Nation| {
            let mut referral = referral(id, 1);
            referral.received_at = "2026-11-27T10:00:00Z".parse().unwrap();
            referral.practice.nation = nation;
            Change::Upsert { referral }
        };
        check(
            &[],
            vec![friday("R-ENG", Nation::England), friday("R-SCO", Nation::Scotland)],
            // Monday 30 November is St Andrew's Day, a bank holiday in Scotland only.
            &["upsert R-ENG v1 due 2026-12-02", "upsert R-SCO v1 due 2026-12-03", "cursor 42"],
        );
    }

    #[test]
    fn a_page_names_the_referrals_it_upserts_and_removes() {
        let page = FeedPage {
            changes: vec![
                Change::Upsert { referral: referral("R1", 2) },
                Change::Removed { referral_id: "R2".into(), reason: RemovalReason::Withdrawn },
            ],
            next_cursor: "42".into(),
            has_more: false,
        };
        assert_eq!(referral_ids(&page), ["R1", "R2"]);
    }

    #[test]
    fn a_replayed_older_version_is_ignored() {
        check(&[local("R1", 3, false)], vec![Change::Upsert { referral: referral("R1", 2) }], &["cursor 42"]);
    }

    #[test]
    fn removals_keep_referrals_whose_outcome_has_not_gone() {
        check(
            &[local("R1", 1, true), local("R2", 1, false)],
            vec![
                Change::Removed { referral_id: "R1".into(), reason: RemovalReason::Withdrawn },
                Change::Removed { referral_id: "R2".into(), reason: RemovalReason::Reassigned },
                Change::Removed { referral_id: "R3".into(), reason: RemovalReason::Withdrawn },
            ],
            &["keep R1 as Withdrawn", "delete R2", "delete R3", "cursor 42"],
        );
    }

    #[test]
    fn removals_keep_referrals_with_a_draft_as_a_conflict() {
        check(
            &[with_draft("R1", 1), local("R2", 1, false)],
            vec![
                Change::Removed { referral_id: "R1".into(), reason: RemovalReason::Reassigned },
                Change::Removed { referral_id: "R2".into(), reason: RemovalReason::Withdrawn },
            ],
            &["keep R1 as Reassigned", "delete R2", "cursor 42"],
        );
    }

    #[test]
    fn photo_retries_depend_on_how_the_attempt_failed() {
        use FetchFailure::*;
        let ms = |d: Option<Duration>| d.map(|d| d.as_millis());
        // (failure, failed attempts so far, wait before the next attempt in milliseconds)
        let table = [
            (Transient, 1, Some(250)),
            (Transient, 2, Some(1000)),
            (Transient, 3, None),
            (Damaged, 1, Some(0)),
            (Damaged, 2, Some(0)),
            (Damaged, 3, None),
            (Refused, 1, None),
        ];
        for (failure, attempts, expected) in table {
            assert_eq!(ms(retry_photo(failure, attempts)), expected, "{failure:?} after {attempts}");
        }
    }

    #[test]
    fn acknowledged_referrals_are_purged_after_the_retention_period_only() {
        let sent = |id: &str, at: &str| SentReferral { referral_id: id.into(), sent_at: at.parse().unwrap() };
        let purged = referrals_to_purge(
            &[
                sent("R-old", "2026-11-08T09:59:00Z"),  // 15 days ago
                sent("R-edge", "2026-11-09T10:00:00Z"), // exactly 14 days ago: kept
                sent("R-new", "2026-11-20T10:00:00Z"),
            ],
            now(),
            DEFAULT_RETENTION,
        );
        assert_eq!(purged, ["R-old"]);
    }

    fn now() -> DateTime<Utc> {
        "2026-11-23T10:00:00Z".parse().unwrap()
    }

    fn refused(status: u16, code: Option<ErrorCode>, retry_after: Option<u64>) -> PushResult {
        PushResult::Refused {
            status,
            code,
            message: "hub says no".into(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    fn retry_seconds(update: OutboxUpdate) -> i64 {
        match update {
            OutboxUpdate::RetryAt { at, .. } => (at - now()).num_seconds(),
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    #[test]
    fn retries_back_off_exponentially_with_a_cap_and_jitter() {
        let unreachable = || PushResult::Unreachable("connection refused".into());
        assert_eq!(retry_seconds(after_push(unreachable(), 0, now(), 0.999_999)), 1);
        assert_eq!(retry_seconds(after_push(unreachable(), 3, now(), 0.999_999)), 15);
        assert_eq!(retry_seconds(after_push(unreachable(), 3, now(), 0.0)), 8);
        assert_eq!(retry_seconds(after_push(unreachable(), 30, now(), 0.999_999)), 299);
    }

    #[test]
    fn retry_after_is_honoured_when_longer_than_the_backoff() {
        assert_eq!(
            retry_seconds(after_push(refused(429, Some(ErrorCode::RateLimited), Some(120)), 0, now(), 0.0)),
            120
        );
        assert_eq!(retry_seconds(after_push(refused(503, None, Some(1)), 4, now(), 0.0)), 16);
    }

    fn signed_and_receipt(hub: &ed25519_dalek::SigningKey) -> (SignedOutcome, OutcomeReceipt) {
        use dermdesk_protocol::signature::{key_id, payload_sha256, sign_outcome, sign_receipt};
        let device = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let payload = OutcomePayload {
            outcome_id: "O-1".into(),
            referral_id: "R-1".into(),
            referral_version: 1,
            consultant_id: "C-1".into(),
            device_id: "D-1".into(),
            key_id: key_id(&device.verifying_key()),
            signed_at: now(),
            outcome: Outcome {
                kind: OutcomeKind::GpTreatmentPlan,
                appointment_urgency: None,
                diagnosis: "Seborrhoeic keratosis".into(),
                plan: "Reassure.".into(),
                ..Outcome::default_extras()
            },
        };
        let signed = sign_outcome(payload, &device).unwrap();
        let mut receipt = OutcomeReceipt {
            outcome_id: "O-1".into(),
            referral_id: "R-1".into(),
            payload_sha256: payload_sha256(&signed.payload).unwrap(),
            received_at: now(),
            hub_key_id: key_id(&hub.verifying_key()),
            first_receipt: true,
            receipt_jws: String::new(),
        };
        receipt.receipt_jws = sign_receipt(&receipt.signed_payload(), hub).unwrap();
        (signed, receipt)
    }

    #[test]
    fn only_a_receipt_signed_by_the_hub_for_this_outcome_makes_it_sent() {
        let hub = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
        let (signed, receipt) = signed_and_receipt(&hub);
        let hub_key = hub.verifying_key();
        let accepted = || PushResult::Accepted(receipt.clone());
        let decide = |result| after_push(result, 0, now(), 0.0);

        assert_eq!(
            decide(prove_delivery(accepted(), &signed, Some(&hub_key))),
            OutboxUpdate::Sent(receipt.clone())
        );

        // Unsigned (an old hub), signed by another key, for another outcome, or no hub key on
        // record: still queued, retried with backoff, and the consultant is told why.
        let stranger = ed25519_dalek::SigningKey::from_bytes(&[43; 32]).verifying_key();
        let mut unsigned = receipt.clone();
        unsigned.receipt_jws.clear();
        let mut other = receipt.clone();
        other.payload_sha256 = "0".repeat(64);
        for (result, key) in [
            (PushResult::Accepted(unsigned), Some(&hub_key)),
            (accepted(), Some(&stranger)),
            (PushResult::Accepted(other), Some(&hub_key)),
            (accepted(), None),
        ] {
            match decide(prove_delivery(result, &signed, key)) {
                OutboxUpdate::RetryAt { at, problem } => {
                    assert!(at > now());
                    assert!(problem.contains("receipt could not be verified"), "{problem}");
                }
                other => panic!("an unproven receipt must keep the outcome queued, got {other:?}"),
            }
        }
        // Refusals pass through untouched.
        let refused = refused(409, Some(ErrorCode::AlreadyDecided), None);
        assert!(matches!(prove_delivery(refused, &signed, None), PushResult::Refused { status: 409, .. }));
    }

    #[test]
    fn conflicts_and_rejections_keep_the_outcome_and_say_why() {
        assert_eq!(
            after_push(refused(409, Some(ErrorCode::ReferralWithdrawn), None), 0, now(), 0.5),
            OutboxUpdate::Failed {
                state: OutboxState::Conflict,
                problem: "The GP practice withdrew this referral.".into()
            }
        );
        assert_eq!(
            after_push(refused(422, Some(ErrorCode::BadSignature), None), 0, now(), 0.5),
            OutboxUpdate::Failed { state: OutboxState::Rejected, problem: "hub says no".into() }
        );
    }
}
