//! Enrolment codes, device enrolment, device-token authentication and revocation.
//!
//! A device proves itself with a bearer token the hub generated; the hub keeps only the token's
//! SHA-256, so its database (or a backup of it) is useless for impersonating a device. Outcomes
//! are additionally signed with the device's own Ed25519 key, enrolled here (and replaced in
//! `keys.rs`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use dermdesk_protocol::signature::{decode_public_key, key_id};
use dermdesk_protocol::{Consultant, EnrolRequest, EnrolResponse};
use rand::rngs::OsRng;
use rand::{Rng as _, RngCore as _};
use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::hub::{timestamp, Hub};
use crate::keys::insert_device_key;
use crate::HubError;

/// Letters and digits that cannot be misread for one another when read aloud or copied from a
/// letter: no 0/O, 1/I/L. 31 symbols, 12 of them: about 59 bits, far beyond guessing.
const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
const CODE_LENGTH: usize = 12;
const CODE_GROUP: usize = 4;

/// An enrolled, unrevoked device, as established from its bearer token. Its keys are looked up
/// when they are needed (`keys.rs`): which one may sign depends on the outcome.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    pub(crate) id: String,
    pub(crate) consultant_id: String,
}

/// Upper-cases and drops separators, so "k7qh 2m9d-xr4p" is the code "K7QH2M9DXR4P". Returns
/// None for anything that cannot be a code (it is then refused like an unknown one).
fn normalise_code(typed: &str) -> Option<String> {
    let code: String =
        typed.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_uppercase()).collect();
    (code.len() == CODE_LENGTH && code.bytes().all(|b| CODE_ALPHABET.contains(&b))).then_some(code)
}

/// "K7QH2M9DXR4P" -> "K7QH-2M9D-XR4P".
fn format_code(code: &str) -> String {
    code.as_bytes()
        .chunks(CODE_GROUP)
        .map(|group| std::str::from_utf8(group).expect("codes are ASCII"))
        .collect::<Vec<_>>()
        .join("-")
}

fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Hub {
    /// Issues a one-time enrolment code for the consultant, e.g. "K7QH-2M9D-XR4P".
    pub fn create_enrolment_code(&self, consultant_id: &str) -> Result<String, HubError> {
        if self.consultant(consultant_id)?.is_none() {
            return Err(HubError::not_found("consultant", consultant_id));
        }
        let mut rng = OsRng;
        let code: String =
            (0..CODE_LENGTH).map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char).collect();
        self.write(|transaction| {
            transaction.execute(
                "INSERT INTO enrolment_codes (code, consultant_id, created_at) VALUES (?1, ?2, ?3)",
                params![code, consultant_id, timestamp(self.now())],
            )?;
            Ok(())
        })?;
        Ok(format_code(&code))
    }

    /// Spends an enrolment code on a new device and returns the device's token (shown once).
    pub(crate) fn enrol(&self, request: &EnrolRequest) -> Result<EnrolResponse, HubError> {
        // Checked before the code, so a client bug cannot burn the consultant's only code.
        let public_key = decode_public_key(&request.public_key).map_err(|_| {
            HubError::BadRequest("public_key is not a base64url Ed25519 public key (32 bytes)".into())
        })?;
        let device_name = request.device_name.trim();
        if device_name.is_empty() || device_name.chars().count() > 200 {
            return Err(HubError::BadRequest("device_name must be 1 to 200 characters".into()));
        }
        let code = normalise_code(&request.enrolment_code).ok_or(HubError::EnrolmentRefused)?;

        let device_id = uuid::Uuid::new_v4().to_string();
        let mut token_bytes = [0u8; 32];
        OsRng.fill_bytes(&mut token_bytes);
        let device_token = URL_SAFE_NO_PAD.encode(token_bytes);
        let key_id = key_id(&public_key);

        let consultant = self.write(|transaction| {
            let consultant: Option<(String, String)> = transaction
                .query_row(
                    "SELECT c.id, c.display_name FROM enrolment_codes e JOIN consultants c ON c.id = e.consultant_id
                      WHERE e.code = ?1 AND e.used_at IS NULL",
                    [&code],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let (consultant_id, display_name) = consultant.ok_or(HubError::EnrolmentRefused)?;
            let now = timestamp(self.now());
            transaction.execute(
                "UPDATE enrolment_codes SET used_at = ?2, used_by_device = ?3 WHERE code = ?1",
                params![code, now, device_id],
            )?;
            transaction.execute(
                "INSERT INTO devices (id, consultant_id, name, public_key, key_id, token_sha256, enrolled_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![device_id, consultant_id, device_name, request.public_key, key_id, token_sha256(&device_token), now],
            )?;
            insert_device_key(transaction, &device_id, &request.public_key, &key_id, &now)?;
            Ok(Consultant { id: consultant_id, display_name })
        })?;
        Ok(EnrolResponse { device_id, device_token, key_id, consultant, hub_key: Some(self.hub_key()) })
    }

    /// The device a bearer token belongs to, if it is enrolled and not revoked.
    pub(crate) fn authenticate(&self, token: &str) -> Result<Device, HubError> {
        // Looking the token up by its hash is safe against timing: an attacker learns at most
        // about a SHA-256 prefix, which says nothing about any token.
        let row: Option<(String, String)> = self
            .lock()
            .query_row(
                "SELECT id, consultant_id FROM devices WHERE token_sha256 = ?1 AND revoked_at IS NULL",
                [token_sha256(token)],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let (id, consultant_id) = row.ok_or(HubError::Unauthorized)?;
        Ok(Device { id, consultant_id })
    }

    /// Revokes a device: its token stops working at once, and no outcome its keys sign from now
    /// on verifies, whoever presents it (`keys.rs`). Revoking twice is not an error.
    pub fn revoke_device(&self, device_id: &str) -> Result<(), HubError> {
        self.write(|transaction| {
            let changed = transaction.execute(
                "UPDATE devices SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
                params![device_id, timestamp(self.now())],
            )?;
            if changed == 0 {
                return Err(HubError::not_found("device", device_id));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_forgivingly_but_strictly_shaped() {
        assert_eq!(normalise_code("k7qh-2m9d-xr4p").as_deref(), Some("K7QH2M9DXR4P"));
        assert_eq!(normalise_code(" K7QH 2M9D XR4P ").as_deref(), Some("K7QH2M9DXR4P"));
        assert_eq!(normalise_code("K7QH-2M9D"), None);
        // 0, O, 1, I and L are never issued, so they cannot be part of a code.
        assert_eq!(normalise_code("K7QH-2M9D-XR40"), None);
        assert_eq!(format_code("K7QH2M9DXR4P"), "K7QH-2M9D-XR4P");
    }
}
