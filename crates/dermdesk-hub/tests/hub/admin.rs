//! The /admin routes: off without a configured token, refused with a wrong one, and enough to
//! drive a whole referral's life over HTTP.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use dermdesk_hub::{app, Hub, ServerConfig};
use dermdesk_protocol::{Change, Consultant, ErrorCode, FeedPage};
use serde_json::{json, Value};
use tower::ServiceExt as _;

use crate::support::{fake_jpeg, photo_meta, referral, TestHub, ADMIN_TOKEN};

#[tokio::test]
async fn admin_routes_do_not_exist_without_an_admin_token() {
    let photos = tempfile::tempdir().unwrap();
    let router = app(
        Hub::open_with_clock(None, photos.path(), crate::support::test_clock()).unwrap(),
        ServerConfig::default(),
    );
    let request = Request::post("/admin/consultants")
        .header(header::AUTHORIZATION, "Bearer anything")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"display_name":"Dr X"}"#))
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_wrong_admin_token_is_unauthorized() {
    let test = TestHub::new();
    for token in [Some("wrong"), Some("test-admin-token-but-longer"), None] {
        let reply = test.post_json("/admin/consultants", token, &json!({ "display_name": "Dr X" })).await;
        reply.assert_error(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized);
    }
    // A device token is not an admin token either.
    let consultant = test.consultant("Dr Ada Example");
    let device = test.enrol(&consultant.id).await;
    let reply =
        test.post_json("/admin/consultants", Some(&device.token), &json!({ "display_name": "Dr X" })).await;
    reply.assert_error(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized);
}

#[tokio::test]
async fn a_referrals_life_can_be_driven_over_http() {
    let test = TestHub::new();
    let admin = Some(ADMIN_TOKEN);

    let reply =
        test.post_json("/admin/consultants", admin, &json!({ "display_name": "Dr Ada Example" })).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let ada: Consultant = reply.json();
    let ben: Consultant =
        test.post_json("/admin/consultants", admin, &json!({ "display_name": "Dr Ben" })).await.json();

    let photo = fake_jpeg(3);
    let upload = Request::post("/admin/photos")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .header(header::CONTENT_TYPE, "image/jpeg")
        .body(Body::from(photo.clone()))
        .unwrap();
    let reply = test.send(upload).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let content_id = reply.json::<Value>()["content_id"].as_str().unwrap().to_string();

    // Photos are larger than any JSON body: the photo route has its own, larger limit.
    let mut large_photo = fake_jpeg(4);
    large_photo.resize(dermdesk_hub::JSON_BODY_LIMIT * 2, 0x5a);
    let upload = Request::post("/admin/photos")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::from(large_photo))
        .unwrap();
    assert_eq!(test.send(upload).await.status, StatusCode::CREATED);

    let mut r1 = referral("R-1", vec![photo_meta(&content_id, photo.len() as u64)]);
    let reply =
        test.post_json("/admin/referrals", admin, &json!({ "referral": r1, "assign_to": ada.id })).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&reply.body));
    let again =
        test.post_json("/admin/referrals", admin, &json!({ "referral": r1, "assign_to": ada.id })).await;
    again.assert_error(StatusCode::BAD_REQUEST, ErrorCode::BadRequest);

    r1.clinical.question = "Any change in management?".into();
    let reply = test.send_json(Method::PUT, "/admin/referrals/R-1", admin, &json!({ "referral": r1 })).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json::<Value>(), json!({ "referral_id": "R-1", "version": 2 }));

    let reply = test.post_json("/admin/enrolment-codes", admin, &json!({ "consultant_id": ada.id })).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let code = reply.json::<Value>()["enrolment_code"].as_str().unwrap().to_string();
    let key = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
    let enrolled: dermdesk_protocol::EnrolResponse =
        test.post_json("/v1/enrol", None, &crate::support::enrol_request(&code, &key)).await.json();
    let feed: FeedPage = test.get("/v1/feed", &enrolled.device_token).await.json();
    assert!(matches!(&feed.changes[..], [Change::Upsert { referral }] if referral.version == 2));

    let reply =
        test.post_json("/admin/referrals/R-1/reassign", admin, &json!({ "consultant_id": ben.id })).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = test.post_json("/admin/referrals/R-1/withdraw", admin, &json!({})).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let reply = test.post_json("/admin/referrals/R-NOPE/withdraw", admin, &json!({})).await;
    reply.assert_error(StatusCode::NOT_FOUND, ErrorCode::NotFound);
    let reply = test.get("/admin/referrals/R-1/outcomes", ADMIN_TOKEN).await;
    assert_eq!(reply.json::<Value>(), json!([]));
}

#[tokio::test]
async fn a_referral_with_an_invalid_nhs_number_is_refused_with_a_clear_error() {
    let test = TestHub::new();
    let admin = Some(ADMIN_TOKEN);
    let ada: Consultant = test
        .post_json("/admin/consultants", admin, &json!({ "display_name": "Dr Ada Example" }))
        .await
        .json();
    // The issue's example, a wrong check digit, and the right number written with spaces.
    for bad in ["12AB<i>x</i>", "9434765918", "943 476 5919"] {
        let mut r1 = referral("R-NHS", vec![]);
        r1.patient.nhs_number = bad.into();
        let reply =
            test.post_json("/admin/referrals", admin, &json!({ "referral": r1, "assign_to": ada.id })).await;
        let message = reply.assert_error(StatusCode::BAD_REQUEST, ErrorCode::BadRequest).message;
        assert!(message.contains("NHS number") && message.contains("Nothing was stored"), "{message}");
    }
    // Nothing was stored: the valid number creates it now, and an update cannot break it.
    let mut r1 = referral("R-NHS", vec![]);
    r1.patient.nhs_number = "9434765919".into();
    let reply =
        test.post_json("/admin/referrals", admin, &json!({ "referral": r1, "assign_to": ada.id })).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&reply.body));
    r1.patient.nhs_number = "9434765910".into();
    let reply =
        test.send_json(Method::PUT, "/admin/referrals/R-NHS", admin, &json!({ "referral": r1 })).await;
    reply.assert_error(StatusCode::BAD_REQUEST, ErrorCode::BadRequest);
}
