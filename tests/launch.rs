//! The built app's command line: help and version without a window, and an unknown option
//! refused before anything is opened or created.

use std::path::Path;
use std::process::{Command, Output};

fn dermdesk(args: &[&str], home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dermdesk"))
        .args(args)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        // No display: anything that reached the window would fail, not hang.
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DERMDESK_DEMO")
        .env_remove("DERMDESK_OFFLINE")
        .output()
        .expect("the app starts")
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map(|mut entries| entries.next().is_none()).unwrap_or(true)
}

#[test]
fn help_lists_the_options_without_opening_anything() {
    let home = tempfile::tempdir().unwrap();
    let output = dermdesk(&["--help"], home.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    for option in ["--demo", "--offline", "--version", "--help"] {
        assert!(stdout.contains(option), "{option} missing from:\n{stdout}");
    }
    assert!(is_empty(home.path()), "--help created files");
}

#[test]
fn version_is_the_package_version() {
    let home = tempfile::tempdir().unwrap();
    let output = dermdesk(&["--version"], home.path());
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("Derm Desk {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn an_unknown_option_is_refused_before_anything_is_created() {
    let home = tempfile::tempdir().unwrap();
    let output = dermdesk(&["--demo", "--wipe-everything"], home.path());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(stderr.contains("unknown option --wipe-everything"), "{stderr}");
    assert!(stderr.contains("Nothing was opened or changed"), "{stderr}");
    assert!(is_empty(home.path()), "an unknown option created files");
}
