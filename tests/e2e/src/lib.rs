//! Shared support for the end-to-end tests: WebKitWebDriver, the app under it, a separate hub
//! process, polling and screenshots. Every test opens the app through [`Driver::open_app`], so a
//! step every start needs (choosing the passphrase or unlocking: [`unlock`]) lives in one place.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

/// Where screenshots of the run go (the README's screenshot comes from here).
pub fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct Driver {
    process: Child,
    port: u16,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Driver {
    /// `env` reaches the app, which WebKitWebDriver starts as its child.
    pub fn start_with_env(env: &[(&str, &str)]) -> Driver {
        Self::start(env, Stdio::inherit())
    }

    /// As [`Driver::start_with_env`], with the driver's and the app's standard error (the app's
    /// log) written to `log`.
    pub fn start_logged(env: &[(&str, &str)], log: &std::path::Path) -> Driver {
        Self::start(env, Stdio::from(std::fs::File::create(log).expect("the log file")))
    }

    fn start(env: &[(&str, &str)], stderr: Stdio) -> Driver {
        let port = free_port();
        let process = Command::new("WebKitWebDriver")
            .arg(format!("--port={port}"))
            .envs(env.iter().copied())
            // Without it, WebKitGTK refuses automation and session creation hangs.
            .env("TAURI_WEBVIEW_AUTOMATION", "true")
            // Small synthetic photos keep the first demo start quick in tests.
            .env("DERMDESK_DEMO_SCALE", "small")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("WebKitWebDriver (install webkit2gtk-driver)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "WebKitWebDriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { process, port }
    }

    /// Starts the app and gets it past the lock screen: chooses [`TEST_PASSPHRASE`] on a first
    /// start, types it on a later one. Use [`Driver::open_app_locked`] to stay at the lock screen.
    pub async fn open_app(&self, args: &[&str]) -> Client {
        let client = self.open_app_locked(args).await;
        unlock(&client, TEST_PASSPHRASE).await;
        client
    }

    /// Starts the app and leaves it wherever it starts (the lock screen, usually).
    pub async fn open_app_locked(&self, args: &[&str]) -> Client {
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

/// The passphrase every end-to-end test chooses and unlocks with (synthetic data only).
pub const TEST_PASSPHRASE: &str = "e2e synthetic passphrase";

const LOCK_STATE: &str = "document.querySelector('#lock-screen')?.dataset.state";

/// Gets past the lock screen: chooses `passphrase` on a first start (both fields), types it
/// when locked, and waits until the window is unlocked.
pub async fn unlock(client: &Client, passphrase: &str) {
    let state = wait_for(
        client,
        "the lock screen or the unlocked window",
        Duration::from_secs(120),
        &format!(
            "(() => {{ const s = {LOCK_STATE}; \
               if (s === 'choose_passphrase' || s === 'locked' || s === 'failed') return s; \
               if (document.querySelector('#lock-now')) return 'unlocked'; return null; }})()"
        ),
    )
    .await;
    match state.as_str() {
        Some("choose_passphrase") => {
            type_into(client, "#lock-passphrase", passphrase).await;
            type_into(client, "#lock-passphrase-again", passphrase).await;
        }
        Some("locked") => type_into(client, "#lock-passphrase", passphrase).await,
        _ => return,
    }
    // A delay after an earlier wrong attempt keeps the button disabled for a while.
    wait_for(
        client,
        "the unlock button",
        Duration::from_secs(60),
        "!document.querySelector('#lock-submit').disabled",
    )
    .await;
    client.find(fantoccini::Locator::Css("#lock-submit")).await.unwrap().click().await.unwrap();
    wait_for(
        client,
        "the window to unlock",
        Duration::from_secs(120),
        "!document.querySelector('#lock-screen').open && !!document.querySelector('#lock-now')",
    )
    .await;
}

/// Replaces the value of the input `selector` with `text`, typed as keys.
pub async fn type_into(client: &Client, selector: &str, text: &str) {
    let input = client.find(fantoccini::Locator::Css(selector)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

/// Polls `script` (a JS expression) until it is truthy; returns its value.
pub async fn wait_for(client: &Client, what: &str, timeout: Duration, script: &str) -> Value {
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

/// Waits until the first sync has ended with every photo downloaded and verified.
pub async fn wait_for_first_sync(client: &Client, timeout: Duration) {
    wait_for(
        client,
        "every photo downloaded",
        timeout,
        "document.querySelector('#sync-progress')?.dataset.active === 'false' \
         && !document.querySelector('#sync-last').textContent.includes('Not synced')",
    )
    .await;
}

pub async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(screenshot_dir().join(name), png).unwrap();
}

/// The reference hub as a separate process on a fixed loopback port, with its database on disk,
/// so it can be stopped dead and started again where it was.
pub struct HubProcess {
    process: Child,
    port: u16,
    pub dir: PathBuf,
}

impl HubProcess {
    pub fn binary() -> String {
        std::env::var("DERMDESK_HUB").expect("DERMDESK_HUB: run through `cargo xtask test`")
    }

    /// Seeds the demo and returns the hub with the demo consultant's enrolment code.
    pub fn start_seeded(dir: PathBuf, port: u16, faults: &str) -> (HubProcess, String) {
        use std::io::BufRead as _;
        std::fs::create_dir_all(&dir).unwrap();
        let mut process = Self::command(&dir, port)
            .args(["--demo", "--demo-scale", "small", "--faults", faults])
            .stdout(Stdio::piped())
            .spawn()
            .expect("the hub starts");
        let mut code = None;
        let lines = std::io::BufReader::new(process.stdout.take().unwrap()).lines();
        for line in lines {
            let line = line.unwrap();
            if let Some(found) = line.strip_prefix("Enrolment code: ") {
                code = Some(found.trim().to_owned());
                break;
            }
        }
        let hub = HubProcess { process, port, dir };
        hub.wait_listening();
        (hub, code.expect("the hub prints the demo enrolment code"))
    }

    /// An empty hub with its admin routes on (`token`), for tests that seed their own data.
    pub fn start_with_admin(dir: PathBuf, port: u16, token: &str) -> HubProcess {
        std::fs::create_dir_all(&dir).unwrap();
        let process = Self::command(&dir, port)
            .env("DERMDESK_HUB_ADMIN_TOKEN", token)
            .stdout(Stdio::null())
            .spawn()
            .expect("the hub starts");
        let hub = HubProcess { process, port, dir };
        hub.wait_listening();
        hub
    }

    pub fn restart(dir: PathBuf, port: u16) -> HubProcess {
        let process = Self::command(&dir, port).stdout(Stdio::null()).spawn().expect("the hub starts again");
        let hub = HubProcess { process, port, dir };
        hub.wait_listening();
        hub
    }

    fn command(dir: &std::path::Path, port: u16) -> Command {
        let mut command = Command::new(Self::binary());
        command
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .arg("--db")
            .arg(dir.join("hub.sqlite3"))
            .arg("--photos")
            .arg(dir.join("photos"))
            .stderr(Stdio::inherit());
        command
    }

    fn wait_listening(&self) {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(300), "the hub did not start listening");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the hub without warning (as a lost connection looks to the app).
    pub fn kill(mut self) -> PathBuf {
        self.process.kill().unwrap();
        self.process.wait().unwrap();
        std::mem::take(&mut self.dir)
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
