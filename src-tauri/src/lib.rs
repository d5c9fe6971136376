//! Derm Desk's desktop shell: a thin Tauri layer over `dermdesk-core`. It opens the desk,
//! starts the sync engine (and, in demo mode, the embedded hub), forwards engine events to the
//! UI, and serves photos from the encrypted cache. Business rules live in the core.

mod commands;
#[cfg(feature = "demo")]
mod demo;
#[cfg(not(feature = "demo"))]
#[path = "no_demo.rs"]
mod demo;
mod error;
mod photos;
mod session;
mod state;

use std::sync::Arc;

use dermdesk_core::engine::{Engine, EngineEvent, EngineSettings};
use dermdesk_core::lock::{CacheKey, KdfParams, LockPolicy, Vault, VaultState};
use dermdesk_core::secrets::{profile_for, Keychain, SecretStore};
use dermdesk_core::views::StatusError;
use dermdesk_core::{CoreError, Desk, DeskConfig};
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::state::{AppState, Profile, Running};

/// How Derm Desk was asked to start.
#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    /// Run on the embedded demo hub with synthetic data.
    pub demo: bool,
    /// Demo without starting the hub: what a consultant sees with no network.
    pub offline: bool,
}

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Launch {
    Run(LaunchOptions),
    Help,
    Version,
}

const USAGE: &str = "usage: dermdesk [--demo] [--offline]\n\n\
    Derm Desk: the consultant dermatologist's offline-first teledermatology desk.\n\n\
    \x20 --demo      run on the embedded demo service (synthetic referrals, loopback only)\n\
    \x20 --offline   with --demo: start without the service, as on a train with no signal\n\
    \x20 --version   print the version and exit\n\
    \x20 --help      print this and exit";

/// What `--demo` says in a build without the demo (the installed product).
pub(crate) const DEMO_NOT_AVAILABLE: &str =
    "the demo is not part of this build (it is in development builds: cargo xtask demo)";

impl LaunchOptions {
    /// Reads the command line (and `DERMDESK_DEMO` / `DERMDESK_OFFLINE`). An option it does not
    /// know is an error, before anything is opened or created.
    pub fn parse(args: &[String]) -> Result<Launch, String> {
        let mut options = LaunchOptions {
            demo: std::env::var_os("DERMDESK_DEMO").is_some(),
            offline: std::env::var_os("DERMDESK_OFFLINE").is_some(),
        };
        for arg in args {
            match arg.as_str() {
                "--demo" => options.demo = true,
                "--offline" => options.offline = true,
                "--help" | "-h" => return Ok(Launch::Help),
                "--version" | "-V" => return Ok(Launch::Version),
                // Older macOS passes a process serial number when started from the Finder.
                other if other.starts_with("-psn_") => {}
                other => return Err(format!("unknown option {other} (dermdesk --help lists them)")),
            }
        }
        if options.demo && !cfg!(feature = "demo") {
            return Err(DEMO_NOT_AVAILABLE.to_owned());
        }
        Ok(Launch::Run(options))
    }
}

pub fn run() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match LaunchOptions::parse(&args) {
        Ok(Launch::Run(options)) => options,
        Ok(Launch::Help) => {
            println!("{USAGE}");
            return;
        }
        Ok(Launch::Version) => {
            println!("Derm Desk {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Err(error) => {
            eprintln!("dermdesk: {error}\nNothing was opened or changed.");
            std::process::exit(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DERMDESK_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let builder = tauri::Builder::default();
    if let Err(error) = run_app(builder, options).run(tauri::generate_context!()) {
        eprintln!("Derm Desk could not start: {error}");
        std::process::exit(1);
    }
}

/// The app minus its context, so tests can pass a mock builder.
pub fn run_app<R: Runtime>(builder: tauri::Builder<R>, options: LaunchOptions) -> tauri::Builder<R> {
    builder
        .manage(AppState::new(options.demo, lock_policy()))
        .register_asynchronous_uri_scheme_protocol(photos::SCHEME, photos::handle)
        .invoke_handler(tauri::generate_handler![
            commands::status,
            commands::worklist,
            commands::worklist_query,
            commands::worklist_view,
            commands::save_worklist_view,
            commands::readiness,
            commands::prepare_for_offline,
            commands::due_within,
            commands::referral,
            commands::sign_and_send,
            commands::sync_now,
            commands::cancel_sync,
            commands::save_draft,
            commands::diagnoses,
            commands::outcome_advice,
            commands::ui_ready,
            commands::device,
            commands::rotate_key,
            commands::export_outcome,
            session::lock_status,
            session::choose_passphrase,
            session::unlock,
            session::lock,
            session::activity,
            session::reauthenticate,
            session::sign_out,
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                if let Err(error) = prepare(&handle, options).await {
                    tracing::error!(kind = ?error.kind(), "start-up failed");
                    let error = StatusError { kind: error.kind(), message: error.to_string() };
                    handle.state::<AppState>().set_startup_error(error);
                    let _ = handle.emit("status", handle.state::<AppState>().status());
                }
                session::emit_lock_state(&handle);
                session::watch_idle(handle).await;
            });
            Ok(())
        })
}

/// Idle time before the app locks itself (15 minutes) and the age of the last unlock after which
/// signing asks again (5 minutes); `DERMDESK_IDLE_LOCK_SECS` and `DERMDESK_SIGN_REAUTH_SECS` can
/// make them shorter (tests, shared workstations), never longer.
fn lock_policy() -> LockPolicy {
    let seconds = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let mut policy = LockPolicy::default();
    if let Some(idle) = seconds("DERMDESK_IDLE_LOCK_SECS") {
        policy.idle = policy.idle.min(std::time::Duration::from_secs(idle.max(1)));
    }
    if let Some(reauth) = seconds("DERMDESK_SIGN_REAUTH_SECS") {
        policy.reauth_before_signing =
            policy.reauth_before_signing.min(std::time::Duration::from_secs(reauth));
    }
    policy
}

/// Before the passphrase: where the desk lives, the keychain, the vault, and in demo mode the
/// embedded hub. Nothing of the cache is opened here.
async fn prepare<R: Runtime>(app: &AppHandle<R>, options: LaunchOptions) -> Result<(), CoreError> {
    let paths = app.path();
    let data_root = paths.app_data_dir().map_err(|e| CoreError::Io(e.to_string()))?;
    let data_dir = data_root.join(if options.demo { "demo" } else { "desk" });
    let device_name = format!("Derm Desk on {}", std::env::consts::OS);
    let config = DeskConfig { data_dir: data_dir.clone(), device_name };
    let secrets: Arc<dyn SecretStore> = Arc::new(Keychain::new(&profile_for(&data_dir)));
    let vault_secrets = Arc::clone(&secrets);
    let vault_dir = data_dir.clone();
    let vault = tauri::async_runtime::spawn_blocking(move || {
        Vault::new(&vault_dir, vault_secrets, KdfParams::default(), std::time::Instant::now())
    })
    .await
    .map_err(|e| CoreError::Io(e.to_string()))??;
    let first_start = vault.state()? == VaultState::NoPassphrase;
    // A chosen instant only where nothing real depends on it: the demo (synthetic data) and
    // development builds, which the end-to-end tests drive. A release build outside the demo
    // always runs on the computer's clock.
    let clock = dermdesk_core::clock::from_environment(options.demo || cfg!(debug_assertions))
        .map_err(CoreError::Io)?;

    let mut hub = None;
    if options.demo && !options.offline {
        let demo_dir =
            paths.cache_dir().map_err(|e| CoreError::Io(e.to_string()))?.join("dermdesk").join("demo");
        // A desk starting afresh should not meet outcomes an earlier demo desk sent.
        let embedded = demo::start(demo_dir, first_start, Arc::clone(&clock))
            .await
            .map_err(|e| CoreError::Io(format!("demo hub: {e}")))?;
        hub = Some(embedded);
    }
    app.state::<AppState>().set_profile(Profile { config, secrets, vault, hub, clock });
    // In demo mode only (synthetic data), a passphrase from the environment lets a headless
    // screenshot run get past the lock screen.
    if options.demo {
        if let Ok(passphrase) = std::env::var("DERMDESK_DEMO_PASSPHRASE") {
            let result = if first_start {
                session::choose_passphrase_now(app, &passphrase).await
            } else {
                session::unlock_now(app, &passphrase).await
            };
            if let Err(error) = result {
                tracing::warn!(kind = %error.kind, "the demo passphrase did not open the desk");
            }
        }
    }
    Ok(())
}

/// After the passphrase: opens the desk with the unsealed key, enrols it if needed, starts the
/// engine and tells the window.
pub(crate) async fn open_desk<R: Runtime>(app: &AppHandle<R>, key: CacheKey) -> Result<(), CoreError> {
    let state = app.state::<AppState>();
    let profile = state.profile().map_err(|e| CoreError::Io(e.message))?;
    let (config, secrets) = (profile.config.clone(), Arc::clone(&profile.secrets));
    let clock = Arc::clone(&profile.clock);
    let desk = tauri::async_runtime::spawn_blocking(move || {
        Desk::open_with_key(config, secrets, &key).map(|desk| desk.with_clock(clock))
    })
    .await
    .map_err(|e| CoreError::Io(e.to_string()))??;
    let desk = Arc::new(desk);

    if let Some(embedded) = &profile.hub {
        if desk.enrolment()?.is_some() {
            desk.set_hub_url(embedded.url())?;
        } else {
            let code = embedded.enrolment_code_for_new_desk().map_err(CoreError::Io)?;
            desk.enrol(embedded.url(), &code).await?;
        }
    } else if let (Some(url), Some(code)) =
        (std::env::var_os("DERMDESK_HUB_URL"), std::env::var_os("DERMDESK_ENROLMENT_CODE"))
    {
        if desk.enrolment()?.is_none() {
            desk.enrol(&url.to_string_lossy(), &code.to_string_lossy()).await?;
        }
    }

    let events = app.clone();
    let settings = EngineSettings { demo: state.demo, ..EngineSettings::default() };
    let engine = Engine::start(Arc::clone(&desk), settings, move |event| {
        let _ = match event {
            EngineEvent::ReferralsChanged => events.emit("referrals-changed", ()),
            EngineEvent::OutcomeChanged { referral_id } => {
                events.emit("outcome-changed", serde_json::json!({ "referral_id": referral_id }))
            }
            EngineEvent::DeviceRevoked => {
                let app = events.clone();
                // Not from inside the engine's own task: wiping waits for the engine to stop.
                tauri::async_runtime::spawn(async move { session::wipe_revoked(&app).await });
                Ok(())
            }
        };
    });
    let mut status = engine.status();
    state.set_running(Running { desk, engine }, std::time::Instant::now());
    let _ = app.emit("status", state.status());
    // The cache is open: whatever it holds can be shown now, before (or without) any sync.
    let _ = app.emit("referrals-changed", ());
    let emitter = app.clone();
    tauri::async_runtime::spawn(async move {
        while status.changed().await.is_ok() {
            let snapshot = status.borrow_and_update().clone();
            let _ = emitter.emit("status", snapshot);
        }
    });
    Ok(())
}
