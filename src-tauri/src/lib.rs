//! Derm Desk's desktop shell: a thin Tauri layer over `dermdesk-core`. It opens the desk,
//! starts the sync engine (and, in demo mode, the embedded hub), forwards engine events to the
//! UI, and serves photos from the encrypted cache. Business rules live in the core.

mod commands;
mod demo;
mod error;
mod photos;
mod state;

use std::sync::Arc;

use dermdesk_core::engine::{Engine, EngineEvent, EngineSettings};
use dermdesk_core::secrets::{profile_for, Keychain};
use dermdesk_core::views::StatusError;
use dermdesk_core::{CoreError, Desk, DeskConfig};
use tauri::{AppHandle, Emitter, Manager, Runtime};

use crate::state::{AppState, Running};

/// How Derm Desk was asked to start.
#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    /// Run on the embedded demo hub with synthetic data.
    pub demo: bool,
    /// Demo without starting the hub: what a consultant sees with no network.
    pub offline: bool,
}

impl LaunchOptions {
    pub fn from_args() -> LaunchOptions {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let has = |flag: &str| args.iter().any(|a| a == flag);
        LaunchOptions {
            demo: has("--demo") || std::env::var_os("DERMDESK_DEMO").is_some(),
            offline: has("--offline") || std::env::var_os("DERMDESK_OFFLINE").is_some(),
        }
    }
}

pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DERMDESK_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let options = LaunchOptions::from_args();
    let builder = tauri::Builder::default();
    if let Err(error) = run_app(builder, options).run(tauri::generate_context!()) {
        eprintln!("Derm Desk could not start: {error}");
        std::process::exit(1);
    }
}

/// The app minus its context, so tests can pass a mock builder.
pub fn run_app<R: Runtime>(builder: tauri::Builder<R>, options: LaunchOptions) -> tauri::Builder<R> {
    builder
        .manage(AppState::new(options.demo))
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
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                if let Err(error) = start(&handle, options).await {
                    tracing::error!(kind = ?error.kind(), "start-up failed");
                    let error = StatusError { kind: error.kind(), message: error.to_string() };
                    handle.state::<AppState>().set_startup_error(error);
                    let _ = handle.emit("status", handle.state::<AppState>().status());
                }
            });
            Ok(())
        })
}

async fn start<R: Runtime>(app: &AppHandle<R>, options: LaunchOptions) -> Result<(), CoreError> {
    let paths = app.path();
    let data_root = paths.app_data_dir().map_err(|e| CoreError::Io(e.to_string()))?;
    let data_dir = data_root.join(if options.demo { "demo" } else { "desk" });
    let device_name = format!("Derm Desk on {}", std::env::consts::OS);
    let config = DeskConfig { data_dir: data_dir.clone(), device_name };
    let secrets = Arc::new(Keychain::new(&profile_for(&data_dir)));
    let desk = tauri::async_runtime::spawn_blocking(move || Desk::open(config, secrets))
        .await
        .map_err(|e| CoreError::Io(e.to_string()))??;
    let desk = Arc::new(desk);

    let mut hub = None;
    if options.demo && !options.offline {
        let demo_dir =
            paths.cache_dir().map_err(|e| CoreError::Io(e.to_string()))?.join("dermdesk").join("demo");
        let enrolled = desk.enrolment()?.is_some();
        let embedded =
            demo::start(demo_dir, !enrolled).await.map_err(|e| CoreError::Io(format!("demo hub: {e}")))?;
        if enrolled {
            desk.set_hub_url(&embedded.url)?;
        } else {
            desk.enrol(&embedded.url, &embedded.enrolment_code).await?;
        }
        hub = Some(embedded);
    } else if let (Some(url), Some(code)) =
        (std::env::var_os("DERMDESK_HUB_URL"), std::env::var_os("DERMDESK_ENROLMENT_CODE"))
    {
        if desk.enrolment()?.is_none() {
            desk.enrol(&url.to_string_lossy(), &code.to_string_lossy()).await?;
        }
    }

    let events = app.clone();
    let settings = EngineSettings { demo: options.demo, ..EngineSettings::default() };
    let engine = Engine::start(Arc::clone(&desk), settings, move |event| {
        let _ = match event {
            EngineEvent::ReferralsChanged => events.emit("referrals-changed", ()),
            EngineEvent::OutcomeChanged { referral_id } => {
                events.emit("outcome-changed", serde_json::json!({ "referral_id": referral_id }))
            }
        };
    });
    let mut status = engine.status();
    let state = app.state::<AppState>();
    state.set_running(Running { desk, engine, _hub: hub });
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
