//! Shared support for the end-to-end tests: WebKitWebDriver, the app under it, a separate hub
//! process, polling and screenshots. Every test opens the app through [`Driver::open_app`], so a
//! step every start needs (choosing the passphrase or unlocking: [`unlock`]) lives in one place.
//!
//! Each [`Driver`] is a world of its own: its own data and cache folders (so its own demo hub and
//! encrypted cache) and its own D-Bus session with its own GNOME Keyring (so its own keychain
//! collection). Tests share only the rendered synthetic photos (`DERMDESK_DEMO_PHOTO_CACHE`,
//! content-addressed) and the chosen instant (`DERMDESK_NOW`), both set by `cargo xtask e2e`.
//!
//! Without that environment (a plain `cargo test --workspace`) every test says so in one line
//! and passes without opening a window: see [`skip_without_window`].

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

/// True (after printing why) when the real-window environment is missing: no built app to
/// drive (`DERMDESK_APP`), no WebKitWebDriver or no display. `cargo xtask e2e` provides all
/// three; every test starts with `if skip_without_window(...) { return; }`.
pub fn skip_without_window(test: &str) -> bool {
    let missing = if std::env::var_os("DERMDESK_APP").is_none() {
        Some("DERMDESK_APP is not set")
    } else if std::env::var_os("DISPLAY").is_none() {
        Some("there is no DISPLAY")
    } else {
        None
    };
    match missing {
        Some(why) => {
            eprintln!(
                "skipped {test}: a real-window test and {why}; run it with `cargo xtask e2e --test {test}`"
            );
            true
        }
        None => false,
    }
}

pub struct Driver {
    process: Child,
    port: u16,
    /// The service [`Driver::open_app`] connects to through the Connect screen, if the app
    /// shows it (`DERMDESK_HUB_URL` and `DERMDESK_ENROLMENT_CODE` in the driver's env; they
    /// are not passed to the app, which has no such back door).
    service: Option<(String, String)>,
    /// This driver's own folders (data, cache, keyring), removed when it is dropped.
    scratch: PathBuf,
}

/// A new, empty folder for one driver's world.
fn scratch_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("dermdesk-e2e-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
        let find = |name: &str| env.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string());
        let service = find("DERMDESK_HUB_URL").zip(find("DERMDESK_ENROLMENT_CODE"));
        let env: Vec<(&str, &str)> = env
            .iter()
            .copied()
            .filter(|(key, _)| !matches!(*key, "DERMDESK_HUB_URL" | "DERMDESK_ENROLMENT_CODE"))
            .collect();
        let port = free_port();
        let scratch = scratch_dir();
        // A private D-Bus session with its own unlocked GNOME Keyring (created in this driver's
        // XDG_DATA_HOME on first unlock), then WebKitWebDriver in it; the app is its child.
        let mut command = Command::new("dbus-run-session");
        command
            .args(["--", "sh", "-c"])
            .arg(
                "echo -n dermdesk-e2e | gnome-keyring-daemon --unlock --components=secrets >/dev/null \
                 && exec WebKitWebDriver --port=\"$0\"",
            )
            .arg(port.to_string())
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("XDG_DATA_HOME", scratch.join("data"))
            .env("XDG_CACHE_HOME", scratch.join("cache"))
            .env("XDG_CONFIG_HOME", scratch.join("config"))
            .env("XDG_RUNTIME_DIR", scratch.join("runtime"));
        std::fs::create_dir_all(scratch.join("runtime")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(scratch.join("runtime"), std::fs::Permissions::from_mode(0o700))
                .unwrap();
        }
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let process = command
            .envs(env.iter().copied())
            // Without it, WebKitGTK refuses automation and session creation hangs.
            .env("TAURI_WEBVIEW_AUTOMATION", "true")
            // Small synthetic photos keep the first demo start quick in tests.
            .env("DERMDESK_DEMO_SCALE", "small")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect(
                "dbus-run-session and WebKitWebDriver (install dbus-x11 webkit2gtk-driver gnome-keyring)",
            );
        let mut driver = Driver { process, port, service, scratch };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = driver.process.try_wait() {
                panic!("WebKitWebDriver (in its D-Bus session) exited before listening: {status}");
            }
            assert!(started.elapsed() < Duration::from_secs(30), "WebKitWebDriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    /// This driver's XDG_DATA_HOME (unless the test passed its own): where the app keeps its
    /// encrypted cache.
    pub fn data_home(&self) -> PathBuf {
        self.scratch.join("data")
    }

    /// Starts the app and gets it past the lock screen: chooses [`TEST_PASSPHRASE`] on a first
    /// start, types it on a later one. Use [`Driver::open_app_locked`] to stay at the lock screen.
    pub async fn open_app(&self, args: &[&str]) -> Client {
        let client = self.open_app_locked(args).await;
        if let Some((url, code)) = &self.service {
            connect_if_asked(&client, url, code).await;
        }
        unlock(&client, TEST_PASSPHRASE).await;
        client
    }

    /// Starts the app and leaves it wherever it starts (the lock screen, usually).
    pub async fn open_app_locked(&self, args: &[&str]) -> Client {
        let app = std::env::var("DERMDESK_APP").expect("DERMDESK_APP: run through `cargo xtask test`");
        self.open_binary(&app, args).await
    }

    /// Starts another WebKitGTK program under this driver (the startup benchmark's empty Tauri
    /// window) and returns the session once its window is up.
    pub async fn open_binary(&self, binary: &str, args: &[&str]) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("webkitgtk:browserOptions".into(), json!({ "binary": binary, "args": args }));
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a WebDriver session with the app")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole process group: D-Bus, the keyring, WebKitWebDriver and the app under it.
        #[cfg(unix)]
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.process.id())]).status();
        let _ = self.process.kill();
        let _ = self.process.wait();
        if std::env::var_os("DERMDESK_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }
}

/// The passphrase every end-to-end test chooses and unlocks with (synthetic data only).
pub const TEST_PASSPHRASE: &str = "e2e synthetic passphrase";

const LOCK_STATE: &str = "document.querySelector('#lock-screen')?.dataset.state";
const CONNECT_OPEN: &str = "document.querySelector('#connect-screen')?.open";

/// Waits for the first screen the app shows: `connect`, `choose_passphrase`, `locked`,
/// `failed` or `unlocked`.
pub async fn first_screen(client: &Client) -> String {
    let state = wait_for(
        client,
        "the Connect screen, the lock screen or the unlocked window",
        Duration::from_secs(120),
        &format!(
            "(() => {{ if ({CONNECT_OPEN}) return 'connect'; const s = {LOCK_STATE}; \
               if (s === 'choose_passphrase' || s === 'locked' || s === 'failed') return s; \
               if (document.querySelector('#lock-now')) return 'unlocked'; return null; }})()"
        ),
    )
    .await;
    state.as_str().unwrap().to_owned()
}

/// Fills in the Connect screen (service address, enrolment code) and presses Connect. Returns
/// once the screen has answered: the passphrase is asked next, or `#connect-error` says why not
/// (returned as `Err(message)`).
pub async fn connect(client: &Client, url: &str, code: &str) -> Result<(), String> {
    wait_for(client, "the Connect screen", Duration::from_secs(120), CONNECT_OPEN).await;
    let locked =
        client.execute("return document.querySelector('#connect-service').readOnly;", vec![]).await.unwrap();
    if locked != Value::Bool(true) {
        type_into(client, "#connect-service", url).await;
    }
    type_into(client, "#connect-code", code).await;
    client.execute("document.querySelector('#connect-error').hidden = true;", vec![]).await.unwrap();
    click(client, "#connect-submit").await;
    let outcome = wait_for(
        client,
        "the Connect screen's answer",
        Duration::from_secs(60),
        &format!(
            "(() => {{ const e = document.querySelector('#connect-error'); \
               if (!e.hidden && !document.querySelector('#connect-submit').disabled) return 'error:' + e.textContent; \
               if (!({CONNECT_OPEN}) && {LOCK_STATE} === 'choose_passphrase') return 'ok'; \
               if (!({CONNECT_OPEN}) && document.querySelector('#lock-now')) return 'ok'; return null; }})()"
        ),
    )
    .await;
    match outcome.as_str().unwrap() {
        "ok" => Ok(()),
        error => Err(error.trim_start_matches("error:").to_owned()),
    }
}

/// The notice on the Connect screen (signed out, revoked…), once it is open with one.
pub const CONNECT_NOTICE: &str = "(() => { const n = document.querySelector('#connect-notice'); \
     return document.querySelector('#connect-screen')?.open && !n.hidden && n.textContent; })()";

/// Opens a referral from the worklist: clicks its row and waits until the detail shows it.
pub async fn open_referral(client: &Client, referral_id: &str) {
    click(client, &format!(".worklist-row[data-referral-id=\"{referral_id}\"]")).await;
    wait_for(
        client,
        "the referral to open",
        Duration::from_secs(30),
        &format!("document.querySelector('#detail-content')?.dataset.referralId === '{referral_id}'"),
    )
    .await;
}

/// Has the hub on `port` revoke the device the window is enrolled as (its id read from the
/// device dialog, as an operator would find it), then presses Sync now so the app finds out.
/// Wait for the first sync to end before: while one runs, the Sync button stops it.
pub async fn revoke_this_device(client: &Client, port: u16) {
    click(client, "#consultant").await;
    let device_id = wait_for(
        client,
        "the device id",
        Duration::from_secs(10),
        "[...document.querySelectorAll('#device-summary dt')].find(d => d.textContent === 'Device')?.nextElementSibling?.textContent",
    )
    .await;
    click(client, "#device-close").await;
    admin_json(port, "POST", &format!("/admin/devices/{}/revoke", device_id.as_str().unwrap()), &Value::Null);
    click(client, "#sync-now").await;
}

/// Connects when the app shows the Connect screen (a first start); does nothing otherwise.
async fn connect_if_asked(client: &Client, url: &str, code: &str) {
    if first_screen(client).await == "connect" {
        connect(client, url, code).await.expect("the Connect screen connects");
    }
}

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

/// Clicks the element `selector` as a person would: once it is on screen and enabled. If the
/// window redraws it between finding and clicking (a sync that lands re-renders the worklist's
/// rows), or something still covers it, the click is tried again, for up to 10 seconds; any
/// other failure fails the test at once.
pub async fn click(client: &Client, selector: &str) {
    let quoted = serde_json::to_string(selector).unwrap();
    wait_for(
        client,
        &format!("{selector} on screen and enabled"),
        Duration::from_secs(30),
        &format!(
            "(() => {{ const e = document.querySelector({quoted}); \
               return !!e && !e.disabled && e.getClientRects().length > 0 && !e.closest('[hidden]'); }})()"
        ),
    )
    .await;
    let started = Instant::now();
    loop {
        let result = match client.find(fantoccini::Locator::Css(selector)).await {
            Ok(element) => element.click().await,
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => return,
            Err(fantoccini::error::CmdError::Standard(error))
                if matches!(
                    error.error,
                    fantoccini::error::ErrorStatus::StaleElementReference
                        | fantoccini::error::ErrorStatus::ElementNotInteractable
                        | fantoccini::error::ErrorStatus::ElementClickIntercepted
                ) && started.elapsed() < Duration::from_secs(10) =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("clicking {selector}: {error} ({error:?})"),
        }
    }
}

/// The referral id of the worklist row `selector` (read in the page, so a redraw between
/// finding and reading cannot make it stale).
pub async fn row_id(client: &Client, selector: &str) -> String {
    let script = format!("return document.querySelector('{selector}')?.dataset.referralId ?? null;");
    let value =
        wait_for(client, selector, Duration::from_secs(30), &format!("(() => {{ {script} }})()")).await;
    value.as_str().expect("rows carry their referral id").to_owned()
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
    let png = screenshot_png(client).await;
    std::fs::write(screenshot_dir().join(name), png).unwrap();
}

/// Keeps the page making rendering updates: a 1 px, invisible, endlessly animated element in the
/// bottom-left corner (Web Animations API: the app's CSP allows no inline style sheet). An idle
/// page under Xvfb may otherwise make none for many seconds, and WebKitWebDriver's screenshot,
/// like `requestAnimationFrame` and OpenSeadragon's animations, waits for the next one.
const START_PAINTING: &str = "(() => { if (document.getElementById('e2e-painting')) return true;     const tick = document.createElement('div'); tick.id = 'e2e-painting'; tick.setAttribute('aria-hidden', 'true');     Object.assign(tick.style, { position: 'fixed', left: '0', bottom: '0', width: '1px', height: '1px',       pointerEvents: 'none', zIndex: '2147483647', background: 'transparent' });     document.body.appendChild(tick);     tick.animate([{ opacity: 0.98 }, { opacity: 1 }], { duration: 120, iterations: Infinity, direction: 'alternate' });     return true; })()";
const STOP_PAINTING: &str = "(() => { document.getElementById('e2e-painting')?.remove(); return true; })()";

/// The window as a PNG, taken while the page keeps painting (see [`START_PAINTING`]).
pub async fn screenshot_png(client: &Client) -> Vec<u8> {
    client.execute(&format!("return {START_PAINTING};"), vec![]).await.unwrap();
    next_frames(client).await;
    let png = client.screenshot().await.expect("screenshot");
    client.execute(&format!("return {STOP_PAINTING};"), vec![]).await.unwrap();
    png
}

/// Returns once the page has rendered two more frames: whatever the last change was (a click, a
/// new DOM, an image's onload) has been laid out, painted and its handlers have run. What a
/// fixed sleep used to stand for, as a condition.
pub async fn next_frames(client: &Client) {
    client.execute(&format!("return {START_PAINTING};"), vec![]).await.unwrap();
    client
        .execute_async(
            "const done = arguments[arguments.length - 1];              requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
            vec![],
        )
        .await
        .expect("two animation frames");
    client.execute(&format!("return {STOP_PAINTING};"), vec![]).await.unwrap();
}

/// Waits until every photo viewer on screen has finished animating (zoom and pan at their
/// targets) and has drawn every tile of its view.
pub async fn wait_for_viewers_settled(client: &Client, what: &str) {
    client.execute(&format!("return {START_PAINTING};"), vec![]).await.unwrap();
    wait_for(
        client,
        what,
        Duration::from_secs(60),
        "[...document.querySelectorAll('.osd-host')].filter(h => h.offsetParent !== null).every(host => {            const viewer = OpenSeadragon.getViewer(host); if (!viewer) return true;            const vp = viewer.viewport;            const still = Math.abs(vp.getZoom(true) - vp.getZoom(false)) <= 1e-6 * vp.getZoom(false)              && vp.getCenter(true).distanceTo(vp.getCenter(false)) <= 1e-6;            const count = viewer.world.getItemCount();            return still && (count === 0 || viewer.world.getItemAt(count - 1).getFullyLoaded()); })",
    )
    .await;
    client.execute(&format!("return {STOP_PAINTING};"), vec![]).await.unwrap();
}

/// The reference hub as a separate process on a fixed loopback port, with its database on disk,
/// so it can be stopped dead and started again where it was.
pub struct HubProcess {
    process: Child,
    port: u16,
    pub dir: PathBuf,
    /// The demo consultant's id ([`HubProcess::start_seeded`]).
    pub consultant_id: Option<String>,
}

/// The admin token of every hub the end-to-end tests start (synthetic; loopback only).
pub const HUB_ADMIN_TOKEN: &str = "e2e-admin-token-synthetic";

/// A request to the admin routes of the hub on `port` with [`HUB_ADMIN_TOKEN`] ([`admin_with`]).
pub fn admin(port: u16, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, Vec<u8>) {
    admin_with(port, HUB_ADMIN_TOKEN, method, path, content_type, body)
}

/// A tiny HTTP/1.1 client for a hub's admin routes on loopback (no extra HTTP stack in this
/// crate). Returns the status and the body.
pub fn admin_with(
    port: u16,
    token: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP response");
    let status = String::from_utf8_lossy(&response[..split]).split(' ').nth(1).unwrap().parse().unwrap();
    (status, response[split + 4..].to_vec())
}

/// [`admin`] with JSON both ways; panics unless the hub answers 2xx.
pub fn admin_json(port: u16, method: &str, path: &str, body: &Value) -> Value {
    admin_json_with(port, HUB_ADMIN_TOKEN, method, path, body)
}

/// [`admin_with`] with JSON both ways (`null`: no body); panics unless the hub answers 2xx.
pub fn admin_json_with(port: u16, token: &str, method: &str, path: &str, body: &Value) -> Value {
    let bytes = if body.is_null() { Vec::new() } else { body.to_string().into_bytes() };
    let (status, body) = admin_with(port, token, method, path, "application/json", &bytes);
    assert!((200..300).contains(&status), "{method} {path}: {status} {}", String::from_utf8_lossy(&body));
    if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap()
    }
}

impl HubProcess {
    pub fn binary() -> String {
        std::env::var("DERMDESK_HUB").expect("DERMDESK_HUB: run through `cargo xtask test`")
    }

    /// Seeds the demo and returns the hub with the demo consultant's enrolment code.
    pub fn start_seeded(dir: PathBuf, port: u16, faults: &str) -> (HubProcess, String) {
        Self::start_seeded_with(dir, port, faults, &[])
    }

    /// [`HubProcess::start_seeded`] with more `serve` options (e.g. `--updates DIR`).
    pub fn start_seeded_with(
        dir: PathBuf,
        port: u16,
        faults: &str,
        options: &[&str],
    ) -> (HubProcess, String) {
        use std::io::BufRead as _;
        std::fs::create_dir_all(&dir).unwrap();
        let mut process = Self::command(&dir, port)
            .args(["--demo", "--demo-scale", "small", "--faults", faults])
            .args(options)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the hub starts");
        let (mut code, mut consultant_id) = (None, None);
        let mut lines = std::io::BufReader::new(process.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(found) = line.strip_prefix("Demo consultant: ") {
                // "Dr Name (id)"
                consultant_id = found.rsplit_once('(').map(|(_, id)| id.trim_end_matches(')').to_owned());
            }
            if let Some(found) = line.strip_prefix("Enrolment code: ") {
                code = Some(found.trim().to_owned());
                break;
            }
        }
        // Keep reading: a pipe nobody reads is a pipe that breaks on the hub's next line.
        std::thread::spawn(move || lines.for_each(drop));
        let hub = HubProcess { process, port, dir, consultant_id };
        hub.wait_listening();
        (hub, code.expect("the hub prints the demo enrolment code"))
    }

    /// An empty hub with its admin routes on (`token`), for tests that seed their own data.
    pub fn start_with_admin(dir: PathBuf, port: u16, token: &str) -> HubProcess {
        Self::start_with_admin_and(dir, port, token, &[])
    }

    /// [`HubProcess::start_with_admin`] with more `serve` options (e.g. `--updates DIR`).
    pub fn start_with_admin_and(dir: PathBuf, port: u16, token: &str, options: &[&str]) -> HubProcess {
        std::fs::create_dir_all(&dir).unwrap();
        let process = Self::command(&dir, port)
            .args(options)
            .env("DERMDESK_HUB_ADMIN_TOKEN", token)
            .stdout(Stdio::null())
            .spawn()
            .expect("the hub starts");
        let hub = HubProcess { process, port, dir, consultant_id: None };
        hub.wait_listening();
        hub
    }

    /// A new one-time enrolment code for the demo consultant (admin API).
    pub fn new_enrolment_code(&self) -> String {
        let consultant_id = self.consultant_id.as_deref().expect("a seeded hub knows its consultant");
        let answer = admin_json(
            self.port,
            "POST",
            "/admin/enrolment-codes",
            &json!({ "consultant_id": consultant_id }),
        );
        answer["enrolment_code"].as_str().unwrap().to_owned()
    }

    pub fn restart(dir: PathBuf, port: u16) -> HubProcess {
        let process = Self::command(&dir, port).stdout(Stdio::null()).spawn().expect("the hub starts again");
        let hub = HubProcess { process, port, dir, consultant_id: None };
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
            .env("DERMDESK_HUB_ADMIN_TOKEN", HUB_ADMIN_TOKEN)
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

    /// One request to this hub's admin API with `token` ([`admin_with`]): (status, body).
    pub fn admin(
        &self,
        token: &str,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        admin_with(self.port, token, method, path, content_type, body)
    }

    /// An admin request with a JSON body (`null`: none) that must succeed; its JSON answer.
    pub fn admin_json(&self, token: &str, method: &str, path: &str, body: &Value) -> Value {
        admin_json_with(self.port, token, method, path, body)
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
