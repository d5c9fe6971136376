//! A signed outcome as a standalone file ([`SignedOutcomeExport`], format
//! `dermdesk-signed-outcome/1`): what a GP practice keeps, and can verify without Derm Desk
//! (docs/VERIFY.md has the format and recipes with openssl and Python; `cargo xtask verify FILE`
//! is this module's verifier).
//!
//! What a check proves. The consultant's signature verifies against the public key in the file,
//! and that key's id is its thumbprint: the payload is exactly what the holder of that key
//! signed. The key itself is only as trusted as its source: compare its id with the one the
//! service has on record, or rely on the receipt: with the hub's published key, a valid receipt
//! proves the hub received this exact payload (by hash) and, since the hub accepts only outcomes
//! that verify against the device's enrolled key, that the key was the consultant's.

use ed25519_dalek::VerifyingKey;

use crate::canonical::parse_exact;
use crate::signature::{payload_sha256, verify_outcome, verify_receipt_for, SignatureError};
use crate::{OutcomeReceipt, PublicKeyInfo, SignedOutcome, SignedOutcomeExport, EXPORT_FORMAT};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the file is not a Derm Desk signed outcome: {0}")]
    NotAnExport(String),
    #[error("the file is format {0:?}; this verifier reads {EXPORT_FORMAT:?}")]
    UnknownFormat(String),
}

/// What a receipt check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptCheck {
    /// The file has no receipt (the outcome had not been delivered when it was exported).
    Absent,
    /// There is a receipt, but no hub key was given to check it with.
    NotChecked,
    Verified,
    Failed(SignatureError),
}

/// The result of verifying an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportVerification {
    /// The consultant's signature over the payload, against the key in the file.
    pub signature: Result<(), SignatureError>,
    /// SHA-256 of the canonical payload (what a receipt names), if it can be canonicalised.
    pub payload_sha256: Option<String>,
    pub receipt: ReceiptCheck,
}

impl ExportVerification {
    /// The signature verifies and no receipt check failed.
    pub fn is_valid(&self) -> bool {
        self.signature.is_ok() && !matches!(self.receipt, ReceiptCheck::Failed(_))
    }
}

/// Builds the export of `signed`, after checking that it verifies against `consultant_key` (a
/// file that cannot verify is never written).
pub fn export_signed_outcome(
    signed: &SignedOutcome,
    consultant_key: &VerifyingKey,
    receipt: Option<&OutcomeReceipt>,
) -> Result<SignedOutcomeExport, SignatureError> {
    verify_outcome(signed, consultant_key)?;
    Ok(SignedOutcomeExport {
        format: EXPORT_FORMAT.to_owned(),
        payload: signed.payload.clone(),
        jws: signed.jws.clone(),
        consultant_public_key: PublicKeyInfo::of(consultant_key),
        receipt: receipt.cloned(),
    })
}

impl SignedOutcomeExport {
    /// The file's text: indented JSON (key order is irrelevant: verifiers canonicalise).
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("an export always serialises")
    }

    /// Reads an export file's text.
    pub fn parse(text: &str) -> Result<SignedOutcomeExport, ExportError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ExportError::NotAnExport(e.to_string()))?;
        match value.get("format").and_then(|format| format.as_str()) {
            Some(EXPORT_FORMAT) => {}
            Some(other) => return Err(ExportError::UnknownFormat(other.to_owned())),
            None => return Err(ExportError::NotAnExport("it has no \"format\"".into())),
        }
        // Exactly: a member the verifier would skip could show a reader unsigned text.
        parse_exact(&value).map_err(|e| ExportError::NotAnExport(e.to_string()))
    }

    pub fn signed_outcome(&self) -> SignedOutcome {
        SignedOutcome { payload: self.payload.clone(), jws: self.jws.clone() }
    }

    /// Verifies the consultant's signature and, given the hub's public key, the receipt.
    pub fn verify(&self, hub_key: Option<&VerifyingKey>) -> ExportVerification {
        let signed = self.signed_outcome();
        let signature = self.consultant_public_key.decode().and_then(|key| verify_outcome(&signed, &key));
        let receipt = match (&self.receipt, hub_key) {
            (None, _) => ReceiptCheck::Absent,
            (Some(_), None) => ReceiptCheck::NotChecked,
            (Some(receipt), Some(hub_key)) => match verify_receipt_for(&signed, receipt, hub_key) {
                Ok(()) => ReceiptCheck::Verified,
                Err(error) => ReceiptCheck::Failed(error),
            },
        };
        ExportVerification { signature, payload_sha256: payload_sha256(&self.payload).ok(), receipt }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::tests::receipt_for;
    use crate::signature::{key_id, sign_outcome};
    use crate::{Outcome, OutcomeKind, OutcomePayload};
    use ed25519_dalek::SigningKey;

    fn signed(key: &SigningKey) -> SignedOutcome {
        let payload = OutcomePayload {
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
        };
        sign_outcome(payload, key).unwrap()
    }

    #[test]
    fn an_export_round_trips_through_its_file_and_verifies() {
        let (device, hub) = (SigningKey::from_bytes(&[7; 32]), SigningKey::from_bytes(&[42; 32]));
        let signed = signed(&device);
        let receipt = receipt_for(&signed, &hub);
        let export = export_signed_outcome(&signed, &device.verifying_key(), Some(&receipt)).unwrap();
        let text = export.to_json_pretty();
        let back = SignedOutcomeExport::parse(&text).unwrap();
        assert_eq!(back, export);

        let checked = back.verify(Some(&hub.verifying_key()));
        assert_eq!(checked.signature, Ok(()));
        assert_eq!(checked.receipt, ReceiptCheck::Verified);
        assert!(checked.is_valid());
        assert_eq!(back.verify(None).receipt, ReceiptCheck::NotChecked);
        let stranger = SigningKey::from_bytes(&[1; 32]);
        assert!(!back.verify(Some(&stranger.verifying_key())).is_valid());
    }

    #[test]
    fn a_changed_file_does_not_verify() {
        let device = SigningKey::from_bytes(&[7; 32]);
        let export = export_signed_outcome(&signed(&device), &device.verifying_key(), None).unwrap();
        let text = export.to_json_pretty().replace("no treatment needed", "no treatment needed ever");
        let changed = SignedOutcomeExport::parse(&text).unwrap();
        assert_eq!(changed.verify(None).signature, Err(SignatureError::Invalid));

        // Another key in the file (with its own correct id): the JWS names the original key.
        let mut swapped = export.clone();
        swapped.consultant_public_key = PublicKeyInfo::of(&SigningKey::from_bytes(&[8; 32]).verifying_key());
        assert_eq!(swapped.verify(None).signature, Err(SignatureError::KeyMismatch));
        // A key id that is not the key's thumbprint.
        let mut lying = export.clone();
        lying.consultant_public_key.key_id = "not-the-thumbprint".into();
        assert_eq!(lying.verify(None).signature, Err(SignatureError::KeyMismatch));
    }

    #[test]
    fn a_file_with_text_the_signature_does_not_cover_is_refused() {
        let device = SigningKey::from_bytes(&[7; 32]);
        let export = export_signed_outcome(&signed(&device), &device.verifying_key(), None).unwrap();
        let mut value = serde_json::to_value(&export).unwrap();
        value["payload"]["outcome"]["note"] = "Urgent excision advised".into();
        let text = serde_json::to_string(&value).unwrap();
        assert!(matches!(SignedOutcomeExport::parse(&text), Err(ExportError::NotAnExport(_))));
    }

    #[test]
    fn an_outcome_that_does_not_verify_is_never_exported() {
        let device = SigningKey::from_bytes(&[7; 32]);
        let mut tampered = signed(&device);
        tampered.payload.referral_version = 4;
        assert!(export_signed_outcome(&tampered, &device.verifying_key(), None).is_err());
    }

    #[test]
    fn other_files_are_refused_by_format() {
        assert!(matches!(SignedOutcomeExport::parse("{}"), Err(ExportError::NotAnExport(_))));
        assert!(matches!(
            SignedOutcomeExport::parse(r#"{"format":"dermdesk-signed-outcome/2"}"#),
            Err(ExportError::UnknownFormat(_))
        ));
        assert!(matches!(SignedOutcomeExport::parse("not json"), Err(ExportError::NotAnExport(_))));
    }
}
