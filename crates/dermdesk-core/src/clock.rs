//! "Now" for the desk, injectable: every date the consultant sees (due today, overdue by n
//! working days, the trip window) and every time stamp the desk records comes from the
//! [`Clock`] the [`crate::Desk`] was given, never from `Utc::now()` in the logic.
//!
//! - [`SystemClock`]: the computer's clock; what a real desk runs on.
//! - [`StartingAt`]: starts at a chosen instant and runs at the wall clock's pace; the demo and
//!   the tests run on it (`DERMDESK_NOW`), so that what they show does not depend on the day.
//! - [`FixedClock`]: stands still until moved; for unit tests.
//!
//! Durations that must not follow a changed clock (idle lock, unlock delays) are measured on
//! `std::time::Instant` instead, in [`crate::lock`].

use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};

/// The environment variable the demo and the tests set to run at a fixed instant (RFC 3339,
/// e.g. `2026-12-04T16:59:00Z`). A product build ignores it (see [`from_environment`]).
pub const NOW_VARIABLE: &str = "DERMDESK_NOW";

/// With `DERMDESK_NOW`, `DERMDESK_CLOCK=frozen` stops the clock at that instant (a test that
/// reads due dates exactly at 16:59 on a Friday); otherwise the clock runs on from it.
pub const CLOCK_VARIABLE: &str = "DERMDESK_CLOCK";

/// Where "now" comes from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// A clock shared by the desk, its engine and the embedded demo hub.
pub type SharedClock = Arc<dyn Clock>;

/// The computer's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Starts at `start` and then runs at the pace of the monotonic clock: a demo started "on a
/// Friday at 16:59" reaches 17:00 a minute later, and retries, idle times and time stamps keep
/// working as they do on a real clock.
#[derive(Debug, Clone)]
pub struct StartingAt {
    start: DateTime<Utc>,
    since: Instant,
}

impl StartingAt {
    pub fn new(start: DateTime<Utc>) -> StartingAt {
        StartingAt { start, since: Instant::now() }
    }
}

impl Clock for StartingAt {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.since.elapsed()).unwrap_or(chrono::Duration::MAX);
        self.start.checked_add_signed(elapsed).unwrap_or(self.start)
    }
}

/// Stands at one instant until it is set or advanced.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> FixedClock {
        FixedClock(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The instant tests run at when they do not choose their own: `DERMDESK_NOW` if set (CI
/// runs the date-sensitive tests at several instants), else Wednesday 2 December 2026, 10:30
/// London time. Never today: a test must give the same answer on any day.
pub fn test_instant() -> DateTime<Utc> {
    std::env::var(NOW_VARIABLE)
        .ok()
        .filter(|text| !text.trim().is_empty())
        .map(|text| parse_instant(&text).unwrap_or_else(|error| panic!("{error}")))
        .unwrap_or_else(|| parse_instant(DEFAULT_TEST_INSTANT).expect("a valid instant"))
}

/// One clock for every desk and hub of a test process: it starts at [`test_instant`] when first
/// asked for and runs on, so a desk opened again and the hub it talks to agree on the time.
pub fn test_clock() -> SharedClock {
    static CLOCK: std::sync::OnceLock<SharedClock> = std::sync::OnceLock::new();
    Arc::clone(CLOCK.get_or_init(|| Arc::new(StartingAt::new(test_instant()))))
}

/// See [`test_instant`].
pub const DEFAULT_TEST_INSTANT: &str = "2026-12-02T10:30:00Z";

/// Reads an instant as `DERMDESK_NOW` gives it: RFC 3339 with an offset or `Z`.
pub fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim()).map(|instant| instant.with_timezone(&Utc)).map_err(|error| {
        format!("{NOW_VARIABLE}={text:?} is not an RFC 3339 instant such as 2026-12-04T16:59:00Z ({error})")
    })
}

/// The clock asked for by `DERMDESK_NOW` when `honoured` (the demo, or a development build the
/// tests drive), else the computer's clock. A product build never runs on a chosen clock: a
/// consultant's due dates must be the real ones. An unreadable value is an error, not a silent
/// fall-back to the real clock (a test that meant to run on a Friday must not run today).
pub fn from_environment(honoured: bool) -> Result<SharedClock, String> {
    match std::env::var(NOW_VARIABLE) {
        Ok(text) if honoured && !text.trim().is_empty() => {
            let start = parse_instant(&text)?;
            if std::env::var(CLOCK_VARIABLE).is_ok_and(|mode| mode == "frozen") {
                tracing::warn!(%start, "the clock stands at {NOW_VARIABLE} (demo and tests only)");
                return Ok(Arc::new(FixedClock::new(start)));
            }
            tracing::warn!(%start, "the clock starts at {NOW_VARIABLE} (demo and tests only)");
            Ok(Arc::new(StartingAt::new(start)))
        }
        _ => Ok(Arc::new(SystemClock)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_starting_at_an_instant_starts_there_and_runs_forward() {
        let start = parse_instant("2026-12-04T16:59:00Z").unwrap();
        let clock = StartingAt::new(start);
        let first = clock.now();
        assert!(first >= start && first - start < chrono::Duration::seconds(5), "{first}");
        assert!(clock.now() >= first, "never runs backwards");
    }

    #[test]
    fn a_fixed_clock_moves_only_when_told() {
        let clock = FixedClock::new(parse_instant("2026-12-24T09:00:00+00:00").unwrap());
        assert_eq!(clock.now(), clock.now());
        clock.advance(chrono::Duration::hours(8));
        assert_eq!(clock.now(), parse_instant("2026-12-24T17:00:00Z").unwrap());
        clock.set(parse_instant("2027-01-04T09:00:00Z").unwrap());
        assert_eq!(clock.now().to_rfc3339(), "2027-01-04T09:00:00+00:00");
    }

    #[test]
    fn instants_are_read_with_their_offset_and_bad_ones_say_what_is_expected() {
        assert_eq!(
            parse_instant("2026-03-29T01:30:00+01:00").unwrap(),
            parse_instant("2026-03-29T00:30:00Z").unwrap()
        );
        let error = parse_instant("next friday").unwrap_err();
        assert!(error.contains("DERMDESK_NOW") && error.contains("2026-12-04T16:59:00Z"), "{error}");
    }
}
