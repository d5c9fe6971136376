//! `cargo xtask bench sync|images|worklist|startup [options]`: builds the benchmarks optimised and runs
//! them. Results go to `target/bench/<name>.json` (in the workspace, whatever CARGO_TARGET_DIR
//! says, so the path is always the same) and into the matching results section of
//! docs/PERFORMANCE.md. Options are passed on to `dermdesk-bench` (`--repetitions N`; for sync
//! also `--photos N`, `--referrals N`, `--concurrency N`; for worklist `--referrals N`,
//! `--iterations N`); `--no-doc` leaves the document alone. `images` first installs its
//! reference tools (libvips-tools, libjpeg-turbo-progs) where missing, and ends with P8 in the
//! real window (`images-window` runs only that step): the app, four 24 MP photos 4-up under
//! Xvfb, its process tree's memory from /proc (`tests/e2e/src/bin/compare4-window.rs`).
//!
//! `--quick` (any of them; `cargo xtask test` runs all three so that none can rot): small sizes,
//! one repetition, the development build, results in `target/bench-quick/`, no document, no
//! thresholds.

use std::process::Command;

use crate::{build_workspace, cargo, packages, root, run, session, vendor, workspace_binary, Result};

/// Small sizes, one repetition, the development build, no document, results apart in
/// `target/bench-quick/`: proves each benchmark still runs, measures nothing worth keeping.
fn quick_arguments(name: &str) -> &'static [&'static str] {
    match name {
        "sync" => &["--repetitions", "1", "--photos", "4", "--referrals", "500"],
        "worklist" => &["--repetitions", "1", "--iterations", "2", "--referrals", "2000"],
        _ => &["--repetitions", "1"],
    }
}

/// Every benchmark in its quick mode (what `cargo xtask test` runs, so none can rot): no
/// thresholds, a broken benchmark fails.
pub fn quick_all() -> Result {
    for name in ["sync", "worklist", "images", "startup"] {
        bench(&[name.to_owned(), "--quick".to_owned()])?;
    }
    Ok(())
}

pub fn bench(args: &[String]) -> Result {
    if args.iter().any(|arg| arg == "--quick") {
        let name = args.first().map(String::as_str).unwrap_or_default();
        let rest: Vec<String> = args[1..].iter().filter(|arg| *arg != "--quick").cloned().collect();
        return match name {
            "sync" | "worklist" => run_quick(name, &rest),
            "images" => {
                packages::ensure_bench_references()?;
                run_quick("images", &rest)?;
                images_window(&["--no-doc".to_owned(), "--quick".to_owned()])
            }
            "images-window" => images_window(&["--no-doc".to_owned(), "--quick".to_owned()]),
            "startup" => startup_window(&[rest, vec!["--no-doc".to_owned(), "--quick".to_owned()]].concat()),
            _ => Err(format!("no benchmark called {name:?}")),
        };
    }
    match args.first().map(String::as_str) {
        Some("sync") => run_bench("sync", &args[1..]),
        Some("images") => {
            packages::ensure_bench_references()?;
            run_bench("images", &args[1..])?;
            images_window(&args[1..])
        }
        Some("images-window") => images_window(&args[1..]),
        Some("worklist") => run_bench("worklist", &args[1..]),
        Some("startup") => startup_window(&args[1..]),
        _ => Err("usage: cargo xtask bench sync [--repetitions N] [--photos N] [--referrals N] \
                  [--concurrency N] [--no-doc]\n       \
                  cargo xtask bench images [--repetitions N] [--no-doc]\n       \
                  cargo xtask bench images-window [--no-doc]\n       \
                  cargo xtask bench worklist [--repetitions N] [--iterations N] [--referrals N] [--no-doc]\n       \
                  cargo xtask bench startup [--repetitions N] [--referrals N] [--no-doc]"
            .into()),
    }
}

/// Runs `dermdesk-bench <name>` optimised, writing `target/bench/<name>.json` and, unless
/// `--no-doc`, its section of docs/PERFORMANCE.md.
fn run_bench(name: &str, args: &[String]) -> Result {
    let out = root().join("target").join("bench");
    let mut passed: Vec<String> = Vec::new();
    let mut doc = true;
    for arg in args {
        match arg.as_str() {
            "--no-doc" => doc = false,
            "--out" | "--doc" => return Err(format!("{arg} is set by xtask")),
            _ => passed.push(arg.clone()),
        }
    }
    // Benchmarks of a debug build would measure the compiler's settings, not the code.
    let mut command = cargo();
    command.args(["run", "--release", "--quiet", "--package", "dermdesk-bench", "--", name, "--out"]);
    command.arg(&out);
    if doc {
        command.arg("--doc").arg(root().join("docs").join("PERFORMANCE.md"));
    }
    command.args(&passed);
    run(&mut command)
}

/// A benchmark at [`quick_arguments`] sizes in the development build (which every test build
/// has made already; the hot crates are optimised even there, see Cargo.toml).
fn run_quick(name: &str, args: &[String]) -> Result {
    build_workspace()?;
    let mut command = Command::new(workspace_binary("dermdesk-bench"));
    command.args([name, "--out"]);
    command.arg(root().join("target").join("bench-quick"));
    command.args(quick_arguments(name)).args(args);
    // No verdicts: the quick sizes in a debug build prove the benchmark runs, not the goal.
    command.env("DERMDESK_BENCH_QUICK", "1");
    run(&mut command)
}

/// P8 in the real window: builds the app, the hub and the measuring client (debug, as the
/// end-to-end tests do) and runs the client in the headless session; it merges its figures
/// into `target/bench/images.json` and, unless `--no-doc`, its section of docs/PERFORMANCE.md.
fn images_window(args: &[String]) -> Result {
    packages::ensure(packages::Purpose::Test)?;
    vendor::ensure()?;
    build_workspace()?;
    let quick = args.iter().any(|arg| arg == "--quick");
    let mut command = Command::new(workspace_binary("compare4-window"));
    command.arg("--out");
    command.arg(root().join("target").join(if quick { "bench-quick" } else { "bench" }));
    if quick {
        command.arg("--quick").env("DERMDESK_BENCH_QUICK", "1");
    }
    if !args.iter().any(|arg| arg == "--no-doc") {
        command.arg("--doc").arg(root().join("docs").join("PERFORMANCE.md"));
    }
    session::end_to_end(&mut command)
}

/// `bench startup`: launch to lock screen against an empty Tauri window, and unlock to worklist
/// rows with 10,000 referrals cached, in the real window (`tests/e2e/src/bin/startup-window.rs`;
/// the desk is seeded by `dermdesk-bench startup-seed`, the reference is
/// `tests/bench/empty-tauri`). All three come from the one workspace build, debug as the e2e
/// tests run the app. Writes `target/bench/startup.json` and, unless `--no-doc`, its section of
/// docs/PERFORMANCE.md; `--quick` (500 referrals, one repetition) judges nothing.
fn startup_window(args: &[String]) -> Result {
    packages::ensure(packages::Purpose::Test)?;
    vendor::ensure()?;
    build_workspace()?;
    let quick = args.iter().any(|arg| arg == "--quick");
    let mut command = Command::new(workspace_binary("startup-window"));
    command.arg("--out");
    command.arg(root().join("target").join(if quick { "bench-quick" } else { "bench" }));
    command.args(args.iter().filter(|arg| *arg != "--no-doc"));
    if quick {
        command.env("DERMDESK_BENCH_QUICK", "1");
    } else if !args.iter().any(|arg| arg == "--no-doc") {
        command.arg("--doc").arg(root().join("docs").join("PERFORMANCE.md"));
    }
    command
        .env("DERMDESK_EMPTY_TAURI", workspace_binary("empty-tauri"))
        .env("DERMDESK_BENCH", workspace_binary("dermdesk-bench"));
    session::end_to_end(&mut command)
}
