//! `cargo xtask bundle [--debug]`: the product app built as `cargo tauri build` builds it, and
//! its Linux installers, a `.deb` and an `.rpm`, made by the Tauri bundler
//! (`xtask/src/bundler.rs`, the `xtask-bundle` binary). `cargo xtask install-test` installs the
//! `.deb` and drives the installed app (tests/e2e/install.rs).
//!
//! The product build is `--no-default-features` (no embedded demo: Cargo.toml's `demo`
//! feature) with `--features tauri/custom-protocol`, as the CLI adds it to `tauri build`. For
//! this app the feature changes little at run time: the frontend is embedded either way (there
//! is no `devUrl`), but without it `tauri::is_dev()` is true, a `devCsp` would replace the CSP,
//! and the build machine's source folder is compiled into the binary (`config_parent`).
//!
//! Made elsewhere, on their own OS (hosted CI), and why:
//! - AppImage: the bundler downloads linuxdeploy and its GTK plugin at bundle time (no such
//!   download here), and it copies the build machine's GTK and WebKit into the image, so it is
//!   built on the oldest distribution it should run on (Ubuntu 22.04).
//! - `.msi` and NSIS: a Windows build of the app (WebView2, the `.ico` compiled into the
//!   `.exe`), WiX and NSIS, which the bundler downloads and runs on Windows.
//! - `.dmg` / `.app`: a macOS build (WebKit.framework), `hdiutil`, and `codesign` to sign.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{cargo, packages, root, run, vendor, Result};

/// The installers made on this OS (tauri.conf.json's `bundle.targets` for Linux).
pub const FORMATS: &str = "deb,rpm";

/// What `make` produced.
pub struct Bundles {
    pub deb: PathBuf,
    pub rpm: PathBuf,
}

pub fn bundle(args: &[String]) -> Result {
    let mut release = true;
    for arg in args {
        match arg.as_str() {
            "--debug" => release = false,
            other => return Err(format!("unknown option {other} (cargo xtask bundle [--debug])")),
        }
    }
    let bundles = make(release)?;
    for path in [&bundles.deb, &bundles.rpm] {
        eprintln!("{} ({})", path.display(), megabytes(path));
    }
    eprintln!(
        "\nAppImage, .msi/NSIS and .dmg are made on their own OS by hosted CI: the AppImage \
         tools are downloaded at bundle time and it copies the build machine's GTK and WebKit \
         (so it is built on Ubuntu 22.04), .msi/NSIS need a Windows build with WiX and NSIS, \
         .dmg a macOS build with hdiutil and codesign (xtask/src/bundle.rs)."
    );
    Ok(())
}

/// Builds the product binary (release, or the development profile) and bundles it.
///
/// The binary is copied into `target/<profile>/product/` and bundled from there (the bundles
/// land in `target/<profile>/product/bundle/{deb,rpm}/`): cargo links the last build of a
/// binary to `target/<profile>/dermdesk`, which in the development profile is the demo build
/// the end-to-end tests run; it is put back after the product build.
pub fn make(release: bool) -> Result<Bundles> {
    if !cfg!(target_os = "linux") {
        return Err("cargo xtask bundle makes the Linux installers (.deb, .rpm); on Windows and macOS \
                    the installers are made with `cargo tauri build` (hosted CI)"
            .into());
    }
    packages::ensure(packages::Purpose::Demo)?;
    // The UI's libraries are embedded in the binary: they must be in ui/vendor first.
    vendor::ensure()?;
    let profile_dir = crate::target_dir().join(if release { "release" } else { "debug" });
    let linked = profile_dir.join("dermdesk");
    let demo_build = profile_dir.join("dermdesk.demo-build");
    if !release && linked.is_file() {
        std::fs::copy(&linked, &demo_build).map_err(|e| format!("{}: {e}", linked.display()))?;
    }
    let started = Instant::now();
    let mut build = cargo();
    build.args(["build", "--locked", "--package", "dermdesk", "--bin", "dermdesk", "--no-default-features"]);
    build.args(["--features", "tauri/custom-protocol"]);
    if release {
        build.arg("--release");
    }
    let built = run(&mut build);
    let product_dir = profile_dir.join("product");
    let copied = built.and_then(|()| {
        std::fs::create_dir_all(&product_dir).map_err(|e| e.to_string())?;
        std::fs::copy(&linked, product_dir.join("dermdesk")).map_err(|e| format!("{}: {e}", linked.display()))
    });
    if demo_build.is_file() {
        std::fs::rename(&demo_build, &linked).map_err(|e| format!("{}: {e}", demo_build.display()))?;
    }
    copied?;
    eprintln!("product build: {:.0} s", started.elapsed().as_secs_f64());

    let started = Instant::now();
    let paths = run_bundler(&product_dir)?;
    eprintln!("bundler: {:.0} s", started.elapsed().as_secs_f64());
    let find = |extension: &str| {
        paths
            .iter()
            .find(|path| path.extension().is_some_and(|found| found == extension))
            .cloned()
            .ok_or_else(|| format!("the bundler made no .{extension}: {paths:?}"))
    };
    Ok(Bundles { deb: find("deb")?, rpm: find("rpm")? })
}

/// `xtask-bundle` (this package's binary with the `bundler` feature) on the binaries in `dir`;
/// returns the bundles' paths.
fn run_bundler(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut command = cargo();
    command.args(["run", "--quiet", "--locked", "--package", "xtask", "--features", "bundler"]);
    command.args(["--bin", "xtask-bundle", "--", "--format", FORMATS, "--binaries"]);
    command.arg(dir);
    eprintln!("$ {command:?}");
    let output = command
        .current_dir(root())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("running the bundler: {e}"))?;
    if !output.status.success() {
        return Err(format!("the bundler failed ({})", output.status));
    }
    Ok(String::from_utf8_lossy(&output.stdout).lines().map(PathBuf::from).collect())
}

pub fn megabytes(path: &Path) -> String {
    let bytes = std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0);
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// `cargo xtask install-test [--release]`: builds the bundles, then runs tests/e2e/install.rs
/// under Xvfb with a real keychain: it installs the `.deb` with dpkg (as root), drives the
/// installed app against a hub on loopback, and removes the package.
pub fn install_test(args: &[String]) -> Result {
    let mut release = false;
    for arg in args {
        match arg.as_str() {
            "--release" => release = true,
            other => return Err(format!("unknown option {other} (cargo xtask install-test [--release])")),
        }
    }
    if !cfg!(target_os = "linux") || !Path::new("/usr/bin/dpkg").exists() {
        return Err("the install test installs a .deb: it runs on Debian or Ubuntu".into());
    }
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !is_root {
        return Err("the install test runs dpkg -i and dpkg -r: run it as root (CI does)".into());
    }
    packages::ensure(packages::Purpose::Test)?;
    vendor::ensure()?;
    // The hub and the test binary, from the one workspace build the other steps use.
    crate::build_workspace()?;
    let bundles = make(release)?;
    crate::session::installed_end_to_end(&bundles.deb, &bundles.rpm)
}
