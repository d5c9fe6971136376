//! When advice is due, and how the consultant is told: received + N working days, where a
//! working day is Monday to Friday and not a bank holiday of the referring practice's nation.
//!
//! The rules (ARCHITECTURE.md repeats them as invariants):
//!
//! - **UK time.** Every date is a date in Europe/London (GMT in winter, BST in summer, with the
//!   clock changes from the IANA time zone database via `chrono-tz`), whatever the computer's
//!   own time zone. Instants stay UTC everywhere else.
//! - **Working day.** Monday to Friday, except the bank holidays of the practice's division:
//!   England and Wales share one calendar; Scotland and Northern Ireland each have their own.
//! - **Day 0.** A referral received on a working day before 17:00 counts as received that day;
//!   one received at or after 17:00, or on a weekend or bank holiday, counts as received on the
//!   next working day.
//! - **Due.** The end (17:00 London time) of the Nth working day after day 0. N is the
//!   service's limit ([`DEFAULT_LIMIT_WORKING_DAYS`] = 3; its target is
//!   [`DEFAULT_TARGET_WORKING_DAYS`] = 2). So Monday 09:00 + 3 → Thursday 17:00, and Friday
//!   18:00 + 3 → the following Thursday 17:00.
//! - **Status.** "Due today" until 17:00 on the due day; "Due in n working days" before it,
//!   n counting the working days after today up to the due day; after the due instant,
//!   "Overdue by n working days", n counting the working days after the due day up to today
//!   and at least 1 (the evening of the due day and the weekend after it are already "Overdue
//!   by 1 working day").
//! - **Calendar.** Bank holidays come from `data/bank-holidays.json` (the gov.uk
//!   `bank-holidays.json` shape; source and coverage in `data/README.md`), compiled in. A file
//!   of the same shape named [`CALENDAR_FILE_NAME`] in the desk's data folder replaces it at
//!   start-up, so an updated calendar needs no new build; a malformed file is an error that
//!   names the file, never silently ignored. Each division covers whole calendar years, from
//!   the first to the last year it lists. Outside them only weekends are skipped, and the
//!   result says so ([`Deadline::calendar_covers`], [`coverage_note`]) rather than pretend.
//!
//! Pure: no clock reads (callers pass `now`) and no I/O except [`BankHolidays::load`] and
//! [`DeadlinePolicy::for_data_dir`], which read the replacement calendar when asked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Europe::London;
use dermdesk_protocol::Nation;
use serde::Deserialize;

/// The service's limit: advice to the GP within 3 working days. The due date uses this.
pub const DEFAULT_LIMIT_WORKING_DAYS: u32 = 3;

/// The service's target: advice within 2 working days (the limit is what is enforced).
pub const DEFAULT_TARGET_WORKING_DAYS: u32 = 2;

/// A replacement calendar in the desk's data folder is read under this name.
pub const CALENDAR_FILE_NAME: &str = "bank-holidays.json";

/// The calendar compiled into this build (gov.uk shape).
const BUNDLED_CALENDAR: &str = include_str!("../data/bank-holidays.json");

/// The working day ends at 17:00 London time: a referral received later counts from the next
/// working day, and advice is due by this time on the due day.
pub fn end_of_working_day() -> NaiveTime {
    NaiveTime::from_hms_opt(17, 0, 0).expect("17:00 is a valid time")
}

/// The bank-holiday calendars of the UK: England and Wales share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Division {
    EnglandAndWales,
    Scotland,
    NorthernIreland,
}

impl Division {
    pub const ALL: [Division; 3] = [Division::EnglandAndWales, Division::Scotland, Division::NorthernIreland];

    /// The calendar that applies to a practice in `nation`.
    pub fn of(nation: Nation) -> Division {
        match nation {
            Nation::England | Nation::Wales => Division::EnglandAndWales,
            Nation::Scotland => Division::Scotland,
            Nation::NorthernIreland => Division::NorthernIreland,
        }
    }

    /// The division's key in the gov.uk file.
    pub fn key(self) -> &'static str {
        match self {
            Division::EnglandAndWales => "england-and-wales",
            Division::Scotland => "scotland",
            Division::NorthernIreland => "northern-ireland",
        }
    }

    /// In words, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Division::EnglandAndWales => "England and Wales",
            Division::Scotland => "Scotland",
            Division::NorthernIreland => "Northern Ireland",
        }
    }
}

/// Why a bank-holiday calendar could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("the bank holiday calendar {path} could not be read ({reason})")]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "the bank holiday calendar {origin} is not in the expected shape (the gov.uk \
         bank-holidays.json format): {reason}"
    )]
    Malformed { origin: String, reason: String },
}

/// One division's bank holidays and the whole years they cover.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DivisionCalendar {
    holidays: BTreeSet<NaiveDate>,
    first_year: i32,
    last_year: i32,
}

/// The bank holidays of every division, each with the years it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankHolidays {
    divisions: BTreeMap<Division, DivisionCalendar>,
}

/// The gov.uk file: `{"england-and-wales": {"division": ..., "events": [{"title", "date",
/// "notes", "bunting"}]}, "scotland": ..., "northern-ireland": ...}`. Only `date` is used;
/// other members are allowed so the published file can be dropped in as it is.
#[derive(Deserialize)]
struct FileDivision {
    events: Vec<FileEvent>,
}

#[derive(Deserialize)]
struct FileEvent {
    date: String,
}

impl BankHolidays {
    /// The calendar compiled into this build (parsed once; a test proves it parses).
    pub fn bundled() -> Arc<BankHolidays> {
        static BUNDLED: OnceLock<Arc<BankHolidays>> = OnceLock::new();
        BUNDLED
            .get_or_init(|| {
                Arc::new(
                    BankHolidays::from_json(BUNDLED_CALENDAR, "compiled into Derm Desk")
                        .expect("the bundled bank holiday calendar is valid (tested)"),
                )
            })
            .clone()
    }

    /// Reads a calendar in the gov.uk shape; `origin` names it in errors (a path, a URL).
    pub fn from_json(text: &str, origin: &str) -> Result<BankHolidays, CalendarError> {
        let malformed = |reason: String| CalendarError::Malformed { origin: origin.to_owned(), reason };
        let file: BTreeMap<String, FileDivision> =
            serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
        let mut divisions = BTreeMap::new();
        for division in Division::ALL {
            let events = &file
                .get(division.key())
                .ok_or_else(|| malformed(format!("the division \"{}\" is missing", division.key())))?
                .events;
            let mut holidays = BTreeSet::new();
            for event in events {
                let date = NaiveDate::parse_from_str(&event.date, "%Y-%m-%d").map_err(|_| {
                    malformed(format!(
                        "\"{}\" in \"{}\" is not a date like 2026-12-25",
                        event.date,
                        division.key()
                    ))
                })?;
                holidays.insert(date);
            }
            let (Some(first), Some(last)) = (holidays.first(), holidays.last()) else {
                return Err(malformed(format!("\"{}\" lists no bank holidays", division.key())));
            };
            let (first_year, last_year) = (first.year(), last.year());
            // Coverage is whole years from the first listed to the last: a year in between
            // with nothing listed is a gap in the file, not a year without bank holidays.
            if let Some(missing) = (first_year..=last_year)
                .find(|year| holidays.range(ymd(*year, 1, 1)..=ymd(*year, 12, 31)).next().is_none())
            {
                return Err(malformed(format!(
                    "\"{}\" lists no bank holidays in {missing}, between {first_year} and {last_year}",
                    division.key()
                )));
            }
            divisions.insert(division, DivisionCalendar { holidays, first_year, last_year });
        }
        Ok(BankHolidays { divisions })
    }

    /// Reads a calendar file (the only I/O in this module).
    pub fn load(path: &Path) -> Result<BankHolidays, CalendarError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CalendarError::Unreadable { path: path.to_owned(), reason: e.to_string() })?;
        BankHolidays::from_json(&text, &path.display().to_string())
    }

    fn division(&self, division: Division) -> &DivisionCalendar {
        // Every division is present: `from_json` refuses a file without one.
        &self.divisions[&division]
    }

    /// The first and last day the division's bank holidays are known for.
    pub fn coverage(&self, division: Division) -> (NaiveDate, NaiveDate) {
        let calendar = self.division(division);
        (ymd(calendar.first_year, 1, 1), ymd(calendar.last_year, 12, 31))
    }

    /// Whether the division's bank holidays are known on `date`.
    pub fn covers(&self, division: Division, date: NaiveDate) -> bool {
        let calendar = self.division(division);
        (calendar.first_year..=calendar.last_year).contains(&date.year())
    }

    /// Whether the calendar covers every day from `from` to `to`, both included.
    pub fn covers_span(&self, division: Division, from: NaiveDate, to: NaiveDate) -> bool {
        self.covers(division, from.min(to)) && self.covers(division, from.max(to))
    }

    /// Whether `date` is a bank holiday in the division (as far as the calendar knows).
    pub fn is_bank_holiday(&self, division: Division, date: NaiveDate) -> bool {
        self.division(division).holidays.contains(&date)
    }

    /// Monday to Friday and not a bank holiday in the division. Outside the calendar's years
    /// only weekends are non-working days (see [`BankHolidays::covers`]).
    pub fn is_working_day(&self, division: Division, date: NaiveDate) -> bool {
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !self.is_bank_holiday(division, date)
    }

    /// The first working day after `date`.
    pub fn next_working_day(&self, division: Division, date: NaiveDate) -> NaiveDate {
        let mut next = date + Duration::days(1);
        while !self.is_working_day(division, next) {
            next += Duration::days(1);
        }
        next
    }

    /// Working days after `from` up to and including `to` (0 when `to` is not after `from`).
    pub fn working_days_between(&self, division: Division, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut count = 0;
        let mut date = from;
        while date < to {
            date += Duration::days(1);
            if self.is_working_day(division, date) {
                count += 1;
            }
        }
        count
    }
}

/// The service's deadline setting and the calendar it is counted in.
#[derive(Debug, Clone)]
pub struct DeadlinePolicy {
    pub calendar: Arc<BankHolidays>,
    /// Advice is due this many working days after the referral counts as received.
    pub limit_working_days: u32,
}

impl Default for DeadlinePolicy {
    fn default() -> Self {
        DeadlinePolicy { calendar: BankHolidays::bundled(), limit_working_days: DEFAULT_LIMIT_WORKING_DAYS }
    }
}

impl DeadlinePolicy {
    /// The default policy, with the calendar [`CALENDAR_FILE_NAME`] in `data_dir` instead of
    /// the compiled-in one when that file exists. A file that exists but cannot be read or
    /// parsed is an error: due dates are not silently counted in a calendar nobody chose.
    pub fn for_data_dir(data_dir: &Path) -> Result<DeadlinePolicy, CalendarError> {
        let path = data_dir.join(CALENDAR_FILE_NAME);
        if !path.exists() {
            return Ok(DeadlinePolicy::default());
        }
        Ok(DeadlinePolicy { calendar: Arc::new(BankHolidays::load(&path)?), ..DeadlinePolicy::default() })
    }

    /// Identifies the limit and every holiday of the calendar: due dates stored under another
    /// fingerprint were counted with another calendar and are counted again at start-up
    /// (`Desk::open`), so a replaced calendar file moves the due dates already on screen too.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest as _, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(format!("limit {};", self.limit_working_days));
        for (division, calendar) in &self.calendar.divisions {
            hasher.update(format!("{} {}-{}:", division.key(), calendar.first_year, calendar.last_year));
            for day in &calendar.holidays {
                hasher.update(format!("{day},"));
            }
        }
        hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// [`due`] with this policy's limit and calendar.
    pub fn due(&self, received_at: DateTime<Utc>, nation: Nation) -> Deadline {
        due(received_at, nation, self.limit_working_days, &self.calendar)
    }
}

/// When advice on one referral is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// 17:00 London time on the due day, as UTC.
    pub due_at: DateTime<Utc>,
    /// The calendar knows the bank holidays of every day from receipt to the due day. When
    /// false, bank holidays beyond the calendar were not skipped (weekends were).
    pub calendar_covers: bool,
}

/// Due date of a referral from a practice in `nation` received at `received_at`, `working_days`
/// working days on (module rules: day 0, 17:00 London time, the nation's bank holidays).
pub fn due(
    received_at: DateTime<Utc>,
    nation: Nation,
    working_days: u32,
    calendar: &BankHolidays,
) -> Deadline {
    let division = Division::of(nation);
    let received_local = received_at.with_timezone(&London);
    let received_date = received_local.date_naive();
    let day_zero =
        if calendar.is_working_day(division, received_date) && received_local.time() < end_of_working_day() {
            received_date
        } else {
            calendar.next_working_day(division, received_date)
        };
    let mut due_date = day_zero;
    for _ in 0..working_days {
        due_date = calendar.next_working_day(division, due_date);
    }
    Deadline {
        due_at: end_of_working_day_utc(due_date),
        calendar_covers: calendar.covers_span(division, received_date, due_date),
    }
}

/// 17:00 London time on `date`, as UTC (16:00 UTC in summer, 17:00 UTC in winter).
pub fn end_of_working_day_utc(date: NaiveDate) -> DateTime<Utc> {
    let local = date.and_time(end_of_working_day());
    // The clocks change at 01:00 UTC, never at 17:00, so 17:00 always exists exactly once.
    London
        .from_local_datetime(&local)
        .earliest()
        .expect("17:00 exists on every day in London")
        .with_timezone(&Utc)
}

/// Where a referral stands against its due date, in working days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueStatus {
    /// Due at 17:00 today, and that is still to come.
    DueToday,
    /// Due this many working days after today (at least 1).
    DueIn(u32),
    /// The due instant has passed, by this many working days (at least 1).
    Overdue(u32),
}

impl DueStatus {
    /// "Due today", "Due in 1 working day", "Overdue by 2 working days".
    pub fn label(self) -> String {
        let days = |n: u32| if n == 1 { "1 working day".to_owned() } else { format!("{n} working days") };
        match self {
            DueStatus::DueToday => "Due today".to_owned(),
            DueStatus::DueIn(n) => format!("Due in {}", days(n)),
            DueStatus::Overdue(n) => format!("Overdue by {}", days(n)),
        }
    }

    pub fn overdue(self) -> bool {
        matches!(self, DueStatus::Overdue(_))
    }

    /// Working days left: 0 due today, positive before, negative when overdue.
    pub fn working_days_left(self) -> i32 {
        let signed = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        match self {
            DueStatus::DueToday => 0,
            DueStatus::DueIn(n) => signed(n),
            DueStatus::Overdue(n) => -signed(n),
        }
    }
}

/// How `due_at` stands at `now` for a practice in `nation` (module rules: "today" is the
/// London date; counts skip weekends and the nation's bank holidays).
pub fn due_status(
    due_at: DateTime<Utc>,
    now: DateTime<Utc>,
    nation: Nation,
    calendar: &BankHolidays,
) -> DueStatus {
    let division = Division::of(nation);
    let today = now.with_timezone(&London).date_naive();
    let due_date = due_at.with_timezone(&London).date_naive();
    if now > due_at {
        return DueStatus::Overdue(calendar.working_days_between(division, due_date, today).max(1));
    }
    if due_date <= today {
        return DueStatus::DueToday;
    }
    DueStatus::DueIn(calendar.working_days_between(division, today, due_date).max(1))
}

/// A warning for the consultant when the bank holidays between receipt, now and the due day
/// are not all in the calendar (so only weekends were skipped there); `None` when they are.
pub fn coverage_note(
    received_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
    now: DateTime<Utc>,
    nation: Nation,
    calendar: &BankHolidays,
) -> Option<String> {
    let division = Division::of(nation);
    let dates = [received_at, due_at, now].map(|instant| instant.with_timezone(&London).date_naive());
    let (from, to) = (dates.iter().min()?, dates.iter().max()?);
    if calendar.covers_span(division, *from, *to) {
        return None;
    }
    let (first, last) = calendar.coverage(division);
    Some(format!(
        "The bank holiday calendar for {} covers {} to {} only: outside those years only weekends \
         are skipped, so this due date may be early. Update the calendar.",
        division.name(),
        first.year(),
        last.year()
    ))
}

fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("a valid calendar date")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calendar() -> Arc<BankHolidays> {
        BankHolidays::bundled()
    }

    /// London local time "YYYY-MM-DD HH:MM" to UTC (the test rows are written as the
    /// consultant and the GP read them).
    fn london(local: &str) -> DateTime<Utc> {
        let naive = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
        London.from_local_datetime(&naive).earliest().unwrap().with_timezone(&Utc)
    }

    fn nation(name: &str) -> Nation {
        match name {
            "England" => Nation::England,
            "Wales" => Nation::Wales,
            "Scotland" => Nation::Scotland,
            "NI" => Nation::NorthernIreland,
            other => panic!("unknown nation {other}"),
        }
    }

    /// (received, London local time; nation; N; expected due, London local time; why)
    const DUE_CASES: &[(&str, &str, u32, &str, &str)] = &[
        // Ordinary weeks.
        ("2026-11-23 09:00", "England", 3, "2026-11-26 17:00", "Monday morning: day 0 Monday, due Thursday"),
        ("2026-11-26 09:00", "England", 3, "2026-12-01 17:00", "Thursday: the weekend is skipped"),
        ("2026-11-23 09:00", "England", 2, "2026-11-25 17:00", "the service target, 2 working days"),
        ("2026-11-23 09:00", "England", 0, "2026-11-23 17:00", "N = 0: due at the end of day 0"),
        ("2026-11-23 16:59", "England", 3, "2026-11-26 17:00", "a minute before the end of the day counts"),
        ("2026-11-23 17:00", "England", 3, "2026-11-27 17:00", "17:00 itself is after the working day"),
        ("2026-11-27 18:30", "England", 3, "2026-12-03 17:00", "Friday evening: day 0 is Monday"),
        ("2026-11-28 09:00", "England", 3, "2026-12-03 17:00", "Saturday: day 0 is Monday"),
        ("2026-11-29 23:59", "England", 3, "2026-12-03 17:00", "Sunday night: day 0 is Monday"),
        ("2026-11-30 00:30", "England", 3, "2026-12-03 17:00", "Monday 00:30 counts as Monday"),
        // St Andrew's Day: Scotland only.
        ("2026-11-27 10:00", "Scotland", 3, "2026-12-03 17:00", "Fri; St Andrew's Day Mon 30 Nov skipped"),
        ("2026-11-27 10:00", "England", 3, "2026-12-02 17:00", "Fri; 30 Nov is a working day in England"),
        ("2026-11-30 10:00", "Scotland", 3, "2026-12-04 17:00", "received on St Andrew's Day: day 0 Tue"),
        ("2024-11-29 10:00", "Scotland", 1, "2024-12-03 17:00", "St Andrew's Day 2024 (Sat) -> Mon 2 Dec"),
        // Easter.
        (
            "2026-04-02 10:00",
            "England",
            3,
            "2026-04-09 17:00",
            "Maundy Thursday: Good Friday, Easter Monday off",
        ),
        (
            "2026-04-02 10:00",
            "Scotland",
            3,
            "2026-04-08 17:00",
            "Scotland: Good Friday only, Easter Monday works",
        ),
        ("2026-04-02 10:00", "NI", 3, "2026-04-09 17:00", "Northern Ireland keeps Easter Monday"),
        ("2026-04-03 11:00", "England", 3, "2026-04-10 17:00", "received on Good Friday: day 0 is Tue 7 Apr"),
        ("2027-03-25 12:00", "Wales", 2, "2027-03-31 17:00", "Easter 2027 is in March; Wales as England"),
        ("2025-04-17 17:30", "England", 1, "2025-04-23 17:00", "Thu evening before Easter 2025"),
        // Christmas, Boxing Day and their substitutes.
        ("2026-12-24 10:00", "England", 3, "2026-12-31 17:00", "Christmas Fri; Boxing Day Sat -> Mon 28 Dec"),
        (
            "2027-12-24 10:00",
            "England",
            1,
            "2027-12-29 17:00",
            "Christmas Sat -> Mon 27, Boxing Sun -> Tue 28",
        ),
        ("2025-12-24 16:00", "Scotland", 2, "2025-12-30 17:00", "Christmas Thu, Boxing Day Fri"),
        // New Year, and Scotland's 2 January.
        ("2025-12-31 12:00", "England", 1, "2026-01-02 17:00", "New Year's Day Thu; Fri 2 Jan works"),
        ("2025-12-31 12:00", "Scotland", 1, "2026-01-05 17:00", "Scotland also has 2 January"),
        ("2026-12-31 12:00", "Scotland", 1, "2027-01-05 17:00", "2 January 2027 is Sat -> Mon 4 Jan"),
        ("2027-12-31 12:00", "England", 1, "2028-01-04 17:00", "New Year's Day 2028 Sat -> Mon 3 Jan"),
        ("2027-12-31 12:00", "Scotland", 1, "2028-01-05 17:00", "Scotland 2028: Mon 3 and Tue 4 Jan"),
        // Northern Ireland's own days.
        ("2026-03-16 09:00", "NI", 1, "2026-03-18 17:00", "St Patrick's Day Tue 17 Mar"),
        ("2026-03-16 09:00", "England", 1, "2026-03-17 17:00", "17 March works in England"),
        ("2026-07-10 09:00", "NI", 1, "2026-07-14 17:00", "12 July Sun -> Mon 13 Jul"),
        // 29 February.
        ("2028-02-28 09:00", "England", 1, "2028-02-29 17:00", "due on 29 February 2028"),
        ("2028-02-29 17:05", "England", 1, "2028-03-02 17:00", "29 Feb evening: day 0 is 1 March"),
        ("2024-02-29 10:00", "NI", 3, "2024-03-05 17:00", "received on 29 February 2024 (Thu)"),
        // The clock changes (the UTC instants are checked in their own test).
        (
            "2026-03-27 16:30",
            "England",
            1,
            "2026-03-30 17:00",
            "Fri before BST starts Sun 29 Mar: due 16:00 UTC",
        ),
        ("2026-03-27 17:30", "England", 0, "2026-03-30 17:00", "Fri GMT evening, N = 0: due Monday in BST"),
        (
            "2026-10-23 16:30",
            "England",
            1,
            "2026-10-26 17:00",
            "Fri before GMT returns Sun 25 Oct: 17:00 UTC",
        ),
        ("2026-10-25 01:30", "England", 1, "2026-10-27 17:00", "Sunday 01:30, the hour that happens twice"),
        (
            "2026-06-12 16:30",
            "England",
            1,
            "2026-06-15 17:00",
            "BST: 16:30 local is 15:30 UTC, still in the day",
        ),
        // Beyond the calendar (weekends only; flagged, see below).
        ("2029-12-24 10:00", "England", 3, "2029-12-27 17:00", "2029 is not in the calendar: weekends only"),
    ];

    #[test]
    fn due_dates() {
        let calendar = calendar();
        let mut failures = Vec::new();
        for &(received, nation_name, working_days, expected, why) in DUE_CASES {
            let deadline = due(london(received), nation(nation_name), working_days, &calendar);
            let actual = deadline.due_at.with_timezone(&London).format("%Y-%m-%d %H:%M").to_string();
            if actual != expected {
                failures.push(format!(
                    "{received} {nation_name} +{working_days}: {actual}, expected {expected} ({why})"
                ));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn due_at_is_17_00_london_in_utc_across_the_clock_changes() {
        let calendar = calendar();
        for (received, expected_utc) in [
            ("2026-03-27 16:30", "2026-03-30T16:00:00+00:00"), // BST: 17:00 local is 16:00 UTC
            ("2026-10-23 16:30", "2026-10-26T17:00:00+00:00"), // GMT: 17:00 local is 17:00 UTC
            ("2026-06-12 16:30", "2026-06-15T16:00:00+00:00"),
        ] {
            let deadline = due(london(received), Nation::England, 1, &calendar);
            assert_eq!(deadline.due_at.to_rfc3339(), expected_utc, "received {received}");
        }
        // 16:30 UTC on a BST day is 17:30 in London: after the working day.
        let deadline = due("2026-06-12T16:30:00Z".parse().unwrap(), Nation::England, 1, &calendar);
        assert_eq!(deadline.due_at.to_rfc3339(), "2026-06-16T16:00:00+00:00");
        // The same UTC time in winter is 16:30 in London: within it.
        let deadline = due("2026-12-04T16:30:00Z".parse().unwrap(), Nation::England, 1, &calendar);
        assert_eq!(deadline.due_at.to_rfc3339(), "2026-12-07T17:00:00+00:00");
    }

    #[test]
    fn beyond_the_calendar_is_weekends_only_and_says_so() {
        let calendar = calendar();
        assert!(due(london("2028-12-20 10:00"), Nation::England, 3, &calendar).calendar_covers);
        let late = due(london("2028-12-28 10:00"), Nation::England, 3, &calendar);
        assert!(!late.calendar_covers, "due in January 2029, beyond the calendar");
        let now = london("2028-12-28 11:00");
        let note = coverage_note(london("2028-12-28 10:00"), late.due_at, now, Nation::England, &calendar);
        assert_eq!(
            note.as_deref(),
            Some(
                "The bank holiday calendar for England and Wales covers 2024 to 2028 only: outside \
                 those years only weekends are skipped, so this due date may be early. Update the \
                 calendar."
            )
        );
        let received = london("2026-12-28 10:00");
        let covered = due(received, Nation::England, 3, &calendar);
        assert!(covered.calendar_covers);
        assert_eq!(coverage_note(received, covered.due_at, received, Nation::England, &calendar), None);
        // Looking at a covered due date from beyond the calendar is flagged too.
        let far_future = london("2029-01-08 09:00");
        assert!(coverage_note(received, covered.due_at, far_future, Nation::England, &calendar).is_some());
    }

    /// (due, London local; now, London local; nation; expected label; why)
    const STATUS_CASES: &[(&str, &str, &str, &str, &str)] = &[
        ("2026-11-26 17:00", "2026-11-26 09:00", "England", "Due today", "due at 17:00 today"),
        ("2026-11-26 17:00", "2026-11-26 17:00", "England", "Due today", "the due instant itself"),
        ("2026-11-26 17:00", "2026-11-25 09:00", "England", "Due in 1 working day", "due tomorrow"),
        ("2026-11-26 17:00", "2026-11-25 22:00", "England", "Due in 1 working day", "the evening before"),
        ("2026-11-26 17:00", "2026-11-24 09:00", "England", "Due in 2 working days", "two days before"),
        ("2026-11-30 17:00", "2026-11-27 09:00", "England", "Due in 1 working day", "Fri, due Mon"),
        ("2026-11-30 17:00", "2026-11-28 12:00", "England", "Due in 1 working day", "Sat, due Mon"),
        (
            "2026-12-01 17:00",
            "2026-11-27 09:00",
            "Scotland",
            "Due in 1 working day",
            "Mon is St Andrew's Day",
        ),
        ("2026-11-26 17:00", "2026-11-26 17:01", "England", "Overdue by 1 working day", "a minute late"),
        ("2026-11-26 17:00", "2026-11-27 09:00", "England", "Overdue by 1 working day", "the next morning"),
        ("2026-11-27 17:00", "2026-11-29 09:00", "England", "Overdue by 1 working day", "the weekend after"),
        ("2026-11-27 17:00", "2026-11-30 09:00", "England", "Overdue by 1 working day", "Monday after"),
        ("2026-11-27 17:00", "2026-12-01 09:00", "England", "Overdue by 2 working days", "Tuesday after"),
        ("2026-11-27 17:00", "2026-12-01 09:00", "Scotland", "Overdue by 1 working day", "St Andrew's Day"),
        ("2026-12-24 17:00", "2026-12-29 09:00", "England", "Overdue by 1 working day", "over Christmas"),
        ("2026-03-27 17:00", "2026-03-30 09:00", "England", "Overdue by 1 working day", "across BST"),
        ("2026-10-23 17:00", "2026-10-26 16:30", "England", "Overdue by 1 working day", "across GMT"),
        ("2026-10-26 17:00", "2026-10-26 16:59", "England", "Due today", "the Monday after GMT returns"),
    ];

    #[test]
    fn due_status_wording() {
        let calendar = calendar();
        let mut failures = Vec::new();
        for &(due_local, now_local, nation_name, expected, why) in STATUS_CASES {
            let status = due_status(london(due_local), london(now_local), nation(nation_name), &calendar);
            if status.label() != expected {
                failures.push(format!(
                    "due {due_local}, now {now_local}: {}, expected {expected} ({why})",
                    status.label()
                ));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn status_flags_and_days_left() {
        for (status, label, overdue, left) in [
            (DueStatus::DueToday, "Due today", false, 0),
            (DueStatus::DueIn(1), "Due in 1 working day", false, 1),
            (DueStatus::DueIn(2), "Due in 2 working days", false, 2),
            (DueStatus::Overdue(1), "Overdue by 1 working day", true, -1),
            (DueStatus::Overdue(2), "Overdue by 2 working days", true, -2),
        ] {
            assert_eq!(
                (status.label().as_str(), status.overdue(), status.working_days_left()),
                (label, overdue, left)
            );
        }
    }

    // ---------------------------------------------------------------------------------------
    // The bundled data file, checked against the rules that make the UK calendars, so a typing
    // error in a date is caught. A one-off bank holiday (a coronation, a state funeral) would
    // be listed in `ONE_OFF` with its source.

    const ONE_OFF: &[(Division, &str)] = &[];

    /// Easter Sunday by the anonymous Gregorian computus (Meeus/Jones/Butcher).
    fn easter_sunday(year: i32) -> NaiveDate {
        let a = year % 19;
        let b = year / 100;
        let c = year % 100;
        let d = b / 4;
        let e = b % 4;
        let f = (b + 8) / 25;
        let g = (b - f + 1) / 3;
        let h = (19 * a + b - d - g + 15) % 30;
        let i = c / 4;
        let k = c % 4;
        let l = (32 + 2 * e + 2 * i - h - k) % 7;
        let m = (a + 11 * h + 22 * l) / 451;
        let month = (h + l - 7 * m + 114) / 31;
        let day = (h + l - 7 * m + 114) % 31 + 1;
        ymd(year, month as u32, day as u32)
    }

    #[test]
    fn computus_gives_the_known_easter_sundays() {
        for (year, easter) in [
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2026, "2026-04-05"),
            (2027, "2027-03-28"),
            (2028, "2028-04-16"),
            (2038, "2038-04-25"),
        ] {
            assert_eq!(easter_sunday(year).to_string(), easter);
        }
    }

    fn first_monday(year: i32, month: u32) -> NaiveDate {
        NaiveDate::from_weekday_of_month_opt(year, month, Weekday::Mon, 1).unwrap()
    }

    fn last_monday(year: i32, month: u32) -> NaiveDate {
        let mut date = ymd(year, month + 1, 1) - Duration::days(1);
        while date.weekday() != Weekday::Mon {
            date -= Duration::days(1);
        }
        date
    }

    /// A division's bank holidays in `year` by the rules: fixed-date holidays that fall on a
    /// weekend (or on a day already taken) move to the next free weekday, in order.
    fn by_the_rules(division: Division, year: i32) -> BTreeSet<NaiveDate> {
        let easter = easter_sunday(year);
        let mut days = BTreeSet::from([
            easter - Duration::days(2), // Good Friday
            first_monday(year, 5),      // Early May
            last_monday(year, 5),       // Spring
        ]);
        match division {
            Division::Scotland => {
                days.insert(first_monday(year, 8));
            }
            _ => {
                days.insert(easter + Duration::days(1)); // Easter Monday
                days.insert(last_monday(year, 8));
            }
        }
        let fixed: &[(u32, u32)] = match division {
            Division::EnglandAndWales => &[(1, 1), (12, 25), (12, 26)],
            Division::Scotland => &[(1, 1), (1, 2), (11, 30), (12, 25), (12, 26)],
            Division::NorthernIreland => &[(1, 1), (3, 17), (7, 12), (12, 25), (12, 26)],
        };
        for &(month, day) in fixed {
            let mut date = ymd(year, month, day);
            while matches!(date.weekday(), Weekday::Sat | Weekday::Sun) || days.contains(&date) {
                date += Duration::days(1);
            }
            days.insert(date);
        }
        days
    }

    #[test]
    fn bundled_calendar_covers_2024_to_2028_and_matches_the_rules() {
        let calendar = calendar();
        for division in Division::ALL {
            assert_eq!(calendar.coverage(division), (ymd(2024, 1, 1), ymd(2028, 12, 31)), "{division:?}");
            for year in 2024..=2028 {
                let mut expected = by_the_rules(division, year);
                for (one_off_division, date) in ONE_OFF {
                    let date: NaiveDate = date.parse().unwrap();
                    if *one_off_division == division && date.year() == year {
                        expected.insert(date);
                    }
                }
                let listed: BTreeSet<NaiveDate> = calendar
                    .division(division)
                    .holidays
                    .range(ymd(year, 1, 1)..=ymd(year, 12, 31))
                    .copied()
                    .collect();
                assert_eq!(listed, expected, "{division:?} {year}");
            }
        }
    }

    #[test]
    fn the_bundled_file_has_the_gov_uk_shape() {
        let file: serde_json::Value = serde_json::from_str(BUNDLED_CALENDAR).unwrap();
        for division in Division::ALL {
            assert_eq!(file[division.key()]["division"], division.key());
            for event in file[division.key()]["events"].as_array().unwrap() {
                assert!(event["title"].as_str().is_some_and(|title| !title.is_empty()), "{event}");
                assert!(event["notes"].is_string() && event["bunting"].is_boolean(), "{event}");
            }
        }
    }

    fn malformed(text: &str) -> String {
        BankHolidays::from_json(text, "test.json").unwrap_err().to_string()
    }

    #[test]
    fn a_malformed_calendar_is_refused_with_a_reason() {
        let division = |events: &str| format!(r#"{{"division": "x", "events": [{events}]}}"#);
        let file = |ew: &str, scotland: &str, ni: &str| {
            format!(r#"{{"england-and-wales": {ew}, "scotland": {scotland}, "northern-ireland": {ni}}}"#)
        };
        let good = division(r#"{"title": "New Year's Day", "date": "2030-01-01"}"#);
        let ok = file(&good, &good, &good);
        let calendar = BankHolidays::from_json(&ok, "test.json").unwrap();
        assert_eq!(calendar.coverage(Division::Scotland), (ymd(2030, 1, 1), ymd(2030, 12, 31)));

        assert!(malformed("not json").starts_with(
            "the bank holiday calendar test.json is not in the expected shape (the gov.uk bank-holidays.json format): "
        ));
        assert!(malformed(&format!(r#"{{"england-and-wales": {good}, "scotland": {good}}}"#))
            .ends_with(r#"the division "northern-ireland" is missing"#));
        let bad_date = division(r#"{"date": "25/12/2030"}"#);
        assert!(malformed(&file(&good, &bad_date, &good))
            .ends_with(r#""25/12/2030" in "scotland" is not a date like 2026-12-25"#));
        assert!(malformed(&file(&good, &good, &division("")))
            .ends_with(r#""northern-ireland" lists no bank holidays"#));
        let gap = division(r#"{"date": "2030-01-01"}, {"date": "2032-01-01"}"#);
        assert!(malformed(&file(&gap, &good, &good))
            .ends_with(r#""england-and-wales" lists no bank holidays in 2031, between 2030 and 2032"#));
    }

    #[test]
    fn a_calendar_file_in_the_data_folder_replaces_the_bundled_one() {
        let dir = tempfile::tempdir().unwrap();
        let bundled = DeadlinePolicy::for_data_dir(dir.path()).unwrap();
        assert_eq!(bundled.calendar.coverage(Division::EnglandAndWales).1, ymd(2028, 12, 31));
        assert_eq!(bundled.limit_working_days, 3);

        // The published file extended by a year: 2029's Christmas now counts.
        let mut file: serde_json::Value = serde_json::from_str(BUNDLED_CALENDAR).unwrap();
        for division in Division::ALL {
            let events = file[division.key()]["events"].as_array_mut().unwrap();
            for date in ["2029-01-01", "2029-12-25", "2029-12-26"] {
                events.push(
                    serde_json::json!({"title": "Bank holiday", "date": date, "notes": "", "bunting": true}),
                );
            }
        }
        std::fs::write(dir.path().join(CALENDAR_FILE_NAME), file.to_string()).unwrap();
        let updated = DeadlinePolicy::for_data_dir(dir.path()).unwrap();
        let deadline = updated.due(london("2029-12-24 10:00"), Nation::England);
        assert_eq!(deadline.due_at, london("2029-12-31 17:00"));
        assert!(deadline.calendar_covers);

        std::fs::write(dir.path().join(CALENDAR_FILE_NAME), "{").unwrap();
        let error = DeadlinePolicy::for_data_dir(dir.path()).unwrap_err().to_string();
        assert!(error.contains(CALENDAR_FILE_NAME) && error.contains("not in the expected shape"), "{error}");
    }
}
