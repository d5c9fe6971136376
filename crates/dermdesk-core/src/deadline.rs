//! When advice is due: received + N working days. This first version skips weekends only;
//! bank holidays per nation come with the worklist issue.

use chrono::{DateTime, Datelike, Duration, NaiveTime, Utc, Weekday};

/// The service's limit: advice to the GP within 3 working days.
pub const DEFAULT_LIMIT_WORKING_DAYS: u32 = 3;

/// The end of the working day on which advice is due (17:00 UTC for now).
pub fn due_at(received_at: DateTime<Utc>, working_days: u32) -> DateTime<Utc> {
    let mut date = received_at.date_naive();
    let mut remaining = working_days;
    while remaining > 0 {
        date += Duration::days(1);
        if !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
            remaining -= 1;
        }
    }
    date.and_time(NaiveTime::from_hms_opt(17, 0, 0).expect("valid time")).and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(received: &str, expected_due_date: &str) {
        let due = due_at(received.parse().unwrap(), DEFAULT_LIMIT_WORKING_DAYS);
        assert_eq!(due.date_naive().to_string(), expected_due_date, "received {received}");
    }

    #[test]
    fn three_working_days_skip_the_weekend() {
        check("2026-11-23T09:00:00Z", "2026-11-26"); // Monday -> Thursday
        check("2026-11-26T09:00:00Z", "2026-12-01"); // Thursday -> Tuesday
        check("2026-11-27T18:30:00Z", "2026-12-02"); // Friday evening -> Wednesday
        check("2026-11-28T09:00:00Z", "2026-12-02"); // Saturday -> Wednesday
    }
}
