//! Keys: the hub's own receipt key, and the keys devices sign with. A device enrols one key,
//! may replace it (`POST /v1/device/keys`, proved by the key it replaces), and keeps every old
//! one on record, so what it signed before still verifies. Which key may sign an outcome is
//! decided here, for every caller, from the outcome itself (device, key id, `signed_at`), not
//! from who presents it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::Utc;
use dermdesk_protocol::signature::{
    decode_public_key, encode_public_key, key_id, verify_key_rotation, verify_outcome, SignatureError,
};
use dermdesk_protocol::{KeyRotationPayload, KeyRotationRequest, KeyRotationResponse, SignedOutcome};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::rngs::OsRng;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use zeroize::Zeroizing;

use crate::enrolment::Device;
use crate::hub::{parse_timestamp, timestamp, Hub};
use crate::HubError;

/// Loads the hub's receipt key, making it on first open. In one IMMEDIATE transaction, so two
/// processes opening a new database file at once (`serve` and `admin`) end up with one key.
pub(crate) fn load_or_create_hub_key(connection: &mut Connection) -> Result<SigningKey, HubError> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stored: Option<(Zeroizing<String>, String)> = transaction
        .query_row("SELECT secret_key, key_id FROM hub_key WHERE id = 1", [], |row| {
            Ok((Zeroizing::new(row.get(0)?), row.get(1)?))
        })
        .optional()?;
    let key = match stored {
        Some((secret, stored_key_id)) => {
            let seed = Zeroizing::new(URL_SAFE_NO_PAD.decode(secret.as_bytes()).unwrap_or_default());
            let seed: &[u8; 32] = seed
                .as_slice()
                .try_into()
                .map_err(|_| HubError::Corrupt("the hub's receipt key is unreadable".into()))?;
            let key = SigningKey::from_bytes(seed);
            if key_id(&key.verifying_key()) != stored_key_id {
                return Err(HubError::Corrupt("the hub's receipt key does not match its id".into()));
            }
            key
        }
        None => {
            let key = SigningKey::generate(&mut OsRng);
            let secret = Zeroizing::new(URL_SAFE_NO_PAD.encode(key.as_bytes()));
            transaction.execute(
                "INSERT INTO hub_key (id, secret_key, key_id, created_at) VALUES (1, ?1, ?2, ?3)",
                params![secret.as_str(), key_id(&key.verifying_key()), timestamp(Utc::now())],
            )?;
            key
        }
    };
    transaction.commit()?;
    Ok(key)
}

/// Records a device's first key (at enrolment).
pub(crate) fn insert_device_key(
    connection: &Connection,
    device_id: &str,
    public_key: &str,
    key_id: &str,
    added_at: &str,
) -> Result<(), HubError> {
    connection.execute(
        "INSERT INTO device_keys (device_id, key_id, public_key, added_at) VALUES (?1, ?2, ?3, ?4)",
        params![device_id, key_id, public_key, added_at],
    )?;
    Ok(())
}

/// One key a device has had.
struct DeviceKey {
    key_id: String,
    public_key: VerifyingKey,
    retired_at: Option<String>,
    replaced_by: Option<String>,
}

fn device_keys(connection: &Connection, device_id: &str) -> Result<Vec<DeviceKey>, HubError> {
    let mut statement = connection.prepare(
        "SELECT key_id, public_key, retired_at, replaced_by FROM device_keys WHERE device_id = ?1
          ORDER BY added_at",
    )?;
    let rows = statement
        .query_map([device_id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, Option<String>>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(key_id, public_key, retired_at, replaced_by)| {
            let public_key = decode_public_key(&public_key)
                .map_err(|_| HubError::Corrupt(format!("device {device_id} has an unreadable key")))?;
            Ok(DeviceKey { key_id, public_key, retired_at, replaced_by })
        })
        .collect()
}

/// Verifies `signed` against the key its payload names, as enrolled for the device it names,
/// and refuses it if that device was revoked, or that key retired, before `signed_at`.
pub(crate) fn check_outcome_signature(
    connection: &Connection,
    signed: &SignedOutcome,
) -> Result<(), HubError> {
    let payload = &signed.payload;
    let row: Option<(String, Option<String>, Option<String>)> = connection
        .query_row(
            "SELECT k.public_key, k.retired_at, d.revoked_at FROM device_keys k JOIN devices d ON d.id = k.device_id
              WHERE k.device_id = ?1 AND k.key_id = ?2",
            params![payload.device_id, payload.key_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .optional()?;
    let Some((public_key, retired_at, revoked_at)) = row else {
        return Err(HubError::BadSignature("the outcome names a key its device never enrolled".into()));
    };
    let public_key = decode_public_key(&public_key)
        .map_err(|_| HubError::Corrupt(format!("device {} has an unreadable key", payload.device_id)))?;
    verify_outcome(signed, &public_key).map_err(|error| {
        HubError::BadSignature(match error {
            SignatureError::KeyMismatch => "the JWS key id is not the key the outcome names".to_string(),
            other => other.to_string(),
        })
    })?;
    // Revocation ends a device's signatures whoever presents them; what it signed before stays
    // verifiable (an export, a dispute).
    if let Some(revoked_at) = revoked_at {
        if payload.signed_at >= parse_timestamp(&revoked_at)? {
            return Err(HubError::BadSignature("the outcome was signed after its device was revoked".into()));
        }
    }
    if let Some(retired_at) = retired_at {
        if payload.signed_at >= parse_timestamp(&retired_at)? {
            return Err(HubError::KeyRetired { key_id: payload.key_id.clone(), retired_at });
        }
    }
    Ok(())
}

impl Hub {
    /// Verifies a signed outcome as the hub would on submission, signature-wise: the key its
    /// payload names must be one its device enrolled, not retired and the device not revoked
    /// before `signed_at`. For any route that is handed a signed outcome.
    pub fn verify_outcome_signature(&self, signed: &SignedOutcome) -> Result<(), HubError> {
        check_outcome_signature(&self.lock(), signed)
    }

    /// Replaces `device`'s signing key with `request.new_public_key`, if `request.proof` is by
    /// its current key. A repeat of a rotation already made answers as the first time did.
    pub(crate) fn rotate_device_key(
        &self,
        device: &Device,
        request: &KeyRotationRequest,
    ) -> Result<KeyRotationResponse, HubError> {
        let new_key = decode_public_key(&request.new_public_key).map_err(|_| {
            HubError::BadRequest("new_public_key is not a base64url Ed25519 public key (32 bytes)".into())
        })?;
        let payload = KeyRotationPayload {
            device_id: device.id.clone(),
            new_key_id: key_id(&new_key),
            new_public_key: encode_public_key(&new_key),
        };
        let refused = |error: SignatureError| {
            HubError::BadSignature(format!(
                "the key rotation proof must be signed by the device's current key over its id and \
                 the new key ({error})"
            ))
        };
        self.write(|transaction| {
            let keys = device_keys(transaction, &device.id)?;
            let current = keys
                .iter()
                .find(|key| key.retired_at.is_none())
                .ok_or_else(|| HubError::Corrupt(format!("device {} has no current key", device.id)))?;
            if current.key_id == payload.new_key_id {
                // A repeat after a lost answer: the proof is by the key that rotation retired.
                let Some(retired) =
                    keys.iter().find(|key| key.replaced_by.as_deref() == Some(payload.new_key_id.as_str()))
                else {
                    return Err(HubError::BadRequest("that key is already the device's key".into()));
                };
                verify_key_rotation(&payload, &request.proof, &retired.public_key).map_err(refused)?;
                let rotated_at = retired.retired_at.as_deref().unwrap_or_default();
                return Ok(KeyRotationResponse {
                    device_id: device.id.clone(),
                    key_id: payload.new_key_id.clone(),
                    retired_key_id: retired.key_id.clone(),
                    rotated_at: parse_timestamp(rotated_at)?,
                });
            }
            if keys.iter().any(|key| key.key_id == payload.new_key_id) {
                return Err(HubError::BadRequest(
                    "a key this device has already retired cannot become its key again".into(),
                ));
            }
            verify_key_rotation(&payload, &request.proof, &current.public_key).map_err(refused)?;

            let rotated_at = self.now();
            let now = timestamp(rotated_at);
            transaction.execute(
                "UPDATE device_keys SET retired_at = ?3, replaced_by = ?4 WHERE device_id = ?1 AND key_id = ?2",
                params![device.id, current.key_id, now, payload.new_key_id],
            )?;
            insert_device_key(transaction, &device.id, &payload.new_public_key, &payload.new_key_id, &now)?;
            transaction.execute(
                "UPDATE devices SET public_key = ?2, key_id = ?3 WHERE id = ?1",
                params![device.id, payload.new_public_key, payload.new_key_id],
            )?;
            Ok(KeyRotationResponse {
                device_id: device.id.clone(),
                key_id: payload.new_key_id.clone(),
                retired_key_id: current.key_id.clone(),
                rotated_at,
            })
        })
    }
}
