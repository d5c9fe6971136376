//! Tauri's build step: reads tauri.conf.json and embeds ui/.

fn main() {
    tauri_build::build()
}
