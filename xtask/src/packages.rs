//! System packages Derm Desk needs, installed on Debian/Ubuntu (as root, or with sudo), named
//! for other systems.

use std::process::Command;

use crate::{run, Result};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Demo,
    Test,
    InstallTest,
}

/// Build: WebKitGTK (brings GTK 3, libsoup 3, JavaScriptCore, D-Bus); OpenSSL's headers and
/// libcrypto for SQLCipher (Cargo.toml: the system's OpenSSL on Linux).
const BUILD: &[&str] =
    &["libwebkit2gtk-4.1-dev", "libssl-dev", "build-essential", "pkg-config", "curl", "file"];
/// Run headless and test: X server, WebDriver for WebKitGTK, a D-Bus session and a Secret
/// Service (the cache key lives in the keychain), ImageMagick for window screenshots and as the
/// colour tests' reference (Little CMS), Ghostscript's ICC profiles (Adobe RGB, ROMM/ProPhoto,
/// CMYK, grey) for those tests' charts.
const HEADLESS: &[&str] =
    &["xvfb", "xauth", "webkit2gtk-driver", "dbus-x11", "gnome-keyring", "imagemagick", "libgs-common"];

/// Reference tools of `bench images`: `vips dzsave` / `vips thumbnail` and `djpeg`.
const BENCH_REFERENCES: &[&str] = &["libvips-tools", "libjpeg-turbo-progs"];

/// The install test: `sudo`, which tauri-plugin-updater runs `dpkg -i` with when there is no
/// pkexec (a desktop has polkit's graphical prompt; a root CI machine has neither), and `rpm`
/// to read the `.rpm`'s contents and requirements.
const INSTALL_TEST: &[&str] = &["sudo", "rpm"];

pub fn ensure(purpose: Purpose) -> Result {
    // The demo's --screenshot mode needs the headless set too; the benchmark references are
    // small and make `cargo xtask test` machines ready for `bench images`.
    // `cargo xtask test` runs the install test too (as root, in CI).
    let extra = if purpose == Purpose::Demo { &[] } else { INSTALL_TEST };
    install(BUILD.iter().chain(HEADLESS).chain(BENCH_REFERENCES).chain(extra).copied().collect())
}

/// Only what `cargo xtask bench images` compares against.
pub fn ensure_bench_references() -> Result {
    install(BENCH_REFERENCES.to_vec())
}

fn install(wanted: Vec<&str>) -> Result {
    if !is_debian_like() {
        eprintln!(
            "Not Debian or Ubuntu: make sure these are installed (names differ per system):\n\
             - Fedora: webkit2gtk4.1-devel openssl-devel xorg-x11-server-Xvfb gnome-keyring ImageMagick vips-tools libjpeg-turbo-utils\n\
             - Arch: webkit2gtk-4.1 base-devel openssl xorg-server-xvfb gnome-keyring imagemagick libvips libjpeg-turbo\n\
             - macOS: Xcode command line tools (WebView and Keychain are built in); brew install vips jpeg-turbo\n\
             - Windows: Visual Studio C++ build tools, the WebView2 runtime (built into Windows 11) and Strawberry Perl"
        );
        return Ok(());
    }
    let missing: Vec<&str> = wanted.into_iter().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing system packages: {}", missing.join(" "));
    let root = is_root();
    let apt = |args: &[&str]| {
        let mut command = if root { Command::new("apt-get") } else { sudo_apt() };
        command.env("DEBIAN_FRONTEND", "noninteractive").args(["-o", "DPkg::Lock::Timeout=600"]).args(args);
        command
    };
    run(&mut apt(&["update", "-q"]))?;
    let mut install = apt(&["install", "-y", "-q"]);
    install.args(&missing);
    // apt's lock may be held by another process a little longer than the timeout: retry once.
    run(&mut install).or_else(|_| {
        let mut again = apt(&["install", "-y", "-q"]);
        again.args(&missing);
        run(&mut again)
    })
}

fn sudo_apt() -> Command {
    let mut command = Command::new("sudo");
    command.arg("apt-get");
    command
}

fn is_debian_like() -> bool {
    cfg!(target_os = "linux") && std::path::Path::new("/etc/debian_version").exists()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false)
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}
