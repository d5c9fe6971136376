//! The sync under a misbehaving network: interrupted photo downloads resume with Range, a sync
//! with nothing new is one request, drafts survive a restart and a withdrawal, and the engine
//! finds its way back online by itself.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use dermdesk_core::engine::{Engine, EngineSettings};
use dermdesk_core::views::ReferralStatus;
use dermdesk_core::CoreError;
use dermdesk_protocol::{Outcome, OutcomeKind};

use dermdesk_hub::{FaultConfig, FaultState, ServerConfig};

use crate::proxy::Proxy;
use crate::support::{TestDesk, TestHub};

fn outcome() -> Outcome {
    Outcome {
        // Allowed by every governance rule (no consent, two-week wait, suspected cancer),
        // so it can answer any synthetic referral.
        kind: OutcomeKind::RequestMoreInformation,
        appointment_urgency: None,
        diagnosis: "Seborrhoeic keratosis".into(),
        plan: "Reassure; no treatment needed.".into(),
        governance_reason: Some("Synthetic test referral: answered by request whatever its urgency.".into()),
        ..Outcome::default_extras()
    }
}

#[tokio::test]
async fn an_interrupted_photo_download_resumes_where_it_stopped() {
    let hub = TestHub::start().await;
    let proxy = Proxy::start(&hub.url).await;
    let desk = TestDesk::enrolled_at(&hub, &proxy.url).await;
    let client = desk.desk.client().unwrap();
    desk.desk.pull_feed(&client, |_| {}).await.unwrap();
    let meta = desk.desk.missing_photos().unwrap().into_iter().max_by_key(|m| m.size).unwrap();
    assert!(meta.size > 8_000, "the test needs a photo of some size");

    // The connection drops once the headers and about half the photo have gone through.
    proxy.clear();
    proxy.cut_next_photo_after(400 + meta.size as usize / 2);
    let summary =
        desk.desk.fetch_photos(&client, vec![meta.clone()], 1, Arc::new(|_| {}), |_, _| {}).await.unwrap();
    assert_eq!(summary.stored, 1, "the retry completes the photo: {:?}", summary.failed);

    let photo_requests: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /v1/photos/"))
        .map(|r| r.to_lowercase())
        .collect();
    assert_eq!(photo_requests.len(), 2, "{photo_requests:#?}");
    assert!(!photo_requests[0].contains("range:"), "the first request asks for the whole photo");
    let range =
        photo_requests[1].lines().find_map(|l| l.strip_prefix("range: bytes=")).expect("resumed with Range");
    let from: u64 = range.trim_end_matches('-').parse().unwrap();
    assert!(from > 0 && from < meta.size, "resumed from byte {from} of {}", meta.size);
    assert!(photo_requests[1].contains(&format!("if-range: \"{}\"", meta.content_id)), "guarded by If-Range");
    assert_eq!(desk.desk.counters().bytes_resumed.load(Relaxed), from);

    // What is stored is the photo, byte for byte.
    let (_, bytes) = desk.desk.photo(&meta.content_id).unwrap().expect("stored");
    assert_eq!(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)), meta.content_id);
}

#[tokio::test]
async fn a_sync_with_nothing_new_is_one_request() {
    let hub = TestHub::start().await;
    let proxy = Proxy::start(&hub.url).await;
    let desk = TestDesk::enrolled_at(&hub, &proxy.url).await;
    desk.sync().await;
    proxy.clear();
    desk.sync().await;
    let requests = proxy.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert!(requests[0].starts_with("GET /v1/feed?cursor="), "{}", requests[0]);
}

#[tokio::test]
async fn a_draft_survives_a_restart_and_is_kept_as_a_conflict_when_the_referral_is_withdrawn() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    desk.sync().await;
    let referral_id = desk.desk.worklist().unwrap()[1].referral_id.clone();
    let draft = serde_json::json!({"kind": "gp_treatment_plan", "diagnosis": "Tinea corporis", "plan": "Terbinafine cream"});
    desk.desk.save_draft(&referral_id, &draft).unwrap();

    let desk = desk.reopen();
    assert_eq!(desk.desk.open_referral(&referral_id).unwrap().draft.as_ref(), Some(&draft));

    hub.hub.withdraw_referral(&referral_id).unwrap();
    desk.sync().await;
    let row = desk.desk.worklist().unwrap().into_iter().find(|r| r.referral_id == referral_id);
    let row = row.expect("a referral with a draft stays in the worklist");
    assert_eq!(row.status, ReferralStatus::Conflict);
    let why = row.conflict.expect("the conflict says why");
    assert!(why.contains("withdrew") && why.contains("draft is kept"), "{why}");
    let view = desk.desk.open_referral(&referral_id).unwrap();
    assert_eq!(view.draft.as_ref(), Some(&draft), "the draft itself is kept");
    let version = view.referral.version;
    assert!(matches!(
        desk.desk.sign_outcome(&referral_id, version, outcome()),
        Err(CoreError::ReferralRemoved(_))
    ));

    // Without a draft, a withdrawn referral simply leaves the worklist.
    let other = desk.desk.worklist().unwrap().into_iter().find(|r| r.referral_id != referral_id).unwrap();
    hub.hub.withdraw_referral(&other.referral_id).unwrap();
    desk.sync().await;
    assert!(desk.desk.worklist().unwrap().iter().all(|r| r.referral_id != other.referral_id));
}

#[tokio::test]
async fn signing_removes_the_draft_and_a_late_draft_save_cannot_bring_it_back() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    desk.sync().await;
    let referral_id = desk.desk.worklist().unwrap()[0].referral_id.clone();
    desk.desk.save_draft(&referral_id, &serde_json::json!({"plan": "first thoughts"})).unwrap();
    let version = desk.desk.open_referral(&referral_id).unwrap().referral.version;
    desk.desk.sign_outcome(&referral_id, version, outcome()).unwrap();
    assert!(desk.desk.open_referral(&referral_id).unwrap().draft.is_none());
    let late = desk.desk.save_draft(&referral_id, &serde_json::json!({"plan": "typed while signing"}));
    assert!(matches!(late, Err(CoreError::AlreadySigned)), "{late:?}");
    assert!(!desk.desk.worklist().unwrap()[0].has_draft);
}

#[tokio::test]
async fn the_engine_goes_offline_keeps_the_outcome_queued_and_finishes_by_itself_when_the_service_returns() {
    let hub = TestHub::start().await;
    let proxy = Proxy::start(&hub.url).await;
    let desk = TestDesk::enrolled_at(&hub, &proxy.url).await;
    desk.sync().await;
    let referral_id = desk.desk.worklist().unwrap()[0].referral_id.clone();

    proxy.set_down(true);
    let version = desk.desk.open_referral(&referral_id).unwrap().referral.version;
    desk.desk.sign_outcome(&referral_id, version, outcome()).unwrap();
    let settings = EngineSettings {
        interval: Duration::from_secs(3600),
        offline_poll: Duration::from_millis(200),
        ..EngineSettings::default()
    };
    let engine = Engine::start(desk.desk.clone(), settings, |_| {});
    let mut status = engine.status();
    let offline = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let now = status.borrow_and_update().clone();
            if now.online == Some(false) && !now.syncing {
                return now;
            }
            status.changed().await.unwrap();
        }
    })
    .await
    .expect("the engine notices it is offline");
    assert_eq!(offline.outbox_waiting, 1);
    assert_eq!(offline.last_error.as_ref().map(|e| e.kind), Some(dermdesk_core::ErrorKind::Offline));

    // The service comes back; nobody presses anything.
    proxy.set_down(false);
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let now = status.borrow_and_update().clone();
            if now.online == Some(true) && now.outbox_waiting == 0 && !now.syncing {
                return;
            }
            status.changed().await.unwrap();
        }
    })
    .await
    .expect("the engine reconnects and sends the outcome by itself");
    assert_eq!(hub.hub.outcomes(&referral_id).unwrap().len(), 1);
    engine.shutdown().await;
}

#[tokio::test]
async fn under_every_fault_at_once_the_sync_ends_complete_with_no_damaged_photo_and_each_outcome_once() {
    let faults = Arc::new(FaultState::new(FaultConfig {
        error_5xx: 0.1,
        too_many_requests: 0.05,
        retry_after_secs: 0,
        reset: 0.1,
        truncate: 0.15,
        flip: 0.15,
        wrong_length: 0.05,
        seed: Some(11),
        ..FaultConfig::default()
    }));
    let hub =
        TestHub::start_with(ServerConfig { faults: Some(faults.clone()), ..ServerConfig::default() }).await;
    let desk = TestDesk::enrolled(&hub).await;
    let d = &desk.desk;

    let mut signed = Vec::new();
    for _round in 0..60 {
        let Ok(client) = d.client() else { continue };
        let _ = d.pull_feed(&client, |_| {}).await;
        let missing = d.missing_photos().unwrap();
        let _ = d.fetch_photos(&client, missing, 3, Arc::new(|_| {}), |_, _| {}).await;
        for row in d.worklist().unwrap() {
            if row.status == ReferralStatus::New || row.status == ReferralStatus::Opened {
                let version = d.open_referral(&row.referral_id).unwrap().referral.version;
                let view = d.sign_outcome(&row.referral_id, version, outcome()).unwrap();
                signed.push((row.referral_id.clone(), view.outcome_id));
            }
        }
        // Retries are due at once in this test: bring them forward rather than wait.
        let _ = d.push_outbox(&client).await;
        let done = d.missing_photos().unwrap().is_empty()
            && d.outbox_waiting().unwrap() == 0
            && d.worklist().unwrap().len() == hub.set.referrals.len();
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        d.retry_outbox_now().unwrap();
    }

    let counts = faults.counts();
    assert!(
        counts.flip > 0
            && counts.truncate > 0
            && counts.reset_after_handler + counts.reset_before_handler > 0
    );
    assert!(d.missing_photos().unwrap().is_empty(), "every photo arrived in the end");
    assert!(d.counters().photos_damaged.load(Relaxed) > 0, "flipped bytes were caught");
    for referral in &hub.set.referrals {
        for meta in &referral.photos {
            let (_, bytes) = d.photo(&meta.content_id).unwrap().expect("stored");
            assert_eq!(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)), meta.content_id);
        }
    }
    assert_eq!(signed.len(), hub.set.referrals.len());
    for (referral_id, outcome_id) in &signed {
        let on_hub = hub.hub.outcomes(referral_id).unwrap();
        assert_eq!(on_hub.len(), 1, "exactly one outcome for {referral_id}");
        assert_eq!(&on_hub[0].payload.outcome_id, outcome_id);
    }
    assert_eq!(d.integrity_check().unwrap(), "ok");
}
