//! More of `Desk`: its audit log (HIPAA 164.312(b), DSPT). Every view of a referral, signing,
//! sending, export, key replacement, lock, unlock failure and sign-out is appended to a hash
//! chain in the encrypted cache (`cache.rs`, schema 8; the chain itself is
//! `dermdesk_protocol::audit`), with ids only: never a patient's name or NHS number. The chain
//! goes to the service with the outcomes (`POST /v1/audit`), which checks it continues the one
//! it holds.

use dermdesk_protocol::audit::{verify_chain, AuditEntry, AuditEvent, AUDIT_GENESIS, MAX_AUDIT_BATCH};

use crate::client::HubClient;
use crate::{CoreError, Desk};

/// Meta key: the last entry the service acknowledged.
const META_AUDIT_SENT: &str = "audit_sent_seq";

/// What [`Desk::verify_audit`] found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditSummary {
    pub entries: u64,
    pub last_hash: String,
    pub sent_up_to: u64,
}

impl Desk {
    /// Appends one entry to the audit chain.
    pub fn audit(
        &self,
        event: AuditEvent,
        referral_id: Option<&str>,
        outcome_id: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), CoreError> {
        self.cache().append_audit(event, referral_id, outcome_id, detail, self.now())?;
        Ok(())
    }

    /// Signed outcomes this device holds that the service has not acknowledged (queued, in
    /// conflict or refused): what a sign-out would erase.
    pub fn unsent_outcomes(&self) -> Result<u32, CoreError> {
        let outbox = self.cache().outbox()?;
        Ok(outbox.iter().filter(|row| row.state != crate::plan::OutboxState::Sent).count() as u32)
    }

    /// Every entry, oldest first (for tests and an inspector).
    pub fn audit_entries(&self) -> Result<Vec<AuditEntry>, CoreError> {
        let mut all = Vec::new();
        loop {
            let after = all.last().map_or(0, |entry: &AuditEntry| entry.record.seq);
            let page = self.cache().audit_entries(after, 1000)?;
            if page.is_empty() {
                return Ok(all);
            }
            all.extend(page);
        }
    }

    /// Recomputes the whole chain; an altered, removed or reordered entry is an error naming it.
    pub fn verify_audit(&self) -> Result<AuditSummary, CoreError> {
        let entries = self.audit_entries()?;
        let (last, last_hash) = verify_chain(0, AUDIT_GENESIS, &entries)
            .map_err(|problem| CoreError::Cache(format!("the audit log does not verify: {problem}")))?;
        Ok(AuditSummary { entries: last, last_hash, sent_up_to: self.audit_sent_up_to()? })
    }

    fn audit_sent_up_to(&self) -> Result<u64, CoreError> {
        Ok(self.cache().meta(META_AUDIT_SENT)?.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    /// Sends the entries the service has not acknowledged, in batches. Never stops a sync: a
    /// refusal is logged and the entries are offered again next time.
    pub async fn push_audit(&self, client: &HubClient) -> Result<(), CoreError> {
        loop {
            let sent = self.audit_sent_up_to()?;
            let entries = self.cache().audit_entries(sent, MAX_AUDIT_BATCH)?;
            if entries.is_empty() {
                return Ok(());
            }
            let last = entries.last().map_or(sent, |entry| entry.record.seq);
            let ack = match client.upload_audit(entries).await {
                Ok(ack) => ack,
                Err(error) if error.is_transient() => return Err(error),
                Err(error @ CoreError::Hub { code: dermdesk_protocol::ErrorCode::Unauthorized, .. }) => {
                    return Err(error)
                }
                Err(error) => {
                    tracing::warn!(kind = ?error.kind(), "the service refused the audit log: {error}");
                    return Ok(());
                }
            };
            if ack.last_seq < last {
                tracing::warn!(
                    ack = ack.last_seq,
                    last,
                    "the service acknowledged fewer audit entries than sent"
                );
            }
            self.cache().set_meta(META_AUDIT_SENT, &ack.last_seq.min(last).to_string())?;
            if ack.last_seq < last {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::secrets::MemorySecretStore;
    use crate::DeskConfig;

    #[test]
    fn the_chain_verifies_and_tampering_inside_the_database_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Arc::new(MemorySecretStore::default());
        let config = DeskConfig { data_dir: dir.path().join("desk"), device_name: "test".into() };
        let desk = Desk::open(config.clone(), secrets.clone()).unwrap();
        desk.audit(AuditEvent::Unlocked, None, None, None).unwrap();
        desk.audit(AuditEvent::ReferralViewed, Some("R-1"), None, None).unwrap();
        desk.audit(AuditEvent::OutcomeSigned, Some("R-1"), Some("O-1"), None).unwrap();
        desk.audit(AuditEvent::UnlockFailed, None, None, Some("3")).unwrap();
        let summary = desk.verify_audit().unwrap();
        assert_eq!(summary.entries, 4);
        assert_eq!(summary.sent_up_to, 0);

        // Append-only: the database itself refuses to change or delete an entry.
        let error = desk.cache().execute_for_test("UPDATE audit_log SET referral_id = 'R-2' WHERE seq = 2");
        assert!(error.unwrap_err().to_string().contains("append-only"));
        assert!(desk.cache().execute_for_test("DELETE FROM audit_log WHERE seq = 2").is_err());

        // Someone with the key who also drops the triggers: the chain still gives them away.
        desk.cache()
            .execute_for_test(
                "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET referral_id = 'R-2' WHERE seq = 2",
            )
            .unwrap();
        let error = desk.verify_audit().unwrap_err();
        assert!(error.to_string().contains("audit entry 2 was changed"), "{error}");
        drop(desk);

        // Entries carry ids only: no patient text in the chain.
        let desk = Desk::open(config, secrets).unwrap();
        let json = serde_json::to_string(&desk.audit_entries().unwrap()).unwrap();
        assert!(!json.contains("Patient"), "{json}");
    }
}
