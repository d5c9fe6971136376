//! Deliberate damage, to show that each check can fail (`--sabotage KIND`). Planted once, early
//! in the first client's life, through the cache's own public API or the files themselves;
//! the run must then report the broken invariant and exit non-zero.
//!
//! Never used in a normal run. Each kind names the check it proves:
//! - `photo`: a visible photo whose bytes are not its content id → `corrupt_photos_accepted`.
//! - `partial`: a kept download piece that is not a prefix of the photo → `bad_partial_downloads`.
//! - `signature`: an outcome altered after it was signed, queued → `bad_signatures`.
//! - `journal`: a journalled outcome the cache never held → `outcomes_lost`.
//! - `sent`: a queued outcome marked sent without the hub ever receiving it →
//!   `sent_outcomes_missing_on_hub`.
//! - `forget`: an outcome signed by the device and delivered to the hub, but never kept in the
//!   cache (as if its row had been lost after sending) → `hub_outcomes_unknown_locally`.
//! - `integrity`: bytes overwritten in the middle of the database file → `integrity_failures`.

use std::io::{Seek as _, SeekFrom, Write as _};
use std::str::FromStr;

use chrono::Utc;
use dermdesk_core::cache::Cache;
use dermdesk_core::client::HubClient;
use dermdesk_core::desk::CACHE_FILE;
use dermdesk_core::plan::{OutboxState, PushResult};
use dermdesk_core::secrets::{SecretStore as _, CACHE_KEY, DEVICE_SIGNING_KEY, DEVICE_TOKEN};
use dermdesk_faults::journal;
use dermdesk_faults::secrets::FileSecretStore;
use dermdesk_protocol::signature::sign_outcome;
use dermdesk_protocol::{Consultant, Outcome, OutcomeKind, OutcomePayload, OutcomeReceipt, SignedOutcome};

use crate::check::ClientFiles;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sabotage {
    Photo,
    Partial,
    Signature,
    Journal,
    Sent,
    Forget,
    Integrity,
}

impl FromStr for Sabotage {
    type Err = String;

    fn from_str(text: &str) -> Result<Sabotage, String> {
        Ok(match text {
            "photo" => Sabotage::Photo,
            "partial" => Sabotage::Partial,
            "signature" => Sabotage::Signature,
            "journal" => Sabotage::Journal,
            "sent" => Sabotage::Sent,
            "forget" => Sabotage::Forget,
            "integrity" => Sabotage::Integrity,
            other => {
                return Err(format!(
                    "unknown sabotage {other:?}: photo, partial, signature, journal, sent, forget, integrity"
                ))
            }
        })
    }
}

fn open(files: &ClientFiles<'_>) -> Result<Option<Cache>, String> {
    let path = files.data_dir.join(CACHE_FILE);
    let Some(key) = FileSecretStore::new(files.secrets).get(CACHE_KEY).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    if !path.exists() {
        return Ok(None);
    }
    let key: [u8; 32] = key.as_slice().try_into().map_err(|_| "bad key length")?;
    Cache::open(&path, &key).map(Some).map_err(|e| e.to_string())
}

/// Plants `sabotage` in a dead client's files; `None` if the state does not allow it yet (e.g.
/// no photo is missing to plant a wrong one in), so the caller tries again after the next run.
pub async fn plant(
    sabotage: Sabotage,
    files: &ClientFiles<'_>,
    referrals: &[String],
    hub_url: &str,
) -> Result<Option<String>, String> {
    let Some(mut cache) = open(files)? else { return Ok(None) };
    let error = |e: dermdesk_core::CoreError| e.to_string();
    match sabotage {
        Sabotage::Photo => {
            let Some(content_id) = cache.missing_photos().map_err(error)?.into_iter().next() else {
                return Ok(None);
            };
            cache
                .store_verified_photo(&content_id, "image/jpeg", b"not the photo", Utc::now())
                .map_err(error)?;
            Ok(Some(format!("photo {content_id} stored with the wrong bytes")))
        }
        Sabotage::Partial => {
            let Some(content_id) = cache.missing_photos().map_err(error)?.into_iter().next() else {
                return Ok(None);
            };
            cache.save_photo_chunk(&content_id, 0, None, b"not a prefix of the photo").map_err(error)?;
            Ok(Some(format!("a wrong first piece kept for photo {content_id}")))
        }
        Sabotage::Signature => {
            let Some(mut signed) = sign_for_unanswered(&cache, files)? else { return Ok(None) };
            signed.payload.outcome.plan = "altered after signing".into();
            let reviewed = cache
                .referral(&signed.payload.referral_id)
                .map_err(error)?
                .ok_or("the referral to sabotage vanished")?
                .referral;
            cache.queue_outcome(&signed, &reviewed, Utc::now()).map_err(error)?;
            Ok(Some(format!("outcome for {} altered after signing and queued", signed.payload.referral_id)))
        }
        Sabotage::Sent => {
            let outbox = cache.outbox().map_err(error)?;
            let Some(row) = outbox.iter().find(|row| row.state == OutboxState::Queued) else {
                return Ok(None);
            };
            let receipt = OutcomeReceipt {
                outcome_id: row.outcome_id.clone(),
                referral_id: row.referral_id.clone(),
                payload_sha256: "0".repeat(64),
                received_at: Utc::now(),
                hub_key_id: String::new(),
                first_receipt: true,
                receipt_jws: String::new(),
            };
            cache.mark_sent(&row.outcome_id, &receipt, Utc::now()).map_err(error)?;
            Ok(Some(format!("queued outcome {} marked sent; the hub never received it", row.outcome_id)))
        }
        Sabotage::Forget => {
            let Some(signed) = sign_for_unanswered(&cache, files)? else { return Ok(None) };
            drop(cache);
            let token = FileSecretStore::new(files.secrets)
                .get(DEVICE_TOKEN)
                .map_err(|e| e.to_string())?
                .ok_or("no device token")?;
            let token = String::from_utf8(token.to_vec()).map_err(|e| e.to_string())?;
            let client = HubClient::new(hub_url, Some(token)).map_err(error)?;
            match client.submit(&signed).await {
                PushResult::Accepted(_) => Ok(Some(format!(
                    "outcome {} for {} delivered to the hub but never kept in the cache",
                    signed.payload.outcome_id, signed.payload.referral_id
                ))),
                other => Err(format!("the hub refused the planted outcome: {other:?}")),
            }
        }
        Sabotage::Journal => {
            let Some(referral_id) = referrals.first() else { return Ok(None) };
            let outcome_id = uuid_v4();
            journal::append(files.journal, &outcome_id, referral_id).map_err(|e| e.to_string())?;
            Ok(Some(format!("journal line for outcome {outcome_id} the client never queued")))
        }
        Sabotage::Integrity => {
            // Closing the only connection checkpoints the WAL into the database file, so the
            // damaged page is the one every reader uses.
            drop(cache);
            let path = files.data_dir.join(CACHE_FILE);
            let length = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
            if length < 8 * 4096 {
                return Ok(None);
            }
            let mut file = std::fs::OpenOptions::new().write(true).open(&path).map_err(|e| e.to_string())?;
            file.seek(SeekFrom::Start(length / 2 / 4096 * 4096 + 100)).map_err(|e| e.to_string())?;
            file.write_all(&[0x5A; 64]).map_err(|e| e.to_string())?;
            Ok(Some(format!("64 bytes overwritten in the middle of the {length}-byte database file")))
        }
    }
}

/// A correctly signed outcome (the device's own key) for a cached referral nobody answered yet.
fn sign_for_unanswered(cache: &Cache, files: &ClientFiles<'_>) -> Result<Option<SignedOutcome>, String> {
    let error = |e: dermdesk_core::CoreError| e.to_string();
    let (Some(device_id), Some(key_id), Some(consultant)) = (
        cache.meta("device_id").map_err(error)?,
        cache.meta("key_id").map_err(error)?,
        cache.meta("consultant").map_err(error)?,
    ) else {
        return Ok(None);
    };
    let consultant: Consultant = serde_json::from_str(&consultant).map_err(|e| e.to_string())?;
    let answered: Vec<String> =
        cache.outbox().map_err(error)?.into_iter().map(|row| row.referral_id).collect();
    let Some(referral) = cache
        .referrals()
        .map_err(error)?
        .into_iter()
        .find(|r| r.removed_reason.is_none() && !answered.contains(&r.referral.id))
    else {
        return Ok(None);
    };
    let payload = OutcomePayload {
        outcome_id: uuid_v4(),
        referral_id: referral.referral.id.clone(),
        referral_version: referral.referral.version,
        consultant_id: consultant.id,
        device_id,
        key_id,
        signed_at: Utc::now(),
        outcome: Outcome {
            // Allowed by every governance rule (no consent, two-week wait, suspected cancer),
            // so it can answer any synthetic referral.
            kind: OutcomeKind::RequestMoreInformation,
            appointment_urgency: None,
            diagnosis: "sabotage".into(),
            plan: "as signed".into(),
            governance_reason: Some(
                "Synthetic test referral: answered by request whatever its urgency.".into(),
            ),
            ..Outcome::default_extras()
        },
    };
    let seed = FileSecretStore::new(files.secrets)
        .get(DEVICE_SIGNING_KEY)
        .map_err(|e| e.to_string())?
        .ok_or("no device key")?;
    let seed: [u8; 32] = seed.as_slice().try_into().map_err(|_| "bad key length")?;
    sign_outcome(payload, &ed25519_dalek::SigningKey::from_bytes(&seed)).map(Some).map_err(|e| e.to_string())
}

fn uuid_v4() -> String {
    let bytes: [u8; 16] = rand::random();
    let hex = hex::encode(bytes);
    format!("{}-{}-4{}-a{}-{}", &hex[..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}
