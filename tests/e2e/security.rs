//! End-to-end security checks in the real window (issue 7): a lost laptop leaks nothing.
//!
//! One run against a separate hub seeded over its admin API with synthetic patients whose
//! names, NHS numbers and free text are unique canary strings, and photos that carry marker
//! bytes (a JPEG comment and the file's own entropy-coded bytes):
//! 1. XSS: referral text with `<script>`, `<img onerror>`, inline SVG, `javascript:` links…
//!    renders as literal text and nothing runs (`target/security/xss.json`).
//! 2. The full flow: sync, view, zoom, compare 2-up, sign (the passphrase asked again first)
//!    and send.
//! 3. The lock: the Lock button, a wrong passphrase (clear message, a delay), the right one;
//!    `docs/screenshots/lock.png`.
//! 4. Canary scan of the app's data dir (database, WAL, SHM), temp dirs, logs and WebKitGTK's
//!    cache and storage dirs, plain, UTF-16 and base64: 0 hits (`target/security/canary.json`).
//! 5. The hub revokes the device: the next sync wipes it and the window says so plainly.
//! 6. The idle lock with a short idle time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use dermdesk_e2e::{
    click, free_port, type_into, wait_for, wait_for_first_sync, Driver, HubProcess, TEST_PASSPHRASE,
};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

use dermdesk_e2e::{admin, admin_json, HUB_ADMIN_TOKEN as ADMIN_TOKEN};
const ROWS: &str = "document.querySelectorAll('#worklist .worklist-row')";

/// A synthetic JPEG with a canary in a COM segment.
fn canary_jpeg(seed: u8, comment: &str) -> (Vec<u8>, u32, u32) {
    let (width, height) = (640u32, 480u32);
    let pixels = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x as u8).wrapping_mul(3) ^ seed, (y as u8).wrapping_add(seed), ((x + y) as u8) ^ 0x5a])
    });
    let mut encoded = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut encoded, 90).encode_image(&pixels).unwrap();
    let mut with_comment = encoded[..2].to_vec(); // SOI
    let length = (comment.len() + 2) as u16;
    with_comment.extend_from_slice(&[0xFF, 0xFE]);
    with_comment.extend_from_slice(&length.to_be_bytes());
    with_comment.extend_from_slice(comment.as_bytes());
    with_comment.extend_from_slice(&encoded[2..]);
    (with_comment, width, height)
}

/// A valid (modulus 11) NHS number starting with `prefix` (9 digits).
fn nhs_number(prefix: &str) -> String {
    for last in 0..10u32 {
        let nine = format!("{}{last}", &prefix[..8]);
        let sum: u32 = nine.chars().zip((2..=10).rev()).map(|(c, w)| c.to_digit(10).unwrap() * w).sum();
        let check = 11 - sum % 11;
        let check = if check == 11 { 0 } else { check };
        if check != 10 {
            return format!("{nine}{check}");
        }
    }
    unreachable!("one of ten prefixes has a valid check digit")
}

struct Canary {
    /// Strings that must never appear on disk outside the encrypted cache.
    strings: Vec<String>,
    /// Raw bytes of the photos (a slice of each file's compressed data).
    markers: Vec<Vec<u8>>,
}

fn photo_meta(content_id: &str, bytes: &[u8], width: u32, height: u32, view: &str) -> Value {
    json!({
        "content_id": content_id, "size": bytes.len(), "width": width, "height": height,
        "media_type": "image/jpeg", "captured_at": "2026-06-15T09:00:00Z", "view": view,
        "body_site": "left forearm", "source": "gp_practice",
    })
}

#[allow(clippy::too_many_arguments)]
fn referral(
    id: &str,
    name: &str,
    nhs: &str,
    question: &str,
    history: &str,
    medications: &str,
    duration: &str,
    photos: Vec<Value>,
) -> Value {
    json!({
        "id": id, "version": 1,
        "patient": {"name": name, "nhs_number": nhs, "date_of_birth": "1961-04-12", "sex": "female"},
        "practice": {"ods_code": "Y09991", "name": "Synthetic Canary Practice", "nation": "england"},
        "referrer": {"name": "Dr Synthetic Referrer", "role": "GP"},
        "received_at": chrono_now_minus_hours(3),
        "urgency": "routine",
        "clinical": {"question": question, "history": history, "duration": duration, "medications": medications},
        "consent": {"given": true, "recorded_at": chrono_now_minus_hours(4), "recorded_by": "Practice nurse"},
        "photos": photos,
    })
}

fn chrono_now_minus_hours(hours: u64) -> String {
    let now = std::time::SystemTime::now() - Duration::from_secs(hours * 3600);
    let seconds = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let days = seconds.div_euclid(86_400);
    let rem = seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The XSS payloads: each sets its own global if it ever runs; some also change the title.
fn xss_payloads() -> Vec<String> {
    (0..)
        .zip([
            "<script>window.__xss_N = 1; document.title = 'XSS';</script>",
            "<img src=x onerror=\"window.__xss_N = 1\">",
            "<svg onload=\"window.__xss_N = 1\"><circle r=\"4\"/></svg>",
            "<a href=\"javascript:window.__xss_N=1\" id=\"xss-link-N\">click me</a>",
            "<iframe srcdoc=\"<script>parent.__xss_N=1</script>\"></iframe>",
            "\"><img src=x onerror=window.__xss_N=1>",
            "<style onload=\"window.__xss_N=1\"></style><body onload=\"window.__xss_N=1\">",
            "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss_N=1>",
        ])
        .map(|(n, payload): (usize, &str)| {
            payload.replace("__xss_N", &format!("__xss_{n}")).replace("xss-link-N", &format!("xss-link-{n}"))
        })
        .collect()
}

/// Seeds the hub: a consultant, an enrolment code, two canary referrals (two photos each), and
/// one XSS referral. Returns the enrolment code, the canaries and the payloads.
fn seed(port: u16) -> (String, Canary, Vec<String>) {
    let consultant =
        admin_json(port, "POST", "/admin/consultants", &json!({"display_name": "Dr Canary Test"}));
    let consultant_id = consultant["id"].as_str().unwrap().to_owned();
    let code = admin_json(port, "POST", "/admin/enrolment-codes", &json!({"consultant_id": consultant_id}));
    let code = code["enrolment_code"].as_str().unwrap().to_owned();

    let mut canary = Canary { strings: Vec::new(), markers: Vec::new() };
    let mut add_photo = |seed: u8, comment: &str, view: &str| {
        let (bytes, width, height) = canary_jpeg(seed, comment);
        let (status, body) = admin(port, "POST", "/admin/photos", "image/jpeg", &bytes);
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        let content_id =
            serde_json::from_slice::<Value>(&body).unwrap()["content_id"].as_str().unwrap().to_owned();
        let middle = bytes.len() / 2;
        canary.markers.push(bytes[middle..middle + 48].to_vec());
        canary.strings.push(comment.to_owned());
        photo_meta(&content_id, &bytes, width, height, view)
    };
    let photos_a = vec![
        add_photo(11, "CANARY-JPEG-COMMENT-A7Q3", "overview"),
        add_photo(23, "CANARY-JPEG-COMMENT-B8W4", "close_up"),
    ];
    let photos_b = vec![
        add_photo(37, "CANARY-JPEG-COMMENT-C9E5", "overview"),
        add_photo(51, "CANARY-JPEG-COMMENT-D2R6", "dermoscopic"),
    ];
    let people = [
        ("CNR-A-0001", "Quillonbe Zartheway", nhs_number("999173501"), photos_a),
        ("CNR-B-0002", "Vexmorrow Plinthcaster", nhs_number("999284612"), photos_b),
    ];
    for (id, name, nhs, photos) in people {
        let question = format!("CANARY-QUESTION-{id}: is this lesion benign?");
        let history = format!("CANARY-HISTORY-{id}: slowly growing for months.");
        let medications = format!("CANARY-MEDICATION-{id}");
        let body = referral(id, name, &nhs, &question, &history, &medications, "about 3 months", photos);
        admin_json(port, "POST", "/admin/referrals", &json!({"referral": body, "assign_to": consultant_id}));
        canary.strings.extend([name.to_owned(), nhs.clone(), question, history, medications]);
    }

    let payloads = xss_payloads();
    let xss = referral(
        "XSS-0003",
        &payloads[0],
        &nhs_number("999395723"),
        &payloads[1],
        &payloads[2],
        &payloads[3],
        &payloads[4],
        vec![],
    );
    let mut xss = xss;
    xss["practice"]["name"] = payloads[5].clone().into();
    xss["referrer"]["name"] = payloads[6].clone().into();
    xss["consent"]["recorded_by"] = payloads[7].clone().into();
    admin_json(port, "POST", "/admin/referrals", &json!({"referral": xss, "assign_to": consultant_id}));
    (code, canary, payloads)
}

fn security_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/security");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// XSS: every payload is shown as literal text and none ran.
async fn xss_is_inert(client: &Client, payloads: &[String]) {
    dermdesk_e2e::open_referral(client, "XSS-0003").await;
    wait_for(
        client,
        "the clinical details",
        Duration::from_secs(10),
        "document.querySelector('#clinical')?.textContent",
    )
    .await;
    // Anything parsed as markup would have loaded (or failed to) and run its onerror/onload by
    // the time every image is complete and two more frames are drawn.
    wait_for(
        client,
        "every image loaded or failed",
        Duration::from_secs(10),
        "[...document.images].every(i => i.complete)",
    )
    .await;
    dermdesk_e2e::next_frames(client).await;
    let names: Vec<String> = (0..payloads.len()).map(|n| format!("__xss_{n}")).collect();
    let executed = client
        .execute(
            "return arguments[0].filter(name => window[name] !== undefined || (window.parent && window.parent[name] !== undefined));",
            vec![json!(names)],
        )
        .await
        .unwrap();
    let executed = executed.as_array().unwrap().len()
        + usize::from(client.execute("return document.title;", vec![]).await.unwrap() != json!("Derm Desk"));
    let page_text = client.execute("return document.body.innerText;", vec![]).await.unwrap();
    let page_text = page_text.as_str().unwrap();
    let shown = payloads[..4].iter().filter(|payload| page_text.contains(payload.as_str())).count();
    let injected = client
        .execute(
            "return document.querySelectorAll('#referral-detail script, #referral-detail img[src=\"x\"], #referral-detail svg[onload], #referral-detail iframe, a[href^=\"javascript\"]').length;",
            vec![],
        )
        .await
        .unwrap();
    std::fs::write(
        security_dir().join("xss.json"),
        serde_json::to_vec_pretty(&json!({"xss_executed": executed, "payloads": payloads.len()})).unwrap(),
    )
    .unwrap();
    assert_eq!(executed, 0, "no payload may run");
    assert_eq!(injected, json!(0), "no payload may become an element");
    assert_eq!(shown, 4, "the question, history, medications and duration show the payloads as literal text");
}

/// The consultant's full flow on a canary referral: view, zoom, compare 2-up, sign (with the
/// passphrase asked again before signing), sent.
async fn full_flow(client: &Client, referral_id: &str) {
    dermdesk_e2e::open_referral(client, referral_id).await;
    wait_for(
        client,
        "the photos",
        Duration::from_secs(60),
        "document.querySelector('.pane-cell[data-index=\"0\"]')?.dataset.loaded === 'true'",
    )
    .await;
    for _ in 0..3 {
        click(client, "#viewer-zoom-in").await;
    }
    click(client, "#layout-2").await;
    wait_for(
        client,
        "two photos side by side",
        Duration::from_secs(60),
        "[...document.querySelectorAll('.pane-cell')].slice(0, 2).every(p => !p.hidden && p.dataset.loaded === 'true')",
    )
    .await;
    click(client, "#layout-1").await;
    click(client, "#kind-gp_treatment_plan").await;
    client.find(Locator::Css("#diagnosis")).await.unwrap().send_keys("Seborrhoeic keratosis").await.unwrap();
    client
        .find(Locator::Css("#plan"))
        .await
        .unwrap()
        .send_keys("Benign. Reassure the patient.")
        .await
        .unwrap();
    click(client, "#sign-and-send").await;
    wait_for(
        client,
        "the confirmation",
        Duration::from_secs(10),
        "document.querySelector('#confirm-dialog')?.open",
    )
    .await;
    click(client, "#confirm-sign").await;
    // DERMDESK_SIGN_REAUTH_SECS=1: the passphrase is asked again before signing.
    wait_for(
        client,
        "the passphrase asked again",
        Duration::from_secs(10),
        "document.querySelector('#lock-screen')?.open && document.querySelector('#lock-screen').dataset.state === 'reauth'",
    )
    .await;
    type_into(client, "#lock-passphrase", TEST_PASSPHRASE).await;
    click(client, "#lock-submit").await;
    wait_for(
        client,
        "the outcome to be sent",
        Duration::from_secs(90),
        "document.querySelector('#outcome-state')?.dataset.state === 'sent'",
    )
    .await;
}

/// Lock button, a wrong passphrase (message and delay), the right one.
async fn lock_and_unlock(client: &Client) {
    click(client, "#lock-now").await;
    wait_for(
        client,
        "the lock screen",
        Duration::from_secs(20),
        "document.querySelector('#lock-screen')?.open && document.querySelector('#lock-screen').dataset.state === 'locked'",
    )
    .await;
    let leftover = client
        .execute("return document.querySelector('#clinical')?.textContent ?? '';", vec![])
        .await
        .unwrap();
    assert_eq!(leftover, json!(""), "no referral text stays in the page while locked");
    type_into(client, "#lock-passphrase", "not the passphrase at all").await;
    click(client, "#lock-submit").await;
    let message = wait_for(
        client,
        "the wrong-passphrase message",
        Duration::from_secs(20),
        "(() => { const e = document.querySelector('#lock-error'); return !e.hidden && e.textContent; })()",
    )
    .await;
    let message = message.as_str().unwrap().to_owned();
    assert!(message.contains("not right") && message.contains("attempts are left"), "{message}");
    let disabled =
        client.execute("return document.querySelector('#lock-submit').disabled;", vec![]).await.unwrap();
    assert_eq!(disabled, json!(true), "the next attempt waits");
    let png = dermdesk_e2e::screenshot_png(client).await;
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    std::fs::write(shots.join("lock.png"), png).unwrap();
    dermdesk_e2e::unlock(client, TEST_PASSPHRASE).await;
    wait_for(client, "the worklist again", Duration::from_secs(60), &format!("{ROWS}.length >= 3")).await;
}

fn variants(needle: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![("plain".to_owned(), needle.to_vec())];
    if let Ok(text) = std::str::from_utf8(needle) {
        out.push(("utf-16".into(), text.encode_utf16().flat_map(u16::to_le_bytes).collect()));
        out.push((
            "json-escaped".into(),
            serde_json::to_string(text).unwrap().trim_matches('"').as_bytes().to_vec(),
        ));
    }
    // Base64 at each of the three alignments: the middle of the encoding is stable.
    for shift in 0..3 {
        let mut padded = vec![0u8; shift];
        padded.extend_from_slice(needle);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&padded);
        let stable = &encoded[(shift * 4).div_ceil(3) + 2..encoded.len().saturating_sub(4)];
        if stable.len() >= 12 {
            out.push((format!("base64+{shift}"), stable.as_bytes().to_vec()));
        }
    }
    out
}

fn scan(roots: &[PathBuf], canary: &Canary) -> (usize, Vec<String>) {
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for text in &canary.strings {
        needles.extend(
            variants(text.as_bytes()).into_iter().map(|(kind, bytes)| (format!("{text} ({kind})"), bytes)),
        );
    }
    for (n, marker) in canary.markers.iter().enumerate() {
        needles.extend(
            variants(marker).into_iter().map(|(kind, bytes)| (format!("photo marker {n} ({kind})"), bytes)),
        );
    }
    let mut files = 0;
    let mut hits = Vec::new();
    let mut stack: Vec<PathBuf> = roots.iter().filter(|root| root.exists()).cloned().collect();
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|entry| entry.path()));
            }
            continue;
        }
        if !meta.is_file() {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else { continue };
        files += 1;
        for (what, needle) in &needles {
            if bytes.windows(needle.len()).any(|window| window == needle.as_slice()) {
                hits.push(format!("{}: {what}", path.display()));
            }
        }
    }
    (files, hits)
}

fn dir_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_laptop_leaks_nothing() {
    if dermdesk_e2e::skip_without_window("security") {
        return;
    }
    let scratch = std::env::temp_dir().join(format!("dermdesk-e2e-security-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let (data_home, cache_home, config_home, temp) =
        (scratch.join("data"), scratch.join("cache"), scratch.join("config"), scratch.join("tmp"));
    for dir in [&data_home, &cache_home, &config_home, &temp] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let log = scratch.join("app.log");
    // The hub is the service side (it holds the referrals in plain text by design): outside
    // the scanned directories.
    let hub_dir = std::env::temp_dir().join(format!("dermdesk-e2e-security-hub-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&hub_dir);
    let port = free_port();
    let hub = HubProcess::start_with_admin(hub_dir.clone(), port, ADMIN_TOKEN);
    let (code, canary, payloads) = seed(port);

    let url = format!("http://127.0.0.1:{port}");
    let driver = Driver::start_logged(
        &[
            ("DERMDESK_HUB_URL", &url),
            ("DERMDESK_ENROLMENT_CODE", &code),
            ("XDG_DATA_HOME", data_home.to_str().unwrap()),
            ("XDG_CACHE_HOME", cache_home.to_str().unwrap()),
            ("XDG_CONFIG_HOME", config_home.to_str().unwrap()),
            ("TMPDIR", temp.to_str().unwrap()),
            // The most verbose logging: it must still hold no canary.
            ("DERMDESK_LOG", "trace"),
            ("DERMDESK_SIGN_REAUTH_SECS", "1"),
        ],
        &log,
    );
    let client = driver.open_app(&[]).await;
    wait_for(&client, "the worklist", Duration::from_secs(120), &format!("{ROWS}.length >= 3")).await;
    wait_for_first_sync(&client, Duration::from_secs(120)).await;

    xss_is_inert(&client, &payloads).await;
    full_flow(&client, "CNR-A-0001").await;
    dermdesk_e2e::open_referral(&client, "CNR-B-0002").await;
    lock_and_unlock(&client).await;

    // The canary scan, with the app still running (its WAL and WebKit's caches as they are).
    let (files, hits) = scan(
        &[data_home.clone(), cache_home.clone(), config_home.clone(), temp.clone(), log.clone()],
        &canary,
    );
    std::fs::write(
        security_dir().join("canary.json"),
        serde_json::to_vec_pretty(&json!({"canary_hits": hits.len(), "files_scanned": files, "hits": hits}))
            .unwrap(),
    )
    .unwrap();
    assert!(files >= 5, "the scan read the app's files ({files})");
    let desk_dir = data_home.join("uk.dermdesk.desk").join("desk");
    let desk_dir =
        if desk_dir.exists() { desk_dir } else { find_cache_dir(&data_home).expect("the app's cache dir") };
    assert!(desk_dir.join("cache.sqlite3").exists(), "the cache is where the scan looked");
    assert!(hits.is_empty(), "canaries found outside the encrypted cache: {hits:#?}");

    // The service revokes this device: the next sync wipes it and the window says so.
    dermdesk_e2e::revoke_this_device(&client, port).await;
    let notice =
        wait_for(&client, "the wipe notice", Duration::from_secs(60), dermdesk_e2e::CONNECT_NOTICE).await;
    assert!(notice.as_str().unwrap().contains("no longer accepts this computer"), "{notice}");
    // A wiped device starts over at the Connect screen, the address kept, no passphrase asked.
    let lock_open =
        client.execute("return document.querySelector('#lock-screen').open;", vec![]).await.unwrap();
    assert_eq!(lock_open, json!(false), "the Connect screen, not a passphrase, comes first");
    let left = dir_files(&desk_dir);
    assert!(!left.iter().any(|name| name.starts_with("cache.sqlite3")), "the cache files are gone: {left:?}");
    client.close().await.unwrap();
    drop(driver);
    drop(hub);

    // The idle lock, with a short idle time.
    let driver = Driver::start_with_env(&[
        ("XDG_DATA_HOME", data_home.to_str().unwrap()),
        ("XDG_CACHE_HOME", cache_home.to_str().unwrap()),
        ("DERMDESK_IDLE_LOCK_SECS", "3"),
    ]);
    let client = driver.open_app(&["--demo"]).await;
    let notice = wait_for(
        &client,
        "the idle lock",
        Duration::from_secs(30),
        "(() => { const n = document.querySelector('#lock-notice'); return document.querySelector('#lock-screen')?.dataset.state === 'locked' && !n.hidden && n.textContent; })()",
    )
    .await;
    assert!(notice.as_str().unwrap().contains("without activity"), "{notice}");
    client.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&scratch);
    let _ = std::fs::remove_dir_all(&hub_dir);
}

/// The directory holding `cache.sqlite3` under `root`.
fn find_cache_dir(root: &Path) -> Option<PathBuf> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if entry.file_name() == "cache.sqlite3" {
                return Some(dir);
            }
        }
    }
    None
}
