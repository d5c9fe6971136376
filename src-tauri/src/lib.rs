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
mod updates;

use std::sync::Arc;

use dermdesk_core::connect::DeploymentConfig;
use dermdesk_core::engine::EngineSettings;
use dermdesk_core::lifecycle::{LifeEvent, LifeSettings, Lifecycle};
use dermdesk_core::lock::{KdfParams, LockPolicy};
use dermdesk_core::secrets::{profile_for, Keychain, SecretStore};
use dermdesk_core::{CoreError, DeskConfig};
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::state::AppState;

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
        .manage(AppState::default())
        .plugin(updates::plugin())
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
            commands::app_version,
            commands::rotate_key,
            commands::export_outcome,
            session::lock_status,
            session::connect,
            session::check_code,
            session::choose_passphrase,
            session::unlock,
            session::lock,
            session::activity,
            session::reauthenticate,
            session::cancel_reauthentication,
            session::sign_out,
            updates::update_offer,
            updates::install_update,
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            let life = match life_settings(&handle, &options) {
                Ok(settings) => Lifecycle::new(settings, forward_to(&handle)),
                Err(error) => Lifecycle::could_not_start(error, options.demo, forward_to(&handle)),
            };
            handle.state::<AppState>().set_life(Arc::clone(&life));
            tauri::async_runtime::spawn(updates::watch(handle.clone()));
            tauri::async_runtime::spawn(async move {
                if options.demo && !options.offline {
                    if let Err(error) = start_demo_hub(&handle, &life).await {
                        life.fail(error);
                        return;
                    }
                }
                life.prepare().await;
                if options.demo {
                    demo_sign_in(&handle, &life).await;
                }
                life.watch_idle().await;
            });
            Ok(())
        })
}

/// Shows what the lifecycle reports in the window.
fn forward_to<R: Runtime>(app: &AppHandle<R>) -> impl Fn(LifeEvent) + Send + Sync + 'static {
    let app = app.clone();
    move |event| {
        let _ = match event {
            LifeEvent::Stage(view) => app.emit("lock-state", view),
            LifeEvent::Status(status) => app.emit("status", status),
            LifeEvent::ReferralsChanged => app.emit("referrals-changed", ()),
            LifeEvent::OutcomeChanged { referral_id } => {
                app.emit("outcome-changed", serde_json::json!({ "referral_id": referral_id }))
            }
            LifeEvent::Wiped => {
                session::clear_webview_data(&app);
                Ok(())
            }
        };
    }
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

/// Where the desk lives, its keychain profile, its clock and the deployment's settings.
/// Nothing is opened here.
fn life_settings<R: Runtime>(app: &AppHandle<R>, options: &LaunchOptions) -> Result<LifeSettings, CoreError> {
    let paths = app.path();
    let data_root = paths.app_data_dir().map_err(|e| CoreError::Io(e.to_string()))?;
    let data_dir = data_root.join(if options.demo { "demo" } else { "desk" });
    let device_name = format!("Derm Desk on {}", std::env::consts::OS);
    let secrets: Arc<dyn SecretStore> = Arc::new(Keychain::new(&profile_for(&data_dir)));
    // A chosen instant only where nothing real depends on it: the demo (synthetic data) and
    // development builds, which the end-to-end tests drive. A release build outside the demo
    // always runs on the computer's clock.
    let clock = dermdesk_core::clock::from_environment(options.demo || cfg!(debug_assertions))
        .map_err(CoreError::Io)?;
    // The demo's service is the embedded hub; no deployment setting applies to it.
    let deployment =
        if options.demo { DeploymentConfig::default() } else { DeploymentConfig::from_environment()? };
    Ok(LifeSettings {
        desk: DeskConfig { data_dir, device_name },
        secrets,
        kdf: KdfParams::default(),
        clock,
        policy: lock_policy(),
        engine: EngineSettings { demo: options.demo, ..EngineSettings::default() },
        deployment,
    })
}

/// Demo mode: the embedded hub on loopback, whose address the desk follows.
async fn start_demo_hub<R: Runtime>(app: &AppHandle<R>, life: &Lifecycle) -> Result<(), CoreError> {
    let paths = app.path();
    let demo_dir = paths.cache_dir().map_err(|e| CoreError::Io(e.to_string()))?.join("dermdesk").join("demo");
    // A desk starting afresh should not meet outcomes an earlier demo desk sent.
    let fresh = !life.data_dir().join(dermdesk_core::desk::CACHE_FILE).exists();
    let clock = dermdesk_core::clock::from_environment(true).map_err(CoreError::Io)?;
    let hub =
        demo::start(demo_dir, fresh, clock).await.map_err(|e| CoreError::Io(format!("demo hub: {e}")))?;
    life.service_moved_to(hub.url());
    app.state::<AppState>().keep_hub(hub);
    Ok(())
}

/// Demo mode connects itself (the embedded hub issues the code), and a passphrase from the
/// environment (synthetic data only) lets a headless screenshot run get past the lock screen.
async fn demo_sign_in<R: Runtime>(app: &AppHandle<R>, life: &Lifecycle) {
    use dermdesk_core::life::Stage;
    if matches!(life.stage(), Stage::Connect { .. }) {
        match app.state::<AppState>().demo_service() {
            Some(Ok((url, code))) => {
                if let Err(error) = life.connect(&url, &code).await {
                    tracing::warn!(kind = ?error.kind(), "the demo desk could not enrol");
                }
            }
            Some(Err(error)) => tracing::warn!("the demo hub issued no code: {error}"),
            None => {}
        }
    }
    let Ok(passphrase) = std::env::var("DERMDESK_DEMO_PASSPHRASE") else { return };
    let result = match life.stage() {
        Stage::ChoosePassphrase => life.choose_passphrase(&passphrase).await,
        Stage::Locked { .. } => life.unlock(&passphrase).await,
        _ => Ok(()),
    };
    if let Err(error) = result {
        tracing::warn!(kind = ?error.kind(), "the demo passphrase did not open the desk");
    }
}
