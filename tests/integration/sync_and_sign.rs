//! The whole loop: enrol, sync, photos verified, sign, push, the hub verifies; and the ways it
//! must refuse or keep things safe.

use std::time::Duration;

use dermdesk_core::engine::{Engine, EngineSettings};
use dermdesk_core::plan::{OutboxState, PushResult};
use dermdesk_core::views::ReferralStatus;
use dermdesk_core::CoreError;
use dermdesk_protocol::{ErrorCode, Outcome, OutcomeKind, Urgency};
use sha2::{Digest, Sha256};

use crate::support::{TestDesk, TestHub};

fn plan_outcome() -> Outcome {
    Outcome {
        // Allowed by every governance rule (no consent, two-week wait, suspected cancer),
        // so it can answer any synthetic referral.
        kind: OutcomeKind::RequestMoreInformation,
        appointment_urgency: None,
        diagnosis: "Seborrhoeic keratosis".into(),
        plan: "Benign. Reassure; no treatment needed. Cryotherapy only if irritated.".into(),
        governance_reason: Some("Synthetic test referral: answered by request whatever its urgency.".into()),
        ..Outcome::default_extras()
    }
}

/// Signs the standard outcome for the version of the referral the desk shows.
fn sign(desk: &TestDesk, referral_id: &str) -> Result<dermdesk_core::views::OutcomeView, CoreError> {
    let version = desk.desk.open_referral(referral_id)?.referral.version;
    desk.desk.sign_outcome(referral_id, version, plan_outcome())
}

#[tokio::test]
async fn enrol_sync_sign_and_push_is_verified_by_the_hub_exactly_once() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    desk.sync().await;

    // Every referral assigned to the consultant is cached with every photo, verified.
    let worklist = desk.desk.worklist().unwrap();
    assert_eq!(worklist.len(), hub.set.referrals.len());
    for row in &worklist {
        assert_eq!(row.photos_ready, row.photos_total, "{}", row.referral_id);
        assert_eq!(row.status, ReferralStatus::New);
    }
    for referral in &hub.set.referrals {
        for meta in &referral.photos {
            let (media_type, bytes) = desk.desk.photo(&meta.content_id).unwrap().expect("photo cached");
            assert_eq!(media_type, meta.media_type);
            assert_eq!(hex::encode(Sha256::digest(&bytes)), meta.content_id);
        }
    }
    // Most urgent first.
    let ranks: Vec<Urgency> = worklist.iter().map(|r| r.urgency).collect();
    let mut sorted = ranks.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ranks, sorted);

    let referral_id = worklist[0].referral_id.clone();
    let view = desk.desk.open_referral(&referral_id).unwrap();
    assert!(view.photos.iter().all(|p| p.ready));
    // Previews, thumbnails and quality measures were made at sync time, once per photo.
    assert!(view.photos.iter().all(|p| p.quality.is_some()), "every stored photo is measured");
    let queued = sign(&desk, &referral_id).unwrap();
    assert_eq!(queued.state, OutboxState::Queued);
    assert_eq!(desk.desk.outbox_waiting().unwrap(), 1);
    // Signing again while one is queued is refused, and changes nothing.
    assert!(matches!(sign(&desk, &referral_id), Err(CoreError::AlreadySigned)));

    desk.sync().await;
    let view = desk.desk.open_referral(&referral_id).unwrap();
    let outcome = view.outcome.expect("outcome shown");
    assert_eq!(outcome.state, OutboxState::Sent);
    assert!(outcome.sent_at.is_some());
    assert_eq!(desk.desk.outbox_waiting().unwrap(), 0);

    let stored = hub.hub.outcomes(&referral_id).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].outcome_id, outcome.outcome_id);
    assert_eq!(stored[0].payload.outcome, plan_outcome());
    assert_eq!(stored[0].payload.referral_version, view.referral.version);

    // A second push of the same signed outcome (say the first acknowledgement was lost) is
    // acknowledged again but recorded once.
    let client = desk.desk.client().unwrap();
    let row = desk_outbox_row(&desk, &referral_id);
    match client.submit(&row).await {
        PushResult::Accepted(receipt) => {
            assert!(!receipt.first_receipt);
            assert_eq!(receipt.outcome_id, outcome.outcome_id);
        }
        other => panic!("expected an idempotent acknowledgement, got {other:?}"),
    }
    assert_eq!(hub.hub.outcomes(&referral_id).unwrap().len(), 1);
}

fn desk_outbox_row(desk: &TestDesk, referral_id: &str) -> dermdesk_protocol::SignedOutcome {
    // The cache is the only place the signed outcome lives on the device; read it back the
    // way the engine does.
    let _ = desk.desk.open_referral(referral_id).unwrap();
    desk.desk.signed_outcome_for(referral_id).unwrap().expect("signed outcome in the outbox")
}

#[tokio::test]
async fn a_tampered_outcome_is_rejected_by_the_hub() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    desk.sync().await;
    let referral_id = desk.desk.worklist().unwrap()[1].referral_id.clone();
    sign(&desk, &referral_id).unwrap();
    let mut signed = desk_outbox_row(&desk, &referral_id);
    signed.payload.outcome.plan = "Discharge; no follow-up.".into();

    match desk.desk.client().unwrap().submit(&signed).await {
        PushResult::Refused { status, code, .. } => {
            assert_eq!(status, 422);
            assert_eq!(code, Some(ErrorCode::BadSignature));
        }
        other => panic!("a tampered outcome must be refused, got {other:?}"),
    }
    assert!(hub.hub.outcomes(&referral_id).unwrap().is_empty());
}

#[tokio::test]
async fn a_withdrawn_referral_turns_the_signed_outcome_into_a_kept_conflict() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    desk.sync().await;
    let referral_id = desk.desk.worklist().unwrap()[2].referral_id.clone();

    // Signed offline; meanwhile the GP practice withdraws the referral.
    sign(&desk, &referral_id).unwrap();
    hub.hub.withdraw_referral(&referral_id).unwrap();
    desk.sync().await;

    let view = desk.desk.open_referral(&referral_id).expect("the referral stays visible with its outcome");
    let outcome = view.outcome.expect("signed outcome kept");
    assert_eq!(outcome.state, OutboxState::Conflict);
    assert!(outcome.problem.unwrap().contains("withdrew"));
    assert_eq!(view.removed_reason.as_deref(), Some("withdrawn"));
    assert!(desk.desk.signed_outcome_for(&referral_id).unwrap().is_some(), "never dropped");
    assert!(hub.hub.outcomes(&referral_id).unwrap().is_empty());
    assert!(matches!(sign(&desk, &referral_id), Err(CoreError::ReferralRemoved(_))));
}

#[tokio::test]
async fn the_cache_files_hold_no_patient_names_or_nhs_numbers() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    desk.sync().await;
    let referral_id = desk.desk.worklist().unwrap()[0].referral_id.clone();
    sign(&desk, &referral_id).unwrap();

    let mut files = Vec::new();
    for entry in std::fs::read_dir(desk.desk.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        files.push((path.clone(), std::fs::read(&path).unwrap()));
    }
    let names: Vec<String> =
        files.iter().map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert!(names.iter().any(|n| n.ends_with("-wal")), "the WAL must be among the scanned files: {names:?}");
    let mut needles: Vec<String> = Vec::new();
    for referral in &hub.set.referrals {
        needles.push(referral.patient.name.clone());
        needles.push(referral.patient.nhs_number.clone());
        needles.extend(referral.patient.name.split_whitespace().filter(|w| w.len() >= 4).map(str::to_owned));
    }
    needles.push(plan_outcome().plan);
    for (path, bytes) in &files {
        for needle in &needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} contains {needle:?} in plaintext",
                path.display()
            );
        }
    }
    // And the data really is in there, readable through the key.
    assert!(desk
        .desk
        .worklist()
        .unwrap()
        .iter()
        .any(|r| r.patient_name == hub.set.referrals[0].patient.name));
}

#[tokio::test]
async fn the_engine_syncs_in_the_background_and_reports_status() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    let settings = EngineSettings { interval: Duration::from_secs(3600), ..EngineSettings::default() };
    let engine = Engine::start(desk.desk.clone(), settings, |_| {});
    let mut status = engine.status();
    let synced = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            {
                let now = status.borrow_and_update();
                if now.last_sync_at.is_some() && !now.syncing {
                    return now.clone();
                }
            }
            status.changed().await.unwrap();
        }
    })
    .await
    .expect("the engine syncs within a minute");
    assert_eq!(synced.online, Some(true));
    assert_eq!(synced.progress.photos_done, synced.progress.photos_total);
    assert!(synced.last_error.is_none(), "{:?}", synced.last_error);
    assert_eq!(desk.desk.worklist().unwrap().len(), hub.set.referrals.len());

    // A signed outcome goes out on demand.
    let referral_id = desk.desk.worklist().unwrap()[0].referral_id.clone();
    sign(&desk, &referral_id).unwrap();
    engine.sync_now();
    tokio::time::timeout(Duration::from_secs(30), async {
        while hub.hub.outcomes(&referral_id).unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the outcome reaches the hub");
    engine.shutdown().await;

    // After the engine stops, a new desk on the same files sees everything, offline.
    let referral_count = hub.set.referrals.len();
    drop(hub);
    assert_eq!(desk.desk.worklist().unwrap().len(), referral_count);
    assert_eq!(desk.desk.integrity_check().unwrap(), "ok");
}

#[tokio::test]
async fn acknowledged_referrals_leave_the_cache_after_the_retention_period_with_their_photos() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    desk.sync().await;
    let worklist = desk.desk.worklist().unwrap();
    let (sent_id, kept_id) = (worklist[0].referral_id.clone(), worklist[1].referral_id.clone());
    sign(&desk, &sent_id).unwrap();
    sign(&desk, &kept_id).unwrap();
    hub.hub.withdraw_referral(&kept_id).unwrap(); // its outcome ends in conflict: never purged
    desk.sync().await;
    let sent_photos = desk.desk.open_referral(&sent_id).unwrap().referral.photos;

    // Within the retention period nothing goes.
    assert_eq!(desk.desk.purge_expired(Duration::from_secs(3600)).unwrap(), 0);
    assert!(desk.desk.open_referral(&sent_id).is_ok());

    // Past it (a zero period here), the acknowledged referral and its photos go; the signed
    // outcome stays as proof; the conflicted one stays.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(desk.desk.purge_expired(Duration::ZERO).unwrap(), 1);
    assert!(matches!(desk.desk.open_referral(&sent_id), Err(CoreError::UnknownReferral(_))));
    for meta in &sent_photos {
        let shared = desk.desk.worklist().unwrap().iter().any(|row| {
            desk.desk
                .open_referral(&row.referral_id)
                .unwrap()
                .referral
                .photos
                .iter()
                .any(|p| p.content_id == meta.content_id)
        });
        assert!(shared || desk.desk.photo(&meta.content_id).unwrap().is_none(), "photo left behind");
    }
    assert!(desk.desk.signed_outcome_for(&sent_id).unwrap().is_some());
    assert!(desk.desk.open_referral(&kept_id).is_ok());
    assert_eq!(desk.desk.worklist().unwrap().len(), worklist.len() - 1);
}

#[tokio::test]
async fn an_outcome_is_only_signed_for_the_version_the_consultant_reviewed() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    desk.sync().await;
    let referral_id = desk.desk.worklist().unwrap()[0].referral_id.clone();
    let reviewed = desk.desk.open_referral(&referral_id).unwrap().referral;

    // The GP practice adds to the history while the consultant is reading; the next sync
    // brings the new version.
    let mut changed = reviewed.clone();
    changed.clinical.history.push_str(" Update 24 Nov: now bleeding on contact.");
    hub.hub.update_referral(&changed).unwrap();
    desk.sync().await;

    let refused = desk.desk.sign_outcome(&referral_id, reviewed.version, plan_outcome());
    assert!(
        matches!(refused, Err(CoreError::ReferralChanged { reviewed: r, current: c }) if r == reviewed.version && c == reviewed.version + 1),
        "{refused:?}"
    );
    assert!(desk.desk.signed_outcome_for(&referral_id).unwrap().is_none(), "nothing signed");
    desk.desk.sign_outcome(&referral_id, reviewed.version + 1, plan_outcome()).unwrap();
}

#[tokio::test]
async fn governance_is_enforced_at_signing_and_the_reason_is_signed() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    desk.sync().await;
    let rows = desk.desk.worklist().unwrap();
    let two_week_wait = rows.iter().find(|r| r.urgency == Urgency::TwoWeekWait).unwrap().referral_id.clone();
    let view = desk.desk.open_referral(&two_week_wait).unwrap();
    let letter = Outcome {
        kind: OutcomeKind::GpTreatmentPlan,
        appointment_urgency: None,
        diagnosis: "Seborrhoeic keratosis".into(),
        plan: "Benign; reassure.".into(),
        ..Outcome::default_extras()
    };
    let refused = desk.desk.sign_outcome(&two_week_wait, view.referral.version, letter.clone());
    assert!(matches!(refused, Err(CoreError::Governance(_))), "{refused:?}");
    assert!(desk.desk.signed_outcome_for(&two_week_wait).unwrap().is_none(), "nothing signed");

    // A suspected cancer on the picklist cannot be answered by letter, reason or not.
    if let Some(melanoma) = dermdesk_core::diagnoses::all().iter().find(|d| d.suspected_malignancy) {
        let by_letter = Outcome {
            diagnosis: melanoma.term.clone(),
            diagnosis_code: melanoma.concept_id.clone(),
            governance_reason: Some("reason".into()),
            ..letter.clone()
        };
        let refused = desk.desk.sign_outcome(&two_week_wait, view.referral.version, by_letter);
        assert!(matches!(refused, Err(CoreError::Governance(_))), "{refused:?}");
    }

    let reason = "Classic seborrhoeic keratosis on dermoscopy; discussed with the referring GP.";
    let confirmed = Outcome { governance_reason: Some(reason.into()), ..letter };
    desk.desk.sign_outcome(&two_week_wait, view.referral.version, confirmed).unwrap();
    desk.sync().await;
    let on_hub = hub.hub.outcomes(&two_week_wait).unwrap();
    assert_eq!(on_hub[0].payload.outcome.governance_reason.as_deref(), Some(reason), "the reason is signed");

    // No consent: only a request for it.
    if let Some(no_consent) =
        rows.iter().find(|r| !desk.desk.open_referral(&r.referral_id).unwrap().referral.consent.given)
    {
        let version = desk.desk.open_referral(&no_consent.referral_id).unwrap().referral.version;
        let advice = desk.desk.outcome_advice(&no_consent.referral_id, None).unwrap();
        let allowed: Vec<_> = advice
            .iter()
            .filter(|a| a.permission == dermdesk_core::governance::Permission::Allowed)
            .map(|a| a.kind)
            .collect();
        assert_eq!(allowed, [OutcomeKind::RequestMoreInformation]);
        let plan = Outcome {
            kind: OutcomeKind::GpTreatmentPlan,
            appointment_urgency: None,
            diagnosis: String::new(),
            plan: "Emollients".into(),
            governance_reason: Some("reason".into()),
            ..Outcome::default_extras()
        };
        let refused = desk.desk.sign_outcome(&no_consent.referral_id, version, plan);
        assert!(matches!(refused, Err(CoreError::Governance(_))), "{refused:?}");
    }
}

#[tokio::test]
async fn a_referral_changed_after_signing_shows_what_changed_and_can_be_signed_again() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    desk.sync().await;
    let referral_id = desk.desk.worklist().unwrap()[3].referral_id.clone();
    let reviewed = desk.desk.open_referral(&referral_id).unwrap().referral;

    // Signed offline against version 1; meanwhile the practice adds to the history.
    let first = sign(&desk, &referral_id).unwrap();
    let mut changed = reviewed.clone();
    changed.clinical.history.push_str(" Update 24 Nov: now bleeding on contact.");
    hub.hub.update_referral(&changed).unwrap();
    desk.sync().await; // push → 409 referral_changed; feed → version 2

    let view = desk.desk.open_referral(&referral_id).unwrap();
    assert_eq!(view.outcome.as_ref().unwrap().state, OutboxState::Conflict);
    assert!(view.referral.version > reviewed.version);
    assert!(view.can_sign_again, "the consultant is asked to review and sign again");
    let history =
        view.changes_since_signed.iter().find(|c| c.field == "History").expect("the change is shown");
    assert!(
        history.after.ends_with("Update 24 Nov: now bleeding on contact.")
            && !history.before.contains("Update 24 Nov")
    );

    // Signing again, for the version now on screen, goes through once.
    let again = sign(&desk, &referral_id).unwrap();
    assert_ne!(again.outcome_id, first.outcome_id);
    desk.sync().await;
    let on_hub = hub.hub.outcomes(&referral_id).unwrap();
    assert_eq!(on_hub.len(), 1);
    assert_eq!(on_hub[0].payload.outcome_id, again.outcome_id);
    assert_eq!(on_hub[0].payload.referral_version, view.referral.version);
    let view = desk.desk.open_referral(&referral_id).unwrap();
    assert!(!view.can_sign_again && view.changes_since_signed.is_empty());
}
