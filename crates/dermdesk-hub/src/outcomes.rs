//! Receiving signed outcomes (`POST /v1/outcomes`) and reading back what was recorded.
//!
//! The checks run in the order docs/api.md gives, so a client retrying after a lost response
//! always gets its original receipt back, whatever happened to the referral since.

use chrono::{DateTime, Utc};
use dermdesk_protocol::signature::{payload_sha256, sign_receipt};
use dermdesk_protocol::{OutcomePayload, OutcomeReceipt, SignedOutcome};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::enrolment::Device;
use crate::hub::{parse_timestamp, referral_state, set_status, timestamp, Hub, ReferralStatus};
use crate::keys::check_outcome_signature;
use crate::HubError;

/// An outcome as the hub recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOutcome {
    pub outcome_id: String,
    pub referral_id: String,
    pub device_id: String,
    pub payload: OutcomePayload,
    /// The detached JWS exactly as received.
    pub jws: String,
    /// Lower-case hex SHA-256 of the canonical payload.
    pub payload_sha256: String,
    pub received_at: DateTime<Utc>,
    /// The hub's signature on the receipt it gave (None for an outcome recorded before receipts
    /// were signed and not sent again since).
    #[serde(default)]
    pub receipt_jws: Option<String>,
}

impl Hub {
    /// Checks and records an outcome sent by `device` and returns the hub's signed receipt. A
    /// repeat of an outcome already recorded returns the original receipt (the same signature)
    /// with `first_receipt: false` and records nothing.
    pub(crate) fn submit_outcome(
        &self,
        device: &Device,
        signed: &SignedOutcome,
    ) -> Result<OutcomeReceipt, HubError> {
        let payload = &signed.payload;
        // A token is the device's and its consultant's; an outcome naming anyone else is not
        // theirs to send, whatever its signature says.
        if payload.device_id != device.id || payload.consultant_id != device.consultant_id {
            return Err(HubError::BadSignature(
                "the outcome names a different device or consultant than the token that sent it".into(),
            ));
        }
        let payload_hash =
            payload_sha256(payload).map_err(|error| HubError::BadRequest(error.to_string()))?;

        self.write(|transaction| {
            if let Some(receipt) = self.repeated_receipt(transaction, &payload.outcome_id, &payload_hash)? {
                return Ok(receipt);
            }
            check_outcome_signature(transaction, signed)?;
            payload.outcome.check()?;

            let referral_id = &payload.referral_id;
            let state = match referral_state(transaction, referral_id)? {
                Some(state) if was_assigned(transaction, referral_id, &device.consultant_id)? => state,
                _ => return Err(HubError::not_found("referral", referral_id.as_str())),
            };
            if state.status == ReferralStatus::Withdrawn {
                return Err(HubError::ReferralWithdrawn(referral_id.clone()));
            }
            if state.consultant_id != device.consultant_id {
                return Err(HubError::ReferralReassigned(referral_id.clone()));
            }
            if state.status == ReferralStatus::Decided {
                return Err(HubError::AlreadyDecided(referral_id.clone()));
            }
            if payload.referral_version != state.version {
                return Err(HubError::ReferralChanged {
                    referral_id: referral_id.clone(),
                    current_version: state.version,
                });
            }

            let receipt = self.signed_receipt(&payload.outcome_id, referral_id, &payload_hash, self.now())?;
            let payload_json = serde_json::to_string(payload)
                .map_err(|error| HubError::Corrupt(format!("outcome does not serialise: {error}")))?;
            transaction.execute(
                "INSERT INTO outcomes (outcome_id, referral_id, device_id, payload_json, jws, payload_sha256, received_at, receipt_jws)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    payload.outcome_id,
                    referral_id,
                    device.id,
                    payload_json,
                    signed.jws,
                    payload_hash,
                    timestamp(receipt.received_at),
                    receipt.receipt_jws,
                ],
            )?;
            set_status(transaction, referral_id, ReferralStatus::Decided, self.now())?;
            Ok(receipt)
        })
    }

    /// A first receipt, signed with the hub's key.
    fn signed_receipt(
        &self,
        outcome_id: &str,
        referral_id: &str,
        payload_hash: &str,
        received_at: DateTime<Utc>,
    ) -> Result<OutcomeReceipt, HubError> {
        let mut receipt = OutcomeReceipt {
            outcome_id: outcome_id.to_owned(),
            referral_id: referral_id.to_owned(),
            payload_sha256: payload_hash.to_owned(),
            received_at,
            hub_key_id: self.hub_key().key_id,
            first_receipt: true,
            receipt_jws: String::new(),
        };
        receipt.receipt_jws = sign_receipt(&receipt.signed_payload(), self.receipt_key())
            .map_err(|error| HubError::Corrupt(format!("the receipt could not be signed: {error}")))?;
        Ok(receipt)
    }

    /// The original receipt if `outcome_id` was already recorded for the same payload; an error
    /// if it was recorded for a different one; None if it is new. An outcome recorded before
    /// receipts were signed gets its signature now, kept for every later repeat.
    fn repeated_receipt(
        &self,
        connection: &Connection,
        outcome_id: &str,
        payload_hash: &str,
    ) -> Result<Option<OutcomeReceipt>, HubError> {
        let stored: Option<(String, String, String, Option<String>)> = connection
            .query_row(
                "SELECT payload_sha256, received_at, referral_id, receipt_jws FROM outcomes WHERE outcome_id = ?1",
                [outcome_id],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .optional()?;
        let Some((stored_hash, received_at, referral_id, receipt_jws)) = stored else {
            return Ok(None);
        };
        if stored_hash != payload_hash {
            return Err(HubError::OutcomeIdReused(outcome_id.to_string()));
        }
        let received_at = parse_timestamp(&received_at)?;
        let receipt = match receipt_jws {
            // The hub has one key for life, so the stored signature is by today's key.
            Some(receipt_jws) => OutcomeReceipt {
                outcome_id: outcome_id.to_string(),
                referral_id,
                payload_sha256: stored_hash,
                received_at,
                hub_key_id: self.hub_key().key_id,
                first_receipt: true,
                receipt_jws,
            },
            None => {
                let receipt = self.signed_receipt(outcome_id, &referral_id, &stored_hash, received_at)?;
                connection.execute(
                    "UPDATE outcomes SET receipt_jws = ?2 WHERE outcome_id = ?1",
                    params![outcome_id, receipt.receipt_jws],
                )?;
                receipt
            }
        };
        Ok(Some(OutcomeReceipt { first_receipt: false, ..receipt }))
    }

    /// Every outcome recorded for the referral (at most one, by construction).
    pub fn outcomes(&self, referral_id: &str) -> Result<Vec<StoredOutcome>, HubError> {
        let connection = self.lock();
        if referral_state(&connection, referral_id)?.is_none() {
            return Err(HubError::not_found("referral", referral_id));
        }
        let mut statement = connection.prepare(
            "SELECT outcome_id, device_id, payload_json, jws, payload_sha256, received_at, receipt_jws
               FROM outcomes WHERE referral_id = ?1 ORDER BY received_at",
        )?;
        let rows = statement
            .query_map([referral_id], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, Option<String>>(6)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(outcome_id, device_id, payload_json, jws, payload_sha256, received_at, receipt_jws)| {
                let payload = serde_json::from_str(&payload_json)
                    .map_err(|_| HubError::Corrupt(format!("stored outcome {outcome_id} does not parse")))?;
                Ok(StoredOutcome {
                    referral_id: referral_id.to_string(),
                    device_id,
                    payload,
                    jws,
                    payload_sha256,
                    received_at: parse_timestamp(&received_at)?,
                    receipt_jws,
                    outcome_id,
                })
            })
            .collect()
    }
}

/// Whether the referral was ever this consultant's. Referrals that never were are reported as
/// not found, so a device cannot learn which referral ids exist.
fn was_assigned(connection: &Connection, referral_id: &str, consultant_id: &str) -> Result<bool, HubError> {
    Ok(connection
        .query_row(
            "SELECT 1 FROM referral_assignments WHERE referral_id = ?1 AND consultant_id = ?2",
            params![referral_id, consultant_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}
