//! The reference window is built with the workspace (`cargo test --no-run`), so
//! `cargo xtask bench startup` finds it where the app is.

#[test]
fn the_empty_window_binary_is_built() {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_empty-tauri"));
    assert!(binary.is_file(), "{} is missing", binary.display());
}
