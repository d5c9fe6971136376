//! `cargo xtask security [--long]`: the hostile-input and hardening checks with their figures.
//!
//! Runs, each as its own step (a failing step does not hide the others' figures):
//! - fuzz quick mode (crates/dermdesk-core/tests/fuzz.rs; `--long`: 50,000 inputs per kind),
//! - hostile service answers (crates/dermdesk-core/tests/hostile_hub.rs),
//! - hub upload validation (crates/dermdesk-hub/tests/hub/photos.rs),
//! - photo bombs, hostile photos through a sync, service names on disk, config lint, TRACE log
//!   scan (tests/hostile),
//! - `cargo deny --offline check advisories bans licenses sources` (if cargo-deny is installed;
//!   advisories from an offline RustSec copy, see advisories.rs),
//! - the real-window canary and XSS tests, if tests/e2e has a `security` test target, under
//!   the same headless session as `cargo xtask e2e`.
//!
//! Every test writes its own figures to `target/security/*.json` (the e2e writes canary.json
//! and xss.json); this command clears them first, so a figure only ever comes from this run,
//! then prints the table and writes `target/security/report.json`. A figure whose file is
//! absent is "not run", never 0.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::{cargo, root, run, session, Result};

/// The cargo-deny version CI installs (`cargo install --locked`, ~3 min on 2 cores).
pub const CARGO_DENY_VERSION: &str = "0.20.2";

fn security_dir() -> PathBuf {
    root().join("target").join("security")
}

/// Figures files this command reads, and the tests that write them.
const FIGURE_FILES: &[&str] = &[
    "fuzz.json",
    "hostile_hub.json",
    "bombs.json",
    "log_scan.json",
    "config_lint.json",
    "file_names.json",
    "canary.json",
    "xss.json",
];

pub fn security(args: &[String]) -> Result {
    let mut long = false;
    for arg in args {
        match arg.as_str() {
            "--long" => long = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    let started = Instant::now();
    let dir = security_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for file in FIGURE_FILES.iter().chain(["report.json"].iter()) {
        let _ = std::fs::remove_file(dir.join(file));
    }

    let mut steps: Vec<(&str, String)> = Vec::new();
    let mut step = |name: &'static str, result: Result| {
        let outcome = match result {
            Ok(()) => "passed".to_owned(),
            Err(error) => format!("FAILED: {error}"),
        };
        steps.push((name, outcome));
    };

    let mut fuzz = cargo();
    fuzz.args(["test", "-p", "dermdesk-core", "--locked", "--test", "fuzz", "--test", "hostile_hub"]);
    fuzz.env("DERMDESK_SECURITY_DIR", &dir);
    if long {
        fuzz.env("DERMDESK_FUZZ_CASES", "50000");
    }
    step("fuzz + hostile service answers", run(&mut fuzz));
    step(
        "hub upload validation",
        run(cargo().args(["test", "-p", "dermdesk-hub", "--locked", "--test", "hub", "photos::"])),
    );
    step(
        "photo bombs, sync, file names, config lint, log scan",
        run(cargo()
            .args(["test", "-p", "dermdesk-integration", "--locked", "--test", "hostile"])
            .env("DERMDESK_SECURITY_DIR", &dir)),
    );
    let deny = deny_check();
    let deny_figure = match &deny {
        Ok(()) => "ok".to_owned(),
        Err(error) if error.starts_with("not installed") => "not run".to_owned(),
        Err(_) => "failed".to_owned(),
    };
    step("cargo deny (advisories, licences, bans, sources)", deny);
    if e2e_security_target_exists() {
        let e2e = crate::vendor::ensure()
            .and_then(|()| {
                run(cargo().args(["build", "-p", "dermdesk", "-p", "dermdesk-hub", "--bins", "--locked"]))
            })
            .and_then(|()| {
                session::end_to_end(
                    cargo()
                        .args([
                            "test",
                            "-p",
                            "dermdesk-e2e",
                            "--locked",
                            "--test",
                            "security",
                            "--",
                            "--test-threads=1",
                        ])
                        .env("DERMDESK_SECURITY_DIR", &dir),
                )
            });
        step("real-window canary + XSS (e2e)", e2e);
    } else {
        steps.push(("real-window canary + XSS (e2e)", "not run: tests/e2e has no `security` test".into()));
    }

    let report = report(&dir, &deny_figure);
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("report.json"), text).map_err(|e| format!("report.json: {e}"))?;
    print_table(&steps, &report);
    eprintln!("xtask security: {:.0?}; figures in {}", started.elapsed(), dir.join("report.json").display());

    let failed: Vec<_> = steps.iter().filter(|(_, outcome)| outcome.starts_with("FAILED")).collect();
    let hits = ["canary_hits", "log_secret_hits", "fuzz_panics", "xss_executed", "config_problems"]
        .iter()
        .filter(|key| report[**key].as_u64().is_some_and(|n| n > 0))
        .count();
    if !failed.is_empty() || hits > 0 {
        return Err(format!("{} step(s) failed, {hits} figure(s) not zero", failed.len()));
    }
    Ok(())
}

fn read(dir: &Path, file: &str) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join(file)).ok()?;
    serde_json::from_str(&text).ok()
}

/// `file`'s `key`, or "not run" when the file is absent.
fn figure(dir: &Path, file: &str, key: &str) -> Value {
    match read(dir, file) {
        Some(value) => value.get(key).cloned().unwrap_or_else(|| json!(format!("missing from {file}"))),
        None => json!("not run"),
    }
}

fn report(dir: &Path, deny: &str) -> Value {
    let mut report = Map::new();
    for (key, file, field) in [
        ("canary_hits", "canary.json", "canary_hits"),
        ("canary_files_scanned", "canary.json", "files_scanned"),
        ("log_secret_hits", "log_scan.json", "log_secret_hits"),
        ("log_lines_scanned", "log_scan.json", "log_lines"),
        ("fuzz_execs", "fuzz.json", "fuzz_execs"),
        ("fuzz_decoder_runs", "fuzz.json", "fuzz_decoder_runs"),
        ("fuzz_panics", "fuzz.json", "fuzz_panics"),
        ("bombs_rejected", "bombs.json", "bombs_rejected"),
        ("bombs_total", "bombs.json", "bombs_total"),
        ("bombs_max_peak_growth_kb", "bombs.json", "max_peak_growth_kb"),
        ("bombs_max_millis", "bombs.json", "max_millis"),
        ("fuzzed_photos_total", "bombs.json", "fuzzed_and_odd_total"),
        ("hostile_responses_refused", "hostile_hub.json", "hostile_responses_refused"),
        ("hostile_responses_total", "hostile_hub.json", "hostile_responses_total"),
        ("xss_executed", "xss.json", "xss_executed"),
        ("xss_payloads", "xss.json", "payloads"),
        ("config_problems", "config_lint.json", "config_problems"),
        ("service_names_on_disk", "file_names.json", "service_names_on_disk"),
    ] {
        report.insert(key.into(), figure(dir, file, field));
    }
    report.insert("cargo_deny".into(), json!(deny));
    // Advisories are part of the same `cargo deny` run now (offline RustSec copy, advisories.rs).
    report.insert("cargo_deny_advisories".into(), json!(deny));
    Value::Object(report)
}

fn print_table(steps: &[(&str, String)], report: &Value) {
    eprintln!();
    eprintln!("{:<55} result", "step");
    for (name, outcome) in steps {
        eprintln!("{name:<55} {}", outcome.lines().next().unwrap_or(""));
    }
    eprintln!();
    eprintln!("{:<30} value", "figure");
    for (key, value) in report.as_object().into_iter().flatten() {
        let shown = match value {
            Value::String(text) => text.clone(),
            Value::Number(number) if number.is_f64() => format!("{:.1}", number.as_f64().unwrap_or(0.0)),
            other => other.to_string(),
        };
        eprintln!("{key:<30} {shown}");
    }
}

fn e2e_security_target_exists() -> bool {
    std::fs::read_to_string(root().join("tests").join("e2e").join("Cargo.toml"))
        .map(|manifest| manifest.contains("name = \"security\""))
        .unwrap_or(false)
}

fn cargo_deny_installed() -> bool {
    cargo().args(["deny", "--version"]).output().is_ok_and(|output| output.status.success())
}

/// cargo-deny, built where it is missing (`cargo install --locked`, ~2-3 min on 2 cores).
pub fn ensure_cargo_deny() -> Result {
    if cargo_deny_installed() {
        return Ok(());
    }
    // A tool, not ours to lint (`cargo xtask test` lints the workspace while building it).
    run(cargo()
        .args(["install", "--locked", "cargo-deny", "--version", CARGO_DENY_VERSION])
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS"))
}

/// `cargo deny --offline check` (advisories from the offline RustSec copy, bans, licences,
/// sources) against deny.toml, if cargo-deny is installed (`advisories.rs`).
pub fn deny_check() -> Result {
    if !cargo_deny_installed() {
        return Err(format!(
            "not installed (cargo install --locked cargo-deny --version {CARGO_DENY_VERSION})"
        ));
    }
    crate::advisories::check_workspace()
}
