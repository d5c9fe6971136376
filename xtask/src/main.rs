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

mod bench;
mod faults;
#[cfg(test)]
mod hazard_log;
mod packages;
mod security;
mod session;
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
        // Only the real-window tests (the last step of `test`), for quick iteration.
        Some("e2e") => vendor::ensure()
            .and_then(|()| run(cargo().args(["build", "-p", "dermdesk", "-p", "dermdesk-hub", "--bins"])))
            .and_then(|()| {
                // `cargo xtask e2e [--test NAME]`: one test file (tests/e2e/NAME.rs) or all.
                let mut command = cargo();
                command.args(["test", "-p", "dermdesk-e2e"]);
                command.args(&args[1..]);
                session::end_to_end(command.args(["--", "--test-threads=1", "--nocapture"]))
            }),
        _ => {
            eprintln!(
                "usage: cargo xtask demo [--screenshot FILE] [--small] | cargo xtask test | cargo xtask e2e [--test NAME] \
                 | cargo xtask bench sync|images|worklist | cargo xtask faults [--quick] [--trials N] [--seed N] \
                 | cargo xtask verify FILE [--hub-key KEY] [--key-id ID] | cargo xtask security [--long]"
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

pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn app_binary() -> PathBuf {
    build_dir().join(if cfg!(windows) { "dermdesk.exe" } else { "dermdesk" })
}

/// Where cargo puts debug builds: CARGO_TARGET_DIR if set (relative to the workspace), else target/.
fn build_dir() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), |dir| root().join(dir));
    target.join("debug")
}

/// The reference hub as its own process (the end-to-end tests stop and restart it).
fn hub_binary() -> PathBuf {
    build_dir().join(if cfg!(windows) { "dermdesk-hub.exe" } else { "dermdesk-hub" })
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
    let started = Instant::now();
    packages::ensure(packages::Purpose::Test)?;
    vendor::ensure()?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]))?;
    // Licences, duplicate crates, sources (offline; ~3 min to build cargo-deny the first time).
    security::deny_check(true)?;
    run(cargo().args(["test", "--workspace", "--exclude", "dermdesk-e2e", "--locked"]))?;
    // The UI's pure modules (dates, NHS numbers) under Node's own test runner, where Node exists.
    if Command::new("node").arg("--version").output().is_ok() {
        run(Command::new("node").args(["--test", "tests/ui/"]))?;
    } else {
        eprintln!("node not found: skipping the UI's unit tests (tests/ui)");
    }
    // The fault harness at CI size (60 kills, network faults, disk full when root): ~30 s.
    faults::faults(&["--quick".to_owned()])?;
    run(cargo().args(["build", "-p", "dermdesk", "-p", "dermdesk-hub", "--bins", "--locked"]))?;
    session::end_to_end(cargo().args(["test", "-p", "dermdesk-e2e", "--locked", "--", "--test-threads=1"]))?;
    eprintln!("xtask test: all passed in {:.0?}", started.elapsed());
    Ok(())
}
