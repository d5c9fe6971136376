//! The benchmark runner's command line: a wrong call says how to call it and measures nothing.
//! (Every benchmark itself runs in `cargo xtask test`, at small sizes.)

use std::process::Command;

fn bench(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_dermdesk-bench")).args(args).output().unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn no_benchmark_named_prints_the_usage_of_each() {
    let (ok, stderr) = bench(&[]);
    assert!(!ok);
    for name in ["dermdesk-bench sync", "dermdesk-bench images", "dermdesk-bench worklist"] {
        assert!(stderr.contains(name), "{name} missing from:\n{stderr}");
    }
}

#[test]
fn a_size_that_is_not_a_positive_number_names_the_option() {
    let (ok, stderr) = bench(&["sync", "--photos", "0"]);
    assert!(!ok);
    assert!(stderr.contains("--photos: 0 is not a positive number"), "{stderr}");
}
