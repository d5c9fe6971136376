//! The UI's third-party scripts: installed from npm with the lockfile (`npm ci`) and copied into
//! `ui/vendor/` (not committed), where index.html loads them as plain scripts — no bundler.

use std::path::Path;
use std::process::Command;

use crate::{root, run, Result};

/// (file in node_modules, where it goes under ui/vendor)
const FILES: &[(&str, &str)] =
    &[("openseadragon/build/openseadragon/openseadragon.min.js", "openseadragon/openseadragon.min.js")];

pub fn ensure() -> Result {
    let root = root();
    let modules = root.join("node_modules");
    if FILES.iter().any(|(from, _)| !modules.join(from).is_file()) || lock_is_newer(&root) {
        if Command::new("npm").arg("--version").output().is_err() {
            return Err(
                "npm is needed for the UI's libraries (OpenSeadragon): install Node.js 18+ with npm \
                        (Debian: apt install nodejs npm)"
                    .into(),
            );
        }
        run(Command::new("npm").args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"]))?;
    }
    for (from, to) in FILES {
        let from = modules.join(from);
        let to = root.join("ui").join("vendor").join(to);
        let bytes = std::fs::read(&from).map_err(|e| format!("{}: {e}", from.display()))?;
        // Only when different: the app embeds ui/ at build time and rebuilds when it changes.
        if std::fs::read(&to).ok().as_deref() != Some(&bytes[..]) {
            std::fs::create_dir_all(to.parent().expect("a folder")).map_err(|e| e.to_string())?;
            std::fs::write(&to, &bytes).map_err(|e| format!("{}: {e}", to.display()))?;
        }
    }
    Ok(())
}

/// npm ci leaves `node_modules/.package-lock.json`; an older one means the lockfile changed.
fn lock_is_newer(root: &Path) -> bool {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    match (modified(&root.join("package-lock.json")), modified(&root.join("node_modules/.package-lock.json")))
    {
        (Some(lock), Some(installed)) => lock > installed,
        _ => true,
    }
}
