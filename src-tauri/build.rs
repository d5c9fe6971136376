//! Build script: lets tauri-build read tauri.conf.json and the capabilities at the package root.
fn main() {
    tauri_build::build()
}
