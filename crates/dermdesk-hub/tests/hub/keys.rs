//! Keys: the hub's receipt key (published, stable, signing every receipt), device key rotation
//! (old outcomes still verify, the retired key signs nothing new) and revocation (a revoked
//! device's signatures end, whoever presents them).

use axum::http::StatusCode;
use dermdesk_hub::{Hub, HubError};
use dermdesk_protocol::signature::{decode_public_key, key_id, sign_key_rotation, verify_receipt_for};
use dermdesk_protocol::{
    EnrolResponse, ErrorCode, KeyRotationRequest, KeyRotationResponse, OutcomeReceipt, PublicKeyInfo,
};
use ed25519_dalek::SigningKey;

use crate::support::{enrol_request, TestDevice, TestHub};

/// Replaces the device's key over HTTP; the device signs with the new key from then on.
async fn rotate(test: &TestHub, device: &mut TestDevice) -> KeyRotationResponse {
    let next = SigningKey::generate(&mut rand::rngs::OsRng);
    let request = sign_key_rotation(&device.device_id, &next.verifying_key(), &device.key).unwrap();
    let reply = test.post_json("/v1/device/keys", Some(&device.token), &request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
    device.key = next;
    reply.json()
}

#[tokio::test]
async fn the_hub_key_is_published_and_signs_every_receipt() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    test.referral_for("R-1", &consultant.id);
    let code = test.hub.create_enrolment_code(&consultant.id).unwrap();
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let enrolled: EnrolResponse = test.post_json("/v1/enrol", None, &enrol_request(&code, &key)).await.json();
    let published: PublicKeyInfo = test.get("/v1/hub-key", "").await.json();
    assert_eq!(enrolled.hub_key.as_ref(), Some(&published));
    assert_eq!(published, test.hub.hub_key());
    let hub_key = published.decode().unwrap();

    let device = TestDevice {
        device_id: enrolled.device_id,
        token: enrolled.device_token,
        consultant_id: enrolled.consultant.id,
        key,
    };
    let signed = device.sign("R-1", 1);
    let first: OutcomeReceipt = test.post_json("/v1/outcomes", Some(&device.token), &signed).await.json();
    assert_eq!(first.hub_key_id, published.key_id);
    assert_eq!(first.referral_id, "R-1");
    verify_receipt_for(&signed, &first, &hub_key).unwrap();

    // A repeat is the original receipt, signature and all; the hub kept what it signed.
    let repeat: OutcomeReceipt = test.post_json("/v1/outcomes", Some(&device.token), &signed).await.json();
    assert_eq!(repeat, OutcomeReceipt { first_receipt: false, ..first.clone() });
    verify_receipt_for(&signed, &repeat, &hub_key).unwrap();
    assert_eq!(test.hub.outcomes("R-1").unwrap()[0].receipt_jws.as_deref(), Some(first.receipt_jws.as_str()));
}

#[test]
fn a_hub_database_keeps_its_key_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.sqlite");
    let first = Hub::open_with_clock(Some(&path), &dir.path().join("photos"), crate::support::test_clock())
        .unwrap()
        .hub_key();
    let again = Hub::open_with_clock(Some(&path), &dir.path().join("photos"), crate::support::test_clock())
        .unwrap()
        .hub_key();
    assert_eq!(first, again);
    decode_public_key(&first.public_key).unwrap();
    // In-memory hubs make their own.
    let memory = Hub::open_with_clock(None, &dir.path().join("photos"), crate::support::test_clock())
        .unwrap()
        .hub_key();
    assert_ne!(memory, first);
}

#[tokio::test]
async fn an_outcome_recorded_before_receipts_were_signed_gets_a_signed_receipt_on_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.sqlite");
    let test = TestHub::with_hub(
        Hub::open_with_clock(Some(&path), &dir.path().join("photos"), crate::support::test_clock()).unwrap(),
    );
    let consultant = test.consultant("Dr Ada Example");
    test.referral_for("R-1", &consultant.id);
    let device = test.enrol(&consultant.id).await;
    let signed = device.sign("R-1", 1);
    let first: OutcomeReceipt = test.post_json("/v1/outcomes", Some(&device.token), &signed).await.json();
    // As an older hub left it: no receipt signature on record.
    rusqlite::Connection::open(&path).unwrap().execute("UPDATE outcomes SET receipt_jws = NULL", []).unwrap();
    assert_eq!(test.hub.outcomes("R-1").unwrap()[0].receipt_jws, None);

    let repeat: OutcomeReceipt = test.post_json("/v1/outcomes", Some(&device.token), &signed).await.json();
    assert_eq!((repeat.received_at, repeat.first_receipt), (first.received_at, false));
    verify_receipt_for(&signed, &repeat, &test.hub.hub_key().decode().unwrap()).unwrap();
    assert_eq!(
        test.hub.outcomes("R-1").unwrap()[0].receipt_jws.as_deref(),
        Some(repeat.receipt_jws.as_str())
    );
}

#[tokio::test]
async fn after_a_rotation_old_outcomes_verify_and_the_retired_key_signs_nothing_new() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    for id in ["R-1", "R-2", "R-3"] {
        test.referral_for(id, &consultant.id);
    }
    let mut device = test.enrol(&consultant.id).await;
    let old_key = device.key.clone();
    // Signed before the rotation, sent after (it waited in the outbox).
    let signed_before = device.sign("R-1", 1);

    let rotation = rotate(&test, &mut device).await;
    assert_eq!(rotation.key_id, key_id(&device.key.verifying_key()));
    assert_eq!(rotation.retired_key_id, key_id(&old_key.verifying_key()));
    assert_eq!(rotation.device_id, device.device_id);

    let reply = test.post_json("/v1/outcomes", Some(&device.token), &signed_before).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
    test.hub.verify_outcome_signature(&signed_before).unwrap();

    // The old key after its retirement: refused, nothing recorded.
    let old = TestDevice { key: old_key, ..device.clone_ids() };
    let late = old.sign("R-2", 1);
    let reply = test.post_json("/v1/outcomes", Some(&device.token), &late).await;
    let error = reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::KeyRetired);
    assert!(error.message.contains("sign it again"), "{}", error.message);
    assert!(test.hub.outcomes("R-2").unwrap().is_empty());

    // The new key signs.
    let reply = test.post_json("/v1/outcomes", Some(&device.token), &device.sign("R-3", 1)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
}

#[tokio::test]
async fn a_repeated_rotation_gets_the_same_answer_and_a_retired_key_cannot_rotate() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    let mut device = test.enrol(&consultant.id).await;
    let old_key = device.key.clone();
    let next = SigningKey::generate(&mut rand::rngs::OsRng);
    let request = sign_key_rotation(&device.device_id, &next.verifying_key(), &old_key).unwrap();
    let first: KeyRotationResponse =
        test.post_json("/v1/device/keys", Some(&device.token), &request).await.json();
    // The answer was lost; the app sends the same request again.
    let again = test.post_json("/v1/device/keys", Some(&device.token), &request).await;
    assert_eq!(again.status, StatusCode::OK, "{}", String::from_utf8_lossy(&again.body));
    assert_eq!(again.json::<KeyRotationResponse>(), first);
    device.key = next;

    // The retired key cannot name a successor of its own choosing, nor come back.
    let stolen = SigningKey::generate(&mut rand::rngs::OsRng);
    let request = sign_key_rotation(&device.device_id, &stolen.verifying_key(), &old_key).unwrap();
    test.post_json("/v1/device/keys", Some(&device.token), &request)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::BadSignature);
    let request = sign_key_rotation(&device.device_id, &old_key.verifying_key(), &device.key).unwrap();
    test.post_json("/v1/device/keys", Some(&device.token), &request)
        .await
        .assert_error(StatusCode::BAD_REQUEST, ErrorCode::BadRequest);
}

#[tokio::test]
async fn a_rotation_proof_must_be_for_this_device_by_its_current_key() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    let device = test.enrol(&consultant.id).await;
    let other = test.enrol(&consultant.id).await;
    let next = SigningKey::generate(&mut rand::rngs::OsRng);

    // Proved by another device's key, or for another device: refused.
    let by_other = sign_key_rotation(&device.device_id, &next.verifying_key(), &other.key).unwrap();
    let for_other = sign_key_rotation(&other.device_id, &next.verifying_key(), &device.key).unwrap();
    for request in [by_other, for_other] {
        test.post_json("/v1/device/keys", Some(&device.token), &request)
            .await
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::BadSignature);
    }
    // No proof at all, a malformed key, no token.
    let unproved = KeyRotationRequest {
        new_public_key: dermdesk_protocol::signature::encode_public_key(&next.verifying_key()),
        proof: String::new(),
    };
    test.post_json("/v1/device/keys", Some(&device.token), &unproved)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::BadSignature);
    let malformed = KeyRotationRequest { new_public_key: "bm90IGEga2V5".into(), proof: String::new() };
    test.post_json("/v1/device/keys", Some(&device.token), &malformed)
        .await
        .assert_error(StatusCode::BAD_REQUEST, ErrorCode::BadRequest);
    test.post_json("/v1/device/keys", None, &unproved)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized);

    // The device still signs with its enrolled key.
    test.referral_for("R-1", &consultant.id);
    let reply = test.post_json("/v1/outcomes", Some(&device.token), &device.sign("R-1", 1)).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn a_revoked_device_signs_nothing_new_whoever_presents_it() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    test.referral_for("R-1", &consultant.id);
    let laptop = test.enrol(&consultant.id).await;
    let desktop = test.enrol(&consultant.id).await;
    let signed_before = laptop.sign("R-1", 1);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    test.hub.revoke_device(&laptop.device_id).unwrap();
    let signed_after = laptop.sign_payload(laptop.payload("R-1", 1, crate::support::treatment_plan()));
    assert!(signed_after.payload.signed_at > signed_before.payload.signed_at);

    // The laptop's own token no longer works.
    test.post_json("/v1/outcomes", Some(&laptop.token), &signed_after)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized);
    // Presented by another of the consultant's devices: refused too.
    test.post_json("/v1/outcomes", Some(&desktop.token), &signed_after)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::BadSignature);
    // And by any route that checks a signed outcome: the signature ends at the revocation;
    // what the device signed before it still verifies.
    match test.hub.verify_outcome_signature(&signed_after) {
        Err(HubError::BadSignature(message)) => assert!(message.contains("revoked"), "{message}"),
        other => panic!("an outcome signed after revocation must be refused, got {other:?}"),
    }
    test.hub.verify_outcome_signature(&signed_before).unwrap();
    assert!(test.hub.outcomes("R-1").unwrap().is_empty());
}
