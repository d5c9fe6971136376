//! The worklist as the consultant filters it (status, urgency, practice, search; counts per
//! status and per practice) and trip readiness ("Prepare for offline": is every assigned
//! referral here with every photo verified, and what is due while away).
//!
//! The pure parts (search normalisation, facet counts, the readiness report and its wording)
//! are plain functions over values; the `impl Desk` at the end reads the cache's worklist table
//! (`cache.rs`, schema 5), which keeps one narrow, indexed row per referral so a query costs
//! about the same at 100,000 referrals as at 100 (docs/PERFORMANCE.md, `bench worklist`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate, TimeZone as _, Utc};
use chrono_tz::Europe::London;
use dermdesk_protocol::Urgency;
use serde::{Deserialize, Serialize};

use crate::cache::{ReadinessPhoto, WorklistCount, WorklistFilter};
use crate::views::{self, ReferralStatus, WorklistRow};
use crate::{CoreError, Desk};

/// Where the worklist's remembered view lives in the cache's `meta` table.
const VIEW_STATE_META: &str = "ui.worklist_view";
/// The largest worklist view the UI may ask to remember.
pub const VIEW_STATE_LIMIT: usize = 4096;

/// Rows per page when the query does not say.
pub const DEFAULT_PAGE: usize = 200;

/// What the consultant asked the worklist for. Every list means "any of these"; an empty list
/// means all. Missing members in JSON take their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorklistQuery {
    pub statuses: Vec<ReferralStatus>,
    pub urgencies: Vec<Urgency>,
    /// ODS code of one GP practice.
    pub practice: Option<String>,
    /// Part of a patient's name, NHS number (spaces and dashes ignored) or referral id; any case.
    pub search: Option<String>,
    pub offset: usize,
    pub limit: usize,
}

impl Default for WorklistQuery {
    fn default() -> Self {
        WorklistQuery {
            statuses: Vec::new(),
            urgencies: Vec::new(),
            practice: None,
            search: None,
            offset: 0,
            limit: DEFAULT_PAGE,
        }
    }
}

/// One page of the worklist and the counts the filters show.
#[derive(Debug, Clone, Serialize)]
pub struct WorklistPage {
    /// Most urgent first (two-week wait, urgent, routine), then earliest due, then referral id.
    pub rows: Vec<WorklistRow>,
    /// Rows matching every filter (all pages).
    pub total_matching: usize,
    /// Per status, the referrals matching every filter but the status filter ("New 7 · Draft 1").
    /// Every status is present, zeros included.
    pub counts_by_status: BTreeMap<ReferralStatus, usize>,
    /// Per practice, the referrals matching every filter but the practice filter, by name.
    pub practices: Vec<PracticeCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PracticeCount {
    pub ods_code: String,
    pub name: String,
    pub count: usize,
}

/// Folds text for search, the same way for the stored key and the query: compatibility
/// decomposition (NFKD: "Zoë" typed as one code point or as "e" + combining diaeresis, and
/// full-width letters, all read the same), accents and other combining marks dropped, lower
/// case, and apostrophes, hyphens, dots and spaces left out ("O'Brien" → "obrien",
/// "Núñez" → "nunez", "Smith-Jones" → "smithjones").
pub fn fold(text: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization as _;
    let ignored = |c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '\'' | '\u{2018}' | '\u{2019}' | '\u{02bc}' | '`' | '\u{00b4}' | '-' | '\u{2010}'
                    ..='\u{2015}' | '.'
            )
    };
    text.nfkd().filter(|&c| !is_combining_mark(c) && !ignored(c)).flat_map(char::to_lowercase).collect()
}

/// A referral's search key: the folded name ([`fold`]), the NHS number's digits and the folded
/// id, apart (a separator no one types), so a search never matches across two of them.
pub fn search_key(patient_name: &str, nhs_number: &str, referral_id: &str) -> String {
    let digits: String = nhs_number.chars().filter(char::is_ascii_digit).collect();
    format!("{}\u{1f}{digits}\u{1f}{}", fold(patient_name), fold(referral_id))
}

/// What a search box text looks for in search keys: the text folded as the keys are ([`fold`]:
/// so a number typed with spaces or dashes, "999 254 2292", is its digits). Empty: no search.
pub fn search_needles(search: Option<&str>) -> Vec<String> {
    let text = fold(search.unwrap_or(""));
    if text.is_empty() {
        return Vec::new();
    }
    vec![text]
}

/// The facet counts of a query from the counts by (status, urgency, practice) of the referrals
/// its search matches: (total matching every filter, per status, per practice).
pub fn facets(
    counts: &[WorklistCount],
    query: &WorklistQuery,
) -> (usize, BTreeMap<ReferralStatus, usize>, Vec<PracticeCount>) {
    let status_ok =
        |count: &WorklistCount| query.statuses.is_empty() || query.statuses.contains(&count.status);
    let urgency_ok =
        |count: &WorklistCount| query.urgencies.is_empty() || query.urgencies.contains(&count.urgency);
    let practice_ok =
        |count: &WorklistCount| query.practice.as_ref().is_none_or(|ods| *ods == count.practice_ods);
    let mut total = 0;
    let mut by_status: BTreeMap<ReferralStatus, usize> =
        ReferralStatus::ALL.into_iter().map(|status| (status, 0)).collect();
    let mut practices: BTreeMap<&str, PracticeCount> = BTreeMap::new();
    for count in counts {
        if !urgency_ok(count) {
            continue;
        }
        if status_ok(count) && practice_ok(count) {
            total += count.referrals;
        }
        if practice_ok(count) {
            *by_status.entry(count.status).or_default() += count.referrals;
        }
        if status_ok(count) {
            let practice = practices.entry(&count.practice_ods).or_insert_with(|| PracticeCount {
                ods_code: count.practice_ods.clone(),
                name: count.practice_name.clone(),
                count: 0,
            });
            practice.count += count.referrals;
        }
    }
    let mut practices: Vec<PracticeCount> = practices.into_values().collect();
    practices.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.ods_code.cmp(&b.ods_code)));
    (total, by_status, practices)
}

/// Whether this computer holds everything needed to work offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// Referrals assigned to the consultant (withdrawn and reassigned ones are not counted).
    pub referrals_total: usize,
    /// Of those, the ones with every photo downloaded and verified.
    pub referrals_ready: usize,
    /// Distinct photos of those referrals.
    pub photos_total: usize,
    pub photos_ready: usize,
    /// Size of the verified photos.
    pub bytes_ready: u64,
    /// Size of the photos still missing, as the service announced them.
    pub bytes_missing: u64,
    /// Referrals with something missing, most urgent first.
    pub missing: Vec<MissingItem>,
    /// Everything is here.
    pub ready: bool,
    /// The sentence to show: "Ready: 48 of 48 referrals, 212 photos, 1.9 GB" or
    /// "Not ready: 46 of 48 referrals, 3 photos missing (12 MB) — see the list".
    pub summary: String,
    /// Why the sync run by "Prepare for offline" stopped early, if it did (only
    /// `Engine::prepare_for_offline` sets it).
    pub sync_problem: Option<String>,
}

/// The readiness summary before the first download of the worklist.
pub const NEVER_SYNCED: &str =
    "Not ready: the worklist has not been downloaded yet — connect to the service and prepare for offline";

/// One referral that is not ready, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingItem {
    pub referral_id: String,
    pub patient_name: String,
    /// Photos not downloaded yet (or partly).
    pub photos_not_downloaded: usize,
    /// Photos whose last download was refused (damaged, or refused by the service).
    pub photos_refused: usize,
    /// "3 photos not downloaded", "1 photo refused: <why>", or both joined by "; ".
    pub what: String,
}

/// The readiness report from every photo of every assigned referral (`photos`, in worklist
/// order), the number of assigned referrals, and the announced sizes of photos not stored.
pub fn readiness(
    referrals_total: usize,
    photos: &[ReadinessPhoto],
    sizes: &HashMap<String, u64>,
) -> Readiness {
    let mut missing: Vec<MissingItem> = Vec::new();
    let mut seen: HashMap<&str, bool> = HashMap::new();
    let (mut bytes_ready, mut bytes_missing, mut photos_ready) = (0, 0, 0);
    let mut problems: HashMap<&str, Vec<&str>> = HashMap::new();
    for photo in photos {
        if seen.insert(&photo.content_id, true).is_none() {
            match photo.stored_bytes {
                Some(bytes) => {
                    photos_ready += 1;
                    bytes_ready += bytes;
                }
                None => bytes_missing += sizes.get(&photo.content_id).copied().unwrap_or(0),
            }
        }
        if photo.stored_bytes.is_some() {
            continue;
        }
        let item = match missing.last_mut() {
            Some(item) if item.referral_id == photo.referral_id => item,
            _ => {
                missing.push(MissingItem {
                    referral_id: photo.referral_id.clone(),
                    patient_name: photo.patient_name.clone(),
                    photos_not_downloaded: 0,
                    photos_refused: 0,
                    what: String::new(),
                });
                missing.last_mut().expect("just pushed")
            }
        };
        match &photo.problem {
            Some(problem) => {
                item.photos_refused += 1;
                problems.entry(&photo.referral_id).or_default().push(problem);
            }
            None => item.photos_not_downloaded += 1,
        }
    }
    for item in &mut missing {
        item.what = missing_words(
            item.photos_not_downloaded,
            problems.get(item.referral_id.as_str()).map(Vec::as_slice).unwrap_or(&[]),
        );
    }
    let photos_total = seen.len();
    let referrals_ready = referrals_total.saturating_sub(missing.len());
    let ready = missing.is_empty();
    let summary = readiness_summary(
        referrals_ready,
        referrals_total,
        photos_total,
        photos_total - photos_ready,
        bytes_ready,
        bytes_missing,
    );
    Readiness {
        referrals_total,
        referrals_ready,
        photos_total,
        photos_ready,
        bytes_ready,
        bytes_missing,
        missing,
        ready,
        summary,
        sync_problem: None,
    }
}

/// "3 photos not downloaded", "1 photo refused: <problem>", "2 photos refused (last: <problem>)".
pub fn missing_words(not_downloaded: usize, problems: &[&str]) -> String {
    let mut parts = Vec::new();
    if not_downloaded > 0 {
        parts.push(format!("{} not downloaded", count(not_downloaded, "photo", "photos")));
    }
    match problems {
        [] => {}
        [problem] => parts.push(format!("1 photo refused: {problem}")),
        [.., last] => {
            parts.push(format!("{} refused (last: {last})", count(problems.len(), "photo", "photos")))
        }
    }
    parts.join("; ")
}

/// The sentence the UI shows for readiness.
pub fn readiness_summary(
    referrals_ready: usize,
    referrals_total: usize,
    photos_total: usize,
    photos_missing: usize,
    bytes_ready: u64,
    bytes_missing: u64,
) -> String {
    if referrals_ready == referrals_total && photos_missing == 0 {
        return format!(
            "Ready: {referrals_ready} of {}, {}, {}",
            count(referrals_total, "referral", "referrals"),
            count(photos_total, "photo", "photos"),
            format_bytes(bytes_ready)
        );
    }
    format!(
        "Not ready: {referrals_ready} of {}, {} missing ({}) — see the list",
        count(referrals_total, "referral", "referrals"),
        count(photos_missing, "photo", "photos"),
        format_bytes(bytes_missing)
    )
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Bytes as people read them, in powers of 1000 as file managers show them: "0 bytes",
/// "1 byte", "740 bytes", "12 KB", "12 MB", "1.9 GB" (one decimal below 10 of a unit).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, f64); 3] = [("GB", 1e9), ("MB", 1e6), ("KB", 1e3)];
    if bytes < 1000 {
        return count(bytes as usize, "byte", "bytes");
    }
    for (unit, size) in UNITS {
        let value = bytes as f64 / size;
        // Rounded as it will be shown, so 999,999 bytes is "1.0 MB", not "1000 KB".
        if (value * 10.0).round() / 10.0 >= 1.0 {
            return if value < 9.95 { format!("{value:.1} {unit}") } else { format!("{value:.0} {unit}") };
        }
    }
    // Not reached: 1000 bytes or more is at least "1.0 KB" above.
    format!("{:.1} KB", bytes as f64 / 1e3)
}

/// The instants between which a London date range falls: from midnight at the start of `from`
/// to midnight at the end of `to` (London time, clock changes included), as UTC.
pub fn london_days(from: NaiveDate, to: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let midnight = |date: NaiveDate| {
        let local = date.and_hms_opt(0, 0, 0).expect("midnight exists");
        // The clocks change at 01:00 or 02:00 London time, never at midnight.
        London.from_local_datetime(&local).earliest().expect("midnight exists in London").with_timezone(&Utc)
    };
    (midnight(from), midnight(to + Duration::days(1)))
}

impl Desk {
    /// One page of the worklist for `query`, with its counts.
    pub fn worklist_query(&self, query: &WorklistQuery) -> Result<WorklistPage, CoreError> {
        self.worklist_query_at(query, self.now())
    }

    fn worklist_query_at(
        &self,
        query: &WorklistQuery,
        now: DateTime<Utc>,
    ) -> Result<WorklistPage, CoreError> {
        let filter = WorklistFilter {
            statuses: query.statuses.clone(),
            urgencies: query.urgencies.clone(),
            practice_ods: query.practice.clone(),
            search: search_needles(query.search.as_deref()),
        };
        let (entries, counts) = {
            let cache = self.cache();
            (
                cache.worklist_page(&filter, query.offset, Some(query.limit))?,
                cache.worklist_counts(&filter.search)?,
            )
        };
        let (total_matching, counts_by_status, practices) = facets(&counts, query);
        let calendar = &self.deadline_policy().calendar;
        Ok(WorklistPage {
            rows: entries.iter().map(|entry| views::worklist_row(entry, now, calendar)).collect(),
            total_matching,
            counts_by_status,
            practices,
        })
    }

    /// Every cached referral as a worklist row, in worklist order (no filter, no paging).
    pub fn worklist(&self) -> Result<Vec<WorklistRow>, CoreError> {
        let entries = self.cache().worklist_page(&WorklistFilter::default(), 0, None)?;
        let now = self.now();
        let calendar = &self.deadline_policy().calendar;
        Ok(entries.iter().map(|entry| views::worklist_row(entry, now, calendar)).collect())
    }

    /// Referrals due on a London date from `from` to `to` (both included) that still need the
    /// consultant (no outcome delivered, still assigned), earliest due first: what falls due
    /// during a trip. Due dates are already counted in working days of each practice's nation
    /// (`deadline.rs`), so a bank holiday inside the window moves referrals out of it or in.
    pub fn due_within(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<WorklistRow>, CoreError> {
        if to < from {
            return Ok(Vec::new());
        }
        let (start, end) = london_days(from, to);
        let entries = self.cache().worklist_due_between(start, end)?;
        let now = self.now();
        let calendar = &self.deadline_policy().calendar;
        Ok(entries.iter().map(|entry| views::worklist_row(entry, now, calendar)).collect())
    }

    /// The worklist's filters, search text and scroll position as the UI last left them. They
    /// live in the encrypted cache, never in the webview's storage: a search may hold a name.
    pub fn worklist_view_state(&self) -> Result<Option<serde_json::Value>, CoreError> {
        match self.cache().meta(VIEW_STATE_META)? {
            // Unreadable (e.g. written by a later version): start from the defaults.
            Some(text) => Ok(serde_json::from_str(&text).ok()),
            None => Ok(None),
        }
    }

    /// Remembers the worklist's view (a small JSON object, at most [`VIEW_STATE_LIMIT`] bytes).
    pub fn save_worklist_view_state(&self, state: &serde_json::Value) -> Result<(), CoreError> {
        let text = state.to_string();
        if !state.is_object() || text.len() > VIEW_STATE_LIMIT {
            return Err(CoreError::Cache(format!(
                "the worklist view to remember is not a JSON object of at most {VIEW_STATE_LIMIT} bytes \
                 (the one remembered before is kept)"
            )));
        }
        self.cache().set_meta(VIEW_STATE_META, &text)
    }

    /// Whether every assigned referral and every photo is here and verified, and what is not.
    pub fn readiness(&self) -> Result<Readiness, CoreError> {
        let cache = self.cache();
        let (referrals, photos) = cache.readiness_photos()?;
        // Announced sizes of missing photos, from the referrals that have some (only those are
        // read: when everything is here, no referral body is parsed).
        let mut sizes = HashMap::new();
        let mut read: Vec<&str> = Vec::new();
        for photo in photos.iter().filter(|photo| photo.stored_bytes.is_none()) {
            if read.last() == Some(&photo.referral_id.as_str()) {
                continue;
            }
            read.push(&photo.referral_id);
            if let Some(cached) = cache.referral(&photo.referral_id)? {
                sizes.extend(cached.referral.photos.into_iter().map(|meta| (meta.content_id, meta.size)));
            }
        }
        let mut report = readiness(referrals, &photos, &sizes);
        if cache.meta("last_feed_at")?.is_none() {
            // Nothing was ever downloaded: "0 of 0 referrals" is not ready.
            report.ready = false;
            report.summary = NEVER_SYNCED.to_owned();
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
