//! Project commands, in Rust so they run the same everywhere (`cargo xtask <command>`):
//!
//! - `demo [--screenshot FILE]`: install what is missing, build, open Derm Desk on the embedded
//!   demo; with `--screenshot`, headless: wait for the worklist, write a PNG, exit.
//! - `test`: everything CI runs: fmt check, clippy -D warnings, cargo deny (licences, bans,
//!   sources; offline), all tests (the fuzz quick mode and hostile-input tests among them), the
//!   fault harness at CI size (`faults --quick`), the end-to-end tests in the real window.
//! - `bench sync`: sync benchmarks against plain references, optimised build; results in
//!   `target/bench/sync.json` and docs/PERFORMANCE.md.
//! - `bench images`: the photo viewer's pyramid, thumbnail, first view and 4-up memory against
//!   `vips` and `djpeg`; results in `target/bench/images.json` and docs/PERFORMANCE.md.
//! - `bench worklist`: the worklist query at 100,000 cached referrals against plain SQLite;
//!   results in `target/bench/worklist.json` and docs/PERFORMANCE.md.
//! - `faults [--quick] [--trials N] [--seed N]`: the fault harness (kill -9 trials, network
//!   faults, disk full); figures in `target/faults/report.json`, see docs/RELIABILITY.md.
//! - `verify FILE [--hub-key KEY] [--key-id ID]`: checks a signed outcome exported by Derm Desk
//!   (its signature and, with the service's key, its receipt); see docs/VERIFY.md.
//! - `security [--long]`: fuzzing, hostile service answers, photo bombs, config lint, log scan,
//!   cargo deny and (when present) the real-window canary/XSS tests; figures in
//!   `target/security/report.json`, see docs/SECURITY.md.
//! - `icons`: the icon set in `icons/` from `icons/source.png` (xtask/icons).
//! - `bundle [--debug]`: the product build (no demo) and its `.deb` and `.rpm` (`bundle.rs`).
//! - `install-test [--release]`: installs that `.deb` with dpkg, drives the installed app
//!   through a real sync and signing, removes it (tests/e2e/install.rs).
//! - `update-key FILE`, `sign-update --package FILE --version V --base-url URL --out DIR`:
//!   a minisign key pair in Tauri's format, and a signed installer with the service's
//!   `latest.json` (`updates.rs`; the release key's secret half is the hosted CI secret).

mod advisories;
mod bench;
mod bundle;
mod faults;
#[cfg(test)]
mod hazard_log;
mod packages;
mod security;
mod session;
mod updates;
mod vendor;
mod verify;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("bench") => bench::bench(&args[1..]),
        Some("faults") => faults::faults(&args[1..]),
        Some("verify") => verify::verify(&args[1..]),
        Some("security") => security::security(&args[1..]),
        // Rarely run (after the source image changes), so built on its own.
        Some("icons") => run(cargo()
            .args(["run", "--quiet", "--locked", "--package", "dermdesk-icons", "--"])
            .args(&args[1..])),
        Some("bundle") => bundle::bundle(&args[1..]),
        Some("install-test") => bundle::install_test(&args[1..]),
        Some("update-key") => updates::update_key(&args[1..]),
        Some("sign-update") => updates::sign_update(&args[1..]),
        // What `test` runs beside the real-window tests (see test_steps).
        Some("quick-checks") => quick_checks(),
        // Only the real-window tests (the last step of `test`), for quick iteration:
        // `cargo xtask e2e [--test NAME]...` runs those files (tests/e2e/NAME.rs), or all.
        Some("e2e") => vendor::ensure().and_then(|()| build_workspace()).and_then(|()| {
            let names: Vec<String> = args[1..].iter().filter(|arg| *arg != "--test").cloned().collect();
            session::end_to_end_all(&names)
        }),
        _ => {
            eprintln!(
                "usage: cargo xtask demo [--screenshot FILE] [--small] | cargo xtask test | cargo xtask e2e [--test NAME] \
                 | cargo xtask bench sync|images|worklist | cargo xtask faults [--quick] [--trials N] [--seed N] \
                 | cargo xtask verify FILE [--hub-key KEY] [--key-id ID] | cargo xtask security [--long] \
                 | cargo xtask icons | cargo xtask bundle [--debug] | cargo xtask install-test [--release] \
                 | cargo xtask update-key FILE | cargo xtask sign-update --package FILE --version V --base-url URL --out DIR"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error}");
            ExitCode::FAILURE
        }
    }
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_path_buf()
}

pub fn run(command: &mut Command) -> Result {
    let shown = format!("{command:?}");
    eprintln!("$ {shown}");
    let status = command.current_dir(root()).status().map_err(|e| format!("{shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

/// Builds everything the later steps run, in one cargo command with the feature resolution of
/// `cargo test --workspace` (so that step builds nothing again): every test target, the
/// examples, and every binary a later step runs, which cargo builds because its package has an
/// integration test (the app: tests/launch.rs; the fault harness and the benchmarks: their
/// tests/cli.rs). Every command that needs a binary of the workspace builds through this and
/// runs the file from [`build_dir`]: a `cargo build -p NAME` or `cargo run -p NAME` resolves
/// features for NAME alone and so built image, tokio and SQLCipher again (about 5 minutes of a
/// clean CI run on 2 cores). Measured: a second command (`cargo build --workspace --bins`)
/// built 194 crates again in 139 s, and `cargo build --workspace --tests` instead of `cargo
/// test --no-run` gives the hub and everything above it a second build.
pub fn build_workspace() -> Result {
    run(cargo().args(["test", "--workspace", "--no-run", "--locked"]))
}

/// A binary of the workspace as [`build_workspace`] built it.
pub fn workspace_binary(name: &str) -> PathBuf {
    build_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn app_binary() -> PathBuf {
    workspace_binary("dermdesk")
}

/// Where cargo builds: CARGO_TARGET_DIR if set (relative to the workspace), else target/.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), |dir| root().join(dir))
}

/// Where cargo puts debug builds.
fn build_dir() -> PathBuf {
    target_dir().join("debug")
}

/// The reference hub as its own process (the end-to-end tests stop and restart it).
fn hub_binary() -> PathBuf {
    workspace_binary("dermdesk-hub")
}

fn demo(args: &[String]) -> Result {
    let mut screenshot = None;
    let mut small = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--screenshot" => screenshot = Some(rest.next().ok_or("--screenshot needs a FILE")?.clone()),
            "--small" => small = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    packages::ensure(packages::Purpose::Demo)?;
    vendor::ensure()?;
    run(cargo().args(["build", "--bin", "dermdesk"]))?;
    let mut app = Command::new(app_binary());
    app.arg("--demo");
    if small {
        app.env("DERMDESK_DEMO_SCALE", "small");
    }
    match screenshot {
        None => session::run_interactive(app),
        Some(file) => {
            let file = std::env::current_dir().map_err(|e| e.to_string())?.join(file);
            session::screenshot(app, &file, Duration::from_secs(600))
        }
    }
}

fn test(args: &[String]) -> Result {
    if let Some(extra) = args.first() {
        return Err(format!("unknown option {extra}"));
    }
    // Clippy (-D warnings) lints the workspace's crates while they are built for the tests,
    // instead of in a check build of its own: one build of every dependency instead of two
    // (the second was about 5 minutes of a clean CI run on 2 cores). Every cargo command below
    // inherits it, so no step rebuilds what another built.
    lint_while_building()?;
    let mut steps = Steps::default();
    let outcome = test_steps(&mut steps);
    steps.print();
    outcome
}

/// Makes every cargo build of this process's children run clippy-driver (with `-D warnings`) on
/// the workspace's own crates, as `cargo clippy` does, but with code generation: the lints of
/// `cargo clippy --workspace --all-targets -- -D warnings` (every target is built by some step
/// of `test`: tests and examples by `cargo test`, binaries by the app and bench builds).
fn lint_while_building() -> Result {
    let sysroot =
        Command::new("rustc").args(["--print", "sysroot"]).output().map_err(|e| format!("rustc: {e}"))?;
    let driver = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim())
        .join("bin")
        .join(if cfg!(windows) { "clippy-driver.exe" } else { "clippy-driver" });
    if !driver.is_file() {
        return Err(format!("{} not found: install clippy (rustup component add clippy)", driver.display()));
    }
    // Set before any thread starts; the children inherit it.
    std::env::set_var("RUSTC_WORKSPACE_WRAPPER", &driver);
    std::env::set_var("CLIPPY_ARGS", "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__");
    Ok(())
}

/// Everything CI runs, in order, each step timed (the table is printed at the end, pass or fail).
fn test_steps(steps: &mut Steps) -> Result {
    // The system packages (apt: mostly download and unpack) and the crates plus cargo-deny
    // (cargo: mostly compiling) at the same time: on a fresh machine both are minutes.
    steps.run("system packages, crates and cargo-deny (in parallel)", || {
        let packages = std::thread::spawn(|| packages::ensure(packages::Purpose::Test));
        let crates = run(cargo().args(["fetch", "--locked"])).and_then(|()| security::ensure_cargo_deny());
        let packages = packages.join().map_err(|_| "installing the system packages panicked".to_owned())?;
        packages.and(crates)
    })?;
    steps.run("UI libraries (npm ci)", vendor::ensure)?;
    steps.run("cargo fmt --check", || run(cargo().args(["fmt", "--all", "--check"])))?;
    // Advisories (RustSec, offline copy), licences, duplicate crates, sources; and the canary.
    steps.run("cargo deny", advisories::check_workspace)?;
    // Everything built once; no later step builds again (see build_workspace).
    steps.run("build the workspace (tests, binaries, examples)", build_workspace)?;
    // The real-window tests skip themselves here (no DERMDESK_APP); they run below.
    steps.run("cargo test --workspace", || run(cargo().args(["test", "--workspace", "--locked"])))?;
    // The date-sensitive unit tests again at instants where working days are easy to get wrong
    // (each test that does not choose its own instant takes it from DERMDESK_NOW:
    // clock::test_instant). The real-window due dates test runs at the same instants.
    steps.run("date-sensitive tests at awkward instants", || {
        for (what, instant) in AWKWARD_INSTANTS {
            eprintln!("date-sensitive tests at {instant} ({what})");
            // `--workspace` (every crate's unit tests), not `-p dermdesk-core`: the same feature
            // resolution as the test build, so nothing is built again (-p cost 4 minutes clean).
            // The filters pick the modules whose tests read "now"; the rest (key derivation,
            // SQLCipher, the sync engine against a hub) ran once above and cost 40 s a pass.
            run(cargo()
                .args(["test", "--workspace", "--lib", "--locked", "--quiet", "--"])
                .args(DATE_SENSITIVE_TESTS)
                .env("DERMDESK_NOW", instant))?;
        }
        Ok(())
    })?;
    // The UI's pure modules (dates, NHS numbers) under Node's own test runner, where Node exists.
    steps.run("UI unit tests (node --test)", || {
        if Command::new("node").arg("--version").output().is_ok() {
            run(Command::new("node").args(["--test", "tests/ui/"]))
        } else {
            eprintln!("node not found: skipping the UI's unit tests (tests/ui)");
            Ok(())
        }
    })?;
    // The fault harness and every benchmark at quick sizes run beside the real-window tests,
    // which spend most of their time waiting on the window (measured: the machine 2–30 % busy
    // during them), as a child `cargo xtask quick-checks` whose output is kept in a file and
    // printed after. Neither judges a time (quick benchmarks print no verdict), so sharing the
    // cores changes no result; it saved about 2 minutes of the step times' sum.
    let log_path = root().join("target").join("quick-checks.log");
    let log = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut quick = Command::new(exe)
        .arg("quick-checks")
        .current_dir(root())
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting the quick checks: {e}"))?;
    // Timed to the child's own end, not to the e2e step's.
    let waiter = std::thread::spawn(move || (quick.wait(), started.elapsed()));
    let e2e = steps.run("real-window e2e (faults and benchmarks beside it)", || session::end_to_end_all(&[]));
    let (status, took) = waiter.join().map_err(|_| "waiting for the quick checks panicked".to_owned())?;
    let status = status.map_err(|e| format!("the quick checks: {e}"))?;
    eprintln!("\n== faults --quick and benchmarks --quick (beside the e2e tests)");
    eprintln!("{}", std::fs::read_to_string(&log_path).unwrap_or_default());
    steps.record("faults --quick, then benchmarks --quick", took, status.success());
    e2e?;
    if !status.success() {
        return Err(format!("the fault harness or a benchmark failed ({status}): see above"));
    }
    // Last: the product build and the bundles share nothing with the builds above (features
    // differ down to syn's), and it installs packages into this system.
    steps.run("install, update and remove the bundles (bundle.rs, tests/e2e/install.rs)", || {
        if bundle::is_root() {
            bundle::install_test(&[])
        } else {
            eprintln!("not root: skipping the install test (it runs dpkg -i; CI runs it as root)");
            Ok(())
        }
    })
}

/// The fault harness at CI size (60 kills, network faults, disk full when root), then every
/// benchmark once at small sizes with no thresholds (a broken benchmark fails CI); each timed.
fn quick_checks() -> Result {
    let mut steps = Steps::default();
    let outcome = steps
        .run("faults --quick", || faults::faults(&["--quick".to_owned()]))
        .and_then(|()| steps.run("benchmarks --quick", bench::quick_all));
    steps.print();
    outcome
}

/// Test-name filters of the unit tests whose result can depend on "now": due dates and working
/// days, the worklist's urgency and views, the governance rules on a referral's age, the clock.
const DATE_SENSITIVE_TESTS: &[&str] = &["deadline::", "views::", "worklist::", "governance::", "clock::"];

/// Instants the date-sensitive tests run at besides the default one (London time; the
/// real-window due dates test, tests/e2e/due_dates.rs, uses the same list).
const AWKWARD_INSTANTS: &[(&str, &str)] = &[
    ("a Friday, 16:59", "2026-12-04T16:59:00Z"),
    ("a Friday, 17:01", "2026-12-04T17:01:00Z"),
    ("the Monday after the New Year bank holiday", "2027-01-04T09:00:00Z"),
    ("the day the clocks go forward", "2026-03-29T12:00:00+01:00"),
    ("the day the clocks go back", "2026-10-25T16:30:00Z"),
    ("Christmas Eve, 16:45", "2026-12-24T16:45:00Z"),
];

/// Named, timed steps of a command, printed as a table: those run one after another (their
/// times add up to the total), then those that ran beside them.
#[derive(Default)]
pub struct Steps(Vec<(&'static str, Duration, bool)>, Vec<(&'static str, Duration, bool)>);

impl Steps {
    pub fn run(&mut self, name: &'static str, step: impl FnOnce() -> Result) -> Result {
        eprintln!("== {name}");
        let started = Instant::now();
        let result = step();
        self.0.push((name, started.elapsed(), result.is_ok()));
        result
    }

    /// A step that ran elsewhere (a child process), timed by the caller. It adds no time to
    /// the total: it ran while other steps did.
    pub fn record(&mut self, name: &'static str, took: Duration, ok: bool) {
        self.1.push((name, took, ok));
    }

    pub fn print(&self) {
        let total: Duration = self.0.iter().map(|(_, took, _)| *took).sum();
        eprintln!("\n| step | seconds | result |\n|---|---:|---|");
        for (name, took, ok) in &self.0 {
            eprintln!("| {name} | {:.0} | {} |", took.as_secs_f64(), if *ok { "ok" } else { "FAILED" });
        }
        eprintln!("| total | {:.0} | |", total.as_secs_f64());
        for (name, took, ok) in &self.1 {
            eprintln!(
                "| beside it: {name} | {:.0} | {} |",
                took.as_secs_f64(),
                if *ok { "ok" } else { "FAILED" }
            );
        }
    }
}
