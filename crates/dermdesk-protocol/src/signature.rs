//! Signatures of the protocol: detached compact JWS (RFC 7515 appendix F) with alg EdDSA
//! (RFC 8037) over the RFC 8785 canonical JSON of a value. Three things are signed this way, each
//! with its own `typ` so a signature of one can never pass for another:
//!
//! - an [`OutcomePayload`] by the consultant's device key (`dermdesk-outcome+jws`);
//! - a [`ReceiptPayload`] by the hub's own key (`dermdesk-receipt+jws`): proof of delivery;
//! - a [`KeyRotationPayload`] by the device's current key (`dermdesk-key-rotation+jws`).
//!
//! Signing input: `BASE64URL(header) || "." || BASE64URL(canonical payload)`; the transmitted
//! JWS leaves the payload part empty (`header..signature`) because the payload travels beside it
//! as JSON. Any party can recompute the canonical bytes from the JSON and verify.
//!
//! The protected header must be exactly the canonical JSON of [`JwsHeader`] (`alg`, `kid`, `typ`,
//! in that order, nothing else): there is one way to write it, so no header trick (`alg: none`,
//! `crit`, `b64: false`, re-ordered or padded JSON) is ever interpreted.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::canonical::{to_canonical_json, CanonicalError};
use crate::{
    KeyRotationPayload, OutcomePayload, OutcomeReceipt, PublicKeyInfo, ReceiptPayload, SignedOutcome,
};

/// The JWS protected header (the same three members for every `typ`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwsHeader {
    pub alg: String,
    pub kid: String,
    pub typ: String,
}

pub const JWS_ALG: &str = "EdDSA";
/// `typ` of an outcome signature.
pub const JWS_TYP: &str = "dermdesk-outcome+jws";
/// `typ` of a hub receipt signature.
pub const RECEIPT_TYP: &str = "dermdesk-receipt+jws";
/// `typ` of a key rotation proof.
pub const KEY_ROTATION_TYP: &str = "dermdesk-key-rotation+jws";

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("payload cannot be canonicalised: {0}")]
    Canonical(#[from] CanonicalError),
    #[error("the JWS is not in detached compact form (header..signature)")]
    Malformed,
    #[error("the JWS header is not the expected EdDSA header for this kind of signature")]
    UnexpectedHeader,
    #[error("the JWS key id does not match the payload's key id or the expected key")]
    KeyMismatch,
    #[error("the signature does not verify")]
    Invalid,
    #[error("the public key is not a valid Ed25519 key")]
    BadPublicKey,
    #[error("the receipt is not for this outcome: its {0} differs")]
    ReceiptMismatch(&'static str),
}

/// RFC 7638 JWK thumbprint of an Ed25519 public key (RFC 8037 OKP form), base64url.
pub fn key_id(public_key: &VerifyingKey) -> String {
    let x = URL_SAFE_NO_PAD.encode(public_key.as_bytes());
    let jwk = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(jwk.as_bytes()))
}

/// Encodes a public key for [`crate::EnrolRequest::public_key`].
pub fn encode_public_key(public_key: &VerifyingKey) -> String {
    URL_SAFE_NO_PAD.encode(public_key.as_bytes())
}

/// Decodes [`crate::EnrolRequest::public_key`].
pub fn decode_public_key(encoded: &str) -> Result<VerifyingKey, SignatureError> {
    let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| SignatureError::BadPublicKey)?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| SignatureError::BadPublicKey)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| SignatureError::BadPublicKey)
}

impl PublicKeyInfo {
    /// The published form of `public_key`.
    pub fn of(public_key: &VerifyingKey) -> PublicKeyInfo {
        PublicKeyInfo { key_id: key_id(public_key), public_key: encode_public_key(public_key) }
    }

    /// The key, after checking that `key_id` is its thumbprint.
    pub fn decode(&self) -> Result<VerifyingKey, SignatureError> {
        let public_key = decode_public_key(&self.public_key)?;
        if key_id(&public_key) != self.key_id {
            return Err(SignatureError::KeyMismatch);
        }
        Ok(public_key)
    }
}

/// Lower-case hex SHA-256 of the payload's canonical JSON (what a receipt refers to).
pub fn payload_sha256(payload: &OutcomePayload) -> Result<String, SignatureError> {
    Ok(hex::encode(Sha256::digest(to_canonical_json(payload)?)))
}

/// The exact protected header of a signature of kind `typ` by key `kid`, base64url.
fn header_b64(typ: &str, kid: String) -> Result<String, SignatureError> {
    let header = JwsHeader { alg: JWS_ALG.into(), kid, typ: typ.into() };
    Ok(URL_SAFE_NO_PAD.encode(to_canonical_json(&header)?))
}

fn signing_input(header_b64: &str, canonical_payload: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(header_b64.len() + 1 + canonical_payload.len() * 4 / 3 + 4);
    input.extend_from_slice(header_b64.as_bytes());
    input.push(b'.');
    input.extend_from_slice(URL_SAFE_NO_PAD.encode(canonical_payload).as_bytes());
    input
}

/// A detached compact JWS of kind `typ` over the canonical JSON of `payload`.
fn sign_detached<T: Serialize>(typ: &str, payload: &T, key: &SigningKey) -> Result<String, SignatureError> {
    let header_b64 = header_b64(typ, key_id(&key.verifying_key()))?;
    let signature = key.sign(&signing_input(&header_b64, &to_canonical_json(payload)?));
    Ok(format!("{header_b64}..{}", URL_SAFE_NO_PAD.encode(signature.to_bytes())))
}

/// Verifies a detached compact JWS of kind `typ` over the canonical JSON of `payload` by
/// `public_key`: the header must be exactly the one [`sign_detached`] writes for that key.
fn verify_detached<T: Serialize>(
    typ: &str,
    jws: &str,
    payload: &T,
    public_key: &VerifyingKey,
) -> Result<(), SignatureError> {
    let mut parts = jws.split('.');
    let (Some(header_part), Some(""), Some(signature_part), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SignatureError::Malformed);
    };
    let header_json = URL_SAFE_NO_PAD.decode(header_part).map_err(|_| SignatureError::Malformed)?;
    let header: JwsHeader = serde_json::from_slice(&header_json).map_err(|_| SignatureError::Malformed)?;
    if header.alg != JWS_ALG || header.typ != typ {
        return Err(SignatureError::UnexpectedHeader);
    }
    let expected_kid = key_id(public_key);
    if header.kid != expected_kid {
        return Err(SignatureError::KeyMismatch);
    }
    // One way to write the header: anything but our own canonical bytes (extra members such as
    // `crit`, another order, whitespace) is refused even though it parsed.
    if header_part != header_b64(typ, expected_kid)? {
        return Err(SignatureError::UnexpectedHeader);
    }
    let signature = URL_SAFE_NO_PAD.decode(signature_part).map_err(|_| SignatureError::Malformed)?;
    let signature = Signature::from_slice(&signature).map_err(|_| SignatureError::Malformed)?;
    public_key
        .verify_strict(&signing_input(header_part, &to_canonical_json(payload)?), &signature)
        .map_err(|_| SignatureError::Invalid)
}

/// Signs `payload` with the device key. `payload.key_id` must be this key's id.
pub fn sign_outcome(payload: OutcomePayload, key: &SigningKey) -> Result<SignedOutcome, SignatureError> {
    if payload.key_id != key_id(&key.verifying_key()) {
        return Err(SignatureError::KeyMismatch);
    }
    let jws = sign_detached(JWS_TYP, &payload, key)?;
    Ok(SignedOutcome { payload, jws })
}

/// Verifies a signed outcome against the public key enrolled for its device.
pub fn verify_outcome(signed: &SignedOutcome, public_key: &VerifyingKey) -> Result<(), SignatureError> {
    verify_detached(JWS_TYP, &signed.jws, &signed.payload, public_key)?;
    // The header's kid is this key's; the signed payload must name the same key.
    if signed.payload.key_id != key_id(public_key) {
        return Err(SignatureError::KeyMismatch);
    }
    Ok(())
}

/// The hub signs a receipt with its own key; returns the detached JWS (`receipt_jws`).
/// `payload.hub_key_id` must be this key's id.
pub fn sign_receipt(payload: &ReceiptPayload, hub_key: &SigningKey) -> Result<String, SignatureError> {
    if payload.hub_key_id != key_id(&hub_key.verifying_key()) {
        return Err(SignatureError::KeyMismatch);
    }
    sign_detached(RECEIPT_TYP, payload, hub_key)
}

/// Verifies a receipt signature by the hub key `hub_public_key`.
pub fn verify_receipt(
    payload: &ReceiptPayload,
    receipt_jws: &str,
    hub_public_key: &VerifyingKey,
) -> Result<(), SignatureError> {
    verify_detached(RECEIPT_TYP, receipt_jws, payload, hub_public_key)?;
    if payload.hub_key_id != key_id(hub_public_key) {
        return Err(SignatureError::KeyMismatch);
    }
    Ok(())
}

/// Whether `receipt` proves that the hub holding `hub_public_key` received exactly `signed`:
/// the hub's signature verifies and the receipt names this outcome id, referral and payload hash.
pub fn verify_receipt_for(
    signed: &SignedOutcome,
    receipt: &OutcomeReceipt,
    hub_public_key: &VerifyingKey,
) -> Result<(), SignatureError> {
    if receipt.receipt_jws.is_empty() {
        return Err(SignatureError::Malformed);
    }
    verify_receipt(&receipt.signed_payload(), &receipt.receipt_jws, hub_public_key)?;
    if receipt.outcome_id != signed.payload.outcome_id {
        return Err(SignatureError::ReceiptMismatch("outcome id"));
    }
    if receipt.referral_id != signed.payload.referral_id {
        return Err(SignatureError::ReceiptMismatch("referral id"));
    }
    if receipt.payload_sha256 != payload_sha256(&signed.payload)? {
        return Err(SignatureError::ReceiptMismatch("payload hash"));
    }
    Ok(())
}

/// The proof for [`crate::KeyRotationRequest`]: the device's current key signs the new one.
pub fn sign_key_rotation(
    device_id: &str,
    new_public_key: &VerifyingKey,
    current_key: &SigningKey,
) -> Result<crate::KeyRotationRequest, SignatureError> {
    let payload = KeyRotationPayload {
        device_id: device_id.to_owned(),
        new_key_id: key_id(new_public_key),
        new_public_key: encode_public_key(new_public_key),
    };
    let proof = sign_detached(KEY_ROTATION_TYP, &payload, current_key)?;
    Ok(crate::KeyRotationRequest { new_public_key: payload.new_public_key, proof })
}

/// Verifies a key rotation proof by `signer` (the key being replaced).
pub fn verify_key_rotation(
    payload: &KeyRotationPayload,
    proof: &str,
    signer: &VerifyingKey,
) -> Result<(), SignatureError> {
    verify_detached(KEY_ROTATION_TYP, proof, payload, signer)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{Outcome, OutcomeKind, OutcomeReceipt};

    fn payload(key: &SigningKey) -> OutcomePayload {
        OutcomePayload {
            outcome_id: "6f1c1f0e-1111-4a4a-9a9a-000000000001".into(),
            referral_id: "R-0001".into(),
            referral_version: 3,
            consultant_id: "C-1".into(),
            device_id: "D-1".into(),
            key_id: key_id(&key.verifying_key()),
            signed_at: "2026-11-23T10:00:00Z".parse().unwrap(),
            outcome: Outcome {
                kind: OutcomeKind::GpTreatmentPlan,
                appointment_urgency: None,
                diagnosis: "Seborrhoeic keratosis".into(),
                plan: "Reassure; no treatment needed.".into(),
                ..Outcome::default_extras()
            },
        }
    }

    #[test]
    fn a_signed_outcome_verifies_and_any_change_breaks_it() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let signed = sign_outcome(payload(&key), &key).unwrap();
        assert!(signed.jws.contains(".."), "payload must be detached: {}", signed.jws);
        verify_outcome(&signed, &key.verifying_key()).unwrap();

        let mut tampered = signed.clone();
        tampered.payload.outcome.plan.push('!');
        assert_eq!(verify_outcome(&tampered, &key.verifying_key()), Err(SignatureError::Invalid));

        let mut tampered = signed.clone();
        tampered.payload.referral_version = 4;
        assert_eq!(verify_outcome(&tampered, &key.verifying_key()), Err(SignatureError::Invalid));

        let other = SigningKey::from_bytes(&[8; 32]);
        assert_eq!(verify_outcome(&signed, &other.verifying_key()), Err(SignatureError::KeyMismatch));
    }

    #[test]
    fn verification_survives_a_json_round_trip_with_reordered_members() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let signed = sign_outcome(payload(&key), &key).unwrap();
        let json = serde_json::to_value(&signed).unwrap();
        // serde_json::Value sorts members; the original struct order differs: both must verify.
        let back: SignedOutcome = serde_json::from_value(json).unwrap();
        verify_outcome(&back, &key.verifying_key()).unwrap();
    }

    #[test]
    fn refuses_attached_or_malformed_jws() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut signed = sign_outcome(payload(&key), &key).unwrap();
        signed.jws = signed.jws.replacen("..", ".e30.", 1);
        assert_eq!(verify_outcome(&signed, &key.verifying_key()), Err(SignatureError::Malformed));
    }

    /// The hub's signed receipt for `signed` (also used by the export tests).
    pub(crate) fn receipt_for(signed: &SignedOutcome, hub: &SigningKey) -> OutcomeReceipt {
        let mut receipt = OutcomeReceipt {
            outcome_id: signed.payload.outcome_id.clone(),
            referral_id: signed.payload.referral_id.clone(),
            payload_sha256: payload_sha256(&signed.payload).unwrap(),
            received_at: "2026-11-23T10:00:02.417123456Z".parse().unwrap(),
            hub_key_id: key_id(&hub.verifying_key()),
            first_receipt: true,
            receipt_jws: String::new(),
        };
        receipt.receipt_jws = sign_receipt(&receipt.signed_payload(), hub).unwrap();
        receipt
    }

    #[test]
    fn a_receipt_proves_delivery_of_exactly_one_outcome() {
        let device = SigningKey::from_bytes(&[7; 32]);
        let hub = SigningKey::from_bytes(&[42; 32]);
        let signed = sign_outcome(payload(&device), &device).unwrap();
        let receipt = receipt_for(&signed, &hub);
        assert!(receipt.receipt_jws.contains(".."));
        verify_receipt_for(&signed, &receipt, &hub.verifying_key()).unwrap();

        // Another hub's key, another outcome, a changed field: refused.
        let stranger = SigningKey::from_bytes(&[43; 32]);
        assert_eq!(
            verify_receipt_for(&signed, &receipt, &stranger.verifying_key()),
            Err(SignatureError::KeyMismatch)
        );
        let mut other = signed.clone();
        other.payload.outcome.plan.push('.');
        let other = sign_outcome(other.payload, &device).unwrap();
        assert_eq!(
            verify_receipt_for(&other, &receipt, &hub.verifying_key()),
            Err(SignatureError::ReceiptMismatch("payload hash"))
        );
        let mut later = receipt.clone();
        later.received_at += chrono::Duration::seconds(1);
        assert_eq!(verify_receipt_for(&signed, &later, &hub.verifying_key()), Err(SignatureError::Invalid));
        let mut unsigned = receipt.clone();
        unsigned.receipt_jws.clear();
        assert!(verify_receipt_for(&signed, &unsigned, &hub.verifying_key()).is_err());
    }

    #[test]
    fn a_signature_of_one_kind_never_passes_for_another() {
        // The same key signing an outcome cannot make it pass as a receipt or a rotation proof.
        let key = SigningKey::from_bytes(&[7; 32]);
        let signed = sign_outcome(payload(&key), &key).unwrap();
        let as_receipt = ReceiptPayload {
            outcome_id: signed.payload.outcome_id.clone(),
            payload_sha256: String::new(),
            received_at: signed.payload.signed_at,
            referral_id: signed.payload.referral_id.clone(),
            hub_key_id: key_id(&key.verifying_key()),
        };
        assert_eq!(
            verify_receipt(&as_receipt, &signed.jws, &key.verifying_key()),
            Err(SignatureError::UnexpectedHeader)
        );
    }

    #[test]
    fn only_the_canonical_header_is_accepted_even_when_genuinely_signed() {
        // Re-ordered members, whitespace, an extra `crit`: each signed by the real key, each
        // refused, because the header has exactly one accepted spelling.
        let key = SigningKey::from_bytes(&[7; 32]);
        let payload = payload(&key);
        let kid = key_id(&key.verifying_key());
        for header in [
            format!(r#"{{"typ":"{JWS_TYP}","alg":"EdDSA","kid":"{kid}"}}"#),
            format!(r#"{{"alg": "EdDSA", "kid": "{kid}", "typ": "{JWS_TYP}"}}"#),
            format!(r#"{{"alg":"EdDSA","b64":false,"crit":["b64"],"kid":"{kid}","typ":"{JWS_TYP}"}}"#),
        ] {
            let header_b64 = URL_SAFE_NO_PAD.encode(header);
            let input = signing_input(&header_b64, &to_canonical_json(&payload).unwrap());
            let jws = format!("{header_b64}..{}", URL_SAFE_NO_PAD.encode(key.sign(&input).to_bytes()));
            let signed = SignedOutcome { payload: payload.clone(), jws };
            assert_eq!(verify_outcome(&signed, &key.verifying_key()), Err(SignatureError::UnexpectedHeader));
        }
    }

    #[test]
    fn a_signature_with_flipped_padding_bits_is_refused() {
        // 64 bytes are 86 base64url characters; the last carries 4 unused bits. A lenient decoder
        // would accept a second spelling of the same signature.
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut signed = sign_outcome(payload(&key), &key).unwrap();
        let last = signed.jws.pop().unwrap();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = alphabet.iter().position(|&c| c == last as u8).unwrap();
        signed.jws.push(alphabet[index ^ 0b0001] as char);
        assert_eq!(verify_outcome(&signed, &key.verifying_key()), Err(SignatureError::Malformed));
    }

    #[test]
    fn a_rotation_proof_binds_the_device_and_the_new_key() {
        let current = SigningKey::from_bytes(&[7; 32]);
        let next = SigningKey::from_bytes(&[8; 32]);
        let request = sign_key_rotation("D-1", &next.verifying_key(), &current).unwrap();
        let payload = KeyRotationPayload {
            device_id: "D-1".into(),
            new_key_id: key_id(&next.verifying_key()),
            new_public_key: request.new_public_key.clone(),
        };
        verify_key_rotation(&payload, &request.proof, &current.verifying_key()).unwrap();
        let other_device = KeyRotationPayload { device_id: "D-2".into(), ..payload.clone() };
        assert_eq!(
            verify_key_rotation(&other_device, &request.proof, &current.verifying_key()),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            verify_key_rotation(&payload, &request.proof, &next.verifying_key()),
            Err(SignatureError::KeyMismatch)
        );
    }

    #[test]
    fn the_receipt_as_sent_minus_two_members_is_what_the_hub_signed() {
        // What docs/VERIFY.md tells a third party to do: drop `first_receipt` and `receipt_jws`
        // from the receipt JSON, canonicalise the rest, verify. The timestamp must survive JSON.
        let device = SigningKey::from_bytes(&[7; 32]);
        let hub = SigningKey::from_bytes(&[42; 32]);
        let receipt = receipt_for(&sign_outcome(payload(&device), &device).unwrap(), &hub);
        let mut json = serde_json::to_value(&receipt).unwrap();
        let members = json.as_object_mut().unwrap();
        members.remove("first_receipt");
        let jws = members.remove("receipt_jws").unwrap();
        let expected = to_canonical_json(&receipt.signed_payload()).unwrap();
        assert_eq!(to_canonical_json(&json).unwrap(), expected);
        assert_eq!(json["received_at"], "2026-11-23T10:00:02.417123456Z");
        let back: OutcomeReceipt = serde_json::from_str(&serde_json::to_string(&receipt).unwrap()).unwrap();
        verify_receipt(&back.signed_payload(), jws.as_str().unwrap(), &hub.verifying_key()).unwrap();
    }

    #[test]
    fn a_receipt_from_a_hub_older_than_signed_receipts_still_parses() {
        let old = r#"{"outcome_id":"O-1","payload_sha256":"00","received_at":"2026-11-23T10:00:02Z","first_receipt":true}"#;
        let receipt: OutcomeReceipt = serde_json::from_str(old).unwrap();
        assert!(receipt.receipt_jws.is_empty() && receipt.hub_key_id.is_empty());
    }

    #[test]
    fn key_id_is_the_rfc7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of the example Ed25519 key.
        let x = URL_SAFE_NO_PAD.decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        let key = VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
        assert_eq!(key_id(&key), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }
}
