//! An empty Tauri window: one page with one heading, no commands, no state, no plugins. The
//! reference of `cargo xtask bench startup` (launch to lock screen is compared with launch to
//! this page), built in the same workspace, profile and lock file as the app.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    if let Err(error) = tauri::Builder::default().run(tauri::generate_context!()) {
        eprintln!("the empty Tauri window could not start: {error}");
        std::process::exit(1);
    }
}
