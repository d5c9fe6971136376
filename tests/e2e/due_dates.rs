//! End-to-end, issue 13: the worklist's due dates in the real window at instants where working
//! days are easy to get wrong — a Friday a minute before and a minute after 17:00, the Monday
//! after a bank holiday, the days the clocks change, Christmas Eve. The app runs on a frozen
//! clock at each instant (`DERMDESK_NOW`, `DERMDESK_CLOCK=frozen`) over the demo's referrals as
//! they stood at a given arrival instant (`DERMDESK_DEMO_SEEDED_AT`); every row's flag must be
//! exactly what the core's deadline rules say for that referral at that instant, in the singular
//! or plural, and the same referrals must turn from "Due today" to "Overdue by 1 working day"
//! across 17:00.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dermdesk_core::deadline::{due_status, DeadlinePolicy};
use dermdesk_e2e::{wait_for, Driver};
use dermdesk_hub::DEMO_SEED;
use dermdesk_synth::{DemoOptions, PhotoScale, DEFAULT_REFERRALS};

/// One look at the worklist: the demo as seeded at `seeded_at`, seen at `now`.
struct Instant {
    name: &'static str,
    seeded_at: &'static str,
    now: &'static str,
}

const INSTANTS: &[Instant] = &[
    // Friday 4 December 2026 (GMT): the working day ends at 17:00.
    Instant { name: "friday-16-59", seeded_at: "2026-12-04T09:30:00Z", now: "2026-12-04T16:59:00Z" },
    Instant { name: "friday-17-01", seeded_at: "2026-12-04T09:30:00Z", now: "2026-12-04T17:01:00Z" },
    // Monday 4 January 2027, after the New Year bank holiday (Friday 1 January).
    Instant {
        name: "monday-after-bank-holiday",
        seeded_at: "2027-01-04T08:00:00Z",
        now: "2027-01-04T09:00:00Z",
    },
    // Sunday 29 March 2026, the clocks go forward (01:00 GMT becomes 02:00 BST).
    Instant {
        name: "clocks-go-forward",
        seeded_at: "2026-03-29T10:00:00+01:00",
        now: "2026-03-29T12:00:00+01:00",
    },
    // Sunday 25 October 2026, the clocks go back.
    Instant { name: "clocks-go-back", seeded_at: "2026-10-25T10:00:00Z", now: "2026-10-25T16:30:00Z" },
    // Christmas Eve 2026, a Thursday, late in the working day.
    Instant { name: "christmas-eve", seeded_at: "2026-12-24T09:00:00Z", now: "2026-12-24T16:45:00Z" },
];

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

/// What the core's deadline rules say for every demo referral: `referral id → (label, tone)`.
fn expected(at: &Instant) -> BTreeMap<String, (String, &'static str)> {
    let policy = DeadlinePolicy::default();
    let options = DemoOptions {
        seed: DEMO_SEED,
        referrals: DEFAULT_REFERRALS,
        photo_scale: PhotoScale::Small(1024),
        now: instant(at.seeded_at),
    };
    let now = instant(at.now);
    dermdesk_synth::plan_demo_referrals(&options)
        .into_iter()
        .map(|referral| {
            let nation = referral.practice.nation;
            let due_at = policy.due(referral.received_at, nation).due_at;
            let status = due_status(due_at, now, nation, &policy.calendar);
            // The worklist's tone (format.js `dueTone`), from the same numbers.
            let tone = match status.working_days_left() {
                _ if status.overdue() => "overdue",
                left if left <= 0 => "today",
                1 => "tomorrow",
                _ => "later",
            };
            (referral.id, (status.label(), tone))
        })
        .collect()
}

/// Every unanswered row on screen: `referral id → (flag text, data-due)`.
async fn shown(at: &Instant) -> BTreeMap<String, (String, String)> {
    let driver = Driver::start_with_env(&[
        ("DERMDESK_NOW", at.now),
        ("DERMDESK_CLOCK", "frozen"),
        ("DERMDESK_DEMO_SEEDED_AT", at.seeded_at),
    ]);
    let client = driver.open_app(&["--demo"]).await;
    let rows = wait_for(
        &client,
        "every demo referral in the worklist",
        Duration::from_secs(300),
        &format!(
            "(() => {{ const rows = [...document.querySelectorAll('#worklist .worklist-row')]; \
               if (rows.length < {DEFAULT_REFERRALS}) return null; \
               return rows.map(r => [r.dataset.referralId, r.querySelector('.due-flag')?.textContent ?? '', r.dataset.due]); }})()"
        ),
    )
    .await;
    let shown = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let text = |i: usize| row[i].as_str().unwrap().to_owned();
            (text(0), (text(1), text(2)))
        })
        .collect();
    client.close().await.unwrap();
    shown
}

#[tokio::test(flavor = "multi_thread")]
async fn due_dates_in_the_window_match_the_working_day_rules_at_awkward_instants() {
    if dermdesk_e2e::skip_without_window("due_dates") {
        return;
    }
    let mut flags_by_instant: BTreeMap<&str, BTreeMap<String, (String, String)>> = BTreeMap::new();
    for at in INSTANTS {
        let expected = expected(at);
        let shown = shown(at).await;
        for (referral_id, (label, tone)) in &expected {
            let (flag, due) = shown
                .get(referral_id)
                .unwrap_or_else(|| panic!("{}: {referral_id} is not in the worklist: {shown:?}", at.name));
            assert_eq!(flag, label, "{} ({}): the flag of {referral_id}", at.name, at.now);
            assert_eq!(due, tone, "{} ({}): the tone of {referral_id}", at.name, at.now);
        }
        let labels: Vec<&str> = expected.values().map(|(label, _)| label.as_str()).collect();
        eprintln!("{} at {}: {labels:?}", at.name, at.now);
        flags_by_instant.insert(at.name, shown);
    }

    // Across 17:00 on the Friday, the same referrals: what was due today is now a working day late.
    let (before, after) = (&flags_by_instant["friday-16-59"], &flags_by_instant["friday-17-01"]);
    let turned: Vec<&String> = before
        .iter()
        .filter(|(id, (flag, _))| flag == "Due today" && after[*id].0 == "Overdue by 1 working day")
        .map(|(id, _)| id)
        .collect();
    assert!(
        !turned.is_empty(),
        "no referral went from due today to overdue at 17:00: {before:?} → {after:?}"
    );
    // The singular and the plural are both met somewhere in the runs.
    let all_flags: Vec<&str> =
        flags_by_instant.values().flat_map(|rows| rows.values().map(|(f, _)| f.as_str())).collect();
    assert!(all_flags.iter().any(|f| f.ends_with(" 1 working day")), "{all_flags:?}");
    assert!(all_flags.iter().any(|f| f.ends_with(" working days")), "{all_flags:?}");
}
