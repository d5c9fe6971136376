//! The signed-outcome envelope: a detached compact JWS (RFC 7515 appendix F) with alg EdDSA
//! (RFC 8037) over the RFC 8785 canonical JSON of an [`OutcomePayload`].
//!
//! Signing input: `BASE64URL(header) || "." || BASE64URL(canonical payload)`; the transmitted
//! JWS leaves the payload part empty (`header..signature`) because the payload travels beside it
//! as JSON. Any party can recompute the canonical bytes from the JSON and verify.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::canonical::{to_canonical_json, CanonicalError};
use crate::{OutcomePayload, SignedOutcome};

/// The JWS protected header used for outcomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwsHeader {
    pub alg: String,
    pub kid: String,
    pub typ: String,
}

pub const JWS_ALG: &str = "EdDSA";
pub const JWS_TYP: &str = "dermdesk-outcome+jws";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("payload cannot be canonicalised: {0}")]
    Canonical(#[from] CanonicalError),
    #[error("the JWS is not in detached compact form (header..signature)")]
    Malformed,
    #[error("the JWS header is not an EdDSA outcome header")]
    UnexpectedHeader,
    #[error("the JWS key id does not match the payload's key id or the enrolled key")]
    KeyMismatch,
    #[error("the signature does not verify")]
    Invalid,
    #[error("the public key is not a valid Ed25519 key")]
    BadPublicKey,
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

/// Lower-case hex SHA-256 of the payload's canonical JSON (what a receipt refers to).
pub fn payload_sha256(payload: &OutcomePayload) -> Result<String, SignatureError> {
    Ok(hex::encode(Sha256::digest(to_canonical_json(payload)?)))
}

fn signing_input(header_b64: &str, payload: &OutcomePayload) -> Result<Vec<u8>, SignatureError> {
    let canonical = to_canonical_json(payload)?;
    let mut input = Vec::with_capacity(header_b64.len() + 1 + canonical.len() * 4 / 3 + 4);
    input.extend_from_slice(header_b64.as_bytes());
    input.push(b'.');
    input.extend_from_slice(URL_SAFE_NO_PAD.encode(canonical).as_bytes());
    Ok(input)
}

/// Signs `payload` with the device key. `payload.key_id` must be this key's id.
pub fn sign_outcome(payload: OutcomePayload, key: &SigningKey) -> Result<SignedOutcome, SignatureError> {
    let kid = key_id(&key.verifying_key());
    if payload.key_id != kid {
        return Err(SignatureError::KeyMismatch);
    }
    let header = JwsHeader { alg: JWS_ALG.into(), kid, typ: JWS_TYP.into() };
    let header_json = to_canonical_json(&header)?;
    let header_b64 = URL_SAFE_NO_PAD.encode(header_json);
    let signature = key.sign(&signing_input(&header_b64, &payload)?);
    let jws = format!("{header_b64}..{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()));
    Ok(SignedOutcome { payload, jws })
}

/// Verifies a signed outcome against the public key enrolled for its device.
pub fn verify_outcome(signed: &SignedOutcome, public_key: &VerifyingKey) -> Result<(), SignatureError> {
    let mut parts = signed.jws.split('.');
    let (Some(header_b64), Some(""), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SignatureError::Malformed);
    };
    let header_json = URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| SignatureError::Malformed)?;
    let header: JwsHeader = serde_json::from_slice(&header_json).map_err(|_| SignatureError::Malformed)?;
    if header.alg != JWS_ALG || header.typ != JWS_TYP {
        return Err(SignatureError::UnexpectedHeader);
    }
    let enrolled_kid = key_id(public_key);
    if header.kid != enrolled_kid || signed.payload.key_id != enrolled_kid {
        return Err(SignatureError::KeyMismatch);
    }
    let signature = URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| SignatureError::Malformed)?;
    let signature = Signature::from_slice(&signature).map_err(|_| SignatureError::Malformed)?;
    public_key
        .verify_strict(&signing_input(header_b64, &signed.payload)?, &signature)
        .map_err(|_| SignatureError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Outcome, OutcomeKind};

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

    #[test]
    fn key_id_is_the_rfc7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of the example Ed25519 key.
        let x = URL_SAFE_NO_PAD.decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        let key = VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap();
        assert_eq!(key_id(&key), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }
}
