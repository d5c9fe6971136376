//! `cargo xtask bench sync|images|worklist [options]`: builds the benchmarks optimised and runs
//! them. Results go to `target/bench/<name>.json` (in the workspace, whatever CARGO_TARGET_DIR
//! says, so the path is always the same) and into the matching results section of
//! docs/PERFORMANCE.md. Options are passed on to `dermdesk-bench` (`--repetitions N`; for sync
//! also `--photos N`, `--referrals N`, `--concurrency N`; for worklist `--referrals N`,
//! `--iterations N`); `--no-doc` leaves the document alone. `images` first installs its
//! reference tools (libvips-tools, libjpeg-turbo-progs) where missing, and ends with P8 in the
//! real window (`images-window` runs only that step): the app, four 24 MP photos 4-up under
//! Xvfb, its process tree's memory from /proc (`tests/e2e/src/bin/compare4-window.rs`).

use crate::{cargo, packages, root, run, session, vendor, Result};

pub fn bench(args: &[String]) -> Result {
    match args.first().map(String::as_str) {
        Some("sync") => run_bench("sync", &args[1..]),
        Some("images") => {
            packages::ensure_bench_references()?;
            run_bench("images", &args[1..])?;
            images_window(&args[1..])
        }
        Some("images-window") => images_window(&args[1..]),
        Some("worklist") => run_bench("worklist", &args[1..]),
        _ => Err("usage: cargo xtask bench sync [--repetitions N] [--photos N] [--referrals N] \
                  [--concurrency N] [--no-doc]\n       \
                  cargo xtask bench images [--repetitions N] [--no-doc]\n       \
                  cargo xtask bench images-window [--no-doc]\n       \
                  cargo xtask bench worklist [--repetitions N] [--iterations N] [--referrals N] [--no-doc]"
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

/// P8 in the real window: builds the app, the hub and the measuring client (debug, as the
/// end-to-end tests do) and runs the client in the headless session; it merges its figures
/// into `target/bench/images.json` and, unless `--no-doc`, its section of docs/PERFORMANCE.md.
fn images_window(args: &[String]) -> Result {
    packages::ensure(packages::Purpose::Test)?;
    vendor::ensure()?;
    run(cargo().args(["build", "-p", "dermdesk", "-p", "dermdesk-hub", "--bins"]))?;
    run(cargo().args(["build", "-p", "dermdesk-e2e", "--bin", "compare4-window"]))?;
    let mut command = cargo();
    command.args(["run", "--quiet", "-p", "dermdesk-e2e", "--bin", "compare4-window", "--", "--out"]);
    command.arg(root().join("target").join("bench"));
    if !args.iter().any(|arg| arg == "--no-doc") {
        command.arg("--doc").arg(root().join("docs").join("PERFORMANCE.md"));
    }
    session::end_to_end(&mut command)
}
