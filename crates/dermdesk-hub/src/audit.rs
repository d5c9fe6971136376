//! Devices' audit logs (`POST /v1/audit`): each device uploads its hash chain of what was done
//! on it (`dermdesk_protocol::audit`). The hub keeps every entry and accepts an upload only if it
//! continues the chain it already holds for that device: the next sequence number, linked to
//! the last hash, every hash recomputed. A repeat of entries already held is accepted if they
//! are identical (a lost acknowledgement), refused if they differ (a rewritten history).

use dermdesk_protocol::audit::{
    verify_chain, AuditAck, AuditEntry, AuditRecord, AUDIT_GENESIS, MAX_AUDIT_BATCH,
};
use rusqlite::{params, OptionalExtension};

use crate::enrolment::Device;
use crate::hub::{timestamp, Hub};
use crate::HubError;

impl Hub {
    /// Records a device's audit entries; returns the last entry now held.
    pub(crate) fn record_audit(&self, device: &Device, entries: &[AuditEntry]) -> Result<AuditAck, HubError> {
        if entries.len() > MAX_AUDIT_BATCH {
            return Err(HubError::BadRequest(format!("at most {MAX_AUDIT_BATCH} audit entries per upload")));
        }
        self.write(|transaction| {
            let last: Option<(i64, String)> = transaction
                .query_row(
                    "SELECT seq, hash FROM audit_entries WHERE device_id = ?1 ORDER BY seq DESC LIMIT 1",
                    [&device.id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let (held_seq, held_hash) = last.map_or((0, AUDIT_GENESIS.to_owned()), |(s, h)| (s as u64, h));
            // Entries already held: identical, or the device rewrote its history.
            let (repeats, new): (Vec<&AuditEntry>, Vec<&AuditEntry>) =
                entries.iter().partition(|entry| entry.record.seq <= held_seq);
            for entry in repeats {
                let stored: Option<String> = transaction
                    .query_row(
                        "SELECT hash FROM audit_entries WHERE device_id = ?1 AND seq = ?2",
                        params![device.id, entry.record.seq as i64],
                        |row| row.get(0),
                    )
                    .optional()?;
                let intact = dermdesk_protocol::audit::audit_hash(&entry.prev_hash, &entry.record)
                    .is_ok_and(|hash| hash == entry.hash);
                if !intact || stored.as_deref() != Some(entry.hash.as_str()) {
                    return Err(HubError::BadRequest(format!(
                        "audit entry {} differs from the one already recorded; nothing was recorded",
                        entry.record.seq
                    )));
                }
            }
            let new: Vec<AuditEntry> = new.into_iter().cloned().collect();
            let (last_seq, last_hash) = verify_chain(held_seq, &held_hash, &new).map_err(|problem| {
                HubError::BadRequest(format!(
                    "the audit log does not continue the chain held for this device ({problem}); nothing was recorded"
                ))
            })?;
            let received_at = timestamp(self.now());
            for entry in &new {
                let record = &entry.record;
                let event = serde_json::to_value(record.event)
                    .map_err(|e| HubError::Corrupt(e.to_string()))?
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                transaction.execute(
                    "INSERT INTO audit_entries (device_id, seq, at, event, referral_id, outcome_id, detail, prev_hash, hash, received_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        device.id,
                        record.seq as i64,
                        record.at,
                        event,
                        record.referral_id,
                        record.outcome_id,
                        record.detail,
                        entry.prev_hash,
                        entry.hash,
                        received_at
                    ],
                )?;
            }
            Ok(AuditAck { last_seq, last_hash })
        })
    }

    /// A device's audit chain as recorded, oldest first (for audits and tests).
    pub fn audit_chain(&self, device_id: &str) -> Result<Vec<AuditEntry>, HubError> {
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT seq, at, event, referral_id, outcome_id, detail, prev_hash, hash
               FROM audit_entries WHERE device_id = ?1 ORDER BY seq",
        )?;
        type Row = (i64, String, String, Option<String>, Option<String>, Option<String>, String, String);
        let rows = statement
            .query_map([device_id], |row| -> rusqlite::Result<Row> {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                    row.get(7)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(seq, at, event, referral_id, outcome_id, detail, prev_hash, hash)| {
                let event = serde_json::from_value(serde_json::Value::String(event))
                    .map_err(|_| HubError::Corrupt(format!("audit entry {seq} has an unknown event")))?;
                let record = AuditRecord { seq: seq as u64, at, event, referral_id, outcome_id, detail };
                Ok(AuditEntry { record, prev_hash, hash })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use dermdesk_protocol::audit::{chain_entry, AuditEvent};

    use super::*;

    fn chain(count: u64) -> Vec<AuditEntry> {
        let mut prev = AUDIT_GENESIS.to_owned();
        (1..=count)
            .map(|seq| {
                let record = AuditRecord {
                    seq,
                    at: "2026-06-19T10:00:00.000Z".into(),
                    event: AuditEvent::ReferralViewed,
                    referral_id: Some(format!("R-{seq}")),
                    outcome_id: None,
                    detail: None,
                };
                let entry = chain_entry(&prev, record).unwrap();
                prev = entry.hash.clone();
                entry
            })
            .collect()
    }

    fn enrolled_device(hub: &Hub) -> Device {
        let consultant = hub.create_consultant("Dr Audit Example").unwrap();
        let code = hub.create_enrolment_code(&consultant.id).unwrap();
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let request = dermdesk_protocol::EnrolRequest {
            enrolment_code: code,
            device_name: "test".into(),
            public_key: dermdesk_protocol::signature::encode_public_key(&key.verifying_key()),
        };
        let response = hub.enrol(&request).unwrap();
        hub.authenticate(&response.device_token).unwrap()
    }

    #[test]
    fn uploads_must_continue_the_chain_held_for_the_device() {
        let photos = tempfile::tempdir().unwrap();
        let hub = Hub::open(None, photos.path()).unwrap();
        let device = enrolled_device(&hub);
        let entries = chain(5);
        assert_eq!(hub.record_audit(&device, &entries[..2]).unwrap().last_seq, 2);
        // A lost acknowledgement: the same entries again, plus new ones.
        assert_eq!(hub.record_audit(&device, &entries[1..4]).unwrap().last_seq, 4);
        // A gap is refused.
        let error = hub.record_audit(&device, &chain(7)[5..]).unwrap_err();
        assert!(error.to_string().contains("does not continue the chain"), "{error}");
        assert!(hub.record_audit(&device, &entries[4..]).is_ok());
        let mut rewritten = chain(6);
        rewritten[2].record.referral_id = Some("R-other".into());
        let error = hub.record_audit(&device, &rewritten[2..]).unwrap_err();
        assert!(error.to_string().contains("audit entry 3 differs"), "{error}");
        let forged = chain_entry(&"ab".repeat(32), rewritten[5].record.clone()).unwrap();
        let error = hub.record_audit(&device, &[forged]).unwrap_err();
        assert!(error.to_string().contains("does not continue the chain"), "{error}");
        let stored = hub.audit_chain(&device.id).unwrap();
        assert_eq!(stored, entries);
    }
}
