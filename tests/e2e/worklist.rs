//! End-to-end, issue 6: the consultant's day and trip in the real window. The demo is synced;
//! an overdue referral stands out as overdue; filters and search narrow the worklist with the
//! core's counts and are remembered across a reload; the keyboard alone goes from the search box
//! to a signed outcome; the trip screen's "Prepare for offline" reaches *Ready* and lists what
//! falls due while away.

use std::time::Duration;

use dermdesk_e2e::{click, screenshot, wait_for, wait_for_first_sync, Driver};
use fantoccini::{Client, Locator};
use serde_json::Value;

const ROWS: &str = "document.querySelectorAll('#worklist .worklist-row')";
const ALT: char = '\u{E00A}';
const CONTROL: char = '\u{E009}';
const RELEASE: char = '\u{E000}';
const ENTER: char = '\u{E007}';
const TAB: char = '\u{E004}';
const SPACE: char = '\u{E00D}';

async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.unwrap()
}

async fn press(client: &Client, keys: &str) {
    client.active_element().await.unwrap().send_keys(keys).await.unwrap();
}

/// The status chips' counts as `{status: count}`.
async fn chip_counts(client: &Client) -> serde_json::Map<String, Value> {
    let value = js(
        client,
        "return Object.fromEntries([...document.querySelectorAll('#status-chips .chip')].map(c => [c.dataset.status, +c.dataset.count]));",
    )
    .await;
    value.as_object().unwrap().clone()
}

async fn rows_count(client: &Client) -> u64 {
    js(client, &format!("return {ROWS}.length;")).await.as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_consultant_filters_triages_by_keyboard_and_gets_ready_for_a_trip() {
    if dermdesk_e2e::skip_without_window("worklist") {
        return;
    }
    let driver = Driver::start_with_env(&[]);
    let client = driver.open_app(&["--demo"]).await;
    wait_for(&client, "the worklist", Duration::from_secs(300), &format!("{ROWS}.length")).await;
    wait_for_first_sync(&client, Duration::from_secs(300)).await;
    let all = rows_count(&client).await;

    // 1. Overdue stands out: the demo patient's earlier referral was never answered.
    let overdue = wait_for(
        &client,
        "an overdue referral",
        Duration::from_secs(10),
        "(() => { const row = document.querySelector('.worklist-row[data-due=\"overdue\"]'); \
           const flag = row?.querySelector('.due-flag.due-overdue'); \
           return flag && getComputedStyle(row).borderLeftColor !== 'rgba(0, 0, 0, 0)' && flag.textContent; })()",
    )
    .await;
    let overdue = overdue.as_str().unwrap();
    // "Overdue by 1 working day", "Overdue by 2 working days": the number, and its noun agreeing.
    let days: u32 = overdue
        .strip_prefix("Overdue by ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not an overdue label: {overdue}"));
    let noun = if days == 1 { "working day" } else { "working days" };
    assert_eq!(overdue, format!("Overdue by {days} {noun}"));

    // 2. Filters and search, with the core's counts.
    let counts = chip_counts(&client).await;
    assert_eq!(counts["all"].as_u64().unwrap(), all, "All counts every referral: {counts:?}");
    let by_status: u64 = counts.iter().filter(|(k, _)| *k != "all").map(|(_, v)| v.as_u64().unwrap()).sum();
    assert_eq!(by_status, all, "every referral is counted under one status: {counts:?}");

    client
        .find(Locator::Css("#filter-urgency"))
        .await
        .unwrap()
        .select_by_value("two_week_wait")
        .await
        .unwrap();
    let two_week_wait = wait_for(
        &client,
        "only two-week-wait referrals",
        Duration::from_secs(10),
        &format!(
            "(() => {{ const rows = [...{ROWS}]; return rows.length > 0 && rows.length < {all} \
               && rows.every(r => r.classList.contains('urgency-two_week_wait')) && rows.length; }})()"
        ),
    )
    .await
    .as_u64()
    .unwrap();
    let summary = js(&client, "return document.querySelector('#filter-summary').textContent;").await;
    assert!(summary.as_str().unwrap().starts_with(&format!("{two_week_wait} referral")), "{summary}");

    // Search by NHS number typed with spaces, inside the urgency filter: one patient.
    let (nhs, name) = {
        let v = js(
            &client,
            &format!("const r = {ROWS}[0]; return [r.querySelector('.nhs-number').textContent, r.querySelector('.row-name').textContent];"),
        )
        .await;
        (v[0].as_str().unwrap().to_owned(), v[1].as_str().unwrap().to_owned())
    };
    assert!(nhs.contains(' '), "NHS numbers are shown in groups: {nhs}");
    let search = client.find(Locator::Css("#worklist-search")).await.unwrap();
    search.send_keys(&nhs).await.unwrap();
    wait_for(
        &client,
        "the search to find the patient",
        Duration::from_secs(10),
        &format!(
            "[...{ROWS}].length >= 1 && [...{ROWS}].every(r => r.querySelector('.nhs-number').textContent === '{nhs}')"
        ),
    )
    .await;
    screenshot(&client, "worklist-filtered.png").await;

    // Remembered: reload the window (the back end keeps running); the filters come back.
    js(&client, "location.reload(); return true;").await;
    let restored = wait_for(
        &client,
        "the filters after a reload",
        Duration::from_secs(30),
        "(() => { const s = document.querySelector('#worklist-search'); const u = document.querySelector('#filter-urgency'); \
           return s && s.value && u.value === 'two_week_wait' && document.querySelectorAll('#worklist .worklist-row').length > 0 \
             && !document.querySelector('dialog[open]') && s.value; })()",
    )
    .await;
    assert_eq!(restored.as_str().unwrap(), nhs);

    // A name search (part of it, any case) finds the same patient; clearing shows everyone.
    click(&client, "#filter-clear").await;
    wait_for(&client, "every referral again", Duration::from_secs(10), &format!("{ROWS}.length === {all}"))
        .await;
    let part = name.split(' ').next_back().unwrap().to_lowercase();
    client.find(Locator::Css("#worklist-search")).await.unwrap().send_keys(&part).await.unwrap();
    wait_for(
        &client,
        "a name search",
        Duration::from_secs(10),
        &format!(
            "[...{ROWS}].length >= 1 && [...{ROWS}].every(r => r.querySelector('.row-name').textContent.toLowerCase().includes('{part}'))"
        ),
    )
    .await;
    click(&client, "#filter-clear").await;
    wait_for(&client, "every referral again", Duration::from_secs(10), &format!("{ROWS}.length === {all}"))
        .await;

    // 3. Keyboard triage: / to search, the patient's NHS number, Enter opens the first match,
    // o into the outcome, Alt+3 asks for more information, Space ticks the first missing view,
    // Tab to the message, Ctrl+Enter to sign, Tab to Sign, Enter.
    let target = js(
        &client,
        &format!(
            "const r = [...{ROWS}].find(r => (r.classList.contains('status-new') || r.classList.contains('status-opened')) \
               && !r.classList.contains('urgency-two_week_wait')); \
             return [r.dataset.referralId, r.querySelector('.nhs-number').textContent, \
               r.classList.contains('status-new') ? 'new' : 'opened'];"
        ),
    )
    .await;
    let (referral_id, target_nhs) =
        (target[0].as_str().unwrap().to_owned(), target[1].as_str().unwrap().to_owned());
    // Opening a new referral makes it "opened"; signing takes it out of "opened".
    let target_status = target[2].as_str().unwrap().to_owned();
    js(&client, "document.activeElement.blur(); return true;").await;
    press(&client, "/").await;
    let focused = js(&client, "return document.activeElement.id;").await;
    assert_eq!(focused, "worklist-search", "/ focuses the search");
    press(&client, &target_nhs).await;
    wait_for(
        &client,
        "the one match",
        Duration::from_secs(10),
        &format!("{ROWS}.length === 1 && {ROWS}[0].dataset.referralId === '{referral_id}'"),
    )
    .await;
    press(&client, &ENTER.to_string()).await;
    wait_for(
        &client,
        "the referral opened from the search",
        Duration::from_secs(20),
        &format!(
            "document.querySelector('#outcome-form') && document.querySelector('#detail-content').dataset.referralId === '{referral_id}'"
        ),
    )
    .await;
    press(&client, "o").await;
    press(&client, &format!("{ALT}3{RELEASE}")).await;
    wait_for(
        &client,
        "Alt+3 to ask for more information",
        Duration::from_secs(5),
        "document.querySelector('#kind-request_more_information').checked && !document.querySelector('#missing-views').hidden",
    )
    .await;
    press(&client, &TAB.to_string()).await;
    let focused = js(&client, "return document.activeElement.id;").await;
    assert_eq!(focused, "missing-overview", "Tab goes from the decision to the photographs needed");
    press(&client, &SPACE.to_string()).await;
    let mut tabs = 0;
    while js(&client, "return document.activeElement.id;").await != "plan" {
        press(&client, &TAB.to_string()).await;
        tabs += 1;
        assert!(tabs < 12, "Tab reaches the message to the GP");
    }
    press(&client, "Please send an overview photograph of the whole forearm.").await;
    press(&client, &format!("{CONTROL}{ENTER}{RELEASE}")).await;
    wait_for(
        &client,
        "the confirmation",
        Duration::from_secs(10),
        "document.querySelector('#confirm-dialog').open",
    )
    .await;
    press(&client, &TAB.to_string()).await;
    press(&client, &ENTER.to_string()).await;
    wait_for(
        &client,
        "the request to be signed",
        Duration::from_secs(60),
        "['queued', 'sent'].includes(document.querySelector('#outcome-state')?.dataset.state)",
    )
    .await;
    // The worklist's counts follow: one referral fewer where it was, one more signed.
    click(&client, "#filter-clear").await;
    wait_for(
        &client,
        "the counts to follow",
        Duration::from_secs(30),
        &format!(
            "(() => {{ const c = Object.fromEntries([...document.querySelectorAll('#status-chips .chip')].map(c => [c.dataset.status, +c.dataset.count])); \
               return c['{target_status}'] === {} && c.queued + c.sent === {}; }})()",
            counts[&target_status].as_u64().unwrap() - 1,
            counts["queued"].as_u64().unwrap() + counts["sent"].as_u64().unwrap() + 1,
        ),
    )
    .await;

    // 4. The trip: t opens it; Prepare for offline syncs everything and reaches Ready; the trip
    // window lists what falls due.
    js(&client, "document.activeElement.blur(); return true;").await;
    press(&client, "t").await;
    wait_for(
        &client,
        "the trip screen",
        Duration::from_secs(5),
        "document.querySelector('#trip-dialog').open",
    )
    .await;
    click(&client, "#prepare-offline").await;
    let ready = wait_for(
        &client,
        "Ready",
        Duration::from_secs(120),
        "(() => { const s = document.querySelector('#readiness-summary'); \
           return s.dataset.state === 'ready' && !document.querySelector('#prepare-offline').disabled && s.textContent; })()",
    )
    .await;
    let ready = ready.as_str().unwrap();
    assert!(ready.starts_with(&format!("Ready: {all} of {all} referrals, ")), "{ready}");
    assert!(ready.contains(" photos, "), "{ready}");
    let due = wait_for(
        &client,
        "what falls due during the trip",
        Duration::from_secs(10),
        "document.querySelectorAll('#trip-due .trip-row').length",
    )
    .await;
    let summary = js(&client, "return document.querySelector('#trip-due-summary').textContent;").await;
    assert!(
        summary.as_str().unwrap().starts_with(&format!("{} referral", due.as_u64().unwrap())),
        "{summary}"
    );
    screenshot(&client, "trip.png").await;

    // A referral from the trip list opens in the worklist.
    let first_due =
        js(&client, "return document.querySelector('#trip-due .trip-row').dataset.referralId;").await;
    click(&client, "#trip-due .trip-row").await;
    wait_for(
        &client,
        "the referral from the trip list",
        Duration::from_secs(20),
        &format!(
            "!document.querySelector('#trip-dialog').open && document.querySelector('#detail-content').dataset.referralId === '{}'",
            first_due.as_str().unwrap()
        ),
    )
    .await;
    client.close().await.unwrap();
}
