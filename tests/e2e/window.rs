//! End-to-end: the real Derm Desk window, driven over WebDriver (Debian's WebKitWebDriver),
//! under Xvfb with a real Secret Service. `cargo xtask test` provides the display, D-Bus,
//! GNOME Keyring, a fresh XDG_DATA_HOME and DERMDESK_APP (the built app).
//!
//! One test walks the consultant's whole loop, because each step needs the state of the one
//! before: the demo opens, the worklist shows, a referral opens with its photos, an outcome is
//! signed and shows as sent; then the app is restarted without the hub and shows everything
//! from the encrypted cache. Another stops a separate hub process half-way through a sync and
//! starts it again: the window says offline with the outcome waiting, then finishes by itself.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use dermdesk_e2e::{click, free_port, row_id, screenshot, wait_for, wait_for_first_sync, Driver, HubProcess};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

/// Sign & send…: the confirmation dialog opens, showing what will be signed.
async fn open_confirmation(client: &Client) {
    click(client, "#sign-and-send").await;
    wait_for(
        client,
        "the confirmation",
        Duration::from_secs(10),
        "document.querySelector('#confirm-dialog')?.open",
    )
    .await;
}

const ROWS: &str = "document.querySelectorAll('#worklist .worklist-row')";
const PANE_1_LOADED: &str =
    "document.querySelector('.pane-cell[data-index=\"0\"]')?.dataset.loaded === 'true'";

/// The zoom readout of pane `index` ("58 %"), as a number.
async fn pane_zoom(client: &Client, index: usize) -> f64 {
    let text = client
        .execute(&format!("return document.querySelector('.pane-cell[data-index=\"{index}\"] .pane-readout').textContent;"), vec![])
        .await
        .unwrap();
    text.as_str()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("a zoom readout: {text}"))
}

/// Issue 5's viewer in the real window: 1:1 shows original pixels; two photos side by side,
/// linked, and zooming one zooms the other; swipe renders both; an earlier referral's photo
/// goes beside a current one.
async fn compare_photos(client: &Client) {
    click(client, "#viewer-actual").await;
    // The zoom animates there; on a loaded machine it takes a while.
    let readout = ".pane-cell[data-index=\"0\"] .pane-readout";
    let shown = wait_for(
        client,
        "1:1 (one photo pixel per screen pixel)",
        Duration::from_secs(10),
        &format!("(() => {{ const t = document.querySelector('{readout}').textContent; return t === '100 %' ? t : null; }})()"),
    )
    .await;
    assert_eq!(shown, "100 %");
    click(client, "#viewer-fit").await;

    click(client, "#layout-2").await;
    wait_for(
        client,
        "two photos side by side",
        Duration::from_secs(60),
        "[...document.querySelectorAll('.pane-cell')].slice(0, 2).every(p => !p.hidden && p.dataset.loaded === 'true')",
    )
    .await;
    click(client, "#viewer-link").await;
    let before = (pane_zoom(client, 0).await, pane_zoom(client, 1).await);
    click(client, ".pane-cell[data-index=\"0\"]").await;
    for _ in 0..3 {
        click(client, "#viewer-zoom-in").await;
    }
    dermdesk_e2e::wait_for_viewers_settled(client, "both panes zoomed").await;
    let after = (pane_zoom(client, 0).await, pane_zoom(client, 1).await);
    assert!(after.0 > before.0 * 2.0, "pane 1 zoomed in: {before:?} -> {after:?}");
    let (ratio_before, ratio_after) = (before.1 / before.0, after.1 / after.0);
    assert!(
        (ratio_after / ratio_before - 1.0).abs() < 0.05,
        "the linked pane followed at the same ratio: {before:?} -> {after:?}"
    );
    wait_for(
        client,
        "the zoomed tiles",
        Duration::from_secs(60),
        "[...document.querySelectorAll('.pane-cell')].slice(0, 2).every(p => p.dataset.loaded === 'true')",
    )
    .await;
    screenshot(client, "compare-linked.png").await;

    click(client, "#layout-swipe").await;
    let clip = wait_for(
        client,
        "the swipe curtain",
        Duration::from_secs(30),
        "(() => { const b = document.querySelector('.pane-cell[data-index=\"1\"]'); \
           return document.querySelector('.pane-grid').dataset.layout === 'swipe' && b.dataset.loaded === 'true' \
             && !document.querySelector('.curtain-handle').hidden && b.style.clipPath; })()",
    )
    .await;
    assert!(clip.as_str().unwrap().contains("50%"), "{clip}");
    screenshot(client, "compare-swipe.png").await;
    click(client, "#layout-1").await;

    // Priors: the demo patient referred twice. Her newer referral lists the earlier one's
    // photos after its own; one goes into the second pane, beside a current photo.
    let open_before = client
        .execute("return document.querySelector('.worklist-row.is-open').dataset.referralId;", vec![])
        .await
        .unwrap();
    client
        .execute(
            "const rows = [...document.querySelectorAll('#worklist .worklist-row')]; \
             const seen = new Map(); \
             for (const r of rows) { const n = r.querySelector('.nhs-number').textContent; seen.set(n, (seen.get(n) ?? []).concat([r])); } \
             const twice = [...seen.values()].find(list => list.length > 1); \
             twice.sort((a, b) => (a.dataset.receivedAt < b.dataset.receivedAt ? 1 : -1)); \
             twice[0].click();",
            vec![],
        )
        .await
        .unwrap();
    wait_for(
        client,
        "the earlier referral's photos",
        Duration::from_secs(30),
        "document.querySelectorAll('.filmstrip-item.is-prior .thumb').length > 0",
    )
    .await;
    click(client, "#layout-2").await;
    click(client, ".pane-cell[data-index=\"1\"]").await;
    click(client, ".filmstrip-item.is-prior .thumb").await;
    let caption = wait_for(
        client,
        "an earlier photo beside a current one",
        Duration::from_secs(60),
        "(() => { const b = document.querySelector('.pane-cell[data-index=\"1\"]'); \
           const c = document.querySelector('#photo-caption').textContent; \
           return b.dataset.loaded === 'true' && b.dataset.contentId === document.querySelector('.filmstrip-item.is-prior .thumb').dataset.contentId && c; })()",
    )
    .await;
    assert!(caption.as_str().unwrap().contains("Earlier referral"), "{caption}");
    screenshot(client, "priors.png").await;
    click(client, "#layout-1").await;
    let open_before = open_before.as_str().unwrap();
    click(client, &format!(".worklist-row[data-referral-id=\"{open_before}\"]")).await;
    // The pane still says "loaded" for the other referral until this one's view arrives.
    wait_for(
        client,
        "back to the first referral",
        Duration::from_secs(30),
        &format!("document.querySelector('#detail-content').dataset.referralId === '{open_before}' && {PANE_1_LOADED}"),
    )
    .await;
}

/// "Save a verifiable copy" on the open referral's signed outcome: the file lands in the export
/// folder, named by outcome id, and its signature verifies with the key it carries.
async fn save_a_verifiable_copy(client: &Client, exports: &std::path::Path) -> String {
    client.execute("document.querySelector('#export-note').textContent = '';", vec![]).await.unwrap();
    click(client, "#export-outcome").await;
    let note = wait_for(
        client,
        "the export to be saved",
        Duration::from_secs(20),
        "document.querySelector('#export-note')?.textContent",
    )
    .await;
    let note = note.as_str().unwrap();
    assert!(note.starts_with("Saved: "), "{note}");
    let path = note.trim_start_matches("Saved: ").split(".json").next().unwrap().to_owned() + ".json";
    let path = PathBuf::from(path);
    assert_eq!(path.parent(), Some(exports), "{note}");
    assert!(path.file_name().unwrap().to_str().unwrap().starts_with("signed-outcome-"));
    let text = std::fs::read_to_string(&path).unwrap();
    let export = dermdesk_protocol::SignedOutcomeExport::parse(&text).expect("an export");
    assert!(export.verify(None).is_valid(), "the consultant's signature verifies");
    text
}

/// What the consultant types in the keyboard-only run (counted apart from the other keys).
const TYPED: &str = "Seborrhoeic keratosis";

/// Opens the next new routine referral and signs a treatment plan using only keys sent to
/// whatever has the focus: j to move, Enter to open, o into the form, Alt+1 for the decision,
/// Tab, the diagnosis (its template fills the plan), Tab, `p` for provisional, Ctrl+Enter to
/// ask to sign, Tab to the Sign button, Enter. Returns how many keys were pressed.
async fn sign_with_the_keyboard_alone(client: &Client) -> usize {
    const ALT: char = '\u{E00A}';
    const CONTROL: char = '\u{E009}';
    const RELEASE: char = '\u{E000}';
    const ENTER: char = '\u{E007}';
    const TAB: char = '\u{E004}';
    // Which row to go to (the test chooses; the consultant would read the list).
    let moves = client
        .execute(
            "const rows = [...document.querySelectorAll('#worklist .worklist-row')]; \
             const from = rows.findIndex(r => r.classList.contains('is-open')); \
             const to = rows.findIndex(r => r.classList.contains('urgency-routine') && r.classList.contains('status-new')); \
             return [from, to, to >= 0 ? rows[to].dataset.referralId : null];",
            vec![],
        )
        .await
        .unwrap();
    let (from, to) = (moves[0].as_i64().unwrap(), moves[1].as_i64().unwrap());
    let referral_id = moves[2].as_str().expect("a new routine referral in the demo").to_owned();
    assert!(from >= 0 && to >= 0, "{moves}");
    let mut keys = 0;
    let mut press = async |text: String, counted: usize| {
        client.active_element().await.unwrap().send_keys(&text).await.unwrap();
        keys += counted;
    };
    let step = if to > from { "j" } else { "k" };
    press(step.repeat(from.abs_diff(to) as usize), from.abs_diff(to) as usize).await;
    press(ENTER.to_string(), 1).await;
    wait_for(
        client,
        "the referral opened by keyboard",
        Duration::from_secs(20),
        &format!(
            "document.querySelector('#outcome-form') && document.querySelector('.worklist-row.is-open')?.dataset.referralId === '{referral_id}'"
        ),
    )
    .await;
    press("o".into(), 1).await;
    press(format!("{ALT}1{RELEASE}"), 1).await;
    wait_for(
        client,
        "Alt+1 to choose the treatment plan",
        Duration::from_secs(5),
        "document.querySelector('#kind-gp_treatment_plan').checked",
    )
    .await;
    press(TAB.to_string(), 1).await;
    let focused = client.execute("return document.activeElement.id;", vec![]).await.unwrap();
    assert_eq!(focused, json!("diagnosis"), "Tab goes from the decision to the diagnosis");
    press(TYPED.into(), 0).await;
    press(TAB.to_string(), 1).await;
    press("p".into(), 1).await;
    wait_for(
        client,
        "the template in the plan",
        Duration::from_secs(5),
        "document.querySelector('#plan').value.length > 20",
    )
    .await;
    wait_for(
        client,
        "provisional",
        Duration::from_secs(5),
        "document.querySelector('#certainty').value === 'provisional'",
    )
    .await;
    press(format!("{CONTROL}{ENTER}{RELEASE}"), 1).await;
    wait_for(
        client,
        "Ctrl+Enter to open the confirmation",
        Duration::from_secs(10),
        "document.querySelector('#confirm-dialog').open",
    )
    .await;
    screenshot(client, "keyboard-confirm.png").await;
    press(TAB.to_string(), 1).await;
    let focused = client.execute("return document.activeElement.id;", vec![]).await.unwrap();
    assert_eq!(focused, json!("confirm-sign"), "Cancel has the focus first; Tab reaches Sign");
    press(ENTER.to_string(), 1).await;
    wait_for(
        client,
        "the keyboard-signed outcome to be sent",
        Duration::from_secs(60),
        "['queued', 'sent'].includes(document.querySelector('#outcome-state')?.dataset.state)",
    )
    .await;
    keys
}

/// The device dialog from the consultant's name: Replace signing key shows a new key and the
/// old one under "Earlier keys".
async fn replace_the_signing_key(client: &Client) {
    click(client, "#consultant").await;
    let before = wait_for(
        client,
        "the device dialog",
        Duration::from_secs(10),
        "document.querySelector('#device-dialog').open && document.querySelector('#device-key')?.textContent",
    )
    .await;
    click(client, "#rotate-key").await;
    let after = wait_for(
        client,
        "a new signing key",
        Duration::from_secs(30),
        &format!(
            "(() => {{ const k = document.querySelector('#device-key')?.textContent; return k && k !== {before} && k; }})()"
        ),
    )
    .await;
    let summary = client.find(Locator::Css("#device-summary")).await.unwrap().text().await.unwrap();
    let old_prefix: String = before.as_str().unwrap().chars().take(16).collect();
    assert!(summary.contains(&old_prefix), "the old key is listed as an earlier key: {summary}");
    screenshot(client, "device.png").await;
    click(client, "#device-close").await;
    assert_ne!(before, after);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_consultant_reviews_signs_and_finds_it_all_again_offline() {
    if dermdesk_e2e::skip_without_window("window") {
        return;
    }
    let exports = std::env::temp_dir().join(format!("dermdesk-e2e-exports-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&exports);
    let driver = Driver::start_with_env(&[("DERMDESK_EXPORT_DIR", exports.to_str().unwrap())]);
    let client = driver.open_app(&["--demo"]).await;

    // 1. The demo opens, enrols and syncs: the worklist shows the synthetic referrals.
    let count = wait_for(&client, "the worklist", Duration::from_secs(300), &format!("{ROWS}.length")).await;
    let count = count.as_u64().unwrap();
    assert!(count >= 6, "expected the demo's referrals, got {count}");
    // Wait for the first sync to finish (photos downloaded and verified).
    wait_for_first_sync(&client, Duration::from_secs(300)).await;
    // The worklist comes back scrolled where an earlier run left it: bring the first row into view.
    client
        .execute("document.querySelector('#worklist .worklist-row').scrollIntoView();", vec![])
        .await
        .unwrap();
    screenshot(&client, "worklist.png").await;

    // 2. Open the first referral: clinical details and photos at full resolution.
    let referral_id = row_id(&client, "#worklist .worklist-row").await;
    click(&client, &format!(".worklist-row[data-referral-id=\"{referral_id}\"]")).await;
    wait_for(
        &client,
        "the referral's details",
        Duration::from_secs(30),
        "document.querySelector('#patient-header')?.textContent",
    )
    .await;
    let photos = wait_for(
        &client,
        "the photos to load",
        Duration::from_secs(60),
        "(() => { const imgs = [...document.querySelectorAll('.filmstrip img')]; \
           return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0) && imgs.length; })()",
    )
    .await;
    assert!(photos.as_u64().unwrap() >= 1);
    // The deep-zoom viewer: first pixels, then the tiles for the view, from the encrypted cache.
    wait_for(&client, "the main photo's tiles", Duration::from_secs(60), PANE_1_LOADED).await;
    screenshot(&client, "referral.png").await;
    compare_photos(&client).await;

    // 3. Write an outcome, Sign & send, confirm: it shows as sent.
    click(&client, "#kind-gp_treatment_plan").await;
    client.find(Locator::Css("#diagnosis")).await.unwrap().send_keys("Seborrhoeic keratosis").await.unwrap();
    client
        .find(Locator::Css("#plan"))
        .await
        .unwrap()
        .send_keys("Benign. Reassure the patient; no treatment needed.")
        .await
        .unwrap();
    // The first referral is a two-week wait: a letter instead of an appointment is blocked
    // until the consultant gives a reason, which is signed with the outcome.
    click(&client, "#sign-and-send").await;
    let blocked = wait_for(
        &client,
        "the governance block",
        Duration::from_secs(10),
        "(() => { const e = document.querySelector('#reason-error'); return e && !e.hidden && e.textContent; })()",
    )
    .await;
    assert!(blocked.as_str().unwrap().contains("reason"), "{blocked}");
    assert_eq!(
        client.execute("return document.querySelector('#confirm-dialog').open;", vec![]).await.unwrap(),
        Value::Bool(false),
        "no signing without the reason"
    );
    screenshot(&client, "governance.png").await;
    client
        .find(Locator::Css("#governance-reason"))
        .await
        .unwrap()
        .send_keys("Typical seborrhoeic keratosis on dermoscopy; discussed with the referring GP.")
        .await
        .unwrap();
    open_confirmation(&client).await;
    screenshot(&client, "confirm.png").await;
    let summary = client.find(Locator::Css("#confirm-summary")).await.unwrap().text().await.unwrap();
    assert!(summary.contains("Seborrhoeic keratosis"), "the dialog shows what will be signed: {summary}");
    assert!(
        summary.contains("discussed with the referring GP"),
        "the reason is part of what is signed: {summary}"
    );
    click(&client, "#confirm-sign").await;
    wait_for(
        &client,
        "the outcome to be sent",
        Duration::from_secs(60),
        "document.querySelector('#outcome-state')?.dataset.state === 'sent'",
    )
    .await;
    screenshot(&client, "signed.png").await;
    let row_status = wait_for(
        &client,
        "the worklist to show it sent",
        Duration::from_secs(30),
        &format!(
            "document.querySelector('.worklist-row[data-referral-id=\"{referral_id}\"] .status-badge')?.textContent"
        ),
    )
    .await;
    assert!(row_status.as_str().unwrap().to_lowercase().contains("sent"), "{row_status}");
    save_a_verifiable_copy(&client, &exports).await;

    // 3b. The keyboard alone: from here to a second signed outcome without the mouse.
    let keystrokes = sign_with_the_keyboard_alone(&client).await;
    eprintln!("keyboard-only outcome: {keystrokes} keystrokes and {} typed characters", TYPED.len());

    // 3c. A new signing key from the device dialog; what the old one signed still verifies.
    replace_the_signing_key(&client).await;
    let export = save_a_verifiable_copy(&client, &exports).await;
    assert!(export.contains("receipt"), "the export made after delivery carries the receipt");
    client.close().await.unwrap();

    // 4. Quit and restart without the hub (no network): everything is there, from the cache.
    let client = driver.open_app(&["--demo", "--offline"]).await;
    let again =
        wait_for(&client, "the cached worklist", Duration::from_secs(60), &format!("{ROWS}.length")).await;
    assert_eq!(again.as_u64().unwrap(), count);
    click(&client, &format!(".worklist-row[data-referral-id=\"{referral_id}\"]")).await;
    wait_for(
        &client,
        "the sent outcome, offline",
        Duration::from_secs(30),
        "document.querySelector('#outcome-state')?.dataset.state === 'sent'",
    )
    .await;
    wait_for(&client, "the photos, offline", Duration::from_secs(30), PANE_1_LOADED).await;
    screenshot(&client, "offline.png").await;
    client.close().await.unwrap();
}

const STATUS_TEXT: &str = "document.querySelector('#sync-summary').textContent";

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_cut_off_half_way_says_offline_keeps_the_outcome_and_finishes_by_itself() {
    if dermdesk_e2e::skip_without_window("window") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("dermdesk-e2e-hub-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    // Every request is slowed down, so the photo downloads are still running when the hub dies.
    let (hub, code) = HubProcess::start_seeded(dir.clone(), port, "latency=1,latency-ms=700");
    let url = format!("http://127.0.0.1:{port}");
    let driver = Driver::start_with_env(&[("DERMDESK_HUB_URL", &url), ("DERMDESK_ENROLMENT_CODE", &code)]);
    let client = driver.open_app(&[]).await;

    // 1. Enrolled and syncing: the worklist is there, photos are coming in.
    wait_for(&client, "the worklist", Duration::from_secs(120), &format!("{ROWS}.length")).await;
    let counts = wait_for(
        &client,
        "photos half-way",
        Duration::from_secs(120),
        "(() => { const m = /Photos (\\d+)\\/(\\d+)/.exec(document.querySelector('#sync-counts').textContent); \
           return m && +m[1] >= 2 && +m[1] < +m[2] && m[0]; })()",
    )
    .await;
    let total: u64 = counts.as_str().unwrap().split('/').nth(1).unwrap().parse().unwrap();

    // 2. The hub dies mid-download. The consultant signs an outcome anyway.
    let dir = hub.kill();
    let referral_id = row_id(&client, "#worklist .worklist-row").await;
    click(&client, &format!(".worklist-row[data-referral-id=\"{referral_id}\"]")).await;
    wait_for(&client, "the outcome form", Duration::from_secs(30), "document.querySelector('#plan')").await;
    click(&client, "#kind-gp_treatment_plan").await;
    client
        .find(Locator::Css("#plan"))
        .await
        .unwrap()
        .send_keys("Emollients twice daily; review in 6 weeks.")
        .await
        .unwrap();
    // A two-week-wait referral answered by letter: the reason is required.
    client
        .find(Locator::Css("#governance-reason"))
        .await
        .unwrap()
        .send_keys("Benign on the photographs.")
        .await
        .unwrap();
    open_confirmation(&client).await;
    click(&client, "#confirm-sign").await;
    wait_for(
        &client,
        "the outcome queued",
        Duration::from_secs(30),
        "document.querySelector('#outcome-state')?.dataset.state === 'queued'",
    )
    .await;
    wait_for(
        &client,
        "offline with one outcome waiting",
        Duration::from_secs(60),
        &format!(
            "document.querySelector('#sync-connection').dataset.online === 'offline' \
             && {STATUS_TEXT}.includes('1 outcome waiting')"
        ),
    )
    .await;
    let not_ready = wait_for(
        &client,
        "some photos still missing",
        Duration::from_secs(5),
        "document.querySelectorAll('.row-photos.is-downloading').length",
    )
    .await;
    assert!(not_ready.as_u64().unwrap() >= 1, "the sync really was cut off half-way");
    screenshot(&client, "hub-stopped.png").await;

    // 3. The hub comes back (no faults now). Nobody touches anything: the app notices, sends
    //    the outcome and finishes the photos.
    let hub = HubProcess::restart(dir, port);
    wait_for(
        &client,
        "the sync to finish by itself",
        Duration::from_secs(180),
        &format!(
            "document.querySelector('#sync-connection').dataset.online === 'online' \
             && {STATUS_TEXT}.includes('No outcomes waiting') \
             && document.querySelectorAll('.row-photos.is-downloading').length === 0 \
             && document.querySelector('#sync-progress').dataset.active === 'false'"
        ),
    )
    .await;
    wait_for(
        &client,
        "the outcome sent",
        Duration::from_secs(30),
        &format!(
            "document.querySelector('.worklist-row[data-referral-id=\"{referral_id}\"] .status-badge')?.textContent.toLowerCase().includes('sent')"
        ),
    )
    .await;
    let receipt = wait_for(
        &client,
        "the delivery receipt",
        Duration::from_secs(30),
        "[...document.querySelectorAll('#outcome dd.receipt')].map(d => d.textContent).join('')",
    )
    .await;
    assert!(
        receipt.as_str().unwrap().starts_with("Verified"),
        "the receipt is the service's signature: {receipt}"
    );
    screenshot(&client, "hub-back.png").await;
    assert!(total >= 4, "the demo has photos to sync: {total}");

    // 4. A draft is typed on another referral; the practice withdraws that referral. The draft
    //    is kept and the referral shows as a conflict that says why.
    let second_id = row_id(&client, "#worklist .worklist-row:nth-child(2)").await;
    click(&client, &format!(".worklist-row[data-referral-id=\"{second_id}\"]")).await;
    wait_for(
        &client,
        "the second referral's form",
        Duration::from_secs(30),
        "document.querySelector('#plan')",
    )
    .await;
    client
        .find(Locator::Css("#plan"))
        .await
        .unwrap()
        .send_keys("Draft: likely nummular eczema")
        .await
        .unwrap();
    wait_for(
        &client,
        "the draft saved",
        Duration::from_secs(10),
        "document.querySelector('#draft-state')?.textContent.startsWith('Draft saved')",
    )
    .await;
    let withdrawn = Command::new(HubProcess::binary())
        .args(["admin", "--db"])
        .arg(hub.dir.join("hub.sqlite3"))
        .arg("--photos")
        .arg(hub.dir.join("photos"))
        .args(["withdraw", &second_id])
        .status()
        .unwrap();
    assert!(withdrawn.success());
    click(&client, "#sync-now").await;
    let banner = wait_for(
        &client,
        "the conflict banner",
        Duration::from_secs(60),
        "[...document.querySelectorAll('#referral-notices .notice')].map(n => n.textContent).find(t => t.startsWith('Conflict'))",
    )
    .await;
    assert!(banner.as_str().unwrap().contains("draft is kept"), "{banner}");
    let plan =
        client.find(Locator::Css("#plan")).await.unwrap().prop("value").await.unwrap().unwrap_or_default();
    assert!(plan.contains("nummular eczema"), "the draft is still there: {plan}");
    let badge = client
        .find(Locator::Css(&format!(".worklist-row[data-referral-id=\"{second_id}\"] .status-badge")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(badge.to_lowercase().contains("conflict"), "{badge}");
    screenshot(&client, "conflict.png").await;
    client.close().await.unwrap();
    drop(hub);
    let _ = std::fs::remove_dir_all(
        std::env::temp_dir().join(format!("dermdesk-e2e-hub-{}", std::process::id())),
    );
}
