//! `sync`: how close Derm Desk's sync comes to doing the bare work, measured side by side in one
//! run against one in-process hub on loopback.
//!
//! - Photos: `Desk::fetch_photos` (download, keep resumable pieces, verify size, SHA-256 and
//!   header, store encrypted) against plain HTTP GETs of the same photos from the same hub
//!   written to files, as `curl -o` would, both with the desk's concurrency and one at a time.
//!   The ratio is taken against the faster of the two.
//! - Referral metadata: `Desk::pull_feed` of every page from an empty cache against a plain,
//!   unencrypted SQLite upsert of the same rows into the same tables in one transaction.
//! - No change: with every referral cached, one sync as the engine runs it, counting the
//!   requests the hub receives.
//!
//! Each part also times a context run that is not in any ratio: the same bytes or rows stored
//! in SQLCipher as the cache must (encrypted, durable, one transaction per photo or feed page),
//! so the report shows how much of the gap is the storage the design requires.
//!
//! Candidates and references alternate (A B C D, B C D A, ...) so a noisy neighbour slows each
//! of them alike; medians are reported, with min and max.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dermdesk_core::plan::DEFAULT_RETENTION;
use dermdesk_core::Desk;
use dermdesk_protocol::{Consultant, PhotoMeta, Referral, FEED_PAGE_MAX};
use rusqlite::{params, Connection};

use crate::fixtures::{full_size_photos, many_referrals, BenchDesk, BenchHub, Result};
use crate::stats::{verdict, Samples};

/// What to measure and how often.
#[derive(Debug, Clone)]
pub struct Settings {
    pub repetitions: usize,
    pub photos: usize,
    pub referrals: usize,
    /// Photo downloads at a time, for the desk and the concurrent reference alike.
    pub concurrency: usize,
    /// Where the photos are kept between runs, work files go, and `sync.json` is written.
    pub out_dir: PathBuf,
    /// A markdown file whose results section is replaced by this run's table.
    pub doc: Option<PathBuf>,
    /// Run one part only (for profiling); nothing is written.
    pub only: Option<Part>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Photos,
    /// Referral metadata, then the no-change sync (which needs its cached desk).
    Metadata,
}

/// Goals from the issue: candidate throughput / best reference throughput, and reference time /
/// candidate time.
const PHOTO_GOAL: f64 = 0.8;
const METADATA_GOAL: f64 = 0.5;
const NOCHANGE_GOAL_REQUESTS: u64 = 1;

fn core(error: dermdesk_core::CoreError) -> String {
    error.to_string()
}

pub async fn run(settings: Settings) -> Result {
    let work = settings.out_dir.join("work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;

    eprintln!("preparing: {} full-size photos, {} referrals", settings.photos, settings.referrals);
    let photo_cache = settings.out_dir.join("photos");
    let (photo_set, photo_metas) = {
        let (cache, wanted) = (photo_cache.clone(), settings.photos);
        tokio::task::spawn_blocking(move || full_size_photos(&cache, wanted))
            .await
            .map_err(|e| e.to_string())??
    };
    let (template_set, referrals) = {
        let (cache, count) = (settings.out_dir.join("templates"), settings.referrals);
        tokio::task::spawn_blocking(move || many_referrals(&cache, count))
            .await
            .map_err(|e| e.to_string())??
    };

    let hub = BenchHub::start(&work).await?;
    let photo_consultant = hub.consultant("Dr Photo Bench (synthetic)")?;
    let metadata_consultant = hub.consultant("Dr Metadata Bench (synthetic)")?;
    let prepare = {
        let hub = hub.hub.clone();
        let (photo_set, template_set, referrals) =
            (photo_set.clone(), template_set.clone(), referrals.clone());
        let (photo_consultant, metadata_consultant) = (photo_consultant.clone(), metadata_consultant.clone());
        move || -> Result {
            let started = Instant::now();
            for set in [&photo_set, &template_set] {
                for path in set.photo_files.values() {
                    hub.add_photo_file(path).map_err(|e| e.to_string())?;
                }
            }
            for referral in &photo_set.referrals {
                hub.create_referral(referral, &photo_consultant.id).map_err(|e| e.to_string())?;
            }
            for referral in &referrals {
                hub.create_referral(referral, &metadata_consultant.id).map_err(|e| e.to_string())?;
            }
            eprintln!("hub seeded in {:.1?}", started.elapsed());
            Ok(())
        }
    };
    tokio::task::spawn_blocking(prepare).await.map_err(|e| e.to_string())??;

    // For profiling one part (`--only photos` or `--only metadata`); no report is written.
    if settings.only.is_some() {
        if settings.only == Some(Part::Photos) {
            photo_benchmark(&hub, &photo_consultant, &photo_metas, &settings, &work).await?;
        } else {
            let (_, desk) =
                metadata_benchmark(&hub, &metadata_consultant, &referrals, &settings, &work).await?;
            nochange_benchmark(&hub, &desk, &settings).await?;
        }
        eprintln!("one part only: no report written");
        let _ = std::fs::remove_dir_all(&work);
        return Ok(());
    }
    let photos = photo_benchmark(&hub, &photo_consultant, &photo_metas, &settings, &work).await?;
    let (metadata, cached_desk) =
        metadata_benchmark(&hub, &metadata_consultant, &referrals, &settings, &work).await?;
    let nochange = nochange_benchmark(&hub, &cached_desk, &settings).await?;
    drop(cached_desk);

    let report = Report { settings: settings.clone(), photos, metadata, nochange };
    println!("{}", report.markdown());
    let json_path = settings.out_dir.join("sync.json");
    let json = serde_json::to_string_pretty(&report.json()).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, json + "\n").map_err(|e| format!("{}: {e}", json_path.display()))?;
    eprintln!("wrote {}", json_path.display());
    if let Some(doc) = &settings.doc {
        update_doc(doc, &report.markdown())?;
        eprintln!("updated {}", doc.display());
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Photos

struct PhotoResults {
    photos: usize,
    bytes: u64,
    concurrency: usize,
    desk: Samples,
    plain_concurrent: Samples,
    plain_sequential: Samples,
    /// Context, not in the ratio: the same GETs stored in SQLCipher, nothing else.
    encrypted_store: Samples,
}

impl PhotoResults {
    fn megabytes_per_second(&self, samples: &Samples) -> f64 {
        self.bytes as f64 / 1e6 / samples.median()
    }

    /// Desk throughput over the faster reference's (ratio of medians).
    fn ratio(&self) -> f64 {
        self.plain_concurrent.median().min(self.plain_sequential.median()) / self.desk.median()
    }
}

async fn photo_benchmark(
    hub: &BenchHub,
    consultant: &Consultant,
    metas: &[PhotoMeta],
    settings: &Settings,
    work: &Path,
) -> Result<PhotoResults> {
    let bytes: u64 = metas.iter().map(|meta| meta.size).sum();
    eprintln!(
        "photos: {} photos, {:.1} MB, concurrency {}, {} repetitions",
        metas.len(),
        bytes as f64 / 1e6,
        settings.concurrency,
        settings.repetitions
    );
    // The reference asks with this desk's token: the same hub, the same authorisation check.
    let token_desk = BenchDesk::enrolled(hub, consultant, work.join("token-desk")).await?;
    let token = token_desk.token()?;
    let http = reqwest::Client::new();
    let mut results = PhotoResults {
        photos: metas.len(),
        bytes,
        concurrency: settings.concurrency,
        desk: Samples::default(),
        plain_concurrent: Samples::default(),
        plain_sequential: Samples::default(),
        encrypted_store: Samples::default(),
    };
    // One warm-up round of each, not recorded (first connections, page cache of the hub's files).
    for repetition in 0..=settings.repetitions {
        for turn in 0..4 {
            let which = (turn + repetition) % 4;
            let (url, token) = (&hub.url, &token);
            let elapsed = match which {
                0 => desk_fetch_photos(hub, consultant, metas, settings.concurrency, work).await?,
                1 => {
                    plain_download(&http, url, token, metas, settings.concurrency, Sink::Files, work).await?
                }
                2 => plain_download(&http, url, token, metas, 1, Sink::Files, work).await?,
                _ => {
                    let sink = Sink::EncryptedDatabase;
                    plain_download(&http, url, token, metas, settings.concurrency, sink, work).await?
                }
            };
            if repetition == 0 {
                continue;
            }
            let samples = match which {
                0 => &mut results.desk,
                1 => &mut results.plain_concurrent,
                2 => &mut results.plain_sequential,
                _ => &mut results.encrypted_store,
            };
            samples.push(elapsed);
        }
        if repetition > 0 {
            eprintln!(
                "  {repetition}: desk {:.3}s, plain concurrent {:.3}s, plain sequential {:.3}s, \
                 encrypted store {:.3}s",
                results.desk.all().last().unwrap_or(&f64::NAN),
                results.plain_concurrent.all().last().unwrap_or(&f64::NAN),
                results.plain_sequential.all().last().unwrap_or(&f64::NAN),
                results.encrypted_store.all().last().unwrap_or(&f64::NAN),
            );
        }
    }
    Ok(results)
}

/// The candidate: a new desk with the referrals cached (not timed) fetches every photo into its
/// empty encrypted cache.
async fn desk_fetch_photos(
    hub: &BenchHub,
    consultant: &Consultant,
    metas: &[PhotoMeta],
    concurrency: usize,
    work: &Path,
) -> Result<Duration> {
    let desk = BenchDesk::enrolled(hub, consultant, work.join("photo-desk")).await?;
    let client = desk.desk.client().map_err(core)?;
    // Photos are stored only for cached referrals, so the feed comes first.
    desk.desk.pull_feed(&client, |_| {}).await.map_err(core)?;
    let started = Instant::now();
    let summary = desk
        .desk
        .fetch_photos(&client, metas.to_vec(), concurrency, Arc::new(|_| {}), |_, _| {})
        .await
        .map_err(core)?;
    let elapsed = started.elapsed();
    let expected: u64 = metas.iter().map(|meta| meta.size).sum();
    if !summary.failed.is_empty() || summary.stored != metas.len() as u64 || summary.bytes != expected {
        return Err(format!("the desk did not store every photo: {summary:?}"));
    }
    Ok(elapsed)
}

/// Where the plain download puts the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    /// One file per photo, as `curl -o` would: the reference.
    Files,
    /// A blob per photo in a fresh SQLCipher database with the cache's `photo` table and
    /// settings, one transaction per photo, one writer at a time: context for what encrypted,
    /// durable storage costs by itself (no verification, no resumable pieces).
    EncryptedDatabase,
}

/// A fresh SQLCipher database (random key) with the cache's settings, for the context runs.
fn encrypted_database(path: &Path) -> Result<Connection> {
    remove_database(path);
    let sql = |e: rusqlite::Error| e.to_string();
    let connection = Connection::open(path).map_err(sql)?;
    let key: [u8; 32] = rand::random();
    let key: String = key.iter().map(|byte| format!("{byte:02x}")).collect();
    connection.execute_batch(&format!("PRAGMA key = \"x'{key}'\";")).map_err(sql)?;
    let cipher: Option<String> =
        connection.query_row("PRAGMA cipher_version", [], |row| row.get(0)).map_err(sql)?;
    if cipher.is_none_or(|version| version.is_empty()) {
        return Err("SQLCipher is not linked: the encrypted context would be plain".into());
    }
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA wal_autocheckpoint = 8192;
             PRAGMA foreign_keys = ON;
             PRAGMA temp_store = MEMORY;",
        )
        .map_err(sql)?;
    Ok(connection)
}

fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// The reference: GET each photo from the same hub and put its bytes in `sink`, nothing else
/// (no verification; for files no encryption and no fsync), at most `concurrency` at a time.
async fn plain_download(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    metas: &[PhotoMeta],
    concurrency: usize,
    sink: Sink,
    work: &Path,
) -> Result<Duration> {
    let dir = work.join("plain-download");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let database = match sink {
        Sink::Files => None,
        Sink::EncryptedDatabase => {
            let connection = encrypted_database(&dir.join("photos.sqlite3"))?;
            connection
                .execute_batch(
                    "CREATE TABLE photo (
                        content_id TEXT PRIMARY KEY,
                        media_type TEXT NOT NULL,
                        bytes BLOB NOT NULL,
                        verified_at TEXT NOT NULL
                     );",
                )
                .map_err(|e| e.to_string())?;
            Some(Arc::new(std::sync::Mutex::new(connection)))
        }
    };
    let started = Instant::now();
    let mut queue = metas.iter();
    let mut running = tokio::task::JoinSet::new();
    let mut written = 0u64;
    loop {
        while running.len() < concurrency.max(1) {
            let Some(meta) = queue.next() else { break };
            let request = http.get(format!("{base}/v1/photos/{}", meta.content_id)).bearer_auth(token);
            let path = dir.join(&meta.content_id);
            let (content_id, size, database) = (meta.content_id.clone(), meta.size, database.clone());
            running.spawn(async move {
                let mut response = request.send().await.map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("plain download answered {}", response.status()));
                }
                let Some(database) = database else {
                    // A plain blocking write, as curl does: into the page cache, microseconds a
                    // piece.
                    let mut file = std::fs::File::create(&path).map_err(|e| e.to_string())?;
                    let mut written = 0u64;
                    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
                        file.write_all(&chunk).map_err(|e| e.to_string())?;
                        written += chunk.len() as u64;
                    }
                    return Ok::<u64, String>(written);
                };
                let mut bytes = Vec::with_capacity(size as usize);
                while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
                    bytes.extend_from_slice(&chunk);
                }
                let written = bytes.len() as u64;
                blocking(move || {
                    let connection = database.lock().map_err(|e| e.to_string())?;
                    connection
                        .execute(
                            "INSERT INTO photo (content_id, media_type, bytes, verified_at) VALUES (?1, ?2, ?3, ?4)",
                            params![content_id, "image/jpeg", bytes, chrono::Utc::now().to_rfc3339()],
                        )
                        .map_err(|e| e.to_string())?;
                    Ok(())
                })
                .await?;
                Ok(written)
            });
        }
        let Some(joined) = running.join_next().await else { break };
        written += joined.map_err(|e| e.to_string())??;
    }
    let elapsed = started.elapsed();
    let expected: u64 = metas.iter().map(|meta| meta.size).sum();
    if written != expected {
        return Err(format!("plain download wrote {written} bytes, expected {expected}"));
    }
    drop(database);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(elapsed)
}

// ---------------------------------------------------------------------------------------------
// Referral metadata

struct MetadataResults {
    referrals: usize,
    photo_rows: usize,
    pages: u32,
    desk: Samples,
    /// Rows prepared before the clock starts (JSON bodies and timestamps already text).
    plain_rows_ready: Samples,
    /// The same, but turning each referral into its row (JSON, timestamps) inside the loop.
    plain_from_referrals: Samples,
    /// Context, not in the ratio: rows ready, written to SQLCipher one transaction per feed
    /// page's worth of rows, as the desk must (encryption and the page-at-a-time rule).
    encrypted_paged: Samples,
}

impl MetadataResults {
    /// Faster reference's time over the desk's (ratio of medians).
    fn ratio(&self) -> f64 {
        self.plain_rows_ready.median().min(self.plain_from_referrals.median()) / self.desk.median()
    }
}

async fn metadata_benchmark(
    hub: &BenchHub,
    consultant: &Consultant,
    referrals: &[Referral],
    settings: &Settings,
    work: &Path,
) -> Result<(MetadataResults, BenchDesk)> {
    eprintln!("metadata: {} referrals, {} repetitions", referrals.len(), settings.repetitions);
    let rows = Arc::new(referrals.iter().map(ReferralRow::new).collect::<Result<Vec<_>>>()?);
    let referrals = Arc::new(referrals.to_vec());
    let mut results = MetadataResults {
        referrals: referrals.len(),
        photo_rows: rows.iter().map(|row| row.photos.len()).sum(),
        pages: 0,
        desk: Samples::default(),
        plain_rows_ready: Samples::default(),
        plain_from_referrals: Samples::default(),
        encrypted_paged: Samples::default(),
    };
    let mut last_desk = None;
    for repetition in 0..=settings.repetitions {
        for turn in 0..4 {
            let which = (turn + repetition) % 4;
            let path = work.join("plain.sqlite3");
            let elapsed = match which {
                0 => {
                    // The previous desk goes first: its files must not share the disk cache.
                    drop(last_desk.take());
                    let desk = BenchDesk::enrolled(hub, consultant, work.join("metadata-desk")).await?;
                    let client = desk.desk.client().map_err(core)?;
                    let started = Instant::now();
                    let summary = desk.desk.pull_feed(&client, |_| {}).await.map_err(core)?;
                    let elapsed = started.elapsed();
                    if summary.changes != referrals.len() as u64 {
                        return Err(format!("the desk pulled {} changes", summary.changes));
                    }
                    results.pages = summary.pages;
                    last_desk = Some(desk);
                    elapsed
                }
                1 => {
                    let rows = Arc::clone(&rows);
                    blocking(move || plain_upsert(&path, Input::Rows(&rows), Storage::Plain)).await?
                }
                2 => {
                    let referrals = Arc::clone(&referrals);
                    blocking(move || plain_upsert(&path, Input::Referrals(&referrals), Storage::Plain))
                        .await?
                }
                _ => {
                    let rows = Arc::clone(&rows);
                    blocking(move || plain_upsert(&path, Input::Rows(&rows), Storage::EncryptedPaged)).await?
                }
            };
            if repetition == 0 {
                continue;
            }
            match which {
                0 => results.desk.push(elapsed),
                1 => results.plain_rows_ready.push(elapsed),
                2 => results.plain_from_referrals.push(elapsed),
                _ => results.encrypted_paged.push(elapsed),
            }
        }
        if repetition > 0 {
            eprintln!(
                "  {repetition}: desk {:.3}s, plain rows ready {:.3}s, plain from referrals {:.3}s, \
                 encrypted paged {:.3}s",
                results.desk.all().last().unwrap_or(&f64::NAN),
                results.plain_rows_ready.all().last().unwrap_or(&f64::NAN),
                results.plain_from_referrals.all().last().unwrap_or(&f64::NAN),
                results.encrypted_paged.all().last().unwrap_or(&f64::NAN),
            );
        }
    }
    let desk = last_desk.ok_or("no desk was synced")?;
    let listed = desk.desk.worklist().map_err(core)?.len();
    if listed != referrals.len() {
        return Err(format!("the desk lists {listed} referrals, expected {}", referrals.len()));
    }
    Ok((results, desk))
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| e.to_string())?
}

/// One referral as the cache's `referral` and `referral_photo` tables hold it.
struct ReferralRow {
    id: String,
    version: i64,
    body: String,
    urgency_rank: i64,
    received_at: String,
    due_at: String,
    photos: Vec<String>,
}

impl ReferralRow {
    fn new(referral: &Referral) -> Result<ReferralRow> {
        let due_at = dermdesk_core::deadline::DeadlinePolicy::default()
            .due(referral.received_at, referral.practice.nation)
            .due_at;
        Ok(ReferralRow {
            id: referral.id.clone(),
            version: referral.version as i64,
            body: serde_json::to_string(referral).map_err(|e| e.to_string())?,
            urgency_rank: dermdesk_core::plan::urgency_rank(referral.urgency),
            received_at: referral.received_at.to_rfc3339(),
            due_at: due_at.to_rfc3339(),
            photos: referral.photos.iter().map(|photo| photo.content_id.clone()).collect(),
        })
    }
}

enum Input<'a> {
    Rows(&'a [ReferralRow]),
    Referrals(&'a [Referral]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    /// Unencrypted, one transaction: the reference.
    Plain,
    /// SQLCipher, one transaction per `FEED_PAGE_MAX` rows: context.
    EncryptedPaged,
}

/// The same two tables as the cache (columns, keys, indexes), in a plain SQLite file.
const PLAIN_SCHEMA: &str = "
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
    CREATE INDEX referral_photo_content ON referral_photo (content_id);";

/// The reference: the same rows upserted into a fresh, unencrypted SQLite file (an unkeyed
/// SQLCipher connection is plain SQLite) in one transaction, with the cache's journal and
/// durability settings. Opening and creating the tables are not timed.
fn plain_upsert(path: &Path, input: Input<'_>, storage: Storage) -> Result<Duration> {
    let sql = |e: rusqlite::Error| e.to_string();
    let (mut connection, rows_per_transaction) = match storage {
        Storage::Plain => {
            remove_database(path);
            let connection = Connection::open(path).map_err(sql)?;
            connection
                .execute_batch(
                    "PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = NORMAL;
             PRAGMA wal_autocheckpoint = 8192;
                     PRAGMA foreign_keys = ON;
                     PRAGMA temp_store = MEMORY;",
                )
                .map_err(sql)?;
            (connection, usize::MAX)
        }
        Storage::EncryptedPaged => (encrypted_database(path)?, FEED_PAGE_MAX as usize),
    };
    connection.execute_batch(PLAIN_SCHEMA).map_err(sql)?;
    let started = Instant::now();
    let synced_at = chrono::Utc::now().to_rfc3339();
    let transaction = connection.transaction().map_err(sql)?;
    {
        let mut upsert = transaction
            .prepare(
                "INSERT INTO referral (id, version, body, urgency_rank, received_at, due_at, synced_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET version = ?2, body = ?3, urgency_rank = ?4,
                    received_at = ?5, due_at = ?6, synced_at = ?7, removed_reason = NULL",
            )
            .map_err(sql)?;
        let mut clear_photos =
            transaction.prepare("DELETE FROM referral_photo WHERE referral_id = ?1").map_err(sql)?;
        let mut add_photo = transaction
            .prepare("INSERT INTO referral_photo (referral_id, position, content_id) VALUES (?1, ?2, ?3)")
            .map_err(sql)?;
        let mut write = |row: &ReferralRow| -> rusqlite::Result<()> {
            upsert.execute(params![
                row.id,
                row.version,
                row.body,
                row.urgency_rank,
                row.received_at,
                row.due_at,
                synced_at
            ])?;
            clear_photos.execute([&row.id])?;
            for (position, content_id) in row.photos.iter().enumerate() {
                add_photo.execute(params![row.id, position as i64, content_id])?;
            }
            Ok(())
        };
        match input {
            Input::Rows(rows) => {
                for (index, row) in rows.iter().enumerate() {
                    write(row).map_err(sql)?;
                    if (index + 1) % rows_per_transaction == 0 {
                        transaction.execute_batch("COMMIT; BEGIN").map_err(sql)?;
                    }
                }
            }
            Input::Referrals(referrals) => {
                for referral in referrals {
                    write(&ReferralRow::new(referral)?).map_err(sql)?;
                }
            }
        }
    }
    transaction.commit().map_err(sql)?;
    let elapsed = started.elapsed();
    drop(connection);
    remove_database(path);
    Ok(elapsed)
}

// ---------------------------------------------------------------------------------------------
// No change

struct NoChangeResults {
    referrals: usize,
    /// The most requests any one no-change sync made.
    requests: u64,
    sync: Samples,
}

/// One sync as the engine runs it (`Worker::run`), with nothing new on the hub: a client from
/// the keychain, the outbox, the feed, the photos still missing, the outbox again, retention.
async fn nochange_benchmark(
    hub: &BenchHub,
    cached: &BenchDesk,
    settings: &Settings,
) -> Result<NoChangeResults> {
    let desk: &Arc<Desk> = &cached.desk;
    let referrals = desk.worklist().map_err(core)?.len();
    // Nothing changed means the photos are here too: fetch the few the referrals share, once.
    let client = desk.client().map_err(core)?;
    let missing = desk.missing_photos().map_err(core)?;
    desk.fetch_photos(&client, missing, settings.concurrency, Arc::new(|_| {}), |_, _| {})
        .await
        .map_err(core)?;
    eprintln!("no change: {referrals} referrals cached, {} repetitions", settings.repetitions);
    let mut results = NoChangeResults { referrals, requests: 0, sync: Samples::default() };
    for repetition in 0..=settings.repetitions {
        let before = hub.requests();
        let started = Instant::now();
        let client = desk.client().map_err(core)?;
        desk.push_outbox(&client).await.map_err(core)?;
        let summary = desk.pull_feed(&client, |_| {}).await.map_err(core)?;
        let missing = desk.missing_photos().map_err(core)?;
        if !missing.is_empty() {
            desk.fetch_photos(&client, missing, settings.concurrency, Arc::new(|_| {}), |_, _| {})
                .await
                .map_err(core)?;
        }
        desk.push_outbox(&client).await.map_err(core)?;
        desk.purge_expired(DEFAULT_RETENTION).map_err(core)?;
        desk.record_sync_success().map_err(core)?;
        let elapsed = started.elapsed();
        let requests = hub.requests() - before;
        if summary.changes != 0 {
            return Err(format!("a no-change sync pulled {} changes", summary.changes));
        }
        if repetition == 0 {
            continue;
        }
        results.requests = results.requests.max(requests);
        results.sync.push(elapsed);
        eprintln!("  {repetition}: {:.1} ms, {requests} request(s)", elapsed.as_secs_f64() * 1e3);
    }
    Ok(results)
}

// ---------------------------------------------------------------------------------------------
// Report

struct Report {
    settings: Settings,
    photos: PhotoResults,
    metadata: MetadataResults,
    nochange: NoChangeResults,
}

fn seconds_range(samples: &Samples) -> String {
    format!("{:.3}–{:.3} s", samples.min(), samples.max())
}

impl Report {
    fn markdown(&self) -> String {
        let p = &self.photos;
        let m = &self.metadata;
        let n = &self.nochange;
        let machine = machine();
        let mut out = String::new();
        out.push_str(&format!(
            "Run of {} ({}; {} repetitions after one warm-up, medians; min–max in brackets).\n\n",
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            machine.summary(),
            self.settings.repetitions
        ));
        out.push_str("| measurement | Derm Desk | reference | ratio | goal | result |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        out.push_str(&format!(
            "| photo sync: {} photos, {:.0} MB, {} at a time | {:.0} MB/s ({:.2} s) [{}] | {:.0} MB/s plain GET → files, {} at a time ({:.2} s) [{}]; {:.0} MB/s one at a time ({:.2} s) [{}] | {:.2}× the faster | ≥ {PHOTO_GOAL}× | {} |\n",
            p.photos,
            p.bytes as f64 / 1e6,
            p.concurrency,
            p.megabytes_per_second(&p.desk),
            p.desk.median(),
            seconds_range(&p.desk),
            p.megabytes_per_second(&p.plain_concurrent),
            p.concurrency,
            p.plain_concurrent.median(),
            seconds_range(&p.plain_concurrent),
            p.megabytes_per_second(&p.plain_sequential),
            p.plain_sequential.median(),
            seconds_range(&p.plain_sequential),
            p.ratio(),
            verdict(p.ratio() >= PHOTO_GOAL),
        ));
        out.push_str(&format!(
            "| context, not a goal: the same photo GETs stored in SQLCipher (cache's table and settings, one transaction per photo, no verification, no resumable pieces), {} at a time | — | {:.0} MB/s ({:.3} s) [{}] | desk at {:.2}× of this | — | — |\n",
            p.concurrency,
            p.megabytes_per_second(&p.encrypted_store),
            p.encrypted_store.median(),
            seconds_range(&p.encrypted_store),
            p.encrypted_store.median() / p.desk.median(),
        ));
        out.push_str(&format!(
            "| referral metadata sync: {} referrals ({} photo rows), {} feed pages, empty cache | {:.3} s [{}] | {:.3} s plain SQLite upsert, rows ready [{}]; {:.3} s serialising each referral in the loop [{}] | {:.2}× (faster reference / desk) | ≥ {METADATA_GOAL}× | {} |\n",
            m.referrals,
            m.photo_rows,
            m.pages,
            m.desk.median(),
            seconds_range(&m.desk),
            m.plain_rows_ready.median(),
            seconds_range(&m.plain_rows_ready),
            m.plain_from_referrals.median(),
            seconds_range(&m.plain_from_referrals),
            m.ratio(),
            verdict(m.ratio() >= METADATA_GOAL),
        ));
        out.push_str(&format!(
            "| context, not a goal: the same rows, ready, into SQLCipher one transaction per {FEED_PAGE_MAX} rows (the desk's page) | — | {:.3} s [{}] | desk at {:.2}× of this | — | — |\n",
            m.encrypted_paged.median(),
            seconds_range(&m.encrypted_paged),
            m.encrypted_paged.median() / m.desk.median(),
        ));
        out.push_str(&format!(
            "| no-change sync: {} referrals cached | {:.1} ms [{:.1}–{:.1} ms], {} request(s) | — | — | {NOCHANGE_GOAL_REQUESTS} request | {} |\n",
            n.referrals,
            n.sync.median() * 1e3,
            n.sync.min() * 1e3,
            n.sync.max() * 1e3,
            n.requests,
            verdict(n.requests == NOCHANGE_GOAL_REQUESTS),
        ));
        out
    }

    fn json(&self) -> serde_json::Value {
        let p = &self.photos;
        let m = &self.metadata;
        let n = &self.nochange;
        let machine = machine();
        serde_json::json!({
            "photo_throughput_ratio": p.ratio(),
            "metadata_ratio": m.ratio(),
            "nochange_requests": n.requests,
            "date": chrono::Utc::now().to_rfc3339(),
            "machine": { "cores": machine.cores, "os": machine.os, "cpu": machine.cpu },
            "repetitions": self.settings.repetitions,
            "goals": {
                "photo_throughput_ratio": PHOTO_GOAL,
                "metadata_ratio": METADATA_GOAL,
                "nochange_requests": NOCHANGE_GOAL_REQUESTS,
            },
            "photos": {
                "photos": p.photos,
                "bytes": p.bytes,
                "concurrency": p.concurrency,
                "desk": p.desk.to_json(),
                "desk_mb_per_s": p.megabytes_per_second(&p.desk),
                "plain_concurrent": p.plain_concurrent.to_json(),
                "plain_concurrent_mb_per_s": p.megabytes_per_second(&p.plain_concurrent),
                "plain_sequential": p.plain_sequential.to_json(),
                "plain_sequential_mb_per_s": p.megabytes_per_second(&p.plain_sequential),
                "context_encrypted_store": p.encrypted_store.to_json(),
                "context_encrypted_store_mb_per_s": p.megabytes_per_second(&p.encrypted_store),
            },
            "metadata": {
                "referrals": m.referrals,
                "photo_rows": m.photo_rows,
                "feed_pages": m.pages,
                "desk": m.desk.to_json(),
                "plain_rows_ready": m.plain_rows_ready.to_json(),
                "plain_from_referrals": m.plain_from_referrals.to_json(),
                "context_encrypted_paged": m.encrypted_paged.to_json(),
            },
            "nochange": {
                "referrals": n.referrals,
                "requests": n.requests,
                "sync": n.sync.to_json(),
            },
        })
    }
}

pub(crate) struct Machine {
    cores: usize,
    os: String,
    cpu: String,
}

impl Machine {
    pub(crate) fn summary(&self) -> String {
        format!("{} cores, {}, {}", self.cores, self.os, self.cpu)
    }
}

pub(crate) fn machine() -> Machine {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("PRETTY_NAME="))
                .map(|name| name.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_owned());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, name)| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    Machine { cores, os, cpu }
}

/// The machine in one line ("2 cores, Debian ..., Intel ..."), for other benchmarks' reports.
pub fn machine_line() -> String {
    machine().summary()
}

/// Replaces the text between `<!-- {name}: begin (written by `{command}`) -->` and
/// `<!-- {name}: end -->` in `doc` with `section` (as [`update_doc`] does for `bench sync`).
pub fn replace_section(doc: &Path, name: &str, command: &str, section: &str) -> Result {
    let begin_marker = format!("<!-- {name}: begin (written by `{command}`) -->");
    let end_marker = format!("<!-- {name}: end -->");
    replace_between(doc, &begin_marker, &end_marker, section)
}

const DOC_BEGIN: &str = "<!-- bench sync: begin (written by `cargo xtask bench sync`) -->";
const DOC_END: &str = "<!-- bench sync: end -->";

/// Replaces the text between the markers in `doc` with `section`; the rest of the file (the
/// method, how to reproduce) is left as written.
fn update_doc(doc: &Path, section: &str) -> Result {
    replace_between(doc, DOC_BEGIN, DOC_END, section)
}

/// Replaces the text between the `begin` and `end` markers in `doc` with `section`.
pub(crate) fn replace_between(doc: &Path, begin_marker: &str, end_marker: &str, section: &str) -> Result {
    let text = std::fs::read_to_string(doc).map_err(|e| format!("{}: {e}", doc.display()))?;
    let (Some(begin), Some(end)) = (text.find(begin_marker), text.find(end_marker)) else {
        return Err(format!("{} has no `{begin_marker}` … `{end_marker}` section", doc.display()));
    };
    let updated = format!("{}{begin_marker}\n\n{section}\n{}", &text[..begin], &text[end..]);
    std::fs::write(doc, updated).map_err(|e| format!("{}: {e}", doc.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_results_section_is_replaced_and_the_rest_kept() {
        let doc = std::env::temp_dir().join(format!("dermdesk-bench-doc-{}.md", std::process::id()));
        std::fs::write(&doc, format!("# Title\n\n{DOC_BEGIN}\n\nold\n{DOC_END}\n\n## After\n")).unwrap();
        update_doc(&doc, "first run\n").unwrap();
        update_doc(&doc, "second run\n").unwrap();
        let text = std::fs::read_to_string(&doc).unwrap();
        std::fs::remove_file(&doc).unwrap();
        assert_eq!(text, format!("# Title\n\n{DOC_BEGIN}\n\nsecond run\n\n{DOC_END}\n\n## After\n"));
    }
}
