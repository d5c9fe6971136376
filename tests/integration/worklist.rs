//! The worklist query and trip readiness over a real sync: filters and counts on the synced
//! demo, and "Prepare for offline" through the engine until every photo is here.

use std::time::Duration;

use dermdesk_core::engine::{Engine, EngineSettings};
use dermdesk_core::views::ReferralStatus;
use dermdesk_core::worklist::{WorklistQuery, NEVER_SYNCED};
use dermdesk_protocol::{Outcome, OutcomeKind, Urgency};

use crate::support::{TestDesk, TestHub};

#[tokio::test]
async fn prepare_for_offline_then_filter_the_worklist() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    let d = &desk.desk;
    let before = d.readiness().unwrap();
    assert!(!before.ready);
    assert_eq!(before.summary, NEVER_SYNCED);

    // The engine's first sync starts at once; "Prepare for offline" waits for a full one.
    let engine = Engine::start(d.clone(), EngineSettings::default(), |_| {});
    let readiness = tokio::time::timeout(Duration::from_secs(120), engine.prepare_for_offline())
        .await
        .expect("prepare for offline finishes")
        .unwrap();
    let referrals = hub.set.referrals.len();
    let mut photos: Vec<&str> =
        hub.set.referrals.iter().flat_map(|r| r.photos.iter().map(|p| p.content_id.as_str())).collect();
    photos.sort();
    photos.dedup();
    let bytes: u64 = hub
        .set
        .referrals
        .iter()
        .flat_map(|r| r.photos.iter().map(|p| (p.content_id.as_str(), p.size)))
        .collect::<std::collections::HashMap<_, _>>()
        .values()
        .sum();
    assert!(readiness.ready, "{readiness:?}");
    assert_eq!(readiness.sync_problem, None);
    assert_eq!(
        (
            readiness.referrals_ready,
            readiness.referrals_total,
            readiness.photos_ready,
            readiness.photos_total
        ),
        (referrals, referrals, photos.len(), photos.len())
    );
    assert_eq!((readiness.bytes_ready, readiness.bytes_missing), (bytes, 0));
    assert!(readiness
        .summary
        .starts_with(&format!("Ready: {referrals} of {referrals} referrals, {} photos, ", photos.len())));
    engine.shutdown().await;

    // The whole worklist, most urgent first, all new.
    let page = d.worklist_query(&WorklistQuery::default()).unwrap();
    assert_eq!(page.total_matching, referrals);
    assert_eq!(page.rows.len(), referrals);
    assert_eq!(page.counts_by_status[&ReferralStatus::New], referrals);
    let old: Vec<String> = d.worklist().unwrap().into_iter().map(|row| row.referral_id).collect();
    assert_eq!(page.rows.iter().map(|row| row.referral_id.clone()).collect::<Vec<_>>(), old);
    assert!(page.rows.iter().all(|row| row.photos_ready == row.photos_total));

    // Urgency and practice filters match the hub's set.
    let two_week_wait = hub.set.referrals.iter().filter(|r| r.urgency == Urgency::TwoWeekWait).count();
    let query = WorklistQuery { urgencies: vec![Urgency::TwoWeekWait], ..WorklistQuery::default() };
    assert_eq!(d.worklist_query(&query).unwrap().total_matching, two_week_wait);
    let practice = &hub.set.referrals[0].practice;
    let from_practice = hub.set.referrals.iter().filter(|r| r.practice.ods_code == practice.ods_code).count();
    let query = WorklistQuery { practice: Some(practice.ods_code.clone()), ..WorklistQuery::default() };
    let page = d.worklist_query(&query).unwrap();
    assert_eq!(page.total_matching, from_practice);
    assert!(page.practices.iter().any(|p| p.ods_code == practice.ods_code && p.name == practice.name));

    // Search by NHS number as printed on a letter, and by part of a name in any case.
    let patient = &hub.set.referrals[1].patient;
    let printed =
        format!("{} {} {}", &patient.nhs_number[..3], &patient.nhs_number[3..6], &patient.nhs_number[6..]);
    let page =
        d.worklist_query(&WorklistQuery { search: Some(printed), ..WorklistQuery::default() }).unwrap();
    assert!(page.rows.iter().all(|row| row.nhs_number == patient.nhs_number));
    assert!(page.rows.iter().any(|row| row.referral_id == hub.set.referrals[1].id));
    let surname = patient.name.split_whitespace().last().unwrap().to_uppercase();
    let page =
        d.worklist_query(&WorklistQuery { search: Some(surname), ..WorklistQuery::default() }).unwrap();
    assert!(page.rows.iter().any(|row| row.referral_id == hub.set.referrals[1].id));

    // Sign one: it moves from New to Queued, then Sent after a sync; counts follow.
    let referral_id = d.worklist().unwrap()[0].referral_id.clone();
    let version = d.open_referral(&referral_id).unwrap().referral.version;
    let outcome = Outcome {
        kind: OutcomeKind::RequestMoreInformation,
        appointment_urgency: None,
        diagnosis: "Seborrhoeic keratosis".into(),
        plan: "Synthetic test referral: answered by request.".into(),
        governance_reason: Some("Synthetic test referral: answered by request whatever its urgency.".into()),
        ..Outcome::default_extras()
    };
    d.sign_outcome(&referral_id, version, outcome).unwrap();
    let counts = d.worklist_query(&WorklistQuery::default()).unwrap().counts_by_status;
    assert_eq!((counts[&ReferralStatus::New], counts[&ReferralStatus::Queued]), (referrals - 1, 1));
    desk.sync().await;
    let query = WorklistQuery { statuses: vec![ReferralStatus::Sent], ..WorklistQuery::default() };
    let page = d.worklist_query(&query).unwrap();
    assert_eq!(
        page.rows.iter().map(|row| row.referral_id.as_str()).collect::<Vec<_>>(),
        [referral_id.as_str()]
    );

    // A trip window over every due date lists all but the answered one.
    let dates: Vec<chrono::NaiveDate> =
        d.worklist().unwrap().iter().map(|row| row.due_at.date_naive()).collect();
    // Due times are 17:00 London time: the UTC date is the London date, give or take one.
    let day = chrono::Duration::days(1);
    let (from, to) = (*dates.iter().min().unwrap() - day, *dates.iter().max().unwrap() + day);
    let due = d.due_within(from, to).unwrap();
    assert_eq!(due.len(), referrals - 1);
    assert!(due.iter().all(|row| row.referral_id != referral_id));
    assert!(due.windows(2).all(|pair| pair[0].due_at <= pair[1].due_at));
}
