//! The hub's SQLite schema and its migrations, keyed by `PRAGMA user_version`.
//!
//! Migrations are append-only: a released entry is never edited, a change is a new entry. The
//! database is SQLCipher's build of SQLite used without a key, i.e. plain SQLite: the hub holds
//! synthetic data and tests, not a clinical record.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use crate::HubError;

/// Schema versions, oldest first; `user_version` counts how many have been applied.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE consultants (
        id           TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        created_at   TEXT NOT NULL
    );

    -- Codes are stored normalised (upper case, no separators); used_at marks them spent.
    CREATE TABLE enrolment_codes (
        code           TEXT PRIMARY KEY,
        consultant_id  TEXT NOT NULL REFERENCES consultants(id),
        created_at     TEXT NOT NULL,
        used_at        TEXT,
        used_by_device TEXT
    );

    -- Only the SHA-256 of a device token is kept: a copy of this file cannot act as a device.
    CREATE TABLE devices (
        id            TEXT PRIMARY KEY,
        consultant_id TEXT NOT NULL REFERENCES consultants(id),
        name          TEXT NOT NULL,
        public_key    TEXT NOT NULL,
        key_id        TEXT NOT NULL,
        token_sha256  TEXT NOT NULL UNIQUE,
        enrolled_at   TEXT NOT NULL,
        revoked_at    TEXT
    );

    -- The bytes live in the photo directory as <content_id>; media_type is sniffed on arrival.
    CREATE TABLE photos (
        content_id TEXT PRIMARY KEY,
        size       INTEGER NOT NULL,
        media_type TEXT NOT NULL,
        stored_at  TEXT NOT NULL
    );

    -- json is the referral's current version, exactly as the feed serves it.
    CREATE TABLE referrals (
        id            TEXT PRIMARY KEY,
        version       INTEGER NOT NULL,
        json          TEXT NOT NULL,
        consultant_id TEXT NOT NULL REFERENCES consultants(id),
        status        TEXT NOT NULL CHECK (status IN ('open', 'decided', 'withdrawn')),
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    );

    -- Every photo any version of a referral has named: a consultant keeps access to photos of
    -- a version they were sent even after the GP practice replaces them.
    CREATE TABLE referral_photos (
        referral_id TEXT NOT NULL REFERENCES referrals(id),
        content_id  TEXT NOT NULL REFERENCES photos(content_id),
        PRIMARY KEY (referral_id, content_id)
    );
    CREATE INDEX referral_photos_by_content ON referral_photos(content_id);

    -- Every consultant a referral has ever been assigned to (photo access, outcome refusals).
    CREATE TABLE referral_assignments (
        referral_id   TEXT NOT NULL REFERENCES referrals(id),
        consultant_id TEXT NOT NULL REFERENCES consultants(id),
        assigned_at   TEXT NOT NULL,
        PRIMARY KEY (referral_id, consultant_id)
    );

    -- The per-consultant change log behind GET /v1/feed. seq is the cursor. Compacted: a new
    -- entry for (consultant, referral) deletes the older ones, so catching up never replays
    -- history and an old upsert cannot show a version the consultant was never sent.
    CREATE TABLE feed (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        consultant_id TEXT NOT NULL REFERENCES consultants(id),
        referral_id   TEXT NOT NULL REFERENCES referrals(id),
        kind          TEXT NOT NULL CHECK (kind IN ('upsert', 'removed')),
        reason        TEXT CHECK (reason IN ('withdrawn', 'reassigned')),
        recorded_at   TEXT NOT NULL,
        CHECK ((kind = 'upsert') = (reason IS NULL))
    );
    CREATE INDEX feed_by_consultant ON feed(consultant_id, seq);
    CREATE INDEX feed_by_referral ON feed(consultant_id, referral_id);

    -- Accepted outcomes. The unique referral_id is the database's own guard on "exactly one
    -- accepted outcome per referral", behind the check the hub makes first.
    CREATE TABLE outcomes (
        outcome_id     TEXT PRIMARY KEY,
        referral_id    TEXT NOT NULL UNIQUE REFERENCES referrals(id),
        device_id      TEXT NOT NULL REFERENCES devices(id),
        payload_json   TEXT NOT NULL,
        jws            TEXT NOT NULL,
        payload_sha256 TEXT NOT NULL,
        received_at    TEXT NOT NULL
    );
    "#,
    // 2: signed receipts and device key rotation.
    r#"
    -- The hub's own Ed25519 key, which signs receipts: one row, made at first open. The secret
    -- stays in this file because the reference hub holds synthetic data; a real service would
    -- keep it in an HSM or a key management service and sign through it.
    CREATE TABLE hub_key (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        secret_key  TEXT NOT NULL,
        key_id      TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );

    -- Every key each device has had. devices.public_key and devices.key_id are the current one;
    -- a rotated-out key keeps its row with retired_at (and the key that replaced it), so the
    -- outcomes it signed before then still verify and those it signs after are refused.
    CREATE TABLE device_keys (
        device_id   TEXT NOT NULL REFERENCES devices(id),
        key_id      TEXT NOT NULL,
        public_key  TEXT NOT NULL,
        added_at    TEXT NOT NULL,
        retired_at  TEXT,
        replaced_by TEXT,
        PRIMARY KEY (device_id, key_id)
    );
    INSERT INTO device_keys (device_id, key_id, public_key, added_at)
        SELECT id, key_id, public_key, enrolled_at FROM devices;

    -- The receipt as first signed, returned again for every repeat. NULL for outcomes recorded
    -- before receipts were signed: signed (and kept) at their next repeat.
    ALTER TABLE outcomes ADD COLUMN receipt_jws TEXT;
    "#,
    // 3: devices' audit logs, hash-chained per device (audit.rs). Ids only, no patient data.
    r#"
    CREATE TABLE audit_entries (
        device_id   TEXT NOT NULL REFERENCES devices(id),
        seq         INTEGER NOT NULL,
        at          TEXT NOT NULL,
        event       TEXT NOT NULL,
        referral_id TEXT,
        outcome_id  TEXT,
        detail      TEXT,
        prev_hash   TEXT NOT NULL,
        hash        TEXT NOT NULL,
        received_at TEXT NOT NULL,
        PRIMARY KEY (device_id, seq)
    );
    "#,
];

/// Opens (creating if needed) and migrates the database. `None` is a private in-memory one.
pub(crate) fn open(db_path: Option<&Path>) -> Result<Connection, HubError> {
    let mut connection = match db_path {
        Some(path) => {
            let connection = Connection::open(path)?;
            // WAL lets `dermdesk-hub admin --db FILE ...` write while a server reads the file;
            // the busy timeout makes the two wait for each other instead of failing.
            let mode: String =
                connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(HubError::Corrupt(format!("could not switch the database to WAL (got {mode})")));
            }
            connection.busy_timeout(Duration::from_secs(5))?;
            connection
        }
        None => Connection::open_in_memory()?,
    };
    connection.pragma_update(None, "foreign_keys", true)?;
    migrate(&mut connection)?;
    Ok(connection)
}

fn migrate(connection: &mut Connection) -> Result<(), HubError> {
    let applied: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let applied = usize::try_from(applied).unwrap_or(usize::MAX);
    if applied > MIGRATIONS.len() {
        return Err(HubError::Corrupt(format!(
            "the database has schema version {applied}, newer than this hub's {}; use a newer hub",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        // Each step and its version bump commit together: a crash never leaves a half schema.
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction.execute_batch(sql)?;
        transaction.pragma_update(None, "user_version", (index + 1) as i64)?;
        transaction.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_database_is_migrated_once_and_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        drop(open(Some(&path)).unwrap());
        // Opening again must not re-run migration 1 (it would fail on CREATE TABLE).
        let connection = open(Some(&path)).unwrap();
        let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let mode: String = connection.pragma_query_value(None, "journal_mode", |row| row.get(0)).unwrap();
        assert_eq!(mode.to_lowercase(), "wal");
    }

    #[test]
    fn refuses_a_database_from_a_newer_hub() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        drop(open(Some(&path)).unwrap());
        Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(open(Some(&path)), Err(HubError::Corrupt(_))));
    }
}
