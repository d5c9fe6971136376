//! Updates of Derm Desk itself: the shell's half, which only calls tauri-plugin-updater. Every
//! rule (when to look, what the offer says, what a refusal tells the consultant, the size and
//! address limits, where the manifest lives) is `dermdesk_core::updates`; the manifest and the
//! installer are fetched by the core's client. The plugin judges the manifest for this
//! computer (`restore_update`: target, version, signed version required), and verifies the
//! installer's signature against the compiled-in release key before it installs it.

use std::time::{Duration, Instant};

use dermdesk_core::updates::{Refusal, UpdateOffer, RELEASE_PUBLIC_KEY};
use tauri::{AppHandle, Emitter, Manager, Runtime, State};
use tauri_plugin_updater::{Error as UpdaterError, UpdaterExt};

use crate::error::AppResult;
use crate::state::AppState;

/// How often the shell asks the core whether a look is due (the core says when it is).
const TICK: Duration = Duration::from_secs(15);

/// The plugin, with the release key compiled in (`keys/update-release.pub`, or
/// `DERMDESK_UPDATE_PUBKEY` at build time). No run-time setting replaces it.
pub fn plugin<R: Runtime>() -> tauri::plugin::TauriPlugin<R, tauri_plugin_updater::Config> {
    tauri_plugin_updater::Builder::new().pubkey(RELEASE_PUBLIC_KEY).build()
}

/// Looks for updates while the desk is open, as often as the core says, and tells the window
/// when one is on offer (`update-offer`). Silent when offline or when nothing is offered.
pub async fn watch<R: Runtime>(app: AppHandle<R>) {
    loop {
        tokio::time::sleep(TICK).await;
        let state = app.state::<AppState>();
        let (Ok(life), Ok(desk)) = (state.life(), state.desk()) else { continue };
        let updates = state.updates();
        if !updates.due(Instant::now(), life.status().online) {
            continue;
        }
        let Ok(client) = desk.client() else { continue };
        let Some(manifest) = updates.check(&client, Instant::now()).await else { continue };
        match judge(&app, &manifest) {
            Ok(Some(update)) => updates.offered(manifest, &update.version, update.body.as_deref()),
            Ok(None) => updates.nothing_offered(),
            Err(error) => {
                tracing::debug!(%error, "the update manifest offers nothing for this computer");
                updates.nothing_offered();
            }
        }
        let waiting = desk.outbox_waiting().unwrap_or(0);
        let _ = app.emit("update-offer", updates.offer(waiting));
    }
}

/// The plugin's reading of `manifest` for this computer: `Some` when it names a newer release
/// for this kind of install, signed for the version it announces.
fn judge<R: Runtime>(
    app: &AppHandle<R>,
    manifest: &serde_json::Value,
) -> Result<Option<tauri_plugin_updater::Update>, UpdaterError> {
    // The plugin needs an endpoint to build, but requests nothing here: the core fetched the
    // manifest and fetches the installer.
    let nowhere = "https://updates.invalid/latest.json".parse().expect("a valid URL");
    app.updater_builder().endpoints(vec![nowhere])?.build()?.restore_update(manifest.clone())
}

/// The offer as it stands (the outbox counted now), for the window to show.
#[tauri::command]
pub fn update_offer(state: State<'_, AppState>) -> AppResult<Option<UpdateOffer>> {
    let waiting = state.desk().and_then(|desk| Ok(desk.outbox_waiting()?)).unwrap_or(0);
    Ok(state.updates().offer(waiting))
}

/// The consultant clicked "Install and restart": download, verify, install, restart. Any
/// refusal leaves everything as it was and says so.
#[tauri::command]
pub async fn install_update<R: Runtime>(app: AppHandle<R>, state: State<'_, AppState>) -> AppResult<()> {
    let desk = state.desk()?;
    let updates = state.updates();
    let (manifest, version) = updates.to_install()?;
    let update = match judge(&app, &manifest) {
        Ok(Some(update)) => update,
        Ok(None) => return Err(updates.refused(&Refusal::NoLongerOffered, &version).into()),
        Err(error) => return Err(updates.refused(&refusal(&error), &version).into()),
    };
    let bytes = updates.download(&desk.client()?, update.download_url.as_str(), &update.version).await?;
    let installed =
        tauri::async_runtime::spawn_blocking(move || update.install(bytes).map_err(|e| refusal(&e)))
            .await
            .map_err(|_| updates.refused(&Refusal::InstallerFailed, &version))?;
    if let Err(refusal) = installed {
        return Err(updates.refused(&refusal, &version).into());
    }
    tracing::info!("update installed; restarting");
    app.restart()
}

/// The plugin's error as the core's refusal (translation only; the words are the core's).
fn refusal(error: &UpdaterError) -> Refusal {
    match error {
        UpdaterError::Minisign(_) | UpdaterError::Base64(_) | UpdaterError::SignatureUtf8(_) => {
            Refusal::Signature
        }
        UpdaterError::SignedVersionMismatch { signed, .. } => {
            Refusal::SignedVersion { signed: signed.clone() }
        }
        UpdaterError::MissingSignedVersion => Refusal::SignedVersion { signed: "no version".into() },
        UpdaterError::InvalidUpdaterFormat => Refusal::NotAnInstaller,
        UpdaterError::PackageInstallFailed
        | UpdaterError::DebInstallFailed
        | UpdaterError::AuthenticationFailed => Refusal::InstallerFailed,
        UpdaterError::TargetNotFound(_)
        | UpdaterError::TargetsNotFound(_)
        | UpdaterError::ReleaseNotFound => Refusal::NoLongerOffered,
        other => Refusal::NotUpdatable(other.to_string()),
    }
}
