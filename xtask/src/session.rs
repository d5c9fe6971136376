//! Running the real app headless: an X server (Xvfb) if there is no display, a private D-Bus
//! session with an unlocked GNOME Keyring (the cache key lives in the keychain), and a fresh
//! data directory so every run starts from enrolment.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{app_binary, hub_binary, root, Result};

/// Xvfb screen: the app's default window size.
const SCREEN: &str = "1440x900x24";

struct Display {
    name: String,
    server: Option<Child>,
}

impl Display {
    /// The current display, or a new Xvfb.
    fn get() -> Result<Display> {
        if let Ok(name) = std::env::var("DISPLAY") {
            if !name.is_empty() {
                return Ok(Display { name, server: None });
            }
        }
        for number in 90..140 {
            let lock = format!("/tmp/.X{number}-lock");
            let socket = format!("/tmp/.X11-unix/X{number}");
            if Path::new(&socket).exists() || Path::new(&lock).exists() {
                // A server killed hard leaves its lock and socket behind: reuse the number when
                // the lock's process is gone.
                let owner =
                    std::fs::read_to_string(&lock).ok().and_then(|pid| pid.trim().parse::<u32>().ok());
                match owner {
                    Some(pid) if !Path::new(&format!("/proc/{pid}")).exists() => {
                        let _ = std::fs::remove_file(&lock);
                        let _ = std::fs::remove_file(&socket);
                    }
                    _ => continue,
                }
            }
            let name = format!(":{number}");
            let server = Command::new("Xvfb")
                .args([name.as_str(), "-screen", "0", SCREEN, "-nolisten", "tcp"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("Xvfb: {e} (install xvfb)"))?;
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
            let started = Instant::now();
            while !socket.exists() {
                if started.elapsed() > Duration::from_secs(20) {
                    return Err("Xvfb did not start".into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            return Ok(Display { name, server: Some(server) });
        }
        Err("no free X display number".into())
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        if let Some(server) = &mut self.server {
            // SIGTERM first, so Xvfb removes its lock and socket; SIGKILL if it lingers.
            let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(3) {
                if let Ok(Some(_)) = server.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Result<Scratch> {
        let path = std::env::temp_dir().join(format!("dermdesk-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Wraps `inner` in `dbus-run-session` with an unlocked GNOME Keyring.
fn with_keyring(inner: &Command) -> Command {
    let mut command = Command::new("dbus-run-session");
    command.args([
        "--",
        "sh",
        "-c",
        // The keyring is created on first unlock with this (throwaway, headless) password.
        "echo -n dermdesk-headless | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec \"$@\"",
        "sh",
    ]);
    command.arg(inner.get_program()).args(inner.get_args());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command
}

fn headless_env(command: &mut Command, display: &Display, data_home: &Path) {
    command
        .env("DISPLAY", &display.name)
        .env("XDG_DATA_HOME", data_home)
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        // No GPU under Xvfb: WebKit's software path.
        .env("WEBKIT_DISABLE_DMABUF_RENDERER", "1")
        .env("LIBGL_ALWAYS_SOFTWARE", "1");
}

pub fn run_interactive(app: Command) -> Result {
    if cfg!(target_os = "linux")
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        return Err(
            "no display to open a window on; use `cargo xtask demo --screenshot FILE` on a headless machine"
                .into(),
        );
    }
    let mut command = if cfg!(target_os = "linux") && std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        eprintln!("no D-Bus session: starting one with a GNOME Keyring for the cache key");
        with_keyring(&app)
    } else {
        app
    };
    crate::run(&mut command)
}

/// Opens the app headless, waits until the UI reports the worklist on screen, writes a PNG of
/// the window to `file`.
pub fn screenshot(app: Command, file: &Path, timeout: Duration) -> Result {
    let display = Display::get()?;
    let scratch = Scratch::new("screenshot")?;
    let ready = scratch.0.join("ready");
    let data_home = scratch.0.join("data");
    let mut app = app;
    headless_env(&mut app, &display, &data_home);
    app.env("DERMDESK_READY_FILE", &ready);
    // Demo mode only: gets a headless screenshot past the lock screen (synthetic data).
    app.env("DERMDESK_DEMO_PASSPHRASE", "headless demo passphrase");
    let mut command = with_keyring(&app);
    command.current_dir(root()).stdin(Stdio::null());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn().map_err(|e| format!("starting the app: {e}"))?;
    let started = Instant::now();
    let outcome = loop {
        if ready.exists() {
            // Photos and fonts finish painting.
            std::thread::sleep(Duration::from_secs(2));
            break capture(&display, file);
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Err(format!("the app exited before showing the worklist ({status})"));
        }
        if started.elapsed() > timeout {
            break Err(format!("the worklist was not on screen within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    stop(&mut child);
    outcome?;
    eprintln!("screenshot written to {}", file.display());
    Ok(())
}

fn capture(display: &Display, file: &Path) -> Result {
    // /usr/bin/import: another `import` on the PATH may be a stand-in.
    let import = if Path::new("/usr/bin/import").exists() { "/usr/bin/import" } else { "import" };
    let status = Command::new(import)
        .args(["-display", &display.name, "-window", "root"])
        .arg(file)
        .status()
        .map_err(|e| format!("import (ImageMagick): {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("import failed ({status})"))
    }
}

fn stop(child: &mut Child) {
    #[cfg(unix)]
    {
        let _ = Command::new("kill").args(["-TERM", "--", &format!("-{}", child.id())]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs the end-to-end test command under Xvfb with a real Secret Service, pointing it at the
/// built app.
pub fn end_to_end(command: &mut Command) -> Result {
    let display = Display::get()?;
    let scratch = Scratch::new("e2e")?;
    let data_home = scratch.0.join("data");
    headless_env(command, &display, &data_home);
    // A private cache too: the demo hub and its synthetic photos start from nothing, as on CI.
    command.env("XDG_CACHE_HOME", scratch.0.join("cache"));
    command
        .env("DERMDESK_APP", app_binary())
        .env("DERMDESK_HUB", hub_binary())
        .env("TAURI_WEBVIEW_AUTOMATION", "true");
    crate::run(&mut with_keyring(command))
}
