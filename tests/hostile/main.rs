//! Hostile input against the real app stack (core + hub + SQLCipher, no window): photo bombs
//! through imaging, the photo scheme and the sync; names from the service never reaching the
//! file system; the Tauri configuration linted; the product build free of the demo; every log
//! line at the most verbose level scanned for secrets. Figures go to `target/security/*.json` (`$DERMDESK_SECURITY_DIR`), read
//! by `cargo xtask security`. The service's answers themselves are fuzzed and lied about in
//! crates/dermdesk-core/tests (fuzz.rs, hostile_hub.rs).

// The integration tests' hub and desk fixtures, shared rather than copied.
#[allow(dead_code)]
#[path = "../integration/support.rs"]
mod support;

mod bombs;
mod config_lint;
mod demo_free;
mod file_names;
mod log_scan;

/// Where security figures go: `$DERMDESK_SECURITY_DIR`, else the workspace's target/security.
pub fn security_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("DERMDESK_SECURITY_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/security"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn write_figures(name: &str, report: &serde_json::Value) {
    std::fs::write(security_dir().join(name), serde_json::to_vec_pretty(report).unwrap()).unwrap();
}

/// serde_json's recursion limit is on in the app's own build graph: the Tauri build tools turn
/// on `unbounded_depth` for themselves (cargo_metadata), which must not reach the app.
#[test]
fn serde_json_keeps_its_recursion_limit_in_the_app_build() {
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let error = serde_json::from_str::<serde_json::Value>(&nested).unwrap_err();
    assert!(error.to_string().contains("recursion limit"), "{error}");
}
