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

use crate::{cargo, packages, root, vendor, Result};

/// The installers made on this OS (tauri.conf.json's `bundle.targets` for Linux).
pub const FORMATS: &str = "deb,rpm";

/// What `make` produced.
pub struct Bundles {
    pub deb: PathBuf,
    /// `None` when only the `.deb` was asked for (the install test's next version).
    pub rpm: Option<PathBuf>,
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
    for path in std::iter::once(&bundles.deb).chain(&bundles.rpm) {
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
    make_in(&root(), release, &[], FORMATS)
}

/// [`make`] for the app's source tree at `source` (this one, or the install test's copy of it
/// with the next version), with `env` set for the build (the install test's throwaway release
/// key), bundled as `formats` (`deb` or `deb,rpm`). One target directory serves every tree: a
/// copy rebuilds only its own crates.
pub fn make_in(source: &Path, release: bool, env: &[(&str, &str)], formats: &str) -> Result<Bundles> {
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
    build.current_dir(source).env("CARGO_TARGET_DIR", crate::target_dir()).envs(env.iter().copied());
    let built = run_in(&mut build);
    let product_dir = profile_dir.join("product");
    let copied = built.and_then(|()| {
        std::fs::create_dir_all(&product_dir).map_err(|e| e.to_string())?;
        std::fs::copy(&linked, product_dir.join("dermdesk")).map_err(|e| format!("{}: {e}", linked.display()))
    });
    if demo_build.is_file() {
        std::fs::rename(&demo_build, &linked).map_err(|e| format!("{}: {e}", demo_build.display()))?;
    }
    copied?;
    if !release {
        // The development profile keeps line tables (150 MB of binary): without them the
        // bundler compresses a third as much. Symbols stay, for backtraces' function names.
        run_in(Command::new("strip").arg("--strip-debug").arg(product_dir.join("dermdesk")))?;
    }
    eprintln!("product build: {:.0} s", started.elapsed().as_secs_f64());

    let started = Instant::now();
    let paths = run_bundler(source, &product_dir, formats)?;
    eprintln!("bundler: {:.0} s", started.elapsed().as_secs_f64());
    let find = |extension: &str| {
        paths
            .iter()
            .find(|path| path.extension().is_some_and(|found| found == extension))
            .cloned()
            .ok_or_else(|| format!("the bundler made no .{extension}: {paths:?}"))
    };
    let rpm = if formats.contains("rpm") { Some(find("rpm")?) } else { None };
    Ok(Bundles { deb: find("deb")?, rpm })
}

/// `xtask-bundle` (this package's binary with the `bundler` feature) on the binaries in `dir`;
/// returns the bundles' paths.
fn run_bundler(source: &Path, dir: &Path, formats: &str) -> Result<Vec<PathBuf>> {
    let mut command = cargo();
    command.args(["run", "--quiet", "--locked", "--package", "xtask", "--features", "bundler"]);
    command.args(["--bin", "xtask-bundle", "--", "--format", formats, "--binaries"]);
    command.arg(dir).arg("--root").arg(source);
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

/// [`run`] in the command's own directory.
fn run_in(command: &mut Command) -> Result {
    let shown = format!("{command:?}");
    eprintln!("$ {shown}");
    let status = command.status().map_err(|e| format!("{shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

pub fn megabytes(path: &Path) -> String {
    let bytes = std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0);
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// `cargo xtask install-test [--release]`: builds the bundles, then runs tests/e2e/install.rs
/// under Xvfb with a real keychain: it installs the `.deb` with dpkg (as root), drives the
/// installed app against a hub on loopback, and removes the package; then installs it again and
/// lets the installed app update itself to the next version's `.deb`.
///
/// Both versions are built with a throwaway release key made here (its public half compiled in
/// through `DERMDESK_UPDATE_PUBKEY`, its secret half handed to the test, which signs the next
/// version as a service's release would be signed). The next version is this source tree
/// copied to `target/install-test/next/` with its version's patch number raised: a real build
/// of a real version, nothing in the product told it is a test.
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
    if !is_root() {
        return Err("the install test runs dpkg -i and dpkg -r: run it as root (CI does)".into());
    }
    packages::ensure(packages::Purpose::InstallTest)?;
    vendor::ensure()?;
    // The hub and the test binary, from the one workspace build the other steps use.
    crate::build_workspace()?;

    let work = crate::target_dir().join("install-test");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let key = crate::updates::generate(None)?;
    let key_file = work.join("update-key");
    std::fs::write(&key_file, &key.secret).map_err(|e| format!("{}: {e}", key_file.display()))?;
    let env = [("DERMDESK_UPDATE_PUBKEY", key.public.as_str())];

    let current = keep(make_in(&root(), release, &env, FORMATS)?, &work.join("current"))?;
    let next_source = work.join("next");
    let next_version = copy_with_next_version(&root(), &next_source)?;
    // The update test installs the next version's .deb; its .rpm would be made for nothing.
    let next = keep(make_in(&next_source, release, &env, "deb")?, &work.join("next-bundles"))?;
    crate::session::installed_end_to_end(&crate::session::InstallTestInputs {
        deb: current.deb,
        rpm: current.rpm.ok_or("the bundler made no .rpm")?,
        next_deb: next.deb,
        next_version,
        update_key: key_file,
    })
}

/// Whether this process runs as root (dpkg -i needs it).
pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Moves the bundles out of the product folder (the next build writes there again).
fn keep(bundles: Bundles, dir: &Path) -> Result<Bundles> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let keep_one = |path: &Path| -> Result<PathBuf> {
        let kept = dir.join(path.file_name().ok_or("a bundle without a name")?);
        std::fs::rename(path, &kept).map_err(|e| format!("{} -> {}: {e}", path.display(), kept.display()))?;
        Ok(kept)
    };
    Ok(Bundles { deb: keep_one(&bundles.deb)?, rpm: bundles.rpm.as_deref().map(keep_one).transpose()? })
}

/// Copies the app's source tree (what git tracks or would track, and the vendored UI
/// libraries) to `to`, with the patch number of its version raised in Cargo.toml,
/// tauri.conf.json and Cargo.lock. Returns the new version.
fn copy_with_next_version(from: &Path, to: &Path) -> Result<String> {
    let listed = Command::new("git")
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .current_dir(from)
        .output()
        .map_err(|e| format!("git ls-files: {e}"))?;
    if !listed.status.success() {
        return Err("git ls-files failed: the install test copies a git checkout".into());
    }
    let mut files: Vec<PathBuf> = listed
        .stdout
        .split(|byte| *byte == 0)
        .filter(|name| !name.is_empty())
        .map(|name| PathBuf::from(String::from_utf8_lossy(name).into_owned()))
        .collect();
    let vendor = from.join("ui").join("vendor");
    for entry in walk(&vendor)? {
        files.push(entry.strip_prefix(from).map_err(|e| e.to_string())?.to_path_buf());
    }
    for file in &files {
        let source = from.join(file);
        if !source.is_file() {
            continue; // deleted in the working tree
        }
        let target = to.join(file);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::copy(&source, &target).map_err(|e| format!("{}: {e}", source.display()))?;
    }

    let read = |name: &str| std::fs::read_to_string(to.join(name)).map_err(|e| format!("{name}: {e}"));
    let write =
        |name: &str, text: String| std::fs::write(to.join(name), text).map_err(|e| format!("{name}: {e}"));
    let config: serde_json::Value =
        serde_json::from_str(&read("tauri.conf.json")?).map_err(|e| e.to_string())?;
    let version = config["version"].as_str().ok_or("tauri.conf.json has no version")?.to_owned();
    let next = next_patch(&version)?;
    let replace_once = |text: &str, old: &str, new: &str, name: &str| -> Result<String> {
        if text.matches(old).count() != 1 {
            return Err(format!("{name}: expected `{old}` once"));
        }
        Ok(text.replacen(old, new, 1))
    };
    let conf = read("tauri.conf.json")?;
    write(
        "tauri.conf.json",
        replace_once(
            &conf,
            &format!("\"version\": \"{version}\""),
            &format!("\"version\": \"{next}\""),
            "tauri.conf.json",
        )?,
    )?;
    let manifest = read("Cargo.toml")?;
    write(
        "Cargo.toml",
        replace_once(
            &manifest,
            &format!("name = \"dermdesk\"\nversion = \"{version}\""),
            &format!("name = \"dermdesk\"\nversion = \"{next}\""),
            "Cargo.toml",
        )?,
    )?;
    let lock = read("Cargo.lock")?;
    write(
        "Cargo.lock",
        replace_once(
            &lock,
            &format!("name = \"dermdesk\"\nversion = \"{version}\""),
            &format!("name = \"dermdesk\"\nversion = \"{next}\""),
            "Cargo.lock",
        )?,
    )?;
    eprintln!("install test: the next version, {next}, is {}", to.display());
    Ok(next)
}

/// `1.2.3` -> `1.2.4`.
fn next_patch(version: &str) -> Result<String> {
    let parts: Vec<u64> = version
        .split('.')
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("version {version} is not MAJOR.MINOR.PATCH"))?;
    let [major, minor, patch] = parts[..] else {
        return Err(format!("version {version} is not MAJOR.MINOR.PATCH"));
    };
    Ok(format!("{major}.{minor}.{}", patch + 1))
}

/// Every file under `dir` (none if it does not exist).
fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    Ok(files)
}
