//! The device's audit log as a hash chain (HIPAA 164.312(b), DSPT): what the consultant did on
//! this device (views, signing, sending, exports, key replacement, lock and unlock failures,
//! sign-out), ids only, never a patient's name or NHS number.
//!
//! Each entry's `hash` is `SHA-256(prev_hash || canonical JSON of the entry without prev_hash
//! and hash)`, hex; the first entry's `prev_hash` is [`AUDIT_GENESIS`]. Changing, removing or
//! reordering any entry breaks every hash after it. The device keeps the chain in its encrypted
//! cache and uploads it with its outcomes (`POST /v1/audit`); the hub checks that each upload
//! continues the chain it already holds for that device. Pure: no I/O.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::canonical::to_canonical_json;

/// `prev_hash` of a device's first entry.
pub const AUDIT_GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Most entries one `POST /v1/audit` carries.
pub const MAX_AUDIT_BATCH: usize = 200;

/// Longest `detail` text (a count or a short reason; never patient data).
pub const MAX_AUDIT_DETAIL: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditEvent {
    ReferralViewed,
    OutcomeSigned,
    OutcomeSent,
    OutcomeExported,
    KeyReplaced,
    Unlocked,
    /// `detail`: how many wrong passphrases came before a successful unlock.
    UnlockFailed,
    Locked,
    SignedOut,
}

/// One audited action, as hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// 1, 2, 3… on this device, no gaps.
    pub seq: u64,
    /// RFC 3339, UTC, as written by the device (kept as text so the hash input never changes).
    pub at: String,
    pub event: AuditEvent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A record with its place in the chain (the record's members, then `prev_hash` and `hash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub record: AuditRecord,
    pub prev_hash: String,
    pub hash: String,
}

/// The wire form: one flat object (serde's `flatten` cannot refuse unknown members).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditEntryWire {
    seq: u64,
    at: String,
    event: AuditEvent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    referral_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    prev_hash: String,
    hash: String,
}

impl Serialize for AuditEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let record = self.record.clone();
        AuditEntryWire {
            seq: record.seq,
            at: record.at,
            event: record.event,
            referral_id: record.referral_id,
            outcome_id: record.outcome_id,
            detail: record.detail,
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AuditEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = AuditEntryWire::deserialize(deserializer)?;
        Ok(AuditEntry {
            record: AuditRecord {
                seq: wire.seq,
                at: wire.at,
                event: wire.event,
                referral_id: wire.referral_id,
                outcome_id: wire.outcome_id,
                detail: wire.detail,
            },
            prev_hash: wire.prev_hash,
            hash: wire.hash,
        })
    }
}

/// `POST /v1/audit` body: the entries after the last one the hub acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditUpload {
    pub entries: Vec<AuditEntry>,
}

/// `POST /v1/audit` answer: the last entry the hub holds for this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditAck {
    pub last_seq: u64,
    pub last_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditChainError {
    #[error("audit entry {seq}: expected sequence number {expected}")]
    Gap { seq: u64, expected: u64 },
    #[error("audit entry {seq} does not follow the entry before it (prev_hash differs)")]
    Broken { seq: u64 },
    #[error("audit entry {seq} was changed after it was written (its hash does not match)")]
    Altered { seq: u64 },
    #[error("audit entry {seq} is malformed: {problem}")]
    Malformed { seq: u64, problem: String },
}

/// The hash of `record` chained after `prev_hash`.
pub fn audit_hash(prev_hash: &str, record: &AuditRecord) -> Result<String, AuditChainError> {
    let malformed = |problem: String| AuditChainError::Malformed { seq: record.seq, problem };
    let prev = hex::decode(prev_hash).map_err(|_| malformed("prev_hash is not hex".into()))?;
    if prev.len() != 32 {
        return Err(malformed("prev_hash is not a SHA-256".into()));
    }
    if record.detail.as_ref().is_some_and(|detail| detail.chars().count() > MAX_AUDIT_DETAIL) {
        return Err(malformed(format!("detail is longer than {MAX_AUDIT_DETAIL} characters")));
    }
    let canonical = to_canonical_json(record).map_err(|e| malformed(e.to_string()))?;
    let mut hasher = Sha256::new();
    hasher.update(&prev);
    hasher.update(&canonical);
    Ok(hex::encode(hasher.finalize()))
}

/// Chains `record` after `prev_hash`.
pub fn chain_entry(prev_hash: &str, record: AuditRecord) -> Result<AuditEntry, AuditChainError> {
    let hash = audit_hash(prev_hash, &record)?;
    Ok(AuditEntry { record, prev_hash: prev_hash.to_owned(), hash })
}

/// Checks that `entries` continue a chain whose last entry was `after_seq` with `after_hash`
/// (0 and [`AUDIT_GENESIS`] for a whole chain): consecutive numbers, each linked to the one
/// before, each hash recomputed. Returns the last `(seq, hash)`.
pub fn verify_chain(
    after_seq: u64,
    after_hash: &str,
    entries: &[AuditEntry],
) -> Result<(u64, String), AuditChainError> {
    let (mut seq, mut hash) = (after_seq, after_hash.to_owned());
    for entry in entries {
        let this = entry.record.seq;
        if this != seq + 1 {
            return Err(AuditChainError::Gap { seq: this, expected: seq + 1 });
        }
        if entry.prev_hash != hash {
            return Err(AuditChainError::Broken { seq: this });
        }
        if audit_hash(&entry.prev_hash, &entry.record)? != entry.hash {
            return Err(AuditChainError::Altered { seq: this });
        }
        (seq, hash) = (this, entry.hash.clone());
    }
    Ok((seq, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, event: AuditEvent, referral_id: Option<&str>) -> AuditRecord {
        AuditRecord {
            seq,
            at: format!("2026-06-19T10:00:{seq:02}.000Z"),
            event,
            referral_id: referral_id.map(str::to_owned),
            outcome_id: None,
            detail: None,
        }
    }

    fn chain() -> Vec<AuditEntry> {
        let mut prev = AUDIT_GENESIS.to_owned();
        let mut entries = Vec::new();
        for (seq, event) in [AuditEvent::Unlocked, AuditEvent::ReferralViewed, AuditEvent::OutcomeSigned]
            .into_iter()
            .enumerate()
        {
            let entry = chain_entry(&prev, record(seq as u64 + 1, event, Some("R-1"))).unwrap();
            prev = entry.hash.clone();
            entries.push(entry);
        }
        entries
    }

    #[test]
    fn the_hash_is_sha256_of_the_previous_hash_and_the_canonical_record() {
        let entry = chain_entry(AUDIT_GENESIS, record(1, AuditEvent::Locked, None)).unwrap();
        let mut input = vec![0u8; 32];
        input.extend_from_slice(br#"{"at":"2026-06-19T10:00:01.000Z","event":"locked","seq":1}"#);
        assert_eq!(entry.hash, hex::encode(Sha256::digest(&input)));
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(json["prev_hash"], AUDIT_GENESIS);
        assert_eq!(serde_json::from_value::<AuditEntry>(json).unwrap(), entry);
    }

    #[test]
    fn an_intact_chain_verifies_and_any_tampering_is_found() {
        let entries = chain();
        assert_eq!(verify_chain(0, AUDIT_GENESIS, &entries).unwrap(), (3, entries[2].hash.clone()));
        // Continuing from the middle works too.
        assert!(verify_chain(1, &entries[0].hash, &entries[1..]).is_ok());

        let mut altered = entries.clone();
        altered[1].record.referral_id = Some("R-2".into());
        assert_eq!(verify_chain(0, AUDIT_GENESIS, &altered), Err(AuditChainError::Altered { seq: 2 }));

        let mut rehashed = altered.clone();
        rehashed[1].hash = audit_hash(&rehashed[1].prev_hash, &rehashed[1].record).unwrap();
        assert_eq!(verify_chain(0, AUDIT_GENESIS, &rehashed), Err(AuditChainError::Broken { seq: 3 }));

        let removed = [entries[0].clone(), entries[2].clone()];
        assert_eq!(
            verify_chain(0, AUDIT_GENESIS, &removed),
            Err(AuditChainError::Gap { seq: 3, expected: 2 })
        );

        assert!(verify_chain(1, AUDIT_GENESIS, &entries[1..]).is_err(), "a chain must continue its hash");
    }

    #[test]
    fn unknown_members_are_refused() {
        let mut json = serde_json::to_value(&chain()[0]).unwrap();
        json["patient_name"] = "Somebody".into();
        assert!(serde_json::from_value::<AuditEntry>(json).is_err());
    }
}
