//! End-to-end: the real Derm Desk window, driven over WebDriver (Debian's WebKitWebDriver),
//! under Xvfb with a real Secret Service. `cargo xtask test` provides the display, D-Bus,
//! GNOME Keyring, a fresh XDG_DATA_HOME and DERMDESK_APP (the built app).
//!
//! One test walks the consultant's whole loop, because each step needs the state of the one
//! before: the demo opens, the worklist shows, a referral opens with its photos, an outcome is
//! signed and shows as sent; then the app is restarted without the hub and shows everything
//! from the encrypted cache.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// Where screenshots of the run go (the README's screenshot comes from here).
fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Driver {
    process: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let process = Command::new("WebKitWebDriver")
            .arg(format!("--port={port}"))
            // Without it, WebKitGTK refuses automation and session creation hangs.
            .env("TAURI_WEBVIEW_AUTOMATION", "true")
            // Small synthetic photos keep the first demo start quick in tests.
            .env("DERMDESK_DEMO_SCALE", "small")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("WebKitWebDriver (install webkit2gtk-driver)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "WebKitWebDriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { process, port }
    }

    async fn open_app(&self, args: &[&str]) -> Client {
        let app = std::env::var("DERMDESK_APP").expect("DERMDESK_APP: run through `cargo xtask test`");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("webkitgtk:browserOptions".into(), json!({ "binary": app, "args": args }));
        ClientBuilder::rustls()
            .expect("TLS roots")
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a WebDriver session with the app")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Polls `script` (a JS expression) until it is truthy; returns its value.
async fn wait_for(client: &Client, what: &str, timeout: Duration, script: &str) -> Value {
    let started = Instant::now();
    loop {
        let value = client.execute(&format!("return ({script});"), vec![]).await.unwrap_or(Value::Null);
        let truthy = match &value {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(_) => true,
        };
        if truthy {
            return value;
        }
        if started.elapsed() > timeout {
            let text = client.execute("return document.body.innerText;", vec![]).await.unwrap_or_default();
            panic!("timed out after {timeout:?} waiting for {what}; the window shows:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(screenshot_dir().join(name), png).unwrap();
}

const ROWS: &str = "document.querySelectorAll('#worklist .worklist-row')";

#[tokio::test(flavor = "multi_thread")]
async fn the_consultant_reviews_signs_and_finds_it_all_again_offline() {
    let driver = Driver::start();
    let client = driver.open_app(&["--demo"]).await;

    // 1. The demo opens, enrols and syncs: the worklist shows the synthetic referrals.
    let count = wait_for(&client, "the worklist", Duration::from_secs(300), &format!("{ROWS}.length")).await;
    let count = count.as_u64().unwrap();
    assert!(count >= 6, "expected the demo's referrals, got {count}");
    // Wait for the first sync to finish (photos downloaded and verified).
    wait_for(
        &client,
        "every photo downloaded",
        Duration::from_secs(300),
        "document.querySelector('#sync-progress')?.dataset.active === 'false' \
         && !document.querySelector('#sync-last').textContent.includes('Not synced')",
    )
    .await;
    screenshot(&client, "worklist.png").await;

    // 2. Open the first referral: clinical details and photos at full resolution.
    let first = client.find(Locator::Css("#worklist .worklist-row")).await.unwrap();
    let referral_id = first.attr("data-referral-id").await.unwrap().expect("rows carry their referral id");
    first.click().await.unwrap();
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
    let main_photo = wait_for(
        &client,
        "the main photo at full resolution",
        Duration::from_secs(60),
        "(() => { const i = document.querySelector('#photo-viewer img'); \
           return i && i.complete && i.naturalWidth > 0 && [i.naturalWidth, i.naturalHeight]; })()",
    )
    .await;
    let longest = main_photo.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).max().unwrap();
    assert!(longest >= 640, "the viewer must show the original pixels, got {main_photo}");
    screenshot(&client, "referral.png").await;

    // 3. Write an outcome, Sign & send, confirm: it shows as sent.
    client.find(Locator::Css("#kind-gp_treatment_plan")).await.unwrap().click().await.unwrap();
    client.find(Locator::Css("#diagnosis")).await.unwrap().send_keys("Seborrhoeic keratosis").await.unwrap();
    client
        .find(Locator::Css("#plan"))
        .await
        .unwrap()
        .send_keys("Benign. Reassure the patient; no treatment needed.")
        .await
        .unwrap();
    client.find(Locator::Css("#sign-and-send")).await.unwrap().click().await.unwrap();
    wait_for(
        &client,
        "the confirmation",
        Duration::from_secs(10),
        "document.querySelector('#confirm-dialog')?.open",
    )
    .await;
    let summary = client.find(Locator::Css("#confirm-summary")).await.unwrap().text().await.unwrap();
    assert!(summary.contains("Seborrhoeic keratosis"), "the dialog shows what will be signed: {summary}");
    client.find(Locator::Css("#confirm-sign")).await.unwrap().click().await.unwrap();
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
    client.close().await.unwrap();

    // 4. Quit and restart without the hub (no network): everything is there, from the cache.
    let client = driver.open_app(&["--demo", "--offline"]).await;
    let again =
        wait_for(&client, "the cached worklist", Duration::from_secs(60), &format!("{ROWS}.length")).await;
    assert_eq!(again.as_u64().unwrap(), count);
    client
        .find(Locator::Css(&format!(".worklist-row[data-referral-id=\"{referral_id}\"]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(
        &client,
        "the sent outcome, offline",
        Duration::from_secs(30),
        "document.querySelector('#outcome-state')?.dataset.state === 'sent'",
    )
    .await;
    wait_for(
        &client,
        "the photos, offline",
        Duration::from_secs(30),
        "(() => { const i = document.querySelector('#photo-viewer img'); return i && i.complete && i.naturalWidth > 0; })()",
    )
    .await;
    screenshot(&client, "offline.png").await;
    client.close().await.unwrap();
}
