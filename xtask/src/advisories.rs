//! `cargo deny` offline, advisories included: the RustSec advisory database comes from an
//! offline copy (this project's machines cannot reach GitHub), unpacked where cargo-deny looks
//! for it (`db-path` in deny.toml), and its date is printed with the result, because a copy
//! ages. A canary proves the check bites: a scratch manifest with a known-vulnerable crate
//! (smallvec 1.6.0, RUSTSEC-2021-0003) must fail it.
//!
//! Where the copy comes from, first found wins:
//! 1. `DERMDESK_ADVISORY_DB`: a `.tar.gz` of a git clone of github.com/rustsec/advisory-db;
//! 2. `../shared/rustsec/advisory-db.tar.gz` beside the checkout (refreshed on the team's machines);
//! 3. `xtask/advisory-db/advisory-db.tar.gz`, the committed snapshot (so a clean clone on a
//!    fresh machine checks advisories too); see its README for its date and how to refresh it.

use std::path::PathBuf;
use std::process::Command;

use crate::{cargo, root, run, Result};

/// The folder name cargo-deny derives from the default database URL.
const DB_FOLDER: &str = "advisory-db-3157b0e258782691";

/// The canary: a crate version with a published advisory, and that advisory's id.
const CANARY_CRATE: (&str, &str) = ("smallvec", "=1.6.0");
const CANARY_ADVISORY: &str = "RUSTSEC-2021-0003";

/// Where `db-path` in deny.toml points (relative to the workspace).
fn db_root() -> PathBuf {
    root().join("target").join("advisory-dbs")
}

fn sources() -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Some(path) = std::env::var_os("DERMDESK_ADVISORY_DB") {
        found.push(PathBuf::from(path));
    }
    found.push(root().join("..").join("shared").join("rustsec").join("advisory-db.tar.gz"));
    found.push(root().join("xtask").join("advisory-db").join("advisory-db.tar.gz"));
    found
}

/// Unpacks the advisory database afresh; returns where it came from and its date (the commit
/// date of the copy's HEAD, which is what cargo-deny reads too).
pub fn prepare_database() -> Result<(PathBuf, String)> {
    let source = sources()
        .into_iter()
        .find(|path| path.is_file())
        .ok_or("no RustSec advisory database copy found (see xtask/src/advisories.rs)")?;
    let db_root = db_root();
    let _ = std::fs::remove_dir_all(&db_root);
    std::fs::create_dir_all(&db_root).map_err(|e| e.to_string())?;
    run(Command::new("tar").arg("xzf").arg(&source).arg("-C").arg(&db_root))?;
    let unpacked = db_root.join("advisory-db");
    let folder = db_root.join(DB_FOLDER);
    std::fs::rename(&unpacked, &folder)
        .map_err(|e| format!("{} has no advisory-db/ folder at its top ({e})", source.display()))?;
    let date = Command::new("git")
        .arg("-C")
        .arg(&folder)
        .args(["log", "-1", "--format=%cs (commit %h)"])
        .output()
        .map_err(|e| format!("git: {e}"))?;
    if !date.status.success() {
        return Err(format!("{} is not a git clone of the advisory database", source.display()));
    }
    Ok((source, String::from_utf8_lossy(&date.stdout).trim().to_owned()))
}

/// `cargo deny --offline check` (advisories, bans, licences, sources) on the workspace, after
/// `cargo fetch` has brought every platform's crates (cargo-deny reads the whole graph, Windows
/// and macOS included, and a fresh machine has only what its own builds downloaded).
pub fn check_workspace() -> Result {
    run(cargo().args(["fetch", "--locked"]))?;
    let (source, date) = prepare_database()?;
    let result =
        run(cargo().args(["deny", "--offline", "check", "advisories", "bans", "licenses", "sources"]));
    eprintln!(
        "cargo deny: {} with the RustSec advisory database of {date} ({})",
        if result.is_ok() { "passed" } else { "FAILED" },
        source.display()
    );
    result?;
    canary()
}

/// The advisory check must fail on a manifest that depends on a crate with a known advisory.
fn canary() -> Result {
    let dir = root().join("target").join("advisory-canary");
    std::fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
    let (name, version) = CANARY_CRATE;
    let manifest = format!(
        "# Written by `cargo xtask test`: proves `cargo deny check advisories` fails on a known\n\
         # advisory ({CANARY_ADVISORY}).\n\
         [package]\nname = \"advisory-canary\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [dependencies]\n{name} = \"{version}\"\n\n[workspace]\n"
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("src").join("lib.rs"), "").map_err(|e| e.to_string())?;
    let db_path = db_root();
    std::fs::write(
        dir.join("deny.toml"),
        format!("[advisories]\ndb-path = {:?}\nyanked = \"deny\"\n", db_path.display().to_string()),
    )
    .map_err(|e| e.to_string())?;
    let manifest_path = dir.join("Cargo.toml");
    // Resolving and downloading one small crate needs the registry, as `cargo fetch` does.
    run(cargo().arg("fetch").arg("--manifest-path").arg(&manifest_path))?;
    let output = cargo()
        .args(["deny", "--offline", "--manifest-path"])
        .arg(&manifest_path)
        .arg("--config")
        .arg(dir.join("deny.toml"))
        .args(["check", "advisories"])
        .current_dir(&dir)
        .output()
        .map_err(|e| format!("cargo deny: {e}"))?;
    let said = String::from_utf8_lossy(&output.stderr);
    if output.status.success() || !said.contains(CANARY_ADVISORY) {
        return Err(format!(
            "the advisory check did not catch {name} {version} ({CANARY_ADVISORY}); it said:\n{said}"
        ));
    }
    eprintln!("cargo deny: the canary {name} {version} is refused with {CANARY_ADVISORY}, as it must be");
    Ok(())
}
