//! `startup-window`: `cargo xtask bench startup` in the real window (a benchmark, never a timed
//! test). Run inside the e2e session (Xvfb, DERMDESK_APP, DERMDESK_HUB) with
//! DERMDESK_EMPTY_TAURI (tests/bench/empty-tauri) and DERMDESK_BENCH (`dermdesk-bench`, whose
//! `startup-seed` prepares the desk), all from the one workspace build (debug, demo feature on).
//!
//! 1. Seeding (not timed): `dermdesk-bench startup-seed` in a D-Bus session of its own with
//!    GNOME Keyring, on the data folder the app will use: a hub with its database on disk holds
//!    `--referrals` referrals for one consultant; the desk chooses its passphrase in the real
//!    keychain, enrols and syncs everything. The hub binary then serves the same database on
//!    the same port, so the app starts online, enrolled, locked, with everything cached.
//! 2. Launch: each repetition starts the app and the empty Tauri window, in alternating order,
//!    each under a fresh WebKitWebDriver with its own D-Bus session and keyring (the keyring file
//!    is the seeded one), timed from the WebDriver session request (which starts the program) to
//!    the first poll that sees the lock screen open and locked (`#lock-screen[open]`,
//!    `data-state="locked"`), or the empty window's heading. `launch_ratio_vs_empty_tauri` is
//!    the ratio of the medians.
//! 3. Unlock to rows: the passphrase typed (not timed), then from the click on Unlock to the
//!    first poll that sees the lock screen closed and worklist rows (`.worklist-row`) drawn.
//!    Every poll also records what the window shows (lock state, rows, the worklist's empty
//!    text, the status bar's sync text, the scroll position), kept as a timeline of changes
//!    for the 2 s after the click: the states that flash on the way in.
//! 4. Observation (not timed): the worklist scrolled down and left; the app started again,
//!    unlocked while the screen is captured (`import`) as fast as it goes, into
//!    `<out>/startup-frames/`; the timeline says where the worklist opened.
//!
//! `startup-window --out DIR [--doc FILE] [--quick] [--repetitions N] [--referrals N]`: writes
//! `DIR/startup.json` and, with `--doc`, its section of docs/PERFORMANCE.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dermdesk_e2e::{free_port, type_into, wait_for, Driver};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

const PASSPHRASE: &str = "startup benchmark synthetic passphrase";
const LAUNCH_GOAL_RATIO: f64 = 1.5;
const ROWS_GOAL_MS: f64 = 500.0;
const DOC_BEGIN: &str = "<!-- bench startup: begin (written by `cargo xtask bench startup`) -->";
const DOC_END: &str = "<!-- bench startup: end -->";
/// How long after the click the timeline keeps recording (flashes right after the rows).
const WATCH_AFTER_CLICK: Duration = Duration::from_secs(2);

/// The window's state, read in one script.
const SNAPSHOT: &str = "(() => { const lock = document.querySelector('#lock-screen'); \
    const empty = document.querySelector('#worklist-empty'); \
    const list = document.querySelector('#worklist'); \
    return { lock: lock ? (lock.open ? (lock.dataset.state || 'open') : 'closed') : 'none', \
      rows: document.querySelectorAll('.worklist-row').length, \
      empty: empty && !empty.hidden ? empty.textContent : null, \
      sync: document.querySelector('#sync-last')?.textContent ?? null, \
      scroll: list ? Math.round(list.scrollTop) : null, \
      selected: document.querySelector('.worklist-row.is-selected')?.dataset.referralId ?? null, \
      count: document.querySelector('#worklist-count')?.textContent ?? null }; })()";

type Result<T = ()> = std::result::Result<T, String>;

fn main() {
    if let Err(error) = run() {
        eprintln!("startup-window: {error}");
        std::process::exit(1);
    }
}

struct Settings {
    out: PathBuf,
    doc: Option<PathBuf>,
    quick: bool,
    repetitions: usize,
    referrals: usize,
}

fn run() -> Result {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut settings =
        Settings { out: PathBuf::new(), doc: None, quick: false, repetitions: 5, referrals: 10_000 };
    let mut out = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut number = || -> Result<usize> {
            rest.next()
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{arg} needs a number"))
        };
        match arg.as_str() {
            "--out" => out = rest.next().map(PathBuf::from),
            "--doc" => settings.doc = rest.next().map(PathBuf::from),
            "--quick" => settings.quick = true,
            "--repetitions" => settings.repetitions = number()?,
            "--referrals" => settings.referrals = number()?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if settings.quick {
        settings.repetitions = 1;
        settings.referrals = settings.referrals.min(500);
    }
    settings.out = out.ok_or("--out DIR is required")?;
    std::fs::create_dir_all(&settings.out).map_err(|e| e.to_string())?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(bench(&settings))
}

fn binary(variable: &str) -> Result<String> {
    std::env::var(variable).map_err(|_| format!("{variable}: run through `cargo xtask bench startup`"))
}

/// Seeds the desk (step 1) in a D-Bus session of its own, with the keyring password every e2e
/// driver unlocks with, so the drivers' sessions later open the same keyring file.
fn seed(settings: &Settings, scratch: &Path, data_home: &Path, hub_dir: &Path, port: u16) -> Result {
    let runtime_dir = scratch.join("seed-runtime");
    std::fs::create_dir_all(&runtime_dir).map_err(|e| e.to_string())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&runtime_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
    }
    let status = Command::new("dbus-run-session")
        .args([
            "--",
            "sh",
            "-c",
            "echo -n dermdesk-e2e | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec \"$@\"",
            "sh",
        ])
        .arg(binary("DERMDESK_BENCH")?)
        .arg("startup-seed")
        .arg("--data-home")
        .arg(data_home)
        .arg("--hub-dir")
        .arg(hub_dir)
        .args(["--port", &port.to_string(), "--referrals", &settings.referrals.to_string()])
        .arg("--templates")
        .arg(settings.out.join("startup-templates"))
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("XDG_DATA_HOME", data_home)
        .env("XDG_RUNTIME_DIR", &runtime_dir)
        .env("XDG_CACHE_HOME", scratch.join("seed-cache"))
        .env("DERMDESK_BENCH_PASSPHRASE", PASSPHRASE)
        .status()
        .map_err(|e| format!("dbus-run-session: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("seeding the desk failed ({status})"))
    }
}

/// The hub binary on the seeded database, on the seeding port.
fn serve_hub(hub_dir: &Path, port: u16) -> Result<std::process::Child> {
    let hub = Command::new(binary("DERMDESK_HUB")?)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .arg("--db")
        .arg(hub_dir.join("hub.sqlite3"))
        .arg("--photos")
        .arg(hub_dir.join("photos"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the hub: {e}"))?;
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            return Err("the hub did not start listening".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(hub)
}

/// Polls `script` as fast as WebDriver answers until it is true; returns the time since `from`.
async fn until(client: &Client, script: &str, from: Instant, timeout: Duration) -> Result<Duration> {
    loop {
        let value = client.execute(&format!("return !!({script});"), vec![]).await.unwrap_or(Value::Null);
        if value == Value::Bool(true) {
            return Ok(from.elapsed());
        }
        if from.elapsed() > timeout {
            return Err(format!("not seen within {timeout:?}: {script}"));
        }
    }
}

const LOCKED: &str = "document.querySelector('#lock-screen')?.open \
    && document.querySelector('#lock-screen').dataset.state === 'locked'";
const ROWS: &str = "!document.querySelector('#lock-screen')?.open \
    && document.querySelectorAll('.worklist-row').length > 0";
const EMPTY_WINDOW: &str = "document.querySelector('#empty-window')";

/// One start of the empty Tauri window: seconds to its heading.
async fn launch_empty(scratch: &Path) -> Result<f64> {
    let data = scratch.join("empty-data");
    let driver = Driver::start_with_env(&[("XDG_DATA_HOME", data.to_str().ok_or("path")?)]);
    let empty = binary("DERMDESK_EMPTY_TAURI")?;
    let started = Instant::now();
    let client = driver.open_binary(&empty, &[]).await;
    let took = until(&client, EMPTY_WINDOW, started, Duration::from_secs(120)).await?;
    let _ = client.close().await;
    Ok(took.as_secs_f64())
}

/// What one start of the app measured.
struct AppStart {
    launch_s: f64,
    rows_s: f64,
    /// (ms after the click, the window's state), at each change.
    timeline: Vec<(f64, Value)>,
}

/// One start of the app: launch to the lock screen, then unlock to rows, watching the window.
async fn start_app(data_home: &Path, frames: Option<&Path>) -> Result<AppStart> {
    let driver = Driver::start_with_env(&[("XDG_DATA_HOME", data_home.to_str().ok_or("path")?)]);
    let started = Instant::now();
    let client = driver.open_app_locked(&[]).await;
    let launch = until(&client, LOCKED, started, Duration::from_secs(120)).await?;
    type_into(&client, "#lock-passphrase", PASSPHRASE).await;
    wait_for(
        &client,
        "the unlock button",
        Duration::from_secs(60),
        "!document.querySelector('#lock-submit').disabled",
    )
    .await;
    let button = client.find(Locator::Css("#lock-submit")).await.map_err(|e| e.to_string())?;
    let capture = frames.map(|dir| Capture::start(dir.to_owned()));
    let clicked = Instant::now();
    button.click().await.map_err(|e| e.to_string())?;
    let mut timeline: Vec<(f64, Value)> = Vec::new();
    let mut rows = None;
    while clicked.elapsed() < WATCH_AFTER_CLICK || rows.is_none() {
        let state = client.execute(&format!("return {SNAPSHOT};"), vec![]).await.unwrap_or(Value::Null);
        let at = clicked.elapsed();
        let drawn = state["lock"] == "closed" && state["rows"].as_u64().unwrap_or(0) > 0;
        if rows.is_none() && drawn {
            rows = Some(at);
        }
        if timeline.last().map(|(_, last)| last) != Some(&state) {
            timeline.push((at.as_secs_f64() * 1000.0, state));
        }
        if at > Duration::from_secs(120) {
            return Err("no worklist rows within 120 s of unlocking".into());
        }
    }
    if let Some(capture) = capture {
        capture.stop();
    }
    let _ = client.close().await;
    Ok(AppStart { launch_s: launch.as_secs_f64(), rows_s: rows.unwrap_or_default().as_secs_f64(), timeline })
}

/// Scrolls the worklist down and leaves it long enough for the view to be remembered.
async fn leave_scrolled(data_home: &Path) -> Result<i64> {
    let driver = Driver::start_with_env(&[("XDG_DATA_HOME", data_home.to_str().ok_or("path")?)]);
    let client = driver.open_app_locked(&[]).await;
    dermdesk_e2e::unlock(&client, PASSPHRASE).await;
    wait_for(&client, "worklist rows", Duration::from_secs(60), ROWS).await;
    let scroll = client
        .execute(
            "const list = document.querySelector('#worklist'); list.scrollTop = 3000; \
             list.dispatchEvent(new Event('scroll')); return Math.round(list.scrollTop);",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    // The view is saved 400 ms after the last scroll (ui/app.js SAVE_VIEW_DELAY_MS).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = client.close().await;
    Ok(scroll.as_i64().unwrap_or(0))
}

/// Screenshots of the X display as fast as `import` makes them, until stopped.
struct Capture {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Capture {
    fn start(dir: PathBuf) -> Capture {
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let display = std::env::var("DISPLAY").unwrap_or_default();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut index = 0;
            while !stopping.load(Ordering::SeqCst) {
                let at = started.elapsed().as_millis();
                let file = dir.join(format!("frame-{index:02}-{at:05}ms.png"));
                let _ = Command::new("/usr/bin/import")
                    .args(["-display", &display, "-window", "root"])
                    .arg(&file)
                    .stderr(Stdio::null())
                    .status();
                index += 1;
            }
        });
        Capture { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

async fn bench(settings: &Settings) -> Result {
    let scratch = std::env::temp_dir().join(format!("dermdesk-startup-window-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let data_home = scratch.join("data");
    let hub_dir = scratch.join("hub");
    let port = free_port();
    let seeding = Instant::now();
    seed(settings, &scratch, &data_home, &hub_dir, port)?;
    eprintln!(
        "startup-window: desk seeded with {} referrals in {:.1?}",
        settings.referrals,
        seeding.elapsed()
    );
    let mut hub = serve_hub(&hub_dir, port)?;
    let result = measure(settings, &scratch, &data_home).await;
    let _ = hub.kill();
    let _ = hub.wait();
    let _ = std::fs::remove_dir_all(&scratch);
    let (empty, starts, scrolled_to, observed) = result?;
    report(settings, &empty, &starts, scrolled_to, &observed)
}

type Measured = (Vec<f64>, Vec<AppStart>, i64, AppStart);

async fn measure(settings: &Settings, scratch: &Path, data_home: &Path) -> Result<Measured> {
    let mut empty = Vec::new();
    let mut starts = Vec::new();
    // Repetition 0 warms the page cache and WebKit's own caches; not recorded.
    for repetition in 0..=settings.repetitions {
        let app_first = repetition % 2 == 1;
        let mut empty_s = None;
        if !app_first {
            empty_s = Some(launch_empty(scratch).await?);
        }
        let start = start_app(data_home, None).await?;
        if app_first {
            empty_s = Some(launch_empty(scratch).await?);
        }
        let empty_s = empty_s.unwrap_or_default();
        eprintln!(
            "startup-window: repetition {repetition}: app to lock screen {:.2} s, empty window {:.2} s, \
             unlock to rows {:.0} ms",
            start.launch_s,
            empty_s,
            start.rows_s * 1000.0
        );
        if repetition > 0 {
            empty.push(empty_s);
            starts.push(start);
        }
    }
    let scrolled_to = leave_scrolled(data_home).await?;
    let observed = start_app(data_home, Some(&settings.out.join("startup-frames"))).await?;
    Ok((empty, starts, scrolled_to, observed))
}

fn describe(timeline: &[(f64, Value)]) -> String {
    timeline
        .iter()
        .map(|(ms, state)| {
            format!(
                "- {ms:.0} ms: lock {}, {} rows, empty text {}, status bar {}, scroll {}, selected {}",
                state["lock"].as_str().unwrap_or("?"),
                state["rows"],
                state["empty"].as_str().map_or("none".to_owned(), |text| format!("\"{text}\"")),
                state["sync"].as_str().map_or("none".to_owned(), |text| format!("\"{text}\"")),
                state["scroll"],
                state["selected"].as_str().unwrap_or("none"),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn report(
    settings: &Settings,
    empty: &[f64],
    starts: &[AppStart],
    scrolled_to: i64,
    observed: &AppStart,
) -> Result {
    let launch: Vec<f64> = starts.iter().map(|s| s.launch_s).collect();
    let rows_ms: Vec<f64> = starts.iter().map(|s| s.rows_s * 1000.0).collect();
    let ratio = median(&launch) / median(empty);
    let rows = median(&rows_ms);
    let judged = |pass: bool| {
        if settings.quick {
            "not judged (quick run)"
        } else if pass {
            "pass"
        } else {
            "FAIL"
        }
    };
    let json = json!({
        "launch_ratio_vs_empty_tauri": ratio,
        "unlock_to_rows_ms_10k": rows,
        "referrals": settings.referrals,
        "repetitions": settings.repetitions,
        "launch_to_lock_screen_s": { "median": median(&launch), "samples": launch },
        "empty_tauri_window_s": { "median": median(empty), "samples": empty },
        "unlock_to_rows_ms": { "median": rows, "samples": rows_ms },
        "scrolled_to_before_restart": scrolled_to,
        "timeline_after_unlock": observed.timeline.iter().map(|(ms, state)| json!({"ms": ms, "state": state})).collect::<Vec<_>>(),
    });
    let path = settings.out.join("startup.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json).map_err(|e| e.to_string())? + "\n")
        .map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    let section = format!(
        "{} referrals cached; {} repetitions (after one not recorded), app and empty window in alternating \
         order; debug build, demo feature on, under Xvfb with GNOME Keyring, 2 shared cores.\n\n\
         | measurement | Derm Desk | reference | ratio / goal | result |\n\
         |---|---|---|---|---|\n\
         | launch to lock screen (`launch_ratio_vs_empty_tauri`) | {:.2} s | empty Tauri window {:.2} s | {ratio:.2}× (goal ≤ {LAUNCH_GOAL_RATIO}×) | {} |\n\
         | unlock to worklist rows (`unlock_to_rows_ms_10k`) | {rows:.0} ms | — | goal ≤ {ROWS_GOAL_MS:.0} ms | {} |\n\n\
         Samples: launch {:?} s, empty {:?} s, unlock to rows {:?} ms.\n\n\
         What the window showed after Unlock, on a start after the worklist was left scrolled to {scrolled_to} px \
         (every change the polls saw; screenshots in `target/bench/startup-frames/`):\n\n{}\n",
        settings.referrals,
        settings.repetitions,
        median(&launch),
        median(empty),
        judged(ratio <= LAUNCH_GOAL_RATIO),
        judged(rows <= ROWS_GOAL_MS),
        launch.iter().map(|s| (s * 100.0).round() / 100.0).collect::<Vec<_>>(),
        empty.iter().map(|s| (s * 100.0).round() / 100.0).collect::<Vec<_>>(),
        rows_ms.iter().map(|ms| ms.round()).collect::<Vec<_>>(),
        describe(&observed.timeline),
    );
    eprintln!("{section}");
    if let Some(doc) = &settings.doc {
        let text = std::fs::read_to_string(doc).map_err(|e| format!("{}: {e}", doc.display()))?;
        let (Some(begin), Some(end)) = (text.find(DOC_BEGIN), text.find(DOC_END)) else {
            return Err(format!("{} has no `{DOC_BEGIN}` … `{DOC_END}` section", doc.display()));
        };
        let updated = format!("{}{DOC_BEGIN}\n\n{section}\n{}", &text[..begin], &text[end..]);
        std::fs::write(doc, updated).map_err(|e| format!("{}: {e}", doc.display()))?;
    }
    Ok(())
}
