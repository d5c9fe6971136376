//! Proof of delivery and of authorship from the app's side: an outcome is `sent` only on a
//! receipt signed by the service's key; exports verify without Derm Desk; replacing the device
//! key keeps old outcomes verifiable and survives a crash or a lost answer at every step.

use dermdesk_core::plan::OutboxState;
use dermdesk_core::secrets::{SecretStore as _, DEVICE_SIGNING_KEY, DEVICE_SIGNING_KEY_NEXT};
use dermdesk_protocol::export::ReceiptCheck;
use dermdesk_protocol::signature::{key_id, sign_key_rotation};
use dermdesk_protocol::{Outcome, OutcomeKind, PublicKeyInfo, SignedOutcomeExport};
use ed25519_dalek::SigningKey;

use crate::support::{TestDesk, TestHub};

fn plan_outcome() -> Outcome {
    Outcome {
        // Allowed by every governance rule, so it can answer any synthetic referral.
        kind: OutcomeKind::RequestMoreInformation,
        appointment_urgency: None,
        diagnosis: "Seborrhoeic keratosis".into(),
        plan: "Please send a dermoscopic photograph.".into(),
        governance_reason: Some("Synthetic test referral: answered by request whatever its urgency.".into()),
        ..Outcome::default_extras()
    }
}

fn sign(desk: &TestDesk, referral_id: &str) {
    let version = desk.desk.open_referral(referral_id).unwrap().referral.version;
    desk.desk.sign_outcome(referral_id, version, plan_outcome()).unwrap();
}

fn state(desk: &TestDesk, referral_id: &str) -> OutboxState {
    desk.desk.open_referral(referral_id).unwrap().outcome.expect("signed").state
}

fn key_in(desk: &TestDesk, name: &str) -> Option<SigningKey> {
    let seed = desk.secrets().get(name).unwrap()?;
    Some(SigningKey::from_bytes(seed.as_slice().try_into().unwrap()))
}

#[tokio::test]
async fn a_delivered_outcome_shows_a_verified_receipt_and_exports_to_a_file_anyone_can_verify() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    assert_eq!(desk.desk.hub_key().unwrap(), Some(hub.hub.hub_key()), "kept at enrolment");
    desk.sync().await;
    let referral_id = desk.desk.worklist().unwrap()[0].referral_id.clone();
    sign(&desk, &referral_id);

    // Before delivery: the export carries no receipt, and verifies.
    let export = SignedOutcomeExport::parse(&desk.desk.export_outcome(&referral_id).unwrap()).unwrap();
    assert!(export.receipt.is_none());
    assert!(export.verify(None).is_valid());

    desk.sync().await;
    let outcome = desk.desk.open_referral(&referral_id).unwrap().outcome.unwrap();
    assert_eq!(outcome.state, OutboxState::Sent);
    let receipt = outcome.receipt.expect("receipt shown");
    let stored = &hub.hub.outcomes(&referral_id).unwrap()[0];
    assert!(receipt.verified);
    assert_eq!(receipt.hub_key_id, hub.hub.hub_key().key_id);
    assert_eq!((receipt.received_at, &receipt.payload_sha256), (stored.received_at, &stored.payload_sha256));

    let text = desk.desk.export_outcome(&referral_id).unwrap();
    let export = SignedOutcomeExport::parse(&text).unwrap();
    assert_eq!(export.jws, stored.jws);
    assert_eq!(export.consultant_public_key.key_id, stored.payload.key_id);
    let checked = export.verify(Some(&hub.hub.hub_key().decode().unwrap()));
    assert_eq!((checked.signature.clone(), checked.receipt.clone()), (Ok(()), ReceiptCheck::Verified));
    assert_eq!(checked.payload_sha256.as_deref(), Some(stored.payload_sha256.as_str()));
    hub.hub.verify_outcome_signature(&export.signed_outcome()).unwrap();
    assert!(matches!(desk.desk.export_outcome("R-NONE"), Err(dermdesk_core::CoreError::NoSignedOutcome(_))));

    // As a file: named by the outcome id only, the same text, nothing else left in the folder.
    let folder = tempfile::tempdir().unwrap();
    let exports = folder.path().join("exports");
    let path = desk.desk.export_outcome_file(&referral_id, &exports).unwrap();
    let outcome_id = &stored.payload.outcome_id;
    assert_eq!(path, exports.join(format!("signed-outcome-{outcome_id}.json")));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    assert_eq!(desk.desk.export_outcome_file(&referral_id, &exports).unwrap(), path, "again: replaced");
    assert_eq!(std::fs::read_dir(&exports).unwrap().count(), 1, "no temporary file left");
    assert!(matches!(
        desk.desk.export_outcome_file("R-NONE", &exports),
        Err(dermdesk_core::CoreError::NoSignedOutcome(_))
    ));
}

#[tokio::test]
async fn a_receipt_that_does_not_verify_keeps_the_outcome_queued_until_one_does() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    desk.sync().await;
    let referral_id = desk.desk.worklist().unwrap()[0].referral_id.clone();
    sign(&desk, &referral_id);

    // The desk holds another key than the service signs with (a service impostor, a damaged
    // record): the service records the outcome, but its receipt proves nothing to this desk.
    let stranger = SigningKey::from_bytes(&[9; 32]);
    let record = |key: &PublicKeyInfo| serde_json::to_string(key).unwrap();
    desk.cache().set_meta("hub_key", &record(&PublicKeyInfo::of(&stranger.verifying_key()))).unwrap();
    for _ in 0..2 {
        desk.desk.retry_outbox_now().unwrap();
        desk.sync().await;
        let outcome = desk.desk.open_referral(&referral_id).unwrap().outcome.unwrap();
        assert_eq!(outcome.state, OutboxState::Queued);
        assert!(
            outcome.problem.as_deref().unwrap().contains("receipt could not be verified"),
            "{:?}",
            outcome.problem
        );
        assert!(outcome.receipt.is_none());
        assert_eq!(desk.desk.outbox_waiting().unwrap(), 1);
    }
    assert_eq!(hub.hub.outcomes(&referral_id).unwrap().len(), 1, "recorded once, however often sent");

    // With the right key, the next attempt gets the original receipt, and that proves it.
    desk.cache().set_meta("hub_key", &record(&hub.hub.hub_key())).unwrap();
    desk.desk.retry_outbox_now().unwrap();
    desk.sync().await;
    let outcome = desk.desk.open_referral(&referral_id).unwrap().outcome.unwrap();
    assert_eq!(outcome.state, OutboxState::Sent);
    assert_eq!(outcome.problem, None);
    let receipt = outcome.receipt.unwrap();
    assert!(receipt.verified);
    assert_eq!(receipt.received_at, hub.hub.outcomes(&referral_id).unwrap()[0].received_at);
}

#[tokio::test]
async fn a_desk_enrolled_before_signed_receipts_takes_the_published_key() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    let mut cache = desk.cache();
    cache.update_meta(&[], &["hub_key", "public_keys"]).unwrap();
    drop(cache);
    desk.sync().await;
    let referral_id = desk.desk.worklist().unwrap()[0].referral_id.clone();
    sign(&desk, &referral_id);
    desk.sync().await;
    assert_eq!(state(&desk, &referral_id), OutboxState::Sent);
    assert_eq!(desk.desk.hub_key().unwrap(), Some(hub.hub.hub_key()));
    // No record of the device's public key either: the export derives it from the keychain.
    let export = SignedOutcomeExport::parse(&desk.desk.export_outcome(&referral_id).unwrap()).unwrap();
    assert!(export.verify(Some(&hub.hub.hub_key().decode().unwrap())).is_valid());
}

#[tokio::test]
async fn a_new_device_key_signs_from_now_on_and_what_the_old_one_signed_still_verifies() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    desk.sync().await;
    let worklist = desk.desk.worklist().unwrap();
    let (before, after) = (worklist[0].referral_id.clone(), worklist[1].referral_id.clone());
    let old_key_id = desk.desk.enrolment().unwrap().unwrap().key_id;
    sign(&desk, &before); // queued, not yet sent

    let rotation = desk.desk.rotate_key().await.unwrap();
    assert_eq!(rotation.retired_key_id, old_key_id);
    let device = desk.desk.device().unwrap().expect("enrolled");
    assert_eq!(
        (device.key_id.as_str(), device.earlier_key_ids.clone()),
        (rotation.key_id.as_str(), vec![old_key_id.clone()])
    );
    assert!(!device.rotation_pending);
    assert_eq!(device.hub_key_id, Some(hub.hub.hub_key().key_id));
    let enrolment = desk.desk.enrolment().unwrap().unwrap();
    assert_eq!(enrolment.key_id, rotation.key_id);
    assert_eq!(key_id(&key_in(&desk, DEVICE_SIGNING_KEY).unwrap().verifying_key()), rotation.key_id);
    assert!(key_in(&desk, DEVICE_SIGNING_KEY_NEXT).is_none(), "no spare left behind");

    sign(&desk, &after);
    desk.sync().await;
    assert_eq!(state(&desk, &before), OutboxState::Sent, "signed before the rotation: still accepted");
    assert_eq!(state(&desk, &after), OutboxState::Sent);
    let hub_key = hub.hub.hub_key().decode().unwrap();
    for (referral_id, signer) in [(&before, &old_key_id), (&after, &rotation.key_id)] {
        let export = SignedOutcomeExport::parse(&desk.desk.export_outcome(referral_id).unwrap()).unwrap();
        assert_eq!(&export.consultant_public_key.key_id, signer);
        assert!(export.verify(Some(&hub_key)).is_valid(), "{referral_id}");
    }
    // After a restart too.
    let desk = desk.reopen();
    assert_eq!(desk.desk.enrolment().unwrap().unwrap().key_id, rotation.key_id);
}

#[tokio::test]
async fn a_key_replacement_cut_off_at_any_step_never_leaves_the_desk_unable_to_sign() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    desk.sync().await;
    let worklist = desk.desk.worklist().unwrap();
    let referrals: Vec<String> = worklist.iter().map(|row| row.referral_id.clone()).collect();
    let old_key_id = desk.desk.enrolment().unwrap().unwrap().key_id;

    // 1. The service is unreachable: the rotation stays pending; the desk signs with its key.
    desk.desk.set_hub_url("http://127.0.0.1:9").unwrap();
    assert!(desk.desk.rotate_key().await.unwrap_err().is_transient());
    desk.desk.set_hub_url(&hub.url).unwrap();
    let desk = desk.reopen(); // and a crash for good measure
    let spare = key_in(&desk, DEVICE_SIGNING_KEY_NEXT).expect("the new key waits beside the old");
    assert_eq!(desk.desk.enrolment().unwrap().unwrap().key_id, old_key_id);
    sign(&desk, &referrals[0]);

    // 2. The service switched but its answer was lost (sent here by hand, as the desk would).
    let current = key_in(&desk, DEVICE_SIGNING_KEY).unwrap();
    let device_id = desk.desk.enrolment().unwrap().unwrap().device_id;
    let request = sign_key_rotation(&device_id, &spare.verifying_key(), &current).unwrap();
    desk.desk.client().unwrap().rotate_key(&request).await.unwrap();
    let desk = desk.reopen();
    assert_eq!(desk.desk.enrolment().unwrap().unwrap().key_id, old_key_id, "the desk does not know yet");

    // The next sync finishes the rotation first (the service answers the repeat as before),
    // then sends: the outcome signed before the switch is accepted.
    desk.sync().await;
    let new_key_id = key_id(&spare.verifying_key());
    assert_eq!(desk.desk.enrolment().unwrap().unwrap().key_id, new_key_id);
    assert_eq!(state(&desk, &referrals[0]), OutboxState::Sent);
    sign(&desk, &referrals[1]);
    desk.sync().await;
    assert_eq!(state(&desk, &referrals[1]), OutboxState::Sent);
    let signed = desk.desk.signed_outcome_for(&referrals[1]).unwrap().unwrap();
    assert_eq!(signed.payload.key_id, new_key_id);

    // 3. A crash inside the last step: the cache names the next key, the keychain's current
    // key is still the old one, the spare is there. Opening the desk completes the swap.
    let next = SigningKey::generate(&mut rand::rngs::OsRng);
    let request = sign_key_rotation(&device_id, &next.verifying_key(), &spare).unwrap();
    desk.desk.client().unwrap().rotate_key(&request).await.unwrap();
    desk.secrets().set(DEVICE_SIGNING_KEY_NEXT, next.as_bytes()).unwrap();
    desk.cache().set_meta("key_id", &key_id(&next.verifying_key())).unwrap();
    let desk = desk.reopen();
    assert_eq!(
        key_id(&key_in(&desk, DEVICE_SIGNING_KEY).unwrap().verifying_key()),
        key_id(&next.verifying_key())
    );
    assert!(key_in(&desk, DEVICE_SIGNING_KEY_NEXT).is_none());
    sign(&desk, &referrals[2]);
    desk.sync().await;
    assert_eq!(state(&desk, &referrals[2]), OutboxState::Sent);
}

/// Writes `tests/data/signed-outcome.example.json` and `tests/data/hub-key.example.json`: a
/// delivered synthetic outcome, as a GP practice would receive it, and the service key that
/// signed its receipt. `cargo xtask verify` tests and docs/VERIFY.md use them. Run by hand when
/// the format changes: `cargo test --test integration -- --ignored write_example_export`.
#[tokio::test]
#[ignore = "writes the committed example files"]
async fn write_example_export() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    desk.sync().await;
    let referral_id = desk.desk.worklist().unwrap()[0].referral_id.clone();
    let version = desk.desk.open_referral(&referral_id).unwrap().referral.version;
    let outcome = Outcome {
        kind: OutcomeKind::FaceToFace,
        appointment_urgency: Some(dermdesk_protocol::Urgency::TwoWeekWait),
        diagnosis: "Suspected melanoma".into(),
        certainty: Some(dermdesk_protocol::Certainty::Provisional),
        plan: "Two-week-wait clinic for excision biopsy with 2 mm margins.\nLeaflet for the patient: \"Suspected skin cancer – what happens next\".".into(),
        ..Outcome::default_extras()
    };
    desk.desk.sign_outcome(&referral_id, version, outcome).unwrap();
    desk.sync().await;
    assert_eq!(state(&desk, &referral_id), OutboxState::Sent);
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("data");
    std::fs::create_dir_all(&data).unwrap();
    let export = desk.desk.export_outcome(&referral_id).unwrap();
    std::fs::write(data.join("signed-outcome.example.json"), format!("{export}\n")).unwrap();
    let hub_key = serde_json::to_string_pretty(&hub.hub.hub_key()).unwrap();
    std::fs::write(data.join("hub-key.example.json"), format!("{hub_key}\n")).unwrap();
}
