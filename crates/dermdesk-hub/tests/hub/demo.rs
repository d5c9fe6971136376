//! Seeding from the synthetic demo set, the way `serve --demo` and the desktop demo do.

use axum::http::StatusCode;
use dermdesk_hub::{app, Hub, ServerConfig};
use dermdesk_protocol::{Change, EnrolResponse, FeedPage};
use dermdesk_synth::{build_demo_set, DemoOptions, PhotoScale};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use crate::support::{enrol_request, TestHub};

#[tokio::test]
async fn a_seeded_demo_enrols_and_serves_every_referral_and_photo() {
    let cache = tempfile::tempdir().unwrap();
    let options = DemoOptions {
        seed: 7,
        referrals: 3,
        photo_scale: PhotoScale::Small(64),
        now: "2026-11-23T09:00:00Z".parse().unwrap(),
    };
    let demo = tokio::task::spawn_blocking({
        let cache = cache.path().to_path_buf();
        move || build_demo_set(&cache, &options).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(demo.referrals.len(), 3);

    let test = TestHub::new();
    let seed = test.hub.seed_demo(&demo).unwrap();
    assert_ne!(seed.consultant.id, seed.other_consultant.id);
    let key = SigningKey::from_bytes(&[6; 32]);
    let reply = test.post_json("/v1/enrol", None, &enrol_request(&seed.enrolment_code, &key)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let enrolled: EnrolResponse = reply.json();
    assert_eq!(enrolled.consultant, seed.consultant);

    let feed: FeedPage = test.get("/v1/feed?limit=200", &enrolled.device_token).await.json();
    let mut served: Vec<_> = feed
        .changes
        .iter()
        .map(|change| match change {
            Change::Upsert { referral } => referral.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    let mut expected = demo.referrals.clone();
    served.sort_by(|a, b| a.id.cmp(&b.id));
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(served, expected);

    for referral in &served {
        for photo in &referral.photos {
            let reply = test.get(&format!("/v1/photos/{}", photo.content_id), &enrolled.device_token).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(hex::encode(Sha256::digest(&reply.body)), photo.content_id);
            assert_eq!(reply.body.len() as u64, photo.size);
        }
    }

    // Seeding a second time (a reused database file) adds nothing but a fresh code.
    let again = test.hub.seed_demo(&demo).unwrap();
    assert_eq!(again.consultant, seed.consultant);
    assert_ne!(again.enrolment_code, seed.enrolment_code);
    let feed: FeedPage = test.get("/v1/feed?limit=200", &enrolled.device_token).await.json();
    assert_eq!(feed.changes.len(), 3);
}

#[tokio::test]
async fn a_file_database_keeps_the_demo_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let options = DemoOptions {
        seed: 8,
        referrals: 2,
        photo_scale: PhotoScale::Small(48),
        now: "2026-12-02T10:30:00Z".parse().unwrap(),
    };
    let demo = build_demo_set(&dir.path().join("cache"), &options).unwrap();
    let db = dir.path().join("hub.sqlite");
    let photos = dir.path().join("photos");
    let seed = Hub::open_with_clock(Some(&db), &photos, crate::support::test_clock())
        .unwrap()
        .seed_demo(&demo)
        .unwrap();

    let reopened = Hub::open_with_clock(Some(&db), &photos, crate::support::test_clock()).unwrap();
    let router = app(reopened, ServerConfig::default());
    let request = axum::http::Request::post("/v1/enrol")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            serde_json::to_vec(&enrol_request(&seed.enrolment_code, &SigningKey::from_bytes(&[9; 32])))
                .unwrap(),
        ))
        .unwrap();
    let response = tower::ServiceExt::oneshot(router, request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// The demo consultant's feed after seeding the small demo with `extras`: the orientation chart
/// referral, if it is there.
async fn orientation_chart_in_feed(
    extras: dermdesk_synth::DemoExtras,
) -> Option<dermdesk_protocol::Referral> {
    let cache = tempfile::tempdir().unwrap();
    let test = TestHub::new();
    let hub = test.hub.clone();
    let path = cache.path().to_path_buf();
    let seeded = tokio::task::spawn_blocking(move || {
        hub.seed_synthetic_demo_with(&path, PhotoScale::Small(64), extras).unwrap()
    })
    .await
    .unwrap();
    let key = SigningKey::from_bytes(&[9; 32]);
    let enrolled: EnrolResponse =
        test.post_json("/v1/enrol", None, &enrol_request(&seeded.enrolment_code, &key)).await.json();
    let feed: FeedPage = test.get("/v1/feed?limit=200", &enrolled.device_token).await.json();
    feed.changes.into_iter().find_map(|change| match change {
        Change::Upsert { referral } if referral.id == dermdesk_synth::ORIENTATION_CHART_REFERRAL => {
            Some(referral)
        }
        _ => None,
    })
}

/// `serve --demo --demo-orientation-chart`: the orientation chart referral joins the demo
/// consultant's feed with its eight photos; without the option it is not there.
#[tokio::test]
async fn the_orientation_chart_is_seeded_only_when_asked_for() {
    let extras = dermdesk_synth::DemoExtras { orientation_chart: true, large_photos: false };
    let chart = orientation_chart_in_feed(extras).await.expect("the chart referral in the feed");
    assert_eq!(chart.photos.len(), 8);
    assert!(orientation_chart_in_feed(dermdesk_synth::DemoExtras::default()).await.is_none());
}
