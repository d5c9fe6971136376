//! Enrolment codes are one-time, tokens are stored hashed, revoked devices are locked out.

use axum::http::StatusCode;
use dermdesk_protocol::signature::key_id;
use dermdesk_protocol::{EnrolResponse, ErrorCode, FeedPage};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use crate::support::{enrol_request, TestHub, ADMIN_TOKEN};

#[tokio::test]
async fn an_enrolment_code_enrols_exactly_one_device() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    let code = test.hub.create_enrolment_code(&consultant.id).unwrap();
    assert!(code.len() == 14 && code.chars().filter(|c| *c == '-').count() == 2, "human-typable: {code}");

    let key = SigningKey::from_bytes(&[1; 32]);
    let reply = test.post_json("/v1/enrol", None, &enrol_request(&code, &key)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let enrolled: EnrolResponse = reply.json();
    assert_eq!(enrolled.consultant, consultant);
    assert_eq!(enrolled.key_id, key_id(&key.verifying_key()));

    let again =
        test.post_json("/v1/enrol", None, &enrol_request(&code, &SigningKey::from_bytes(&[2; 32]))).await;
    again.assert_error(StatusCode::FORBIDDEN, ErrorCode::EnrolmentRefused);

    // The token works for the device it was issued to.
    let feed = test.get("/v1/feed", &enrolled.device_token).await;
    assert_eq!(feed.status, StatusCode::OK);
    let _: FeedPage = feed.json();
}

#[tokio::test]
async fn codes_are_accepted_as_typed_and_unknown_ones_refused() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    let code = test.hub.create_enrolment_code(&consultant.id).unwrap();
    let key = SigningKey::from_bytes(&[1; 32]);

    let unknown = test.post_json("/v1/enrol", None, &enrol_request("ABCD-EFGH-JKMN", &key)).await;
    unknown.assert_error(StatusCode::FORBIDDEN, ErrorCode::EnrolmentRefused);

    let typed = code.to_lowercase().replace('-', " ");
    let reply = test.post_json("/v1/enrol", None, &enrol_request(&typed, &key)).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn a_bad_public_key_is_refused_without_spending_the_code() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    let code = test.hub.create_enrolment_code(&consultant.id).unwrap();
    let mut request = enrol_request(&code, &SigningKey::from_bytes(&[1; 32]));
    let good_key = std::mem::replace(&mut request.public_key, "bm90IGEga2V5".into());

    test.post_json("/v1/enrol", None, &request)
        .await
        .assert_error(StatusCode::BAD_REQUEST, ErrorCode::BadRequest);

    request.public_key = good_key;
    assert_eq!(test.post_json("/v1/enrol", None, &request).await.status, StatusCode::OK);
}

#[tokio::test]
async fn malformed_json_is_a_bad_request_in_the_protocol_shape() {
    let test = TestHub::new();
    let reply = test.post_json("/v1/enrol", None, &serde_json::json!({ "enrolment_code": 5 })).await;
    reply.assert_error(StatusCode::BAD_REQUEST, ErrorCode::BadRequest);
}

#[tokio::test]
async fn requests_without_a_known_token_are_unauthorized() {
    let test = TestHub::new();
    let reply =
        test.send(axum::http::Request::get("/v1/feed").body(axum::body::Body::empty()).unwrap()).await;
    reply.assert_error(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));

    test.get("/v1/feed", "not-a-token").await.assert_error(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized);
}

#[tokio::test]
async fn a_revoked_device_is_locked_out_at_once() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    let (referral, _) = test.referral_for("R-1", &consultant.id);
    let device = test.enrol(&consultant.id).await;
    assert_eq!(test.get("/v1/feed", &device.token).await.status, StatusCode::OK);

    let revoke = test
        .post_json(
            &format!("/admin/devices/{}/revoke", device.device_id),
            Some(ADMIN_TOKEN),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);

    test.get("/v1/feed", &device.token).await.assert_error(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized);
    let photo = format!("/v1/photos/{}", referral.photos[0].content_id);
    test.get(&photo, &device.token).await.assert_error(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized);
    let outcome = test.post_json("/v1/outcomes", Some(&device.token), &device.sign("R-1", 1)).await;
    outcome.assert_error(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized);
    assert!(test.hub.outcomes("R-1").unwrap().is_empty());
}

#[tokio::test]
async fn the_database_keeps_only_the_tokens_hash() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.sqlite");
    let hub = dermdesk_hub::Hub::open_with_clock(
        Some(&db),
        &dir.path().join("photos"),
        crate::support::test_clock(),
    )
    .unwrap();
    let consultant = hub.create_consultant("Dr Ada Example").unwrap();
    let code = hub.create_enrolment_code(&consultant.id).unwrap();
    let router = dermdesk_hub::app(hub, dermdesk_hub::ServerConfig::default());
    let request = axum::http::Request::post("/v1/enrol")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            serde_json::to_vec(&enrol_request(&code, &SigningKey::from_bytes(&[3; 32]))).unwrap(),
        ))
        .unwrap();
    let response = tower::ServiceExt::oneshot(router, request).await.unwrap();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let enrolled: EnrolResponse = serde_json::from_slice(&body).unwrap();

    let connection = rusqlite::Connection::open(&db).unwrap();
    let stored: String =
        connection.query_row("SELECT token_sha256 FROM devices", [], |row| row.get(0)).unwrap();
    assert_eq!(stored, hex::encode(Sha256::digest(enrolled.device_token.as_bytes())));
    let dump: String = connection
        .query_row(
            "SELECT group_concat(id || name || public_key || key_id || token_sha256) FROM devices",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(!dump.contains(&enrolled.device_token));
}
