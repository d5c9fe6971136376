//! `cargo xtask faults [--quick] [--trials N] [--seed N]`: builds the fault harness
//! (`tests/faults`) and runs it: the real client killed at random points against a real hub on
//! loopback, network faults, and a full disk (a tmpfs; needs Linux and root, else skipped).
//!
//! The harness prints the table of figures and writes them to `target/faults/report.json`; the
//! exit status is non-zero if any invariant broke. The default is the full run (240 kills, the
//! figures in docs/RELIABILITY.md); `--quick` (60 kills) is for CI. Other options are passed
//! through (`--keep`, `--no-disk-full`, `--no-network-faults`, `--sabotage KIND`).

use std::process::Command;

use crate::{build_workspace, root, run, workspace_binary, Result};

pub fn faults(args: &[String]) -> Result {
    let target = root().join("target").join("faults");
    // A debug build is enough: hashing, JPEG and SQLCipher are optimised even in dev builds.
    // The harness starts `faults-client` from beside itself.
    build_workspace()?;
    run(Command::new(workspace_binary("dermdesk-faults"))
        .args(args)
        .arg("--report")
        .arg(target.join("report.json"))
        .arg("--photo-cache")
        .arg(target.join("photos")))
}
