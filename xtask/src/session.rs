//! Running the real app headless: an X server (Xvfb) if there is no display, a private D-Bus
//! session with an unlocked GNOME Keyring (the cache key lives in the keychain), and a fresh
//! data directory so every run starts from enrolment.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{app_binary, cargo, hub_binary, root, Result};

/// The instant every end-to-end test runs at unless it chooses its own (`DERMDESK_NOW`): a
/// Wednesday morning in December, London time, so that what the tests read on screen ("Due in
/// 2 working days", "Overdue by 1 working day") does not depend on the day CI runs.
pub const E2E_NOW: &str = "2026-12-02T10:30:00Z";

/// Xvfb screen: the app's default window size.
const SCREEN: &str = "1440x900x24";

struct Display {
    name: String,
    server: Option<Child>,
}

/// One display picked at a time: two test binaries starting together must not take the same
/// display number.
static PICKING_A_DISPLAY: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Display {
    /// A display of its own: a new Xvfb (test binaries run side by side, each on its own screen).
    fn new_xvfb() -> Result<Display> {
        let _one_at_a_time = PICKING_A_DISPLAY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Self::start_xvfb()
    }

    /// The current display, or a new Xvfb.
    fn get() -> Result<Display> {
        if let Ok(name) = std::env::var("DISPLAY") {
            if !name.is_empty() {
                return Ok(Display { name, server: None });
            }
        }
        Self::new_xvfb()
    }

    fn start_xvfb() -> Result<Display> {
        for number in 90..140 {
            let lock = format!("/tmp/.X{number}-lock");
            let socket = format!("/tmp/.X11-unix/X{number}");
            if Path::new(&socket).exists() || Path::new(&lock).exists() {
                // A server killed hard leaves its lock and socket behind: reuse the number when
                // the lock's process is gone.
                let owner =
                    std::fs::read_to_string(&lock).ok().and_then(|pid| pid.trim().parse::<u32>().ok());
                match owner {
                    Some(pid) if !Path::new(&format!("/proc/{pid}")).exists() => {
                        let _ = std::fs::remove_file(&lock);
                        let _ = std::fs::remove_file(&socket);
                    }
                    _ => continue,
                }
            }
            let name = format!(":{number}");
            let server = Command::new("Xvfb")
                .args([name.as_str(), "-screen", "0", SCREEN, "-nolisten", "tcp"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("Xvfb: {e} (install xvfb)"))?;
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
            let started = Instant::now();
            while !socket.exists() {
                if started.elapsed() > Duration::from_secs(20) {
                    return Err("Xvfb did not start".into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            return Ok(Display { name, server: Some(server) });
        }
        Err("no free X display number".into())
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        if let Some(server) = &mut self.server {
            // SIGTERM first, so Xvfb removes its lock and socket; SIGKILL if it lingers.
            let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(3) {
                if let Ok(Some(_)) = server.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Result<Scratch> {
        let path = std::env::temp_dir().join(format!("dermdesk-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Wraps `inner` in `dbus-run-session` with an unlocked GNOME Keyring.
fn with_keyring(inner: &Command) -> Command {
    let mut command = Command::new("dbus-run-session");
    command.args([
        "--",
        "sh",
        "-c",
        // The keyring is created on first unlock with this (throwaway, headless) password.
        "echo -n dermdesk-headless | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec \"$@\"",
        "sh",
    ]);
    command.arg(inner.get_program()).args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command
}

fn headless_env(command: &mut Command, display: &Display, data_home: &Path) {
    command
        .env("DISPLAY", &display.name)
        .env("XDG_DATA_HOME", data_home)
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        // No GPU under Xvfb: WebKit's software path.
        .env("WEBKIT_DISABLE_DMABUF_RENDERER", "1")
        .env("LIBGL_ALWAYS_SOFTWARE", "1");
}

pub fn run_interactive(app: Command) -> Result {
    if cfg!(target_os = "linux")
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        return Err(
            "no display to open a window on; use `cargo xtask demo --screenshot FILE` on a headless machine"
                .into(),
        );
    }
    let mut command = if cfg!(target_os = "linux") && std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        eprintln!("no D-Bus session: starting one with a GNOME Keyring for the cache key");
        with_keyring(&app)
    } else {
        app
    };
    crate::run(&mut command)
}

/// Opens the app headless, waits until the UI reports the worklist on screen, writes a PNG of
/// the window to `file`.
pub fn screenshot(app: Command, file: &Path, timeout: Duration) -> Result {
    let display = Display::get()?;
    let scratch = Scratch::new("screenshot")?;
    let ready = scratch.0.join("ready");
    let data_home = scratch.0.join("data");
    let mut app = app;
    headless_env(&mut app, &display, &data_home);
    app.env("DERMDESK_READY_FILE", &ready);
    // Demo mode only: gets a headless screenshot past the lock screen (synthetic data).
    app.env("DERMDESK_DEMO_PASSPHRASE", "headless demo passphrase");
    let mut command = with_keyring(&app);
    command.current_dir(root()).stdin(Stdio::null());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn().map_err(|e| format!("starting the app: {e}"))?;
    let started = Instant::now();
    let outcome = loop {
        if ready.exists() {
            // Photos and fonts finish painting.
            std::thread::sleep(Duration::from_secs(2));
            break capture(&display, file);
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Err(format!("the app exited before showing the worklist ({status})"));
        }
        if started.elapsed() > timeout {
            break Err(format!("the worklist was not on screen within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    stop(&mut child);
    outcome?;
    eprintln!("screenshot written to {}", file.display());
    Ok(())
}

fn capture(display: &Display, file: &Path) -> Result {
    // /usr/bin/import: another `import` on the PATH may be a stand-in.
    let import = if Path::new("/usr/bin/import").exists() { "/usr/bin/import" } else { "import" };
    let status = Command::new(import)
        .args(["-display", &display.name, "-window", "root"])
        .arg(file)
        .status()
        .map_err(|e| format!("import (ImageMagick): {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("import failed ({status})"))
    }
}

fn stop(child: &mut Child) {
    #[cfg(unix)]
    {
        let _ = Command::new("kill").args(["-TERM", "--", &format!("-{}", child.id())]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs the end-to-end test command under Xvfb with a real Secret Service, pointing it at the
/// built app.
pub fn end_to_end(command: &mut Command) -> Result {
    let display = Display::get()?;
    let scratch = Scratch::new("e2e")?;
    let data_home = scratch.0.join("data");
    headless_env(command, &display, &data_home);
    // A private cache too: the demo hub and its synthetic photos start from nothing, as on CI.
    command.env("XDG_CACHE_HOME", scratch.0.join("cache"));
    command
        .env("DERMDESK_APP", app_binary())
        .env("DERMDESK_HUB", hub_binary())
        .env("TAURI_WEBVIEW_AUTOMATION", "true");
    crate::run(&mut with_keyring(command))
}

/// One end-to-end test binary (tests/e2e/NAME.rs), built.
struct TestBinary {
    name: String,
    executable: PathBuf,
}

/// One test of an end-to-end test binary: the unit the e2e step schedules (a file's tests run
/// side by side, so a file with two slow tests is not the critical path).
struct E2eTest {
    /// `file` for a file's only test, `file::test` when it has several.
    label: String,
    executable: PathBuf,
    test: String,
}

/// The tests of `binary` (`--list --format terse`: one `name: test` line each).
fn list_tests(binary: &TestBinary) -> Result<Vec<E2eTest>> {
    let output = Command::new(&binary.executable)
        .args(["--list", "--format", "terse"])
        .current_dir(root().join("tests").join("e2e"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: {e}", binary.executable.display()))?;
    if !output.status.success() {
        return Err(format!("listing the tests of {} failed", binary.name));
    }
    let names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect();
    let several = names.len() > 1;
    Ok(names
        .into_iter()
        .map(|test| E2eTest {
            label: if several { format!("{}::{test}", binary.name) } else { binary.name.clone() },
            executable: binary.executable.clone(),
            test,
        })
        .collect())
}

/// End-to-end test files that run only through their own command, not in `cargo xtask e2e`:
/// `install` installs a package into the system (`cargo xtask install-test`).
const OWN_COMMAND: &[&str] = &["install"];

/// Builds the end-to-end test binaries and returns them (`names`, or all but [`OWN_COMMAND`]). The build is the
/// whole workspace's test build (which `cargo xtask test` has made already, so this builds
/// nothing): `-p dermdesk-e2e` would resolve features apart and build the dependencies again.
fn build_e2e(names: &[String]) -> Result<Vec<TestBinary>> {
    let mut command = cargo();
    command.args(["test", "--workspace", "--locked", "--no-run", "--message-format=json-render-diagnostics"]);
    eprintln!("$ {command:?}");
    let output = command.current_dir(root()).stderr(Stdio::inherit()).output().map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err("building the end-to-end tests failed".into());
    }
    let e2e_sources = root().join("tests").join("e2e");
    let mut binaries = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let is_test = message["reason"] == "compiler-artifact"
            && message["target"]["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|k| k == "test"));
        let is_e2e = message["target"]["src_path"]
            .as_str()
            .is_some_and(|source| Path::new(source).starts_with(&e2e_sources));
        if let (true, true, Some(name), Some(executable)) =
            (is_test, is_e2e, message["target"]["name"].as_str(), message["executable"].as_str())
        {
            let wanted = if names.is_empty() {
                !OWN_COMMAND.contains(&name)
            } else {
                names.iter().any(|wanted| wanted == name)
            };
            if wanted {
                binaries.push(TestBinary { name: name.to_owned(), executable: PathBuf::from(executable) });
            }
        }
    }
    Ok(binaries)
}

/// Runs the end-to-end test files `names` (or all of them), each test in a world of its own
/// (its own Xvfb screen and folders; the test starts its own D-Bus session, keyring and hub:
/// tests/e2e/src/lib.rs), `DERMDESK_E2E_JOBS` of them at a time (default 3), the slowest
/// first. Each test's output is kept in `target/e2e/logs/LABEL.log` and printed when it ends.
/// Every test runs at [`E2E_NOW`] unless it sets its own instant.
pub fn end_to_end_all(names: &[String]) -> Result {
    let binaries = build_e2e(names)?;
    if binaries.is_empty() {
        return Err(format!("no end-to-end test called {names:?} (tests/e2e/*.rs)"));
    }
    let mut tests = Vec::new();
    for binary in &binaries {
        tests.extend(list_tests(binary)?);
    }
    // Slowest first, so that the last to finish is a short one.
    const SLOW_FIRST: &[&str] =
        &["orientation", "window", "due_dates", "security", "connect", "worklist", "quality"];
    let file = |label: &str| label.split("::").next().unwrap_or(label).to_owned();
    let rank =
        |label: &str| SLOW_FIRST.iter().position(|slow| *slow == file(label)).unwrap_or(SLOW_FIRST.len());
    tests.sort_by_key(|test| rank(&test.label));
    // Three on two cores: the tests mostly wait on the window (WebKitWebDriver's screenshots
    // stall for seconds with the machine idle). Measured warm, with the quick checks beside
    // them: 280 s of e2e wall at two, 225 s at three (each test about a third slower).
    let jobs =
        std::env::var("DERMDESK_E2E_JOBS").ok().and_then(|n| n.parse::<usize>().ok()).unwrap_or(3).max(1);
    let scratch = Scratch::new("e2e")?;
    let logs = root().join("target").join("e2e").join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let queue = std::sync::Mutex::new(tests.into_iter());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next();
                let Some(test) = next else { break };
                let started = Instant::now();
                let outcome = run_one(&test, &scratch.0, &logs, &[]);
                let took = started.elapsed();
                let log = std::fs::read_to_string(logs.join(log_name(&test))).unwrap_or_default();
                eprintln!(
                    "---- e2e {} ({:.0} s): {}\n{log}",
                    test.label,
                    took.as_secs_f64(),
                    if outcome.is_ok() { "ok" } else { "FAILED" }
                );
                results
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((test.label, took, outcome));
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut failed = Vec::new();
    eprintln!("\n| e2e | seconds | result |\n|---|---:|---|");
    for (name, took, outcome) in &results {
        eprintln!(
            "| {name} | {:.0} | {} |",
            took.as_secs_f64(),
            if outcome.is_ok() { "ok" } else { "FAILED" }
        );
        if outcome.is_err() {
            failed.push(name.clone());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("end-to-end tests failed: {}", failed.join(", ")))
    }
}

impl E2eTest {
    /// The label made file-name safe: the test's log and scratch folder are named after it.
    fn file_stem(&self) -> String {
        self.label.replace("::", "--")
    }
}

/// `target/e2e/logs/LABEL.log`.
fn log_name(test: &E2eTest) -> String {
    format!("{}.log", test.file_stem())
}

/// Runs one end-to-end test in a world of its own; `env` is set after (or, `None`, removes)
/// the usual variables.
fn run_one(test: &E2eTest, scratch: &Path, logs: &Path, env: &[(&str, Option<&OsStr>)]) -> Result {
    let display = Display::new_xvfb()?;
    let world = scratch.join(test.file_stem());
    let mut command = Command::new(&test.executable);
    command.args(["--exact", &test.test, "--test-threads=1", "--nocapture"]);
    headless_env(&mut command, &display, &world.join("data"));
    command
        .env("XDG_CACHE_HOME", world.join("cache"))
        // Rendered once, shared by every test (content-addressed; files appear by rename).
        .env("DERMDESK_DEMO_PHOTO_CACHE", scratch.join("demo-photos"))
        .env("DERMDESK_NOW", std::env::var("DERMDESK_NOW").unwrap_or_else(|_| E2E_NOW.to_owned()))
        .env("DERMDESK_APP", app_binary())
        .env("DERMDESK_HUB", hub_binary())
        .env("TAURI_WEBVIEW_AUTOMATION", "true")
        .current_dir(root().join("tests").join("e2e"));
    for (key, value) in env {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    let log = std::fs::File::create(logs.join(log_name(test))).map_err(|e| e.to_string())?;
    command.stdout(log.try_clone().map_err(|e| e.to_string())?).stderr(log).stdin(Stdio::null());
    let status = command.status().map_err(|e| format!("{}: {e}", test.executable.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed ({status})", test.label))
    }
}

/// What `cargo xtask install-test` built for tests/e2e/install.rs.
pub struct InstallTestInputs {
    pub deb: PathBuf,
    pub rpm: PathBuf,
    /// The same app at the next version, built with the same throwaway release key.
    pub next_deb: PathBuf,
    pub next_version: String,
    /// That key's secret half (Tauri's base64 form, unencrypted): the test signs with it.
    pub update_key: PathBuf,
}

/// tests/e2e/install.rs on the bundles: it installs the `.deb` into this system, so the app it
/// drives is the installed `/usr/bin/dermdesk`, and lets that app update itself to the next
/// version's `.deb`. The hub it starts runs on the real clock (no `DERMDESK_NOW`): the
/// installed product reads no fixed instant, and the two must agree. Its logs are
/// `target/e2e/logs/install*.log`, its figures `target/e2e/install.json`.
pub fn installed_end_to_end(inputs: &InstallTestInputs) -> Result {
    let binaries = build_e2e(&["install".to_owned()])?;
    let binary = binaries.first().ok_or("no end-to-end test called install (tests/e2e/install.rs)")?;
    let tests = list_tests(binary)?;
    let scratch = Scratch::new("install")?;
    let logs = root().join("target").join("e2e").join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    for test in &tests {
        let started = Instant::now();
        let outcome = run_one(
            test,
            &scratch.0,
            &logs,
            &[
                ("DERMDESK_DEB", Some(inputs.deb.as_os_str())),
                ("DERMDESK_RPM", Some(inputs.rpm.as_os_str())),
                ("DERMDESK_NEXT_DEB", Some(inputs.next_deb.as_os_str())),
                ("DERMDESK_NEXT_VERSION", Some(OsStr::new(&inputs.next_version))),
                ("DERMDESK_UPDATE_KEY", Some(inputs.update_key.as_os_str())),
                ("DERMDESK_APP", Some(OsStr::new(INSTALLED_APP))),
                ("DERMDESK_NOW", None),
            ],
        );
        let log = std::fs::read_to_string(logs.join(log_name(test))).unwrap_or_default();
        eprintln!(
            "---- e2e {} ({:.0} s): {}\n{log}",
            test.label,
            started.elapsed().as_secs_f64(),
            if outcome.is_ok() { "ok" } else { "FAILED" }
        );
        outcome?;
    }
    Ok(())
}

/// Where the `.deb` puts the app (the bundler: `/usr/bin/<main binary>`).
const INSTALLED_APP: &str = "/usr/bin/dermdesk";
