//! The encrypted local cache: one SQLCipher database holding referrals, photos (as blobs, so
//! they are encrypted like everything else), the outbox of signed outcomes and sync state.
//!
//! This is the only module that runs SQL. Every multi-row change is one transaction, so a
//! crash leaves either the old state or the new one.

use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use dermdesk_protocol::{Nation, OutcomeReceipt, Referral, RemovalReason, SignedOutcome, Urgency};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use zeroize::Zeroizing;

use crate::plan::{CacheOp, LocalReferral, OutboxState};
use crate::views::{referral_status, ReferralStatus, StatusInputs};
use crate::CoreError;

/// Meta entry: the fingerprint of the deadline policy the stored due dates were counted with.
const DUE_POLICY_META: &str = "due_policy";

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
/// Never edit a released step: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: first schema.
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE referral (
        id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        body TEXT NOT NULL,
        urgency_rank INTEGER NOT NULL,
        received_at TEXT NOT NULL,
        due_at TEXT NOT NULL,
        opened_at TEXT,
        removed_reason TEXT,
        synced_at TEXT NOT NULL
     );
     CREATE INDEX referral_worklist ON referral (urgency_rank DESC, due_at);
     CREATE TABLE referral_photo (
        referral_id TEXT NOT NULL REFERENCES referral (id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        content_id TEXT NOT NULL,
        PRIMARY KEY (referral_id, position)
     );
     CREATE INDEX referral_photo_content ON referral_photo (content_id);
     CREATE TABLE photo (
        content_id TEXT PRIMARY KEY,
        media_type TEXT NOT NULL,
        bytes BLOB NOT NULL,
        verified_at TEXT NOT NULL
     );
     CREATE TABLE photo_failure (
        content_id TEXT PRIMARY KEY,
        attempts INTEGER NOT NULL,
        problem TEXT NOT NULL
     );
     CREATE TABLE outbox (
        outcome_id TEXT PRIMARY KEY,
        referral_id TEXT NOT NULL,
        signed TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        problem TEXT,
        receipt TEXT,
        sent_at TEXT
     );
     CREATE INDEX outbox_referral ON outbox (referral_id, created_at);",
    // 2: resumable photo downloads and drafts.
    "CREATE TABLE photo_chunk (
        content_id TEXT NOT NULL,
        start INTEGER NOT NULL,
        etag TEXT,
        bytes BLOB NOT NULL,
        PRIMARY KEY (content_id, start)
     );
     CREATE TABLE draft (
        referral_id TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        updated_at TEXT NOT NULL
     );",
    // 3: receipts proven by the hub's signature. Rows sent before have an unsigned receipt: 0.
    "ALTER TABLE outbox ADD COLUMN receipt_verified INTEGER NOT NULL DEFAULT 0;",
    // 4: the referral exactly as the consultant reviewed it, kept with each signed outcome, so
    // that if the practice changes it meanwhile the app can show what changed.
    "CREATE TABLE reviewed_referral (
        outcome_id TEXT PRIMARY KEY REFERENCES outbox (outcome_id),
        body TEXT NOT NULL
     );",
    // 5: the worklist, one narrow row per referral, so filters, search and counts never read the
    // referral bodies (each 2-3 KB: about one row per 4 KiB page, every page decrypted on a
    // scan). Kept by `write_worklist_entry` / `refresh_status` in the transactions that change
    // their inputs; filled from the cached referrals after this step (`backfill_worklist`).
    // `worklist_count` holds the counts by status, urgency and practice, kept by triggers, so
    // the worklist's counts cost the same at 100,000 referrals as at 10.
    "CREATE TABLE worklist_entry (
        referral_id TEXT PRIMARY KEY REFERENCES referral (id) ON DELETE CASCADE,
        status TEXT NOT NULL,
        urgency_rank INTEGER NOT NULL,
        due_at TEXT NOT NULL,
        practice_ods TEXT NOT NULL,
        practice_name TEXT NOT NULL,
        search_key TEXT NOT NULL,
        patient_name TEXT NOT NULL,
        nhs_number TEXT NOT NULL,
        date_of_birth TEXT NOT NULL,
        received_at TEXT NOT NULL,
        nation TEXT NOT NULL,
        photos_total INTEGER NOT NULL,
        opened INTEGER NOT NULL DEFAULT 0,
        has_draft INTEGER NOT NULL DEFAULT 0,
        outcome_state TEXT,
        removed_reason TEXT
     );
     CREATE INDEX worklist_order ON worklist_entry (urgency_rank DESC, due_at, referral_id);
     CREATE INDEX worklist_status ON worklist_entry (status, urgency_rank DESC, due_at, referral_id);
     CREATE INDEX worklist_practice ON worklist_entry (practice_ods, urgency_rank DESC, due_at, referral_id);
     CREATE TABLE worklist_count (
        status TEXT NOT NULL,
        urgency_rank INTEGER NOT NULL,
        practice_ods TEXT NOT NULL,
        practice_name TEXT NOT NULL,
        referrals INTEGER NOT NULL,
        PRIMARY KEY (status, urgency_rank, practice_ods)
     ) WITHOUT ROWID;
     CREATE TRIGGER worklist_count_insert AFTER INSERT ON worklist_entry BEGIN
        INSERT INTO worklist_count (status, urgency_rank, practice_ods, practice_name, referrals)
        VALUES (new.status, new.urgency_rank, new.practice_ods, new.practice_name, 1)
        ON CONFLICT (status, urgency_rank, practice_ods)
        DO UPDATE SET referrals = referrals + 1, practice_name = excluded.practice_name;
     END;
     CREATE TRIGGER worklist_count_delete AFTER DELETE ON worklist_entry BEGIN
        UPDATE worklist_count SET referrals = referrals - 1
        WHERE status = old.status AND urgency_rank = old.urgency_rank AND practice_ods = old.practice_ods;
        DELETE FROM worklist_count
        WHERE status = old.status AND urgency_rank = old.urgency_rank AND practice_ods = old.practice_ods
          AND referrals <= 0;
     END;
     CREATE TRIGGER worklist_count_update
     AFTER UPDATE OF status, urgency_rank, practice_ods, practice_name ON worklist_entry
     WHEN old.status != new.status OR old.urgency_rank != new.urgency_rank
          OR old.practice_ods != new.practice_ods OR old.practice_name != new.practice_name
     BEGIN
        UPDATE worklist_count SET referrals = referrals - 1
        WHERE status = old.status AND urgency_rank = old.urgency_rank AND practice_ods = old.practice_ods;
        DELETE FROM worklist_count
        WHERE status = old.status AND urgency_rank = old.urgency_rank AND practice_ods = old.practice_ods
          AND referrals <= 0;
        INSERT INTO worklist_count (status, urgency_rank, practice_ods, practice_name, referrals)
        VALUES (new.status, new.urgency_rank, new.practice_ods, new.practice_name, 1)
        ON CONFLICT (status, urgency_rank, practice_ods)
        DO UPDATE SET referrals = referrals + 1, practice_name = excluded.practice_name;
     END;",
    // 6: a patient's earlier referrals (priors in the viewer), by NHS number.
    "CREATE INDEX worklist_patient ON worklist_entry (nhs_number, received_at);",
    // 7: what is made once per verified photo (photos.rs): its geometry (so opening it need not
    // read the photo), the viewer's first pixels and the
    // filmstrip's thumbnail (JPEG, encrypted like the photo), and the photo-quality measures
    // (JSON; the flags are decided from them when a view is built, so new thresholds apply to
    // old rows). Goes with its photo.
    "CREATE TABLE photo_derived (
        content_id TEXT PRIMARY KEY REFERENCES photo (content_id) ON DELETE CASCADE,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        orientation INTEGER NOT NULL,
        preview BLOB NOT NULL,
        thumb BLOB NOT NULL,
        quality TEXT NOT NULL,
        built_at TEXT NOT NULL
     );",
    // 8: the audit log, a hash chain (dermdesk_protocol::audit). Append-only: the triggers
    // refuse to change or delete an entry. `IF NOT EXISTS`: safe whatever step 7 becomes.
    "CREATE TABLE IF NOT EXISTS audit_log (
        seq         INTEGER PRIMARY KEY,
        at          TEXT NOT NULL,
        event       TEXT NOT NULL,
        referral_id TEXT,
        outcome_id  TEXT,
        detail      TEXT,
        prev_hash   TEXT NOT NULL,
        hash        TEXT NOT NULL
     );
     CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
     BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
     CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
     BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
    // 9: previews, thumbnails and quality measures made before colour management (and before
    // transparency was composited) showed wide-gamut and CMYK photos wrong and could show what
    // a sender masked out: drop them; the sync makes them again (`prepare_unprepared_photos`)
    // and the viewer makes any it is asked for first.
    "DELETE FROM photo_derived;",
    // 10: search keys are folded (accents, apostrophes, hyphens, Unicode normalisation:
    // `worklist::fold`); the keys are written again in Rust after this step.
    "SELECT 1;",
];

/// The schema version after whose step every worklist entry's search key is written again.
const SEARCH_FOLDING_SCHEMA: usize = 10;

/// The schema version whose step creates the worklist table; the rows are filled in Rust after
/// it (search keys and statuses are computed by the same code as afterwards).
const WORKLIST_SCHEMA: usize = 5;

pub struct Cache {
    connection: Connection,
}

/// What is kept per verified photo besides the photo (schema 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoDerived {
    /// Stored size and EXIF orientation, as the header says.
    pub width: u32,
    pub height: u32,
    pub orientation: u8,
    pub preview: Vec<u8>,
    pub thumbnail: Vec<u8>,
    /// `dermdesk_imaging::QualityMetrics` as JSON.
    pub quality_json: String,
}

/// One outbox row as stored.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub outcome_id: String,
    pub referral_id: String,
    pub signed: SignedOutcome,
    pub state: OutboxState,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub problem: Option<String>,
    pub receipt: Option<OutcomeReceipt>,
    /// The receipt's signature verified against the hub's key when it was recorded (false only
    /// for outcomes sent before receipts were signed).
    pub receipt_verified: bool,
    pub sent_at: Option<DateTime<Utc>>,
}

/// One referral's worklist row as stored (`worklist_entry`), with its verified photo count
/// and, for an outcome in conflict, the service's reason.
#[derive(Debug, Clone, PartialEq)]
pub struct WorklistEntry {
    pub referral_id: String,
    pub patient_name: String,
    pub nhs_number: String,
    pub date_of_birth: NaiveDate,
    pub practice_ods: String,
    pub practice_name: String,
    pub nation: Nation,
    pub urgency: Urgency,
    pub received_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub status: ReferralStatus,
    pub has_draft: bool,
    pub outcome_state: Option<OutboxState>,
    pub outcome_problem: Option<String>,
    pub removed_reason: Option<RemovalReason>,
    pub photos_total: usize,
    pub photos_ready: usize,
}

/// What the worklist asks the cache for: every list is "any of" (empty: all); `search` is a
/// normalised needle set from `worklist::SearchNeedles`.
#[derive(Debug, Clone, Default)]
pub struct WorklistFilter {
    pub statuses: Vec<ReferralStatus>,
    pub urgencies: Vec<Urgency>,
    pub practice_ods: Option<String>,
    /// Matches when the search key contains any of these.
    pub search: Vec<String>,
}

/// How many referrals have this status, urgency and practice (one row of the counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorklistCount {
    pub status: ReferralStatus,
    pub urgency: Urgency,
    pub practice_ods: String,
    pub practice_name: String,
    pub referrals: usize,
}

/// One photo of one (not removed) referral, for the offline readiness report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessPhoto {
    pub referral_id: String,
    pub patient_name: String,
    pub content_id: String,
    /// Stored and verified: its size in bytes.
    pub stored_bytes: Option<u64>,
    /// Why its last download was refused, if it was.
    pub problem: Option<String>,
}

/// A referral as the worklist needs it.
#[derive(Debug, Clone)]
pub struct CachedReferral {
    pub referral: Referral,
    pub due_at: DateTime<Utc>,
    pub opened_at: Option<DateTime<Utc>>,
    pub removed_reason: Option<RemovalReason>,
}

impl Cache {
    /// Opens (creating if needed) the encrypted cache at `path` with a raw 256-bit key.
    ///
    /// Refuses to run on an SQLite without SQLCipher (it would silently ignore the key and
    /// write plaintext), and reports a wrong key as [`CoreError::CacheKeyMissing`]-like failure
    /// without touching the file.
    pub fn open(path: &Path, key: &[u8; 32]) -> Result<Cache, CoreError> {
        let connection = Connection::open(path)?;
        Self::unlock(connection, key)
    }

    fn unlock(connection: Connection, key: &[u8; 32]) -> Result<Cache, CoreError> {
        let cipher_version: Option<String> =
            connection.query_row("PRAGMA cipher_version", [], |row| row.get(0)).optional()?;
        if cipher_version.is_none_or(|version| version.is_empty()) {
            return Err(CoreError::EncryptionUnavailable);
        }
        // SQLCipher logs decryption failures to stderr by default; the error is reported to the
        // caller instead.
        connection.execute_batch("PRAGMA cipher_log_level = NONE;")?;
        let key_pragma = Zeroizing::new(format!("x'{}'", hex::encode(key)));
        // The key must be the first statement on the connection; it is formatted, not bound,
        // because PRAGMA takes no parameters.
        connection.execute_batch(&format!("PRAGMA key = \"{}\";", key_pragma.as_str()))?;
        // First read: a wrong key fails here ("file is not a database").
        connection
            .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get::<_, i64>(0))
            .map_err(|e| CoreError::Cache(format!("the cache cannot be decrypted with this key ({e})")))?;
        // Durability: in WAL mode with `synchronous = NORMAL` every commit survives a crash or
        // kill -9 (the OS has the WAL); a power cut may lose the last commits, never consistency.
        // That is right for what can be fetched again (feed pages, photos, drafts as typed).
        // Queuing a signed outcome switches to FULL for its commit (see `queue_outcome`).
        // A larger auto-checkpoint keeps photo downloads from stalling on checkpoints.
        connection.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA wal_autocheckpoint = 8192;
             PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -65536;
             PRAGMA busy_timeout = 5000;",
        )?;
        let mut cache = Cache { connection };
        cache.migrate()?;
        Ok(cache)
    }

    fn migrate(&mut self) -> Result<(), CoreError> {
        let applied: i64 = self.connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        let applied = usize::try_from(applied).unwrap_or(usize::MAX);
        if applied > MIGRATIONS.len() {
            return Err(CoreError::Cache(format!(
                "the cache was written by a newer Derm Desk (schema {applied}); update Derm Desk"
            )));
        }
        for (index, step) in MIGRATIONS.iter().enumerate().skip(applied) {
            let transaction = self.connection.transaction()?;
            transaction.execute_batch(step)?;
            if index + 1 == WORKLIST_SCHEMA || index + 1 == SEARCH_FOLDING_SCHEMA {
                backfill_worklist(&transaction)?;
            }
            transaction.pragma_update(None, "user_version", (index + 1) as i64)?;
            transaction.commit()?;
        }
        Ok(())
    }

    /// Appends one entry to the audit chain (one transaction: read the last hash, chain, insert).
    pub fn append_audit(
        &mut self,
        event: dermdesk_protocol::audit::AuditEvent,
        referral_id: Option<&str>,
        outcome_id: Option<&str>,
        detail: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<dermdesk_protocol::audit::AuditEntry, CoreError> {
        use dermdesk_protocol::audit::{chain_entry, AuditRecord, AUDIT_GENESIS};
        let transaction = self.connection.transaction()?;
        let last: Option<(i64, String)> = transaction
            .query_row("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        let last = last.map(|(seq, hash)| (seq as u64, hash));
        let (seq, prev_hash) = last.unwrap_or((0, AUDIT_GENESIS.to_owned()));
        let record = AuditRecord {
            seq: seq + 1,
            at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            event,
            referral_id: referral_id.map(str::to_owned),
            outcome_id: outcome_id.map(str::to_owned),
            detail: detail.map(str::to_owned),
        };
        let entry = chain_entry(&prev_hash, record).map_err(|e| CoreError::Cache(e.to_string()))?;
        let event_name = serde_json::to_value(entry.record.event)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        transaction.execute(
            "INSERT INTO audit_log (seq, at, event, referral_id, outcome_id, detail, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                entry.record.seq as i64,
                entry.record.at,
                event_name,
                entry.record.referral_id,
                entry.record.outcome_id,
                entry.record.detail,
                entry.prev_hash,
                entry.hash
            ],
        )?;
        transaction.commit()?;
        Ok(entry)
    }

    /// Audit entries after `after_seq`, oldest first, at most `limit`.
    pub fn audit_entries(
        &self,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<dermdesk_protocol::audit::AuditEntry>, CoreError> {
        use dermdesk_protocol::audit::{AuditEntry, AuditRecord};
        let mut statement = self.connection.prepare(
            "SELECT seq, at, event, referral_id, outcome_id, detail, prev_hash, hash FROM audit_log
              WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        type Row = (i64, String, String, Option<String>, Option<String>, Option<String>, String, String);
        let rows = statement
            .query_map(params![after_seq as i64, limit as i64], |row| -> rusqlite::Result<Row> {
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
                let seq = seq as u64;
                let event = serde_json::from_value(serde_json::Value::String(event))
                    .map_err(|_| CoreError::Cache(format!("audit entry {seq} has an unknown event")))?;
                let record = AuditRecord { seq, at, event, referral_id, outcome_id, detail };
                Ok(AuditEntry { record, prev_hash, hash })
            })
            .collect()
    }

    /// Runs raw SQL (tests that tamper with the database on purpose).
    #[cfg(test)]
    pub(crate) fn execute_for_test(&self, sql: &str) -> Result<(), CoreError> {
        Ok(self.connection.execute_batch(sql)?)
    }

    pub fn integrity_check(&self) -> Result<String, CoreError> {
        Ok(self.connection.query_row("PRAGMA integrity_check", [], |row| row.get(0))?)
    }

    // ------------------------------------------------------------------------------------
    // Meta

    pub fn meta(&self, name: &str) -> Result<Option<String>, CoreError> {
        Ok(self
            .connection
            .query_row("SELECT value FROM meta WHERE name = ?1", [name], |row| row.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, name: &str, value: &str) -> Result<(), CoreError> {
        set_meta(&self.connection, name, value)
    }

    /// Sets and removes several meta entries in one transaction (all or none).
    pub fn update_meta(&mut self, set: &[(&str, &str)], remove: &[&str]) -> Result<(), CoreError> {
        let transaction = self.connection.transaction()?;
        for (name, value) in set {
            set_meta(&transaction, name, value)?;
        }
        for name in remove {
            transaction.execute("DELETE FROM meta WHERE name = ?1", [name])?;
        }
        transaction.commit()?;
        Ok(())
    }

    // ------------------------------------------------------------------------------------
    // Referrals

    /// What the sync planner needs to know about the cached referrals among `ids` (those one
    /// feed page names). One primary-key lookup each, so a page costs the same however many
    /// referrals are cached: scanning them all for every page made a first sync quadratic.
    pub fn local_referrals(&self, ids: &[&str]) -> Result<Vec<LocalReferral>, CoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT r.id, r.version,
                    EXISTS (SELECT 1 FROM outbox o WHERE o.referral_id = r.id AND o.state != 'sent'),
                    EXISTS (SELECT 1 FROM draft d WHERE d.referral_id = r.id)
             FROM referral r WHERE r.id = ?1",
        )?;
        let mut local = Vec::new();
        for id in ids {
            let found = statement
                .query_row([id], |row| {
                    Ok(LocalReferral {
                        id: row.get(0)?,
                        version: row.get::<_, i64>(1)? as u64,
                        has_unsent_outcome: row.get(2)?,
                        has_draft: row.get(3)?,
                    })
                })
                .optional()?;
            local.extend(found);
        }
        Ok(local)
    }

    /// Applies one planned feed page atomically, cursor included. Photos, pieces and drafts no
    /// referral needs any more go once the whole page is applied (a photo one change drops and
    /// a later one names again stays).
    pub fn apply(&mut self, operations: &[CacheOp], now: DateTime<Utc>) -> Result<(), CoreError> {
        let transaction = self.connection.transaction()?;
        for operation in operations {
            apply_op(&transaction, operation, now)?;
        }
        if operations.iter().any(|op| matches!(op, CacheOp::Upsert { .. } | CacheOp::Delete { .. })) {
            delete_orphans(&transaction)?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// The other cached referrals of the patient with this NHS number received before
    /// `before` (RFC 3339), newest first: the viewer's priors.
    pub fn earlier_referral_ids(
        &self,
        nhs_number: &str,
        before: &str,
        except: &str,
    ) -> Result<Vec<String>, CoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT referral_id FROM worklist_entry
             WHERE nhs_number = ?1 AND received_at < ?2 AND referral_id <> ?3
             ORDER BY received_at DESC",
        )?;
        let ids = statement
            .query_map(params![nhs_number, before, except], |row| row.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }

    pub fn referral(&self, id: &str) -> Result<Option<CachedReferral>, CoreError> {
        self.connection
            .query_row(
                "SELECT body, due_at, opened_at, removed_reason FROM referral WHERE id = ?1",
                [id],
                cached_referral,
            )
            .optional()?
            .transpose()
    }

    /// All cached referrals, most urgent first, then earliest due.
    pub fn referrals(&self) -> Result<Vec<CachedReferral>, CoreError> {
        let mut statement = self.connection.prepare(
            "SELECT body, due_at, opened_at, removed_reason FROM referral
             ORDER BY urgency_rank DESC, due_at, id",
        )?;
        let rows = statement.query_map([], cached_referral)?;
        rows.map(|row| row?).collect()
    }

    /// Counts every cached referral's due date again with `due` unless they were last counted
    /// under `fingerprint` (the deadline policy's); one transaction, so a crash leaves either
    /// all the old dates or all the new. Returns how many due dates moved.
    pub fn recount_due_dates(
        &mut self,
        fingerprint: &str,
        due: impl Fn(&Referral) -> DateTime<Utc>,
    ) -> Result<usize, CoreError> {
        if self.meta(DUE_POLICY_META)?.as_deref() == Some(fingerprint) {
            return Ok(0);
        }
        let referrals = self.referrals()?;
        let transaction = self.connection.transaction()?;
        let mut moved = 0;
        for cached in &referrals {
            let due_at = due(&cached.referral);
            if due_at == cached.due_at {
                continue;
            }
            let due_text = due_at.to_rfc3339();
            transaction.execute(
                "UPDATE referral SET due_at = ?2 WHERE id = ?1",
                params![cached.referral.id, due_text],
            )?;
            transaction.execute(
                "UPDATE worklist_entry SET due_at = ?2 WHERE referral_id = ?1",
                params![cached.referral.id, due_text],
            )?;
            moved += 1;
        }
        set_meta(&transaction, DUE_POLICY_META, fingerprint)?;
        transaction.commit()?;
        Ok(moved)
    }

    pub fn mark_opened(&self, id: &str, now: DateTime<Utc>) -> Result<(), CoreError> {
        let transaction = self.connection.unchecked_transaction()?;
        let changed = transaction.execute(
            "UPDATE referral SET opened_at = ?2 WHERE id = ?1 AND opened_at IS NULL",
            params![id, now.to_rfc3339()],
        )?;
        if changed > 0 {
            refresh_status(&transaction, id)?;
        }
        transaction.commit()?;
        Ok(())
    }

    // ------------------------------------------------------------------------------------
    // Photos

    /// Content ids referenced by cached referrals that are not stored yet, with their expected
    /// size and media type, in worklist order (most urgent referral first).
    pub fn missing_photos(&self) -> Result<Vec<String>, CoreError> {
        let mut statement = self.connection.prepare(
            "SELECT rp.content_id FROM referral_photo rp JOIN referral r ON r.id = rp.referral_id
             WHERE NOT EXISTS (SELECT 1 FROM photo p WHERE p.content_id = rp.content_id)
             GROUP BY rp.content_id
             ORDER BY max(r.urgency_rank) DESC, min(r.due_at), min(rp.position)",
        )?;
        let rows = statement.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Content ids of every stored (visible) photo, for checks that re-verify them all (the
    /// fault harness after every kill).
    pub fn stored_photo_ids(&self) -> Result<Vec<String>, CoreError> {
        let mut statement = self.connection.prepare("SELECT content_id FROM photo ORDER BY content_id")?;
        let rows = statement.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn has_photo(&self, content_id: &str) -> Result<bool, CoreError> {
        Ok(self
            .connection
            .query_row("SELECT 1 FROM photo WHERE content_id = ?1", [content_id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Stores a photo whose bytes the caller has verified against its content id, and drops
    /// its partial download, in one transaction. A photo no cached referral uses any more is
    /// not stored.
    pub fn store_verified_photo(
        &mut self,
        content_id: &str,
        media_type: &str,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), CoreError> {
        let transaction = self.connection.transaction()?;
        transaction.execute(
            "INSERT OR IGNORE INTO photo (content_id, media_type, bytes, verified_at)
             SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM referral_photo WHERE content_id = ?1)",
            params![content_id, media_type, bytes, now.to_rfc3339()],
        )?;
        transaction.execute("DELETE FROM photo_failure WHERE content_id = ?1", [content_id])?;
        transaction.execute("DELETE FROM photo_chunk WHERE content_id = ?1", [content_id])?;
        transaction.commit()?;
        Ok(())
    }

    /// Keeps what was made from a stored photo (previews, quality). Nothing is kept for a photo
    /// that is not (or no longer) stored; a second call replaces the first.
    pub fn store_photo_derived(
        &self,
        content_id: &str,
        derived: &PhotoDerived,
        now: DateTime<Utc>,
    ) -> Result<(), CoreError> {
        self.connection
            .prepare_cached(
                "INSERT INTO photo_derived
                    (content_id, preview, thumb, quality, built_at, width, height, orientation)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE EXISTS (SELECT 1 FROM photo WHERE content_id = ?1)
                 ON CONFLICT (content_id) DO UPDATE SET preview = ?2, thumb = ?3, quality = ?4, built_at = ?5,
                    width = ?6, height = ?7, orientation = ?8",
            )?
            .execute(params![
                content_id,
                derived.preview,
                derived.thumbnail,
                derived.quality_json,
                now.to_rfc3339(),
                derived.width,
                derived.height,
                derived.orientation,
            ])?;
        Ok(())
    }

    /// The kept preview (`thumbnail` false) or thumbnail JPEG of a photo, if it was made.
    pub fn photo_derived_image(
        &self,
        content_id: &str,
        thumbnail: bool,
    ) -> Result<Option<Vec<u8>>, CoreError> {
        let sql = if thumbnail {
            "SELECT thumb FROM photo_derived WHERE content_id = ?1"
        } else {
            "SELECT preview FROM photo_derived WHERE content_id = ?1"
        };
        Ok(self.connection.prepare_cached(sql)?.query_row([content_id], |row| row.get(0)).optional()?)
    }

    /// The kept stored width, height and EXIF orientation of a photo, and its media type, if
    /// they were made (the photo's bytes are not read: its blob is the row's last column).
    pub fn photo_derived_geometry(
        &self,
        content_id: &str,
    ) -> Result<Option<(u32, u32, u8, String)>, CoreError> {
        Ok(self
            .connection
            .prepare_cached(
                "SELECT d.width, d.height, d.orientation, p.media_type
                 FROM photo_derived d JOIN photo p ON p.content_id = d.content_id WHERE d.content_id = ?1",
            )?
            .query_row([content_id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
            .optional()?)
    }

    /// The kept photo-quality measures (JSON) of a photo, if they were made.
    pub fn photo_quality(&self, content_id: &str) -> Result<Option<String>, CoreError> {
        Ok(self
            .connection
            .prepare_cached("SELECT quality FROM photo_derived WHERE content_id = ?1")?
            .query_row([content_id], |row| row.get(0))
            .optional()?)
    }

    /// Stored photos with nothing made from them yet (a cache from before schema 7, or a
    /// build that failed), at most `limit`.
    pub fn photos_without_derived(&self, limit: usize) -> Result<Vec<String>, CoreError> {
        let mut statement = self.connection.prepare(
            "SELECT content_id FROM photo WHERE content_id NOT IN (SELECT content_id FROM photo_derived)
             ORDER BY content_id LIMIT ?1",
        )?;
        let rows = statement.query_map([limit as i64], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The part of a photo received so far (contiguous from byte 0) and its ETag. Chunks past
    /// a gap, or from a different ETag than the first, are ignored (and overwritten later).
    pub fn photo_partial(&self, content_id: &str) -> Result<(Vec<u8>, Option<String>), CoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT start, etag, bytes FROM photo_chunk WHERE content_id = ?1 ORDER BY start",
        )?;
        let mut rows = statement.query([content_id])?;
        let mut bytes = Vec::new();
        let mut etag: Option<Option<String>> = None;
        while let Some(row) = rows.next()? {
            let offset: i64 = row.get(0)?;
            let chunk_etag: Option<String> = row.get(1)?;
            if offset as u64 != bytes.len() as u64 || etag.as_ref().is_some_and(|e| *e != chunk_etag) {
                break;
            }
            etag.get_or_insert(chunk_etag);
            bytes.extend_from_slice(row.get_ref(2)?.as_blob().map_err(|e| CoreError::Cache(e.to_string()))?);
        }
        Ok((bytes, etag.flatten()))
    }

    /// Keeps a received piece of a photo so an interrupted download resumes where it stopped.
    /// Still unverified: it is never shown, only completed and then checked.
    pub fn save_photo_chunk(
        &self,
        content_id: &str,
        offset: u64,
        etag: Option<&str>,
        bytes: &[u8],
    ) -> Result<(), CoreError> {
        self.connection.execute(
            "INSERT INTO photo_chunk (content_id, start, etag, bytes) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (content_id, start) DO UPDATE SET etag = ?3, bytes = ?4",
            params![content_id, offset as i64, etag, bytes],
        )?;
        Ok(())
    }

    /// Forgets a partial download (it turned out wrong, or the service restarted it).
    pub fn discard_photo_partial(&self, content_id: &str) -> Result<(), CoreError> {
        self.connection.execute("DELETE FROM photo_chunk WHERE content_id = ?1", [content_id])?;
        Ok(())
    }

    // ------------------------------------------------------------------------------------
    // Drafts

    /// Saves the consultant's unsigned outcome as typed (any JSON object the form produces).
    pub fn save_draft(&self, referral_id: &str, body: &str, now: DateTime<Utc>) -> Result<(), CoreError> {
        let signed: bool = self.connection.query_row(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE referral_id = ?1 AND state IN ('queued', 'sent'))",
            [referral_id],
            |row| row.get(0),
        )?;
        if signed {
            // A save racing the signature: the signed outcome is what counts.
            return Err(CoreError::AlreadySigned);
        }
        let transaction = self.connection.unchecked_transaction()?;
        let changed = transaction.execute(
            "INSERT INTO draft (referral_id, body, updated_at) SELECT ?1, ?2, ?3
             WHERE EXISTS (SELECT 1 FROM referral WHERE id = ?1)
             ON CONFLICT (referral_id) DO UPDATE SET body = ?2, updated_at = ?3",
            params![referral_id, body, now.to_rfc3339()],
        )?;
        if changed == 0 {
            return Err(CoreError::UnknownReferral(referral_id.to_owned()));
        }
        refresh_status(&transaction, referral_id)?;
        transaction.commit()?;
        Ok(())
    }

    pub fn draft(&self, referral_id: &str) -> Result<Option<(String, DateTime<Utc>)>, CoreError> {
        let row: Option<(String, String)> = self
            .connection
            .query_row("SELECT body, updated_at FROM draft WHERE referral_id = ?1", [referral_id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        row.map(|(body, at)| Ok((body, parse_time(&at)?))).transpose()
    }

    pub fn referrals_with_drafts(&self) -> Result<std::collections::HashSet<String>, CoreError> {
        let mut statement = self.connection.prepare("SELECT referral_id FROM draft")?;
        let rows = statement.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn discard_draft(&self, referral_id: &str) -> Result<(), CoreError> {
        let transaction = self.connection.unchecked_transaction()?;
        transaction.execute("DELETE FROM draft WHERE referral_id = ?1", [referral_id])?;
        refresh_status(&transaction, referral_id)?;
        transaction.commit()?;
        Ok(())
    }

    pub fn record_photo_failure(&self, content_id: &str, problem: &str) -> Result<u32, CoreError> {
        Ok(self.connection.query_row(
            "INSERT INTO photo_failure (content_id, attempts, problem) VALUES (?1, 1, ?2)
             ON CONFLICT (content_id) DO UPDATE SET attempts = attempts + 1, problem = ?2
             RETURNING attempts",
            params![content_id, problem],
            |row| row.get(0),
        )?)
    }

    pub fn photo_failures(&self) -> Result<Vec<(String, u32, String)>, CoreError> {
        let mut statement =
            self.connection.prepare("SELECT content_id, attempts, problem FROM photo_failure")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn photo(&self, content_id: &str) -> Result<Option<(String, Vec<u8>)>, CoreError> {
        Ok(self
            .connection
            .query_row("SELECT media_type, bytes FROM photo WHERE content_id = ?1", [content_id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?)
    }

    // ------------------------------------------------------------------------------------
    // Outbox

    /// Queues a signed outcome. The outcome is durable when this returns: this is the moment
    /// the consultant is told "queued".
    pub fn queue_outcome(
        &mut self,
        signed: &SignedOutcome,
        reviewed: &Referral,
        now: DateTime<Utc>,
    ) -> Result<(), CoreError> {
        // The one write that must survive a power cut, not just a crash: WAL synced at commit
        // (which also makes every earlier transaction durable). See `unlock` for the rest.
        self.connection.pragma_update(None, "synchronous", "FULL")?;
        let result = self.queue_outcome_durably(signed, reviewed, now);
        self.connection.pragma_update(None, "synchronous", "NORMAL")?;
        result
    }

    fn queue_outcome_durably(
        &mut self,
        signed: &SignedOutcome,
        reviewed: &Referral,
        now: DateTime<Utc>,
    ) -> Result<(), CoreError> {
        let transaction = self.connection.transaction()?;
        let pending: bool = transaction.query_row(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE referral_id = ?1 AND state IN ('queued', 'sent'))",
            [&signed.payload.referral_id],
            |row| row.get(0),
        )?;
        if pending {
            return Err(CoreError::AlreadySigned);
        }
        let body = serde_json::to_string(signed).map_err(|e| CoreError::Signing(e.to_string()))?;
        transaction.execute(
            "INSERT INTO outbox (outcome_id, referral_id, signed, state, created_at, next_attempt_at)
             VALUES (?1, ?2, ?3, 'queued', ?4, ?4)",
            params![signed.payload.outcome_id, signed.payload.referral_id, body, now.to_rfc3339()],
        )?;
        let reviewed = serde_json::to_string(reviewed).map_err(|e| CoreError::Cache(e.to_string()))?;
        transaction.execute(
            "INSERT INTO reviewed_referral (outcome_id, body) VALUES (?1, ?2)",
            params![signed.payload.outcome_id, reviewed],
        )?;
        // The draft became the signed outcome.
        transaction.execute("DELETE FROM draft WHERE referral_id = ?1", [&signed.payload.referral_id])?;
        refresh_status(&transaction, &signed.payload.referral_id)?;
        transaction.commit()?;
        Ok(())
    }

    /// The referral as it was when this outcome was signed (outcomes signed before schema 3
    /// have none).
    pub fn reviewed_referral(&self, outcome_id: &str) -> Result<Option<Referral>, CoreError> {
        let body: Option<String> = self
            .connection
            .query_row("SELECT body FROM reviewed_referral WHERE outcome_id = ?1", [outcome_id], |row| {
                row.get(0)
            })
            .optional()?;
        body.as_deref().map(decode).transpose()
    }

    pub fn outbox(&self) -> Result<Vec<OutboxRow>, CoreError> {
        self.outbox_where("1 = 1", [])
    }

    /// The newest outcome signed for a referral.
    pub fn latest_outcome(&self, referral_id: &str) -> Result<Option<OutboxRow>, CoreError> {
        Ok(self
            .outbox_where("referral_id = ?1 ORDER BY created_at DESC, rowid DESC LIMIT 1", [referral_id])?
            .pop())
    }

    fn outbox_where<P: rusqlite::Params>(
        &self,
        condition: &str,
        params: P,
    ) -> Result<Vec<OutboxRow>, CoreError> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT outcome_id, referral_id, signed, state, attempts, next_attempt_at, problem, receipt, sent_at,
                    receipt_verified
             FROM outbox WHERE {condition}"
        ))?;
        let rows = statement.query_map(params, |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, u32>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, Option<String>>(6)?,
                row.get::<_, Option<String>>(7)?,
                row.get::<_, Option<String>>(8)?,
                row.get::<_, bool>(9)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                outcome_id,
                referral_id,
                signed,
                state,
                attempts,
                next_attempt_at,
                problem,
                receipt,
                sent_at,
                receipt_verified,
            ) = row?;
            out.push(OutboxRow {
                outcome_id,
                referral_id,
                signed: decode(&signed)?,
                state: OutboxState::parse(&state)
                    .ok_or_else(|| CoreError::Cache(format!("outbox state {state}")))?,
                attempts,
                next_attempt_at: parse_time(&next_attempt_at)?,
                problem,
                receipt: receipt.as_deref().map(decode).transpose()?,
                receipt_verified,
                sent_at: sent_at.as_deref().map(parse_time).transpose()?,
            });
        }
        Ok(out)
    }

    /// Records delivery. Only for a receipt whose hub signature was verified for this outcome
    /// (`plan::prove_delivery`): the row says so from now on.
    pub fn mark_sent(
        &self,
        outcome_id: &str,
        receipt: &OutcomeReceipt,
        now: DateTime<Utc>,
    ) -> Result<(), CoreError> {
        let receipt = serde_json::to_string(receipt).map_err(|e| CoreError::Cache(e.to_string()))?;
        let transaction = self.connection.unchecked_transaction()?;
        transaction.execute(
            "UPDATE outbox SET state = 'sent', receipt = ?2, sent_at = ?3, problem = NULL, receipt_verified = 1
             WHERE outcome_id = ?1",
            params![outcome_id, receipt, now.to_rfc3339()],
        )?;
        refresh_status_of_outcome(&transaction, outcome_id)?;
        transaction.commit()?;
        Ok(())
    }

    pub fn mark_outcome_failed(
        &self,
        outcome_id: &str,
        state: OutboxState,
        problem: &str,
    ) -> Result<(), CoreError> {
        let transaction = self.connection.unchecked_transaction()?;
        transaction.execute(
            "UPDATE outbox SET state = ?2, problem = ?3 WHERE outcome_id = ?1",
            params![outcome_id, state.as_str(), problem],
        )?;
        refresh_status_of_outcome(&transaction, outcome_id)?;
        transaction.commit()?;
        Ok(())
    }

    pub fn schedule_retry(
        &self,
        outcome_id: &str,
        next_attempt_at: DateTime<Utc>,
        problem: &str,
    ) -> Result<(), CoreError> {
        self.connection.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, problem = ?3 WHERE outcome_id = ?1",
            params![outcome_id, next_attempt_at.to_rfc3339(), problem],
        )?;
        Ok(())
    }

    /// Makes every queued outcome due now (the consultant asked to sync, or the service is
    /// reachable again after a gap): backoff protects the service from a retry storm, not
    /// from a person pressing a button once.
    pub fn retry_outbox_now(&self, now: DateTime<Utc>) -> Result<usize, CoreError> {
        Ok(self.connection.execute(
            "UPDATE outbox SET next_attempt_at = ?1 WHERE state = 'queued' AND next_attempt_at > ?1",
            [now.to_rfc3339()],
        )?)
    }

    pub fn outbox_waiting(&self) -> Result<u32, CoreError> {
        Ok(self
            .connection
            .query_row("SELECT count(*) FROM outbox WHERE state = 'queued'", [], |row| row.get(0))?)
    }
}

fn set_meta(connection: &Connection, name: &str, value: &str) -> Result<(), CoreError> {
    connection.execute(
        "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = ?2",
        params![name, value],
    )?;
    Ok(())
}

fn apply_op(transaction: &Transaction<'_>, operation: &CacheOp, now: DateTime<Utc>) -> Result<(), CoreError> {
    // Cached statements: a page applies the same few statements hundreds of times.
    match operation {
        CacheOp::Upsert { referral, due_at } => {
            let body = serde_json::to_string(referral).map_err(|e| CoreError::Cache(e.to_string()))?;
            transaction
                .prepare_cached(
                    "INSERT INTO referral (id, version, body, urgency_rank, received_at, due_at, synced_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (id) DO UPDATE SET version = ?2, body = ?3, urgency_rank = ?4,
                        received_at = ?5, due_at = ?6, synced_at = ?7, removed_reason = NULL",
                )?
                .execute(params![
                    referral.id,
                    referral.version as i64,
                    body,
                    crate::plan::urgency_rank(referral.urgency),
                    referral.received_at.to_rfc3339(),
                    due_at.to_rfc3339(),
                    now.to_rfc3339()
                ])?;
            transaction
                .prepare_cached("DELETE FROM referral_photo WHERE referral_id = ?1")?
                .execute([&referral.id])?;
            let mut insert_photo = transaction.prepare_cached(
                "INSERT INTO referral_photo (referral_id, position, content_id) VALUES (?1, ?2, ?3)",
            )?;
            for (position, photo) in referral.photos.iter().enumerate() {
                insert_photo.execute(params![referral.id, position as i64, photo.content_id])?;
            }
            write_worklist_entry(transaction, referral, *due_at)?;
        }
        CacheOp::MarkRemoved { referral_id, reason } => {
            transaction
                .prepare_cached("UPDATE referral SET removed_reason = ?2 WHERE id = ?1")?
                .execute(params![referral_id, removal_reason_str(*reason)])?;
            refresh_status(transaction, referral_id)?;
        }
        CacheOp::Delete { referral_id } => {
            transaction.prepare_cached("DELETE FROM referral WHERE id = ?1")?.execute([referral_id])?;
        }
        CacheOp::SetCursor(cursor) => set_meta(transaction, "feed_cursor", cursor)?,
    }
    Ok(())
}

/// Removes photos, partial downloads and drafts that no cached referral needs any more.
fn delete_orphans(transaction: &Transaction<'_>) -> Result<(), CoreError> {
    transaction.execute("DELETE FROM draft WHERE referral_id NOT IN (SELECT id FROM referral)", [])?;
    transaction
        .execute("DELETE FROM photo WHERE content_id NOT IN (SELECT content_id FROM referral_photo)", [])?;
    transaction.execute(
        "DELETE FROM photo_failure WHERE content_id NOT IN (SELECT content_id FROM referral_photo)",
        [],
    )?;
    transaction.execute(
        "DELETE FROM photo_chunk WHERE content_id NOT IN (SELECT content_id FROM referral_photo)",
        [],
    )?;
    Ok(())
}

// ----------------------------------------------------------------------------------------
// The worklist table

/// Writes the referral's worklist row (everything the feed decides) and its status.
fn write_worklist_entry(
    connection: &Connection,
    referral: &Referral,
    due_at: DateTime<Utc>,
) -> Result<(), CoreError> {
    connection
        .prepare_cached(
            "INSERT INTO worklist_entry (referral_id, status, urgency_rank, due_at, practice_ods, practice_name,
                search_key, patient_name, nhs_number, date_of_birth, received_at, nation, photos_total)
             VALUES (?1, 'new', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (referral_id) DO UPDATE SET urgency_rank = ?2, due_at = ?3, practice_ods = ?4,
                practice_name = ?5, search_key = ?6, patient_name = ?7, nhs_number = ?8, date_of_birth = ?9,
                received_at = ?10, nation = ?11, photos_total = ?12",
        )?
        .execute(params![
            referral.id,
            crate::plan::urgency_rank(referral.urgency),
            due_at.to_rfc3339(),
            referral.practice.ods_code,
            referral.practice.name,
            crate::worklist::search_key(&referral.patient.name, &referral.patient.nhs_number, &referral.id),
            referral.patient.name,
            referral.patient.nhs_number,
            referral.patient.date_of_birth.to_string(),
            referral.received_at.to_rfc3339(),
            nation_str(referral.practice.nation),
            referral.photos.len() as i64,
        ])?;
    refresh_status(connection, &referral.id)
}

/// Recomputes a referral's stored status (and the inputs the row shows) from the tables that
/// decide it, with the one status rule ([`referral_status`]). Called in every transaction
/// that changes an input: feed upserts and removals, opening, drafts, the outbox.
fn refresh_status(connection: &Connection, referral_id: &str) -> Result<(), CoreError> {
    let inputs = connection
        .prepare_cached(
            "SELECT r.opened_at IS NOT NULL, r.removed_reason,
                    (SELECT o.state FROM outbox o WHERE o.referral_id = r.id
                     ORDER BY o.created_at DESC, o.rowid DESC LIMIT 1),
                    EXISTS (SELECT 1 FROM draft d WHERE d.referral_id = r.id)
             FROM referral r WHERE r.id = ?1",
        )?
        .query_row([referral_id], |row| {
            Ok((
                row.get::<_, bool>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, bool>(3)?,
            ))
        })
        .optional()?;
    let Some((opened, removed_reason, outcome_state, has_draft)) = inputs else {
        return Ok(()); // No such referral: its worklist row went with it.
    };
    let outcome = outcome_state.as_deref().map(parse_outbox_state).transpose()?;
    let status =
        referral_status(StatusInputs { removed: removed_reason.is_some(), outcome, has_draft, opened });
    connection
        .prepare_cached(
            "UPDATE worklist_entry SET status = ?2, opened = ?3, has_draft = ?4, outcome_state = ?5,
                removed_reason = ?6
             WHERE referral_id = ?1",
        )?
        .execute(params![referral_id, status.as_str(), opened, has_draft, outcome_state, removed_reason])?;
    Ok(())
}

fn refresh_status_of_outcome(connection: &Connection, outcome_id: &str) -> Result<(), CoreError> {
    let referral_id: Option<String> = connection
        .query_row("SELECT referral_id FROM outbox WHERE outcome_id = ?1", [outcome_id], |row| row.get(0))
        .optional()?;
    match referral_id {
        Some(referral_id) => refresh_status(connection, &referral_id),
        None => Ok(()),
    }
}

/// Fills the worklist table from the cached referrals (schema 5 on an existing cache).
fn backfill_worklist(connection: &Connection) -> Result<(), CoreError> {
    let mut statement = connection.prepare("SELECT body, due_at FROM referral")?;
    let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
    for row in rows {
        let (body, due_at) = row?;
        let referral: Referral = decode(&body)?;
        write_worklist_entry(connection, &referral, parse_time(&due_at)?)?;
    }
    Ok(())
}

fn parse_outbox_state(text: &str) -> Result<OutboxState, CoreError> {
    OutboxState::parse(text).ok_or_else(|| CoreError::Cache(format!("outbox state {text}")))
}

fn nation_str(nation: Nation) -> &'static str {
    match nation {
        Nation::England => "england",
        Nation::Wales => "wales",
        Nation::Scotland => "scotland",
        Nation::NorthernIreland => "northern_ireland",
    }
}

fn parse_nation(text: &str) -> Result<Nation, CoreError> {
    [Nation::England, Nation::Wales, Nation::Scotland, Nation::NorthernIreland]
        .into_iter()
        .find(|nation| nation_str(*nation) == text)
        .ok_or_else(|| CoreError::Cache(format!("nation {text}")))
}

fn urgency_of_rank(rank: i64) -> Result<Urgency, CoreError> {
    [Urgency::Routine, Urgency::Urgent, Urgency::TwoWeekWait]
        .into_iter()
        .find(|urgency| crate::plan::urgency_rank(*urgency) == rank)
        .ok_or_else(|| CoreError::Cache(format!("urgency rank {rank}")))
}

fn parse_removal_reason(text: &str) -> RemovalReason {
    match text {
        "withdrawn" => RemovalReason::Withdrawn,
        _ => RemovalReason::Reassigned,
    }
}

/// The SQL condition and parameters of a worklist filter, over `worklist_entry e`.
fn filter_sql(filter: &WorklistFilter) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut conditions = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    let mut any_of = |column: &str, items: Vec<Value>, conditions: &mut Vec<String>| {
        if !items.is_empty() {
            let marks = vec!["?"; items.len()].join(", ");
            conditions.push(format!("e.{column} IN ({marks})"));
            values.extend(items);
        }
    };
    any_of(
        "status",
        filter.statuses.iter().map(|s| Value::Text(s.as_str().into())).collect(),
        &mut conditions,
    );
    any_of(
        "urgency_rank",
        filter.urgencies.iter().map(|u| Value::Integer(crate::plan::urgency_rank(*u))).collect(),
        &mut conditions,
    );
    any_of(
        "practice_ods",
        filter.practice_ods.iter().map(|p| Value::Text(p.clone())).collect(),
        &mut conditions,
    );
    if !filter.search.is_empty() {
        let alternatives = vec!["instr(e.search_key, ?) > 0"; filter.search.len()].join(" OR ");
        conditions.push(format!("({alternatives})"));
        values.extend(filter.search.iter().map(|needle| Value::Text(needle.clone())));
    }
    let condition = if conditions.is_empty() { "1 = 1".to_owned() } else { conditions.join(" AND ") };
    (condition, values)
}

impl Cache {
    /// One page of the worklist, most urgent first, then earliest due, then referral id.
    /// `limit: None` means every matching row.
    pub fn worklist_page(
        &self,
        filter: &WorklistFilter,
        offset: usize,
        limit: Option<usize>,
    ) -> Result<Vec<WorklistEntry>, CoreError> {
        let (mut condition, mut values) = filter_sql(filter);
        if !filter.search.is_empty() {
            // A search reads every search key anyway: one pass over the table, then sort the
            // matches, rather than walk the order index and look each row up (measured 65 ms
            // against 30 ms at 100,000 referrals; `bench worklist`).
            condition =
                format!("e.rowid IN (SELECT rowid FROM worklist_entry e NOT INDEXED WHERE {condition})");
        }
        values.push(rusqlite::types::Value::Integer(limit.and_then(|l| i64::try_from(l).ok()).unwrap_or(-1)));
        values.push(rusqlite::types::Value::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
        self.worklist_entries(
            &format!("{condition} ORDER BY e.urgency_rank DESC, e.due_at, e.referral_id LIMIT ? OFFSET ?"),
            values,
        )
    }

    /// Worklist rows of referrals due between `from` (inclusive) and `to` (exclusive) that
    /// still need the consultant: not removed, and no outcome delivered.
    pub fn worklist_due_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<WorklistEntry>, CoreError> {
        use rusqlite::types::Value;
        self.worklist_entries(
            "e.due_at >= ? AND e.due_at < ? AND e.status != 'sent' AND e.removed_reason IS NULL
             ORDER BY e.due_at, e.urgency_rank DESC, e.referral_id",
            vec![Value::Text(from.to_rfc3339()), Value::Text(to.to_rfc3339())],
        )
    }

    fn worklist_entries(
        &self,
        condition: &str,
        values: Vec<rusqlite::types::Value>,
    ) -> Result<Vec<WorklistEntry>, CoreError> {
        let mut statement = self.connection.prepare_cached(&format!(
            "SELECT e.referral_id, e.patient_name, e.nhs_number, e.date_of_birth, e.practice_ods, e.practice_name,
                    e.nation, e.urgency_rank, e.received_at, e.due_at, e.status, e.has_draft, e.outcome_state,
                    e.removed_reason, e.photos_total,
                    (SELECT count(*) FROM referral_photo rp JOIN photo p ON p.content_id = rp.content_id
                     WHERE rp.referral_id = e.referral_id),
                    CASE WHEN e.outcome_state = 'conflict' THEN
                        (SELECT o.problem FROM outbox o WHERE o.referral_id = e.referral_id
                         ORDER BY o.created_at DESC, o.rowid DESC LIMIT 1)
                    END
             FROM worklist_entry e WHERE {condition}"
        ))?;
        let mut rows = statement.query(rusqlite::params_from_iter(values))?;
        let mut entries = Vec::new();
        while let Some(row) = rows.next()? {
            let text = |index: usize| row.get::<_, String>(index);
            let status = text(10)?;
            entries.push(WorklistEntry {
                referral_id: text(0)?,
                patient_name: text(1)?,
                nhs_number: text(2)?,
                date_of_birth: text(3)?
                    .parse()
                    .map_err(|e| CoreError::Cache(format!("unreadable date in cache ({e})")))?,
                practice_ods: text(4)?,
                practice_name: text(5)?,
                nation: parse_nation(&text(6)?)?,
                urgency: urgency_of_rank(row.get(7)?)?,
                received_at: parse_time(&text(8)?)?,
                due_at: parse_time(&text(9)?)?,
                status: ReferralStatus::parse(&status)
                    .ok_or_else(|| CoreError::Cache(format!("worklist status {status}")))?,
                has_draft: row.get(11)?,
                outcome_state: row
                    .get::<_, Option<String>>(12)?
                    .as_deref()
                    .map(parse_outbox_state)
                    .transpose()?,
                removed_reason: row.get::<_, Option<String>>(13)?.as_deref().map(parse_removal_reason),
                photos_total: row.get::<_, i64>(14)? as usize,
                photos_ready: row.get::<_, i64>(15)? as usize,
                outcome_problem: row.get(16)?,
            });
        }
        Ok(entries)
    }

    /// Referrals by status, urgency and practice: of all (`search` empty: the kept counts, no
    /// scan) or of those whose search key contains any of `search`.
    pub fn worklist_counts(&self, search: &[String]) -> Result<Vec<WorklistCount>, CoreError> {
        let filter = WorklistFilter { search: search.to_vec(), ..WorklistFilter::default() };
        let (sql, values) = if search.is_empty() {
            (
                "SELECT status, urgency_rank, practice_ods, practice_name, referrals FROM worklist_count"
                    .to_owned(),
                Vec::new(),
            )
        } else {
            let (condition, values) = filter_sql(&filter);
            (
                format!(
                    "SELECT e.status, e.urgency_rank, e.practice_ods, max(e.practice_name), count(*)
                     FROM worklist_entry e WHERE {condition}
                     GROUP BY e.status, e.urgency_rank, e.practice_ods"
                ),
                values,
            )
        };
        let mut statement = self.connection.prepare_cached(&sql)?;
        let mut rows = statement.query(rusqlite::params_from_iter(values))?;
        let mut counts = Vec::new();
        while let Some(row) = rows.next()? {
            let status: String = row.get(0)?;
            counts.push(WorklistCount {
                status: ReferralStatus::parse(&status)
                    .ok_or_else(|| CoreError::Cache(format!("worklist status {status}")))?,
                urgency: urgency_of_rank(row.get(1)?)?,
                practice_ods: row.get(2)?,
                practice_name: row.get(3)?,
                referrals: row.get::<_, i64>(4)? as usize,
            });
        }
        Ok(counts)
    }

    /// Every photo of every referral still assigned (not removed), with whether it is stored
    /// (and its size) and why its last download was refused; and the number of such referrals.
    pub fn readiness_photos(&self) -> Result<(usize, Vec<ReadinessPhoto>), CoreError> {
        let referrals: i64 = self.connection.query_row(
            "SELECT count(*) FROM worklist_entry WHERE removed_reason IS NULL",
            [],
            |row| row.get(0),
        )?;
        let mut statement = self.connection.prepare(
            "SELECT e.referral_id, e.patient_name, rp.content_id, length(p.bytes), f.problem
             FROM worklist_entry e
             JOIN referral_photo rp ON rp.referral_id = e.referral_id
             LEFT JOIN photo p ON p.content_id = rp.content_id
             LEFT JOIN photo_failure f ON f.content_id = rp.content_id
             WHERE e.removed_reason IS NULL
             ORDER BY e.urgency_rank DESC, e.due_at, e.referral_id, rp.position",
        )?;
        let rows = statement.query_map([], |row| {
            Ok(ReadinessPhoto {
                referral_id: row.get(0)?,
                patient_name: row.get(1)?,
                content_id: row.get(2)?,
                stored_bytes: row.get::<_, Option<i64>>(3)?.map(|bytes| bytes as u64),
                problem: row.get(4)?,
            })
        })?;
        Ok((referrals as usize, rows.collect::<Result<_, _>>()?))
    }

    /// The stored worklist rows beside what they should be, recomputed from the referrals, the
    /// outbox and the drafts: (referral id, stored status, recomputed status). For tests and
    /// `integrity` checks: they must never differ.
    pub fn worklist_status_check(&self) -> Result<Vec<(String, String, String)>, CoreError> {
        let mut statement =
            self.connection.prepare("SELECT referral_id, status FROM worklist_entry ORDER BY referral_id")?;
        let stored: Vec<(String, String)> =
            statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<_, _>>()?;
        let transaction = self.connection.unchecked_transaction()?;
        let mut out = Vec::new();
        for (id, status) in stored {
            refresh_status(&transaction, &id)?;
            let fresh: String = transaction.query_row(
                "SELECT status FROM worklist_entry WHERE referral_id = ?1",
                [&id],
                |row| row.get(0),
            )?;
            out.push((id, status, fresh));
        }
        // Only looked: nothing is changed.
        transaction.rollback()?;
        let entries: i64 =
            self.connection.query_row("SELECT count(*) FROM worklist_entry", [], |row| row.get(0))?;
        let referrals: i64 =
            self.connection.query_row("SELECT count(*) FROM referral", [], |row| row.get(0))?;
        if entries != referrals {
            out.push((format!("{referrals} referrals"), format!("{entries} worklist rows"), String::new()));
        }
        Ok(out)
    }
}

pub(crate) fn removal_reason_str(reason: RemovalReason) -> &'static str {
    match reason {
        RemovalReason::Withdrawn => "withdrawn",
        RemovalReason::Reassigned => "reassigned",
    }
}

fn cached_referral(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<CachedReferral, CoreError>> {
    let body: String = row.get(0)?;
    let due_at: String = row.get(1)?;
    let opened_at: Option<String> = row.get(2)?;
    let removed: Option<String> = row.get(3)?;
    Ok((|| {
        Ok(CachedReferral {
            referral: decode(&body)?,
            due_at: parse_time(&due_at)?,
            opened_at: opened_at.as_deref().map(parse_time).transpose()?,
            removed_reason: match removed.as_deref() {
                None => None,
                Some("withdrawn") => Some(RemovalReason::Withdrawn),
                Some(_) => Some(RemovalReason::Reassigned),
            },
        })
    })())
}

fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, CoreError> {
    serde_json::from_str(text).map_err(|e| CoreError::Cache(format!("unreadable cached record ({e})")))
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, CoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|e| CoreError::Cache(format!("unreadable time in cache ({e})")))
}

impl Cache {
    /// Referrals whose newest outcome the hub acknowledged, with when.
    pub fn sent_referrals(&self) -> Result<Vec<crate::plan::SentReferral>, CoreError> {
        let mut statement = self.connection.prepare(
            "SELECT r.id, o.sent_at FROM referral r JOIN outbox o ON o.referral_id = r.id
             WHERE o.state = 'sent' AND o.sent_at IS NOT NULL
               AND o.rowid = (SELECT max(rowid) FROM outbox WHERE referral_id = r.id)",
        )?;
        let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (referral_id, sent_at) = row?;
            out.push(crate::plan::SentReferral { referral_id, sent_at: parse_time(&sent_at)? });
        }
        Ok(out)
    }

    /// Deletes referrals and the photos no other referral uses, in one transaction. Outbox rows
    /// (signed outcomes and receipts) are kept.
    pub fn purge_referrals(&mut self, referral_ids: &[String]) -> Result<(), CoreError> {
        let transaction = self.connection.transaction()?;
        for referral_id in referral_ids {
            // The reviewed copy holds the patient's details: it goes with the referral; the
            // signed outcome and its receipt stay as proof.
            transaction.execute(
                "DELETE FROM reviewed_referral WHERE outcome_id IN (SELECT outcome_id FROM outbox WHERE referral_id = ?1)",
                [referral_id],
            )?;
            transaction.execute("DELETE FROM referral WHERE id = ?1", [referral_id])?;
        }
        delete_orphans(&transaction)?;
        transaction.commit()?;
        Ok(())
    }

    /// Number of verified photos per referral.
    pub fn photos_ready_by_referral(&self) -> Result<std::collections::HashMap<String, usize>, CoreError> {
        let mut statement = self.connection.prepare(
            "SELECT rp.referral_id, count(p.content_id) FROM referral_photo rp
             LEFT JOIN photo p ON p.content_id = rp.content_id GROUP BY rp.referral_id",
        )?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as usize)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dermdesk_protocol::*;

    fn photo(content_id: &str) -> PhotoMeta {
        PhotoMeta {
            content_id: content_id.repeat(64),
            size: 3,
            width: 1,
            height: 1,
            media_type: "image/jpeg".into(),
            captured_at: "2026-11-23T09:00:00Z".parse().unwrap(),
            view: PhotoView::Overview,
            body_site: "left forearm".into(),
            source: PhotoSource::GpPractice,
        }
    }

    fn upsert(id: &str, photos: &[&str]) -> CacheOp {
        let referral = Referral {
            photos: photos.iter().map(|id| photo(id)).collect(),
            ..crate::plan::tests::referral(id, 1)
        };
        CacheOp::Upsert { referral: Box::new(referral), due_at: crate::clock::test_instant() }
    }

    #[test]
    fn a_page_drops_only_the_photos_no_referral_names_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = Cache::open(&dir.path().join("cache.sqlite3"), &[7; 32]).unwrap();
        let now = crate::clock::test_instant();
        cache.apply(&[upsert("R1", &["a", "b"])], now).unwrap();
        for id in ["a", "b"] {
            cache.store_verified_photo(&id.repeat(64), "image/jpeg", b"abc", now).unwrap();
        }
        // R1 drops both photos; R2, later in the same page, names "a" again.
        cache.apply(&[upsert("R1", &[]), upsert("R2", &["a"])], now).unwrap();
        assert!(cache.has_photo(&"a".repeat(64)).unwrap(), "a photo named again must stay");
        assert!(!cache.has_photo(&"b".repeat(64)).unwrap(), "a photo nobody names must go");
        cache.apply(&[CacheOp::Delete { referral_id: "R2".into() }], now).unwrap();
        assert!(!cache.has_photo(&"a".repeat(64)).unwrap());
        let ids: Vec<String> =
            cache.local_referrals(&["R1", "R2"]).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["R1"]);
    }

    #[test]
    fn what_is_made_from_a_photo_is_kept_only_with_the_photo_and_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = Cache::open(&dir.path().join("cache.sqlite3"), &[7; 32]).unwrap();
        let now = crate::clock::test_instant();
        let derived = PhotoDerived {
            width: 6,
            height: 4,
            orientation: 6,
            preview: b"preview".to_vec(),
            thumbnail: b"thumb".to_vec(),
            quality_json: "{}".into(),
        };
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        cache.apply(&[upsert("R1", &["a", "b"])], now).unwrap();
        cache.store_verified_photo(&a, "image/jpeg", b"abc", now).unwrap();
        // Not stored (yet): nothing is kept for it.
        cache.store_photo_derived(&b, &derived, now).unwrap();
        assert_eq!(cache.photo_derived_image(&b, false).unwrap(), None);
        assert_eq!(cache.photos_without_derived(10).unwrap(), std::slice::from_ref(&a));
        cache.store_photo_derived(&a, &derived, now).unwrap();
        assert_eq!(cache.photo_derived_image(&a, false).unwrap().as_deref(), Some(&b"preview"[..]));
        assert_eq!(cache.photo_derived_image(&a, true).unwrap().as_deref(), Some(&b"thumb"[..]));
        assert_eq!(cache.photo_derived_geometry(&a).unwrap(), Some((6, 4, 6, "image/jpeg".into())));
        assert_eq!(cache.photo_quality(&a).unwrap().as_deref(), Some("{}"));
        assert!(cache.photos_without_derived(10).unwrap().is_empty());
        // The referral goes, its photo goes, and what was made from it too.
        cache.apply(&[CacheOp::Delete { referral_id: "R1".into() }], now).unwrap();
        assert_eq!(cache.photo_derived_image(&a, false).unwrap(), None);
        let rows: i64 =
            cache.connection.query_row("SELECT COUNT(*) FROM photo_derived", [], |row| row.get(0)).unwrap();
        assert_eq!(rows, 0);
    }

    /// A cache from before schema 5 gets its worklist rows, statuses included, on opening.
    #[test]
    fn the_worklist_table_is_filled_from_an_older_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.sqlite3");
        let now = crate::clock::test_instant();
        let expected = {
            let cache = Cache::open(&path, &[7; 32]).unwrap();
            let mut cache = cache;
            cache.apply(&[upsert("R1", &["a"]), upsert("R2", &[]), upsert("R3", &[])], now).unwrap();
            cache.mark_opened("R2", now).unwrap();
            cache.save_draft("R3", "{}", now).unwrap();
            let expected = cache.worklist_page(&WorklistFilter::default(), 0, None).unwrap();
            let counts = cache.worklist_counts(&[]).unwrap();
            // Back to schema 4, as an older Derm Desk left it.
            cache
                .connection
                .execute_batch(
                    "DROP TABLE photo_derived; DROP TABLE worklist_entry; DROP TABLE worklist_count;
                     PRAGMA user_version = 4;",
                )
                .unwrap();
            (expected, counts)
        };
        let cache = Cache::open(&path, &[7; 32]).unwrap();
        let statuses: Vec<ReferralStatus> = expected.0.iter().map(|entry| entry.status).collect();
        assert_eq!(statuses, [ReferralStatus::New, ReferralStatus::Opened, ReferralStatus::Draft]);
        assert_eq!(cache.worklist_page(&WorklistFilter::default(), 0, None).unwrap(), expected.0);
        assert_eq!(cache.worklist_counts(&[]).unwrap(), expected.1);
    }
}
