//! `worklist`: how fast the consultant's worklist answers at 100,000 cached referrals, measured
//! side by side with a plain reference in one run.
//!
//! - Derm Desk: `Desk::worklist_query` on a real encrypted cache (SQLCipher, opened by
//!   `Desk::open` with its key from an in-memory keychain) holding `--referrals` synthetic
//!   referrals, written through the cache's own API in one transaction. Each query returns the
//!   page as the UI gets it (rows with due labels counted in working days), the number matching,
//!   the counts per status and per practice.
//! - Reference: the same rows in a plain, unencrypted SQLite file with the same worklist table
//!   and indexes, asked the same page with one `SELECT ... ORDER BY ... LIMIT` (rows as raw
//!   columns, no counts, no due labels): the least any worklist query on SQLite can cost.
//!
//! Queries alternate within each repetition (A B C ..., then B C ... A) and each is timed
//! `--iterations` times per repetition; medians of all timings, with min and max.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, Utc};
use dermdesk_core::cache::Cache;
use dermdesk_core::plan::CacheOp;
use dermdesk_core::secrets::{MemorySecretStore, SecretStore as _, CACHE_KEY};
use dermdesk_core::views::ReferralStatus;
use dermdesk_core::worklist::{search_key, WorklistQuery};
use dermdesk_core::{Desk, DeskConfig};
use dermdesk_protocol::{
    ClinicalDetails, Consent, GpPractice, Nation, Patient, PhotoMeta, PhotoSource, PhotoView, Referral,
    Referrer, Sex, Urgency,
};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use rusqlite::{params, Connection};

use crate::fixtures::Result;
use crate::stats::Samples;

/// Fixed, so every run measures the same referrals.
const SEED: u64 = 16_180;

/// Goal from the issue (P6): the default query at 100,000 referrals in 1 ms or less.
const GOAL_MS: f64 = 1.0;

#[derive(Debug, Clone)]
pub struct Settings {
    pub repetitions: usize,
    pub iterations: usize,
    pub referrals: usize,
    pub out_dir: std::path::PathBuf,
    pub doc: Option<std::path::PathBuf>,
}

/// One measured query: the desk's and the plain reference's.
struct Measurement {
    key: &'static str,
    what: String,
    query: WorklistQuery,
    reference_sql: Option<(String, Vec<String>)>,
    desk: Samples,
    reference: Samples,
    rows: usize,
    total: usize,
}

pub fn run(settings: Settings) -> Result {
    let work = settings.out_dir.join("worklist-work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;

    eprintln!("preparing: {} synthetic referrals", settings.referrals);
    let referrals = synthetic_referrals(settings.referrals);
    let started = Instant::now();
    let secrets = Arc::new(MemorySecretStore::default());
    let key = [0x5a_u8; 32];
    secrets.set(CACHE_KEY, &key).map_err(|e| e.to_string())?;
    let data_dir = work.join("desk");
    std::fs::create_dir_all(&data_dir).map_err(|e| e.to_string())?;
    {
        let mut cache = Cache::open(&data_dir.join(dermdesk_core::desk::CACHE_FILE), &key).map_err(core)?;
        let deadlines = dermdesk_core::deadline::DeadlinePolicy::default();
        let operations: Vec<CacheOp> = referrals
            .iter()
            .map(|referral| CacheOp::Upsert {
                due_at: deadlines.due(referral.received_at, referral.practice.nation).due_at,
                referral: Box::new(referral.clone()),
            })
            .collect();
        cache.apply(&operations, Utc::now()).map_err(core)?;
        // A spread of statuses: some opened, some with drafts.
        for referral in referrals.iter().step_by(7) {
            cache.mark_opened(&referral.id, Utc::now()).map_err(core)?;
        }
        for referral in referrals.iter().step_by(53) {
            cache.save_draft(&referral.id, "{}", Utc::now()).map_err(core)?;
        }
    }
    eprintln!("encrypted cache written in {:.1?}", started.elapsed());
    let desk = Desk::open(DeskConfig { data_dir, device_name: "benchmark".into() }, secrets).map_err(core)?;
    let plain_path = work.join("plain.sqlite3");
    let plain = plain_reference(&plain_path, &desk, &referrals)?;

    let name_fragment = "patel".to_owned();
    let nhs_number = {
        let number = &referrals[referrals.len() / 2].patient.nhs_number;
        format!("{} {} {}", &number[..3], &number[3..6], &number[6..])
    };
    let page =
        "SELECT referral_id, patient_name, nhs_number, date_of_birth, practice_ods, practice_name, nation,
                       urgency_rank, received_at, due_at, status, has_draft, photos_total
                FROM worklist_entry";
    let order = "ORDER BY urgency_rank DESC, due_at, referral_id LIMIT 200";
    let mut measurements = vec![
        Measurement {
            key: "worklist_query_ms_100k",
            what: "default query: first page of 200, no filter, with counts".into(),
            query: WorklistQuery::default(),
            reference_sql: Some((format!("{page} {order}"), vec![])),
            desk: Samples::default(),
            reference: Samples::default(),
            rows: 0,
            total: 0,
        },
        Measurement {
            key: "status_filter_ms",
            what: "status filter (opened)".into(),
            query: WorklistQuery { statuses: vec![ReferralStatus::Opened], ..WorklistQuery::default() },
            reference_sql: Some((format!("{page} WHERE status = ?1 {order}"), vec!["opened".into()])),
            desk: Samples::default(),
            reference: Samples::default(),
            rows: 0,
            total: 0,
        },
        Measurement {
            key: "search_name_ms",
            what: format!("search by name fragment (\"{name_fragment}\")"),
            query: WorklistQuery { search: Some(name_fragment.clone()), ..WorklistQuery::default() },
            reference_sql: Some((
                format!("{page} WHERE instr(search_key, ?1) > 0 {order}"),
                vec![name_fragment],
            )),
            desk: Samples::default(),
            reference: Samples::default(),
            rows: 0,
            total: 0,
        },
        Measurement {
            key: "search_nhs_number_ms",
            what: "search by NHS number, typed with spaces".into(),
            query: WorklistQuery { search: Some(nhs_number.clone()), ..WorklistQuery::default() },
            reference_sql: Some((
                format!("{page} WHERE instr(search_key, ?1) > 0 {order}"),
                vec![nhs_number.replace(' ', "")],
            )),
            desk: Samples::default(),
            reference: Samples::default(),
            rows: 0,
            total: 0,
        },
        Measurement {
            key: "counts_ms",
            what: "counts only (per status and practice, no rows)".into(),
            query: WorklistQuery { limit: 0, ..WorklistQuery::default() },
            reference_sql: Some((
                "SELECT status, count(*) FROM worklist_entry GROUP BY status".into(),
                vec![],
            )),
            desk: Samples::default(),
            reference: Samples::default(),
            rows: 0,
            total: 0,
        },
    ];

    eprintln!(
        "worklist: {} referrals, {} repetitions of {} iterations",
        settings.referrals, settings.repetitions, settings.iterations
    );
    let count = measurements.len();
    // One warm-up round (page cache, prepared statements), not recorded.
    for repetition in 0..=settings.repetitions {
        for step in 0..count {
            let measurement = &mut measurements[(step + repetition) % count];
            for _ in 0..settings.iterations {
                let started = Instant::now();
                let result = desk.worklist_query(&measurement.query).map_err(core)?;
                let elapsed = started.elapsed();
                std::hint::black_box(&result);
                (measurement.rows, measurement.total) = (result.rows.len(), result.total_matching);
                if let Some((sql, values)) = &measurement.reference_sql {
                    let started = Instant::now();
                    let rows = plain_query(&plain, sql, values)?;
                    let reference = started.elapsed();
                    std::hint::black_box(rows);
                    if repetition > 0 {
                        measurement.reference.push(reference);
                    }
                }
                if repetition > 0 {
                    measurement.desk.push(elapsed);
                }
            }
        }
    }
    drop(desk);

    let report = Report { settings: settings.clone(), measurements };
    let markdown = report.markdown();
    println!("{markdown}");
    let json_path = settings.out_dir.join("worklist.json");
    let json = serde_json::to_string_pretty(&report.json()).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, json + "\n").map_err(|e| format!("{}: {e}", json_path.display()))?;
    eprintln!("wrote {}", json_path.display());
    if let Some(doc) = &settings.doc {
        crate::sync::replace_section(doc, "bench worklist", "cargo xtask bench worklist", &markdown)?;
        eprintln!("updated {}", doc.display());
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn core(error: dermdesk_core::CoreError) -> String {
    error.to_string()
}

/// `count` synthetic referrals: made-up names paired at random, NHS numbers from the range
/// reserved for testing, 40 practices with "Y0" ODS codes, 1 to 3 photos each (metadata only),
/// a mix of urgencies received over the last 60 days.
fn synthetic_referrals(count: usize) -> Vec<Referral> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let practices: Vec<GpPractice> = (0..40)
        .map(|index| GpPractice {
            ods_code: format!("Y0{:04}", 1000 + index),
            name: format!("Synthetic Practice {index:02}"),
            nation: match index % 10 {
                0 => Nation::Scotland,
                1 => Nation::Wales,
                2 => Nation::NorthernIreland,
                _ => Nation::England,
            },
        })
        .collect();
    let now = Utc::now();
    (0..count)
        .map(|index| {
            let sex = if rng.gen_bool(0.5) { Sex::Female } else { Sex::Male };
            let photos = (0..rng.gen_range(1..=3))
                .map(|position| PhotoMeta {
                    content_id: format!("{:064x}", index * 4 + position),
                    size: 2_000_000,
                    width: 4000,
                    height: 3000,
                    media_type: "image/jpeg".into(),
                    captured_at: now,
                    view: PhotoView::Overview,
                    body_site: "left forearm".into(),
                    source: PhotoSource::GpPractice,
                })
                .collect();
            Referral {
                id: format!("BENCH-{index:06}"),
                version: 1,
                patient: Patient {
                    name: dermdesk_synth::synthetic_patient_name(&mut rng, sex),
                    nhs_number: dermdesk_synth::synthetic_nhs_number(&mut rng),
                    date_of_birth: chrono::NaiveDate::from_ymd_opt(
                        1940 + rng.gen_range(0..70),
                        1 + rng.gen_range(0..12),
                        1,
                    )
                    .expect("a valid date"),
                    sex,
                },
                practice: practices[rng.gen_range(0..practices.len())].clone(),
                referrer: Referrer { name: "Dr Synthetic GP".into(), role: "GP".into() },
                received_at: now - Duration::minutes(rng.gen_range(0..60 * 24 * 60)),
                urgency: match rng.gen_range(0..10) {
                    0 => Urgency::TwoWeekWait,
                    1 | 2 => Urgency::Urgent,
                    _ => Urgency::Routine,
                },
                clinical: ClinicalDetails {
                    question: "Synthetic question for a benchmark.".into(),
                    history: "Synthetic history.".into(),
                    duration: "3 months".into(),
                    medications: "None".into(),
                },
                consent: Consent {
                    given: true,
                    recorded_at: Some(now),
                    recorded_by: Some("Synthetic".into()),
                },
                photos,
            }
        })
        .collect()
}

/// The same worklist rows in a plain SQLite file: the cache's worklist table and indexes, the
/// same statuses (read back from the desk), WAL and `synchronous = NORMAL` as the cache.
fn plain_reference(path: &Path, desk: &Desk, referrals: &[Referral]) -> Result<Connection> {
    let connection = Connection::open(path).map_err(|e| e.to_string())?;
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             CREATE TABLE worklist_entry (
                referral_id TEXT PRIMARY KEY, status TEXT NOT NULL, urgency_rank INTEGER NOT NULL,
                due_at TEXT NOT NULL, practice_ods TEXT NOT NULL, practice_name TEXT NOT NULL,
                search_key TEXT NOT NULL, patient_name TEXT NOT NULL, nhs_number TEXT NOT NULL,
                date_of_birth TEXT NOT NULL, received_at TEXT NOT NULL, nation TEXT NOT NULL,
                photos_total INTEGER NOT NULL, opened INTEGER NOT NULL DEFAULT 0,
                has_draft INTEGER NOT NULL DEFAULT 0, outcome_state TEXT, removed_reason TEXT);
             CREATE INDEX worklist_order ON worklist_entry (urgency_rank DESC, due_at, referral_id);
             CREATE INDEX worklist_status ON worklist_entry (status, urgency_rank DESC, due_at, referral_id);
             CREATE INDEX worklist_practice ON worklist_entry (practice_ods, urgency_rank DESC, due_at, referral_id);",
        )
        .map_err(|e| e.to_string())?;
    let rows = desk.worklist().map_err(core)?;
    let by_id: std::collections::HashMap<&str, &Referral> =
        referrals.iter().map(|referral| (referral.id.as_str(), referral)).collect();
    let transaction = connection.unchecked_transaction().map_err(|e| e.to_string())?;
    {
        let mut insert = transaction
            .prepare(
                "INSERT INTO worklist_entry (referral_id, status, urgency_rank, due_at, practice_ods, practice_name,
                    search_key, patient_name, nhs_number, date_of_birth, received_at, nation, photos_total, has_draft)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )
            .map_err(|e| e.to_string())?;
        for row in &rows {
            let referral = by_id[row.referral_id.as_str()];
            insert
                .execute(params![
                    row.referral_id,
                    row.status.as_str(),
                    dermdesk_core::plan::urgency_rank(row.urgency),
                    row.due_at.to_rfc3339(),
                    row.practice_ods,
                    row.practice_name,
                    search_key(&row.patient_name, &row.nhs_number, &row.referral_id),
                    row.patient_name,
                    row.nhs_number,
                    row.date_of_birth.to_string(),
                    row.received_at.to_rfc3339(),
                    format!("{:?}", referral.practice.nation),
                    row.photos_total as i64,
                    row.has_draft,
                ])
                .map_err(|e| e.to_string())?;
        }
    }
    transaction.commit().map_err(|e| e.to_string())?;
    Ok(connection)
}

fn plain_query(connection: &Connection, sql: &str, values: &[String]) -> Result<usize> {
    let mut statement = connection.prepare_cached(sql).map_err(|e| e.to_string())?;
    let mut rows = statement.query(rusqlite::params_from_iter(values)).map_err(|e| e.to_string())?;
    let mut count = 0;
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        // Read every column, as a page would.
        for index in 0..row.as_ref().column_count() {
            std::hint::black_box(row.get_ref(index).map_err(|e| e.to_string())?);
        }
        count += 1;
    }
    Ok(count)
}

struct Report {
    settings: Settings,
    measurements: Vec<Measurement>,
}

fn milliseconds(seconds: f64) -> String {
    if seconds < 0.01 {
        format!("{:.3} ms", seconds * 1e3)
    } else {
        format!("{:.1} ms", seconds * 1e3)
    }
}

fn range(samples: &Samples) -> String {
    format!("[{}–{}]", milliseconds(samples.min()), milliseconds(samples.max()))
}

impl Report {
    fn markdown(&self) -> String {
        let machine = crate::sync::machine_line();
        let mut out = format!(
            "Run of {} ({machine}; {} referrals in the encrypted cache; {} repetitions of {} timings after \
             one warm-up round, medians; min–max in brackets).\n\n",
            Utc::now().format("%Y-%m-%d %H:%M UTC"),
            self.settings.referrals,
            self.settings.repetitions,
            self.settings.iterations,
        );
        out.push_str("| query | Derm Desk | rows / matching | plain SQLite, same table and indexes | ratio | goal | result |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        for m in &self.measurements {
            let desk = m.desk.median();
            let reference = m.reference.median();
            let (goal, result) = if m.key == "worklist_query_ms_100k" {
                (format!("≤ {GOAL_MS} ms"), crate::stats::verdict(desk * 1e3 <= GOAL_MS).to_owned())
            } else {
                ("—".to_owned(), "—".to_owned())
            };
            out.push_str(&format!(
                "| {} | {} {} | {} / {} | {} {} | {:.1}× | {goal} | {result} |\n",
                m.what,
                milliseconds(desk),
                range(&m.desk),
                m.rows,
                m.total,
                milliseconds(reference),
                range(&m.reference),
                desk / reference,
            ));
        }
        out
    }

    fn json(&self) -> serde_json::Value {
        let mut json = serde_json::Map::new();
        for m in &self.measurements {
            json.insert(m.key.to_owned(), serde_json::json!(m.desk.median() * 1e3));
        }
        json.insert("referrals".into(), serde_json::json!(self.settings.referrals));
        let details: Vec<serde_json::Value> = self
            .measurements
            .iter()
            .map(|m| {
                serde_json::json!({
                    "key": m.key,
                    "what": m.what,
                    "rows": m.rows,
                    "total_matching": m.total,
                    "desk": m.desk.to_json(),
                    "reference": m.reference.to_json(),
                    "ratio": m.desk.median() / m.reference.median(),
                })
            })
            .collect();
        json.insert("measurements".into(), serde_json::Value::Array(details));
        serde_json::Value::Object(json)
    }
}
