//! `Hub`: the service's state (one SQLite connection and a photo directory) and the operations
//! the GP-practice side performs on referrals: create, update, withdraw, reassign.
//!
//! Device-facing operations live beside this file (`enrolment.rs`, `feed.rs`, `photos.rs`,
//! `outcomes.rs`) as further `impl Hub` blocks. Every operation is synchronous and short; the HTTP
//! layer runs them on the blocking pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use dermdesk_protocol::{is_content_id, Consultant, PhotoMeta, PublicKeyInfo, Referral, RemovalReason};
use ed25519_dalek::SigningKey;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::feed::{append_change, FeedEntry};
use crate::keys::load_or_create_hub_key;
use crate::{db, HubError};

/// The hub. Cheap to clone: clones share one database connection and photo directory.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    // One connection behind a mutex serialises every write, which is what makes the outcome
    // checks and the insert race-free without retry loops. A reference hub never needs more.
    connection: Mutex<Connection>,
    photo_dir: PathBuf,
    /// The hub's own key, which signs receipts (`keys.rs`); loaded once at open.
    receipt_key: SigningKey,
    /// Where "now" comes from: the computer's clock, or a chosen instant in the demo and tests.
    clock: HubClock,
}

/// "Now" for the hub. The hub never imports the app's core, so its clock is a plain function.
pub type HubClock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// A clock that starts at `start` and runs at the pace of the monotonic clock (the demo and the
/// tests run the hub "on a Friday at 16:59" this way).
pub fn clock_starting_at(start: DateTime<Utc>) -> HubClock {
    let since = std::time::Instant::now();
    Arc::new(move || start + chrono::Duration::from_std(since.elapsed()).unwrap_or_default())
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("photo_dir", &self.inner.photo_dir).finish_non_exhaustive()
    }
}

/// Where a referral stands on the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReferralStatus {
    Open,
    Decided,
    Withdrawn,
}

impl ReferralStatus {
    fn as_str(self) -> &'static str {
        match self {
            ReferralStatus::Open => "open",
            ReferralStatus::Decided => "decided",
            ReferralStatus::Withdrawn => "withdrawn",
        }
    }

    fn parse(text: &str) -> Result<ReferralStatus, HubError> {
        match text {
            "open" => Ok(ReferralStatus::Open),
            "decided" => Ok(ReferralStatus::Decided),
            "withdrawn" => Ok(ReferralStatus::Withdrawn),
            other => Err(HubError::Corrupt(format!("unknown referral status {other:?}"))),
        }
    }
}

/// The columns of `referrals` the checks need, without parsing the JSON.
#[derive(Debug, Clone)]
pub(crate) struct ReferralState {
    pub(crate) version: u64,
    pub(crate) status: ReferralStatus,
    pub(crate) consultant_id: String,
}

impl Hub {
    /// Opens the hub's database (`None`: in memory, gone when the last clone is dropped) and
    /// its photo directory, creating both if needed.
    pub fn open(db_path: Option<&Path>, photo_dir: &Path) -> Result<Hub, HubError> {
        Hub::open_with_clock(db_path, photo_dir, Arc::new(Utc::now))
    }

    /// [`Hub::open`] on another clock.
    pub fn open_with_clock(
        db_path: Option<&Path>,
        photo_dir: &Path,
        clock: HubClock,
    ) -> Result<Hub, HubError> {
        std::fs::create_dir_all(photo_dir)?;
        let mut connection = db::open(db_path)?;
        let receipt_key = load_or_create_hub_key(&mut connection)?;
        Ok(Hub {
            inner: Arc::new(Inner {
                connection: Mutex::new(connection),
                photo_dir: photo_dir.to_path_buf(),
                receipt_key,
                clock,
            }),
        })
    }

    /// Now, by the hub's clock.
    pub fn now(&self) -> DateTime<Utc> {
        (self.inner.clock)()
    }

    /// The hub's public key, which signs every receipt (`GET /v1/hub-key`).
    pub fn hub_key(&self) -> PublicKeyInfo {
        PublicKeyInfo::of(&self.inner.receipt_key.verifying_key())
    }

    pub(crate) fn receipt_key(&self) -> &SigningKey {
        &self.inner.receipt_key
    }

    pub(crate) fn photo_dir(&self) -> &Path {
        &self.inner.photo_dir
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-written change behind: every write
        // is inside a rusqlite Transaction, which rolls back when dropped. So poisoning is safe
        // to ignore.
        self.inner.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `body` in one IMMEDIATE transaction (the write lock is taken up front, so checks and
    /// writes see the same state even when `dermdesk-hub admin` shares the file).
    pub(crate) fn write<T>(
        &self,
        body: impl FnOnce(&Transaction<'_>) -> Result<T, HubError>,
    ) -> Result<T, HubError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = body(&transaction)?;
        transaction.commit()?;
        Ok(value)
    }

    pub fn create_consultant(&self, display_name: &str) -> Result<Consultant, HubError> {
        self.insert_consultant(&uuid::Uuid::new_v4().to_string(), display_name)
    }

    pub(crate) fn insert_consultant(&self, id: &str, display_name: &str) -> Result<Consultant, HubError> {
        let display_name = display_name.trim();
        if display_name.is_empty() || display_name.chars().count() > 200 {
            return Err(HubError::BadRequest(
                "a consultant's display name must be 1 to 200 characters".into(),
            ));
        }
        self.write(|transaction| {
            transaction.execute(
                "INSERT INTO consultants (id, display_name, created_at) VALUES (?1, ?2, ?3)",
                params![id, display_name, timestamp(self.now())],
            )?;
            Ok(())
        })?;
        Ok(Consultant { id: id.to_string(), display_name: display_name.to_string() })
    }

    pub(crate) fn consultant(&self, id: &str) -> Result<Option<Consultant>, HubError> {
        Ok(self
            .lock()
            .query_row("SELECT display_name FROM consultants WHERE id = ?1", [id], |row| row.get(0))
            .optional()?
            .map(|display_name| Consultant { id: id.to_string(), display_name }))
    }

    /// Stores a new referral (at the version it carries) and puts it in `assign_to`'s feed.
    /// Its photos must already be stored (`add_photo_*`) with the size and media type it states.
    pub fn create_referral(&self, referral: &Referral, assign_to: &str) -> Result<(), HubError> {
        check_referral_id(&referral.id)?;
        check_patient_identity(referral)?;
        self.write(|transaction| {
            require_consultant(transaction, assign_to)?;
            if referral_state(transaction, &referral.id)?.is_some() {
                return Err(HubError::BadRequest(format!(
                    "referral {} already exists; update it instead",
                    referral.id
                )));
            }
            check_photos(transaction, &referral.photos)?;
            let now = timestamp(self.now());
            transaction.execute(
                "INSERT INTO referrals (id, version, json, consultant_id, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![
                    referral.id,
                    to_sql_integer(referral.version)?,
                    referral_json(referral)?,
                    assign_to,
                    ReferralStatus::Open.as_str(),
                    now,
                ],
            )?;
            link_photos(transaction, referral)?;
            record_assignment(transaction, &referral.id, assign_to, self.now())?;
            append_change(transaction, assign_to, &referral.id, FeedEntry::Upsert, self.now())
        })
    }

    /// The GP practice changed the referral: stores `referral` as the next version (whatever
    /// version it carries) and returns that version. The assigned consultant's feed gets it.
    pub fn update_referral(&self, referral: &Referral) -> Result<u64, HubError> {
        check_patient_identity(referral)?;
        self.write(|transaction| {
            let state = require_referral(transaction, &referral.id)?;
            match state.status {
                ReferralStatus::Open => {}
                ReferralStatus::Withdrawn => return Err(HubError::ReferralWithdrawn(referral.id.clone())),
                // The consultant answered the version they saw; changing it now would leave an
                // outcome that refers to text nobody can see any more.
                ReferralStatus::Decided => return Err(HubError::AlreadyDecided(referral.id.clone())),
            }
            check_photos(transaction, &referral.photos)?;
            let version = state.version + 1;
            let stored = Referral { version, ..referral.clone() };
            transaction.execute(
                "UPDATE referrals SET version = ?2, json = ?3, updated_at = ?4 WHERE id = ?1",
                params![
                    referral.id,
                    to_sql_integer(version)?,
                    referral_json(&stored)?,
                    timestamp(self.now())
                ],
            )?;
            link_photos(transaction, &stored)?;
            append_change(transaction, &state.consultant_id, &referral.id, FeedEntry::Upsert, self.now())?;
            Ok(version)
        })
    }

    /// The GP practice withdrew the referral. Withdrawing twice is not an error.
    pub fn withdraw_referral(&self, referral_id: &str) -> Result<(), HubError> {
        self.write(|transaction| {
            let state = require_referral(transaction, referral_id)?;
            match state.status {
                ReferralStatus::Open => {}
                ReferralStatus::Withdrawn => return Ok(()),
                ReferralStatus::Decided => return Err(HubError::AlreadyDecided(referral_id.to_string())),
            }
            set_status(transaction, referral_id, ReferralStatus::Withdrawn, self.now())?;
            append_change(
                transaction,
                &state.consultant_id,
                referral_id,
                FeedEntry::Removed(RemovalReason::Withdrawn),
                self.now(),
            )
        })
    }

    /// Moves an open referral to another consultant: it leaves the old consultant's feed
    /// (`removed`, `reassigned`) and arrives in the new one's.
    pub fn reassign_referral(&self, referral_id: &str, to_consultant_id: &str) -> Result<(), HubError> {
        self.write(|transaction| {
            let state = require_referral(transaction, referral_id)?;
            match state.status {
                ReferralStatus::Open => {}
                ReferralStatus::Withdrawn => {
                    return Err(HubError::ReferralWithdrawn(referral_id.to_string()))
                }
                ReferralStatus::Decided => return Err(HubError::AlreadyDecided(referral_id.to_string())),
            }
            require_consultant(transaction, to_consultant_id)?;
            if state.consultant_id == to_consultant_id {
                return Err(HubError::BadRequest(format!(
                    "referral {referral_id} is already assigned to that consultant"
                )));
            }
            transaction.execute(
                "UPDATE referrals SET consultant_id = ?2, updated_at = ?3 WHERE id = ?1",
                params![referral_id, to_consultant_id, timestamp(self.now())],
            )?;
            record_assignment(transaction, referral_id, to_consultant_id, self.now())?;
            append_change(
                transaction,
                &state.consultant_id,
                referral_id,
                FeedEntry::Removed(RemovalReason::Reassigned),
                self.now(),
            )?;
            append_change(transaction, to_consultant_id, referral_id, FeedEntry::Upsert, self.now())
        })
    }

    pub(crate) fn referral_exists(&self, referral_id: &str) -> Result<bool, HubError> {
        Ok(referral_state(&self.lock(), referral_id)?.is_some())
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the impl blocks. They take a Connection (a Transaction derefs to one).

/// Timestamps are stored as RFC 3339 with full precision, so a value read back compares equal
/// to the one written (receipts for repeated outcomes must match the first one exactly).
pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub(crate) fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, HubError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| HubError::Corrupt(format!("stored timestamp {text:?} is not RFC 3339")))
}

/// SQLite integers are i64; protocol versions and sizes are u64 that never get near 2^63.
pub(crate) fn to_sql_integer(value: u64) -> Result<i64, HubError> {
    i64::try_from(value).map_err(|_| HubError::BadRequest(format!("{value} is too large")))
}

pub(crate) fn from_sql_integer(value: i64) -> Result<u64, HubError> {
    u64::try_from(value).map_err(|_| HubError::Corrupt(format!("stored number {value} is negative")))
}

pub(crate) fn referral_state(
    connection: &Connection,
    referral_id: &str,
) -> Result<Option<ReferralState>, HubError> {
    let row = connection
        .query_row(
            "SELECT version, status, consultant_id FROM referrals WHERE id = ?1",
            [referral_id],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?)),
        )
        .optional()?;
    row.map(|(version, status, consultant_id)| {
        Ok(ReferralState {
            version: from_sql_integer(version)?,
            status: ReferralStatus::parse(&status)?,
            consultant_id,
        })
    })
    .transpose()
}

fn require_referral(connection: &Connection, referral_id: &str) -> Result<ReferralState, HubError> {
    referral_state(connection, referral_id)?.ok_or_else(|| HubError::not_found("referral", referral_id))
}

fn require_consultant(connection: &Connection, consultant_id: &str) -> Result<(), HubError> {
    let exists = connection
        .query_row("SELECT 1 FROM consultants WHERE id = ?1", [consultant_id], |_| Ok(()))
        .optional()?
        .is_some();
    if exists {
        Ok(())
    } else {
        Err(HubError::not_found("consultant", consultant_id))
    }
}

pub(crate) fn set_status(
    connection: &Connection,
    referral_id: &str,
    status: ReferralStatus,
    now: DateTime<Utc>,
) -> Result<(), HubError> {
    connection.execute(
        "UPDATE referrals SET status = ?2, updated_at = ?3 WHERE id = ?1",
        params![referral_id, status.as_str(), timestamp(now)],
    )?;
    Ok(())
}

/// Referral ids appear in admin URLs and log-free error messages, so they are kept plain.
fn check_referral_id(id: &str) -> Result<(), HubError> {
    let plain = !id.is_empty()
        && id.len() <= 100
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if plain {
        Ok(())
    } else {
        Err(HubError::BadRequest("a referral id must be 1 to 100 of A-Z, a-z, 0-9, '-', '_', '.'".into()))
    }
}

/// A referral names its patient by a valid NHS number (10 digits, modulus-11 check digit,
/// `dermdesk_protocol::nhs`): a mistyped one would put this patient's photos under another's.
fn check_patient_identity(referral: &Referral) -> Result<(), HubError> {
    dermdesk_protocol::check_nhs_number(&referral.patient.nhs_number).map_err(|error| {
        HubError::BadRequest(format!(
            "referral {}: {error} (10 digits, no spaces, with a valid modulus-11 check digit). \
             Nothing was stored; confirm the patient's NHS number with the practice and send the \
             referral again",
            referral.id
        ))
    })
}

/// Every photo a referral names must be stored, with the size and media type it claims: the
/// client verifies the bytes against this metadata and would otherwise refuse the referral.
fn check_photos(connection: &Connection, photos: &[PhotoMeta]) -> Result<(), HubError> {
    for photo in photos {
        if !is_content_id(&photo.content_id) {
            return Err(HubError::BadRequest("a photo's content_id is not 64 lower-case hex digits".into()));
        }
        let stored: Option<(i64, String)> = connection
            .query_row(
                "SELECT size, media_type FROM photos WHERE content_id = ?1",
                [&photo.content_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let Some((size, media_type)) = stored else {
            return Err(HubError::BadRequest(format!(
                "photo {} has not been stored; add its bytes first",
                photo.content_id
            )));
        };
        if from_sql_integer(size)? != photo.size {
            return Err(HubError::BadRequest(format!(
                "photo {} is {size} bytes, but the referral says {}",
                photo.content_id, photo.size
            )));
        }
        if media_type != photo.media_type {
            return Err(HubError::BadRequest(format!(
                "photo {} is {media_type}, but the referral says {}",
                photo.content_id, photo.media_type
            )));
        }
    }
    Ok(())
}

fn link_photos(connection: &Connection, referral: &Referral) -> Result<(), HubError> {
    for photo in &referral.photos {
        connection.execute(
            "INSERT OR IGNORE INTO referral_photos (referral_id, content_id) VALUES (?1, ?2)",
            params![referral.id, photo.content_id],
        )?;
    }
    Ok(())
}

fn record_assignment(
    connection: &Connection,
    referral_id: &str,
    consultant_id: &str,
    now: DateTime<Utc>,
) -> Result<(), HubError> {
    connection.execute(
        "INSERT OR IGNORE INTO referral_assignments (referral_id, consultant_id, assigned_at) VALUES (?1, ?2, ?3)",
        params![referral_id, consultant_id, timestamp(now)],
    )?;
    Ok(())
}

fn referral_json(referral: &Referral) -> Result<String, HubError> {
    serde_json::to_string(referral)
        .map_err(|error| HubError::Corrupt(format!("referral does not serialise: {error}")))
}
