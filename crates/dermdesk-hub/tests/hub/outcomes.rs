//! POST /v1/outcomes: exactly-once recording and every refusal, in the documented order.

use axum::http::StatusCode;
use dermdesk_protocol::{ErrorCode, OutcomeKind, OutcomeReceipt};

use crate::support::{TestHub, ADMIN_TOKEN};

#[tokio::test]
async fn an_outcome_is_recorded_once_and_a_repeat_gets_the_same_receipt() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    test.referral_for("R-1", &consultant.id);
    let device = test.enrol(&consultant.id).await;
    let signed = device.sign("R-1", 1);

    let first = test.post_json("/v1/outcomes", Some(&device.token), &signed).await;
    assert_eq!(first.status, StatusCode::OK, "{}", String::from_utf8_lossy(&first.body));
    let first: OutcomeReceipt = first.json();
    assert!(first.first_receipt);
    assert_eq!(first.outcome_id, signed.payload.outcome_id);
    assert_eq!(first.payload_sha256, dermdesk_protocol::signature::payload_sha256(&signed.payload).unwrap());

    // The response was lost; the app sends the same outcome again.
    let repeat = test.post_json("/v1/outcomes", Some(&device.token), &signed).await;
    assert_eq!(repeat.status, StatusCode::OK);
    let repeat: OutcomeReceipt = repeat.json();
    assert_eq!(repeat, OutcomeReceipt { first_receipt: false, ..first.clone() });

    let stored = test.hub.outcomes("R-1").unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].payload, signed.payload);
    assert_eq!(stored[0].jws, signed.jws);
    assert_eq!(stored[0].received_at, first.received_at);

    let over_http = test.get("/admin/referrals/R-1/outcomes", ADMIN_TOKEN).await;
    assert_eq!(over_http.status, StatusCode::OK);
    assert_eq!(over_http.json::<Vec<dermdesk_hub::StoredOutcome>>(), stored);
}

#[tokio::test]
async fn the_same_outcome_id_for_a_different_payload_is_refused() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    test.referral_for("R-1", &consultant.id);
    let device = test.enrol(&consultant.id).await;
    let signed = device.sign("R-1", 1);
    assert_eq!(test.post_json("/v1/outcomes", Some(&device.token), &signed).await.status, StatusCode::OK);

    let mut changed = signed.payload.clone();
    changed.outcome.plan = "Emollients twice daily.".into();
    let reused = device.sign_payload(changed);
    let reply = test.post_json("/v1/outcomes", Some(&device.token), &reused).await;
    reply.assert_error(StatusCode::CONFLICT, ErrorCode::OutcomeIdReused);
    assert_eq!(test.hub.outcomes("R-1").unwrap().len(), 1);
}

#[tokio::test]
async fn a_tampered_payload_fails_verification_and_records_nothing() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    test.referral_for("R-1", &consultant.id);
    let device = test.enrol(&consultant.id).await;
    let mut signed = device.sign("R-1", 1);
    signed.payload.outcome.diagnosis = "Melanoma".into();

    let reply = test.post_json("/v1/outcomes", Some(&device.token), &signed).await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::BadSignature);
    assert!(test.hub.outcomes("R-1").unwrap().is_empty());
}

#[tokio::test]
async fn an_outcome_signed_by_another_key_or_naming_another_device_is_refused() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    test.referral_for("R-1", &consultant.id);
    let device = test.enrol(&consultant.id).await;
    let other = test.enrol(&consultant.id).await;

    // Other's genuine signature, sent with device's token: not this device's outcome.
    let reply = test.post_json("/v1/outcomes", Some(&device.token), &other.sign("R-1", 1)).await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::BadSignature);

    // Names this device but is signed with the other device's key.
    let mut payload = device.payload("R-1", 1, crate::support::treatment_plan());
    payload.key_id = dermdesk_protocol::signature::key_id(&other.key.verifying_key());
    let forged = dermdesk_protocol::signature::sign_outcome(payload, &other.key).unwrap();
    let reply = test.post_json("/v1/outcomes", Some(&device.token), &forged).await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::BadSignature);
    assert!(test.hub.outcomes("R-1").unwrap().is_empty());
}

#[tokio::test]
async fn an_ill_formed_outcome_is_refused_even_when_signed() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    test.referral_for("R-1", &consultant.id);
    let device = test.enrol(&consultant.id).await;
    let mut outcome = crate::support::treatment_plan();
    outcome.kind = OutcomeKind::FaceToFace;
    let signed = device.sign_payload(device.payload("R-1", 1, outcome));

    let reply = test.post_json("/v1/outcomes", Some(&device.token), &signed).await;
    reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidOutcome);
}

#[tokio::test]
async fn an_outcome_for_a_withdrawn_referral_is_refused() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    test.referral_for("R-1", &consultant.id);
    let device = test.enrol(&consultant.id).await;
    let signed = device.sign("R-1", 1);
    test.hub.withdraw_referral("R-1").unwrap();

    let reply = test.post_json("/v1/outcomes", Some(&device.token), &signed).await;
    reply.assert_error(StatusCode::CONFLICT, ErrorCode::ReferralWithdrawn);
    assert!(test.hub.outcomes("R-1").unwrap().is_empty());
}

#[tokio::test]
async fn an_outcome_for_an_older_version_is_refused_with_the_current_one() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    let (referral, _) = test.referral_for("R-1", &consultant.id);
    let device = test.enrol(&consultant.id).await;
    let signed = device.sign("R-1", 1);
    assert_eq!(test.hub.update_referral(&referral).unwrap(), 2);

    let reply = test.post_json("/v1/outcomes", Some(&device.token), &signed).await;
    let error = reply.assert_error(StatusCode::CONFLICT, ErrorCode::ReferralChanged);
    assert_eq!(error.current_version, Some(2));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&reply.body).unwrap()["current_version"], 2);

    // Reviewed again and signed against version 2: accepted.
    let resigned = device.sign("R-1", 2);
    assert_eq!(test.post_json("/v1/outcomes", Some(&device.token), &resigned).await.status, StatusCode::OK);
    assert_eq!(test.hub.outcomes("R-1").unwrap().len(), 1);
}

#[tokio::test]
async fn an_outcome_for_a_reassigned_referral_is_refused() {
    let test = TestHub::new();
    let ada = test.consultant("Dr Ada Example");
    let ben = test.consultant("Dr Ben Example");
    test.referral_for("R-1", &ada.id);
    let device = test.enrol(&ada.id).await;
    let signed = device.sign("R-1", 1);
    test.hub.reassign_referral("R-1", &ben.id).unwrap();

    let reply = test.post_json("/v1/outcomes", Some(&device.token), &signed).await;
    reply.assert_error(StatusCode::CONFLICT, ErrorCode::ReferralReassigned);
}

#[tokio::test]
async fn a_second_outcome_for_a_decided_referral_is_refused() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    test.referral_for("R-1", &consultant.id);
    let laptop = test.enrol(&consultant.id).await;
    let desktop = test.enrol(&consultant.id).await;
    assert_eq!(
        test.post_json("/v1/outcomes", Some(&laptop.token), &laptop.sign("R-1", 1)).await.status,
        StatusCode::OK
    );

    let reply = test.post_json("/v1/outcomes", Some(&desktop.token), &desktop.sign("R-1", 1)).await;
    reply.assert_error(StatusCode::CONFLICT, ErrorCode::AlreadyDecided);
    assert_eq!(test.hub.outcomes("R-1").unwrap().len(), 1);
    // A decided referral can no longer be changed, withdrawn or moved under the outcome.
    assert!(test.hub.withdraw_referral("R-1").is_err());
}

#[tokio::test]
async fn referrals_never_assigned_to_the_consultant_are_not_found() {
    let test = TestHub::new();
    let ada = test.consultant("Dr Ada Example");
    let ben = test.consultant("Dr Ben Example");
    test.referral_for("R-BEN", &ben.id);
    let device = test.enrol(&ada.id).await;

    for referral_id in ["R-BEN", "R-NOPE"] {
        let reply = test.post_json("/v1/outcomes", Some(&device.token), &device.sign(referral_id, 1)).await;
        reply.assert_error(StatusCode::NOT_FOUND, ErrorCode::NotFound);
    }
}

#[tokio::test]
async fn an_oversized_body_is_refused_before_it_is_read() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    test.referral_for("R-1", &consultant.id);
    let device = test.enrol(&consultant.id).await;
    let mut signed = device.sign("R-1", 1);
    signed.payload.outcome.plan = "x".repeat(dermdesk_hub::JSON_BODY_LIMIT + 1);

    let reply = test.post_json("/v1/outcomes", Some(&device.token), &signed).await;
    reply.assert_error(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge);
}
