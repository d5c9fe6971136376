//! Bounds on what a client accepts from the service, checked right after decoding and before
//! anything is kept. A body is already size-capped while it streams (the app's client) and
//! `serde_json` keeps its recursion limit (128 levels); these bounds stop what a capped body
//! can still carry: a referral with thousands of photos, a name the length of a novel, an id
//! that would not fit a log line. Free text a GP writes gets generous room; identifiers get
//! little.
//!
//! Photo metadata that is out of range (size, dimensions, media type, content id) is *not* a
//! bounds failure: the referral is still kept and reviewable, and the app refuses that one
//! photo without downloading it.

/// Longest identifier (referral, consultant, device, key ids, feed cursor), in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Longest short text (a name, a role, an ODS code, a body site, a media type), in characters.
pub const MAX_SHORT_TEXT_CHARS: usize = 1_000;
/// Longest free clinical text (question, history, duration, medications), in characters.
pub const MAX_CLINICAL_TEXT_CHARS: usize = 50_000;
/// Most photos one referral may carry.
pub const MAX_PHOTOS_PER_REFERRAL: usize = 64;
/// Longest signature string (a receipt's JWS), in bytes.
pub const MAX_TOKEN_BYTES: usize = 4_096;
/// Longest device token, in bytes. Smaller than a signature's bound because the app keeps the
/// token in the OS keychain, sealed (44 bytes more), and Windows Credential Manager holds at most
/// 2,560 bytes an entry: 2,048 leaves 468 to spare (`dermdesk_core::secrets::KEYCHAIN_ENTRY_MAX`,
/// checked by crates/dermdesk-core/tests/keychain_sizes.rs). A longer token is refused at
/// enrolment, before anything is kept, rather than failing in the keychain after the device key
/// was stored.
pub const MAX_DEVICE_TOKEN_BYTES: usize = 2_048;
/// Longest error message kept from the service, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2_000;

/// A decoded answer that breaks a bound. Says which field and which bound, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} is longer than {max} {unit}")]
pub struct BoundsError {
    pub field: &'static str,
    pub max: usize,
    pub unit: &'static str,
}

/// A wire type whose decoded value can be checked against the bounds above.
pub trait WireBounds {
    fn check_bounds(&self) -> Result<(), BoundsError>;
}

fn id(field: &'static str, value: &str) -> Result<(), BoundsError> {
    bytes(field, value, MAX_ID_BYTES)
}

fn bytes(field: &'static str, value: &str, max: usize) -> Result<(), BoundsError> {
    if value.len() > max {
        return Err(BoundsError { field, max, unit: "bytes" });
    }
    Ok(())
}

fn chars(field: &'static str, value: &str, max: usize) -> Result<(), BoundsError> {
    // Cheap first: a string never has more characters than bytes.
    if value.len() > max && value.chars().count() > max {
        return Err(BoundsError { field, max, unit: "characters" });
    }
    Ok(())
}

fn short(field: &'static str, value: &str) -> Result<(), BoundsError> {
    chars(field, value, MAX_SHORT_TEXT_CHARS)
}

fn clinical(field: &'static str, value: &str) -> Result<(), BoundsError> {
    chars(field, value, MAX_CLINICAL_TEXT_CHARS)
}

impl WireBounds for crate::Referral {
    fn check_bounds(&self) -> Result<(), BoundsError> {
        id("referral id", &self.id)?;
        short("patient name", &self.patient.name)?;
        short("NHS number", &self.patient.nhs_number)?;
        short("practice ODS code", &self.practice.ods_code)?;
        short("practice name", &self.practice.name)?;
        short("referrer name", &self.referrer.name)?;
        short("referrer role", &self.referrer.role)?;
        clinical("clinical question", &self.clinical.question)?;
        clinical("clinical history", &self.clinical.history)?;
        clinical("duration", &self.clinical.duration)?;
        clinical("medications", &self.clinical.medications)?;
        if let Some(recorded_by) = &self.consent.recorded_by {
            short("consent recorded by", recorded_by)?;
        }
        if self.photos.len() > MAX_PHOTOS_PER_REFERRAL {
            return Err(BoundsError { field: "photos", max: MAX_PHOTOS_PER_REFERRAL, unit: "photos" });
        }
        for photo in &self.photos {
            // Shape problems of a photo are refused per photo (see the module doc); only
            // lengths are bounded here, so nothing oversized is stored with the referral.
            short("photo content id", &photo.content_id)?;
            short("photo media type", &photo.media_type)?;
            short("photo body site", &photo.body_site)?;
        }
        Ok(())
    }
}

impl WireBounds for crate::FeedPage {
    fn check_bounds(&self) -> Result<(), BoundsError> {
        if self.changes.len() > crate::FEED_PAGE_MAX as usize {
            return Err(BoundsError {
                field: "feed page",
                max: crate::FEED_PAGE_MAX as usize,
                unit: "changes",
            });
        }
        id("feed cursor", &self.next_cursor)?;
        for change in &self.changes {
            match change {
                crate::Change::Upsert { referral } => referral.check_bounds()?,
                crate::Change::Removed { referral_id, .. } => id("referral id", referral_id)?,
            }
        }
        Ok(())
    }
}

impl WireBounds for crate::PublicKeyInfo {
    fn check_bounds(&self) -> Result<(), BoundsError> {
        id("key id", &self.key_id)?;
        id("public key", &self.public_key)
    }
}

impl WireBounds for crate::EnrolResponse {
    fn check_bounds(&self) -> Result<(), BoundsError> {
        id("device id", &self.device_id)?;
        bytes("device token", &self.device_token, MAX_DEVICE_TOKEN_BYTES)?;
        id("key id", &self.key_id)?;
        id("consultant id", &self.consultant.id)?;
        short("consultant name", &self.consultant.display_name)?;
        self.hub_key.as_ref().map_or(Ok(()), WireBounds::check_bounds)
    }
}

impl WireBounds for crate::KeyRotationResponse {
    fn check_bounds(&self) -> Result<(), BoundsError> {
        id("device id", &self.device_id)?;
        id("key id", &self.key_id)?;
        id("retired key id", &self.retired_key_id)
    }
}

impl WireBounds for crate::OutcomeReceipt {
    fn check_bounds(&self) -> Result<(), BoundsError> {
        id("outcome id", &self.outcome_id)?;
        id("referral id", &self.referral_id)?;
        id("payload hash", &self.payload_sha256)?;
        id("hub key id", &self.hub_key_id)?;
        bytes("receipt signature", &self.receipt_jws, MAX_TOKEN_BYTES)
    }
}

impl WireBounds for crate::audit::AuditAck {
    fn check_bounds(&self) -> Result<(), BoundsError> {
        id("audit chain hash", &self.last_hash)
    }
}

impl WireBounds for crate::ApiError {
    fn check_bounds(&self) -> Result<(), BoundsError> {
        chars("error message", &self.message, MAX_MESSAGE_CHARS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_bounds_count_characters_not_bytes() {
        // 1,000 two-byte characters are 2,000 bytes and still within a 1,000-character bound.
        assert!(short("name", &"é".repeat(MAX_SHORT_TEXT_CHARS)).is_ok());
        let error = short("name", &"é".repeat(MAX_SHORT_TEXT_CHARS + 1)).unwrap_err();
        assert_eq!(error.to_string(), "name is longer than 1000 characters");
        assert!(id("id", &"x".repeat(MAX_ID_BYTES)).is_ok());
        assert!(id("id", &"x".repeat(MAX_ID_BYTES + 1)).is_err());
    }
}
