//! The IPC commands: each takes the state and its arguments and calls the core. No business
//! rules here.

use dermdesk_core::views::{OutcomeView, ReferralView, SyncStatus, WorklistRow};
use dermdesk_protocol::Outcome;
use tauri::State;

use crate::error::{AppError, AppResult};
use crate::photos::photo_url;
use crate::state::AppState;

#[tauri::command]
pub fn status(state: State<'_, AppState>) -> AppResult<SyncStatus> {
    Ok(state.life()?.status())
}

#[tauri::command]
pub async fn worklist(state: State<'_, AppState>) -> AppResult<Vec<WorklistRow>> {
    let desk = state.desk()?;
    run_blocking(move || Ok(desk.worklist()?)).await
}

/// One page of the worklist as filtered and searched, with counts per status and practice.
#[tauri::command]
pub async fn worklist_query(
    state: State<'_, AppState>,
    query: dermdesk_core::worklist::WorklistQuery,
) -> AppResult<dermdesk_core::worklist::WorklistPage> {
    let desk = state.desk()?;
    run_blocking(move || Ok(desk.worklist_query(&query)?)).await
}

/// The worklist's filters, search and scroll as last left (kept in the encrypted cache).
#[tauri::command]
pub async fn worklist_view(state: State<'_, AppState>) -> AppResult<Option<serde_json::Value>> {
    let desk = state.desk()?;
    run_blocking(move || Ok(desk.worklist_view_state()?)).await
}

#[tauri::command]
pub async fn save_worklist_view(state: State<'_, AppState>, view: serde_json::Value) -> AppResult<()> {
    let desk = state.desk()?;
    run_blocking(move || Ok(desk.save_worklist_view_state(&view)?)).await
}

/// Is everything here for working offline, and what is missing.
#[tauri::command]
pub async fn readiness(state: State<'_, AppState>) -> AppResult<dermdesk_core::worklist::Readiness> {
    let desk = state.desk()?;
    run_blocking(move || Ok(desk.readiness()?)).await
}

/// "Prepare for offline": a full sync now, then the readiness report. Progress arrives as
/// `status` events meanwhile.
#[tauri::command]
pub async fn prepare_for_offline(
    state: State<'_, AppState>,
) -> AppResult<dermdesk_core::worklist::Readiness> {
    Ok(state.life()?.prepare_for_offline().await?)
}

/// Referrals falling due from `from` to `to` (London dates, both included): a trip's workload.
#[tauri::command]
pub async fn due_within(
    state: State<'_, AppState>,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> AppResult<Vec<WorklistRow>> {
    let desk = state.desk()?;
    run_blocking(move || Ok(desk.due_within(from, to)?)).await
}

#[tauri::command]
pub async fn referral(state: State<'_, AppState>, referral_id: String) -> AppResult<ReferralView> {
    let desk = state.desk()?;
    let mut view = run_blocking(move || Ok(desk.open_referral(&referral_id)?)).await?;
    let priors = view.priors.iter_mut().flat_map(|prior| prior.photos.iter_mut());
    for photo in view.photos.iter_mut().chain(priors) {
        if photo.ready {
            photo.url = Some(photo_url(&photo.meta.content_id));
        }
    }
    Ok(view)
}

#[tauri::command]
pub async fn sign_and_send(
    state: State<'_, AppState>,
    referral_id: String,
    referral_version: u64,
    outcome: Outcome,
) -> AppResult<OutcomeView> {
    let desk = state.desk()?;
    // The desk asks the life cycle first: unlocked, and the passphrase recent enough.
    let view = run_blocking(move || Ok(desk.sign_outcome(&referral_id, referral_version, outcome)?)).await?;
    state.life()?.sync_now()?;
    Ok(view)
}

#[tauri::command]
pub fn sync_now(state: State<'_, AppState>) -> AppResult<()> {
    Ok(state.life()?.sync_now()?)
}

#[tauri::command]
pub fn cancel_sync(state: State<'_, AppState>) -> AppResult<()> {
    Ok(state.life()?.cancel_sync()?)
}

/// Saves the outcome form as typed (`null` discards the draft).
#[tauri::command]
pub async fn save_draft(
    state: State<'_, AppState>,
    referral_id: String,
    draft: Option<serde_json::Value>,
) -> AppResult<()> {
    let desk = state.desk()?;
    run_blocking(move || match draft {
        Some(draft) => Ok(desk.save_draft(&referral_id, &draft)?),
        None => Ok(desk.discard_draft(&referral_id)?),
    })
    .await
}

/// The diagnosis picklist (SNOMED CT coded), for the outcome form's search.
#[tauri::command]
pub fn diagnoses() -> &'static [dermdesk_core::diagnoses::Diagnosis] {
    dermdesk_core::diagnoses::all()
}

/// What the governance rules allow for this referral and the diagnosis chosen so far.
#[tauri::command]
pub async fn outcome_advice(
    state: State<'_, AppState>,
    referral_id: String,
    diagnosis_code: Option<String>,
) -> AppResult<Vec<dermdesk_core::governance::KindAdvice>> {
    let desk = state.desk()?;
    run_blocking(move || Ok(desk.outcome_advice(&referral_id, diagnosis_code.as_deref())?)).await
}

/// The version of Derm Desk running (tauri.conf.json's, which the bundler makes the package's),
/// for the device panel: what a consultant reads out to their service's support desk.
#[tauri::command]
pub fn app_version<R: tauri::Runtime>(app: tauri::AppHandle<R>) -> String {
    app.package_info().version.to_string()
}

/// This device's enrolment and keys (for the device panel); `null` before enrolment.
#[tauri::command]
pub async fn device(state: State<'_, AppState>) -> AppResult<Option<dermdesk_core::keys::DeviceView>> {
    let desk = state.desk()?;
    run_blocking(move || Ok(desk.device()?)).await
}

/// Replaces this device's signing key (the service must be reachable). Returns the new device view.
#[tauri::command]
pub async fn rotate_key(state: State<'_, AppState>) -> AppResult<Option<dermdesk_core::keys::DeviceView>> {
    let desk = state.desk()?;
    desk.rotate_key().await?;
    run_blocking(move || Ok(desk.device()?)).await
}

/// Saves the referral's signed outcome as a file the GP practice can verify; returns its path.
#[tauri::command]
pub async fn export_outcome<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
    state: State<'_, AppState>,
    referral_id: String,
) -> AppResult<String> {
    let desk = state.desk()?;
    let dir = export_dir(&app)?;
    run_blocking(move || Ok(desk.export_outcome_file(&referral_id, &dir)?.display().to_string())).await
}

/// `DERMDESK_EXPORT_DIR`, else "Derm Desk exports" in the user's documents folder.
fn export_dir<R: tauri::Runtime>(app: &tauri::AppHandle<R>) -> AppResult<std::path::PathBuf> {
    use tauri::Manager;
    if let Some(dir) = std::env::var_os("DERMDESK_EXPORT_DIR") {
        return Ok(dir.into());
    }
    let paths = app.path();
    let documents = paths
        .document_dir()
        .or_else(|_| paths.home_dir().map(|home| home.join("Documents")))
        .map_err(|e| AppError::new("io", format!("no documents folder to export into: {e}")))?;
    Ok(documents.join("Derm Desk exports"))
}

/// Called by the UI once the worklist is on screen; lets a headless screenshot run know.
#[tauri::command]
pub fn ui_ready() -> AppResult<()> {
    if let Some(path) = std::env::var_os("DERMDESK_READY_FILE") {
        std::fs::write(path, b"ready").map_err(|e| AppError::new("io", e.to_string()))?;
    }
    Ok(())
}

/// Keychain and SQLCipher calls block; keep them off the IPC thread.
async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> AppResult<T> + Send + 'static) -> AppResult<T> {
    tauri::async_runtime::spawn_blocking(f).await.map_err(|e| AppError::new("internal", e.to_string()))?
}
