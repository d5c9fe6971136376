//! The Connect and lock screens' commands: connect to a service, choose a passphrase, unlock,
//! lock, report activity, re-enter the passphrase before signing, sign out. Each forwards to
//! `dermdesk_core::lifecycle::Lifecycle`, which holds the stage and every rule.

use std::time::Instant;

use dermdesk_core::connect::CodeCheck;
use dermdesk_core::life::LifeView;
use tauri::{AppHandle, Manager, Runtime, State};

use crate::error::AppResult;
use crate::state::AppState;

#[tauri::command]
pub fn lock_status(state: State<'_, AppState>) -> AppResult<LifeView> {
    Ok(state.life()?.view())
}

/// Connects to the service at `address` with the one-time enrolment `code`; the passphrase
/// comes next.
#[tauri::command]
pub async fn connect(state: State<'_, AppState>, address: String, code: String) -> AppResult<LifeView> {
    let life = state.life()?;
    life.connect(&address, &code).await?;
    Ok(life.view())
}

/// The enrolment code as typed so far: complete, incomplete or impossible (and why).
#[tauri::command]
pub fn check_code(code: String) -> CodeCheck {
    dermdesk_core::connect::check_enrolment_code(&code)
}

#[tauri::command]
pub async fn choose_passphrase(state: State<'_, AppState>, passphrase: String) -> AppResult<LifeView> {
    let life = state.life()?;
    life.choose_passphrase(&passphrase).await?;
    Ok(life.view())
}

#[tauri::command]
pub async fn unlock(state: State<'_, AppState>, passphrase: String) -> AppResult<LifeView> {
    let life = state.life()?;
    life.unlock(&passphrase).await?;
    Ok(life.view())
}

#[tauri::command]
pub async fn lock(state: State<'_, AppState>) -> AppResult<LifeView> {
    let life = state.life()?;
    life.lock(None).await?;
    Ok(life.view())
}

/// The consultant did something in the window (the UI reports it every few seconds at most).
#[tauri::command]
pub fn activity(state: State<'_, AppState>) -> AppResult<()> {
    state.life()?.activity(Instant::now());
    Ok(())
}

#[tauri::command]
pub async fn reauthenticate(state: State<'_, AppState>, passphrase: String) -> AppResult<()> {
    Ok(state.life()?.reauthenticate(&passphrase).await?)
}

#[tauri::command]
pub fn cancel_reauthentication(state: State<'_, AppState>) -> AppResult<()> {
    Ok(state.life()?.cancel_recheck()?)
}

#[tauri::command]
pub async fn sign_out(state: State<'_, AppState>, confirm_unsent: bool) -> AppResult<LifeView> {
    let life = state.life()?;
    life.sign_out(confirm_unsent).await?;
    Ok(life.view())
}

/// After a wipe: the web view's own storage goes too.
pub fn clear_webview_data<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        if let Err(error) = window.clear_all_browsing_data() {
            tracing::warn!("could not clear the web view's storage: {error}");
        }
    }
}
