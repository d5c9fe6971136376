//! The fault harness's command line: a wrong call says how to call it before any hub, client or
//! work folder exists. (The harness itself runs in `cargo xtask test`, `--quick`.)

use std::process::Command;

fn faults(args: &[&str], work: &std::path::Path) -> (bool, String) {
    let output =
        Command::new(env!("CARGO_BIN_EXE_dermdesk-faults")).args(args).current_dir(work).output().unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn an_unknown_option_prints_the_usage_and_starts_nothing() {
    let work = tempfile::tempdir().unwrap();
    let (ok, stderr) = faults(&["--kill-everything"], work.path());
    assert!(!ok);
    assert!(stderr.contains("unknown option --kill-everything"), "{stderr}");
    assert!(stderr.contains("usage: dermdesk-faults"), "{stderr}");
    assert!(std::fs::read_dir(work.path()).unwrap().next().is_none(), "it created files");
}

#[test]
fn a_trial_count_must_be_a_number() {
    let work = tempfile::tempdir().unwrap();
    let (ok, stderr) = faults(&["--trials", "many"], work.path());
    assert!(!ok);
    assert!(stderr.contains("--trials takes a number"), "{stderr}");
}

#[test]
fn the_client_it_kills_is_built_beside_it() {
    // The harness starts `faults-client` from its own folder; a missing one would make every
    // trial fail for a reason that is not a fault.
    let harness = std::path::Path::new(env!("CARGO_BIN_EXE_dermdesk-faults"));
    let client = std::path::Path::new(env!("CARGO_BIN_EXE_faults-client"));
    assert_eq!(harness.parent(), client.parent());
    assert!(client.is_file());
}
