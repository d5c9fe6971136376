//! The lock screen's commands: choose a passphrase, unlock, lock, report activity, re-enter the
//! passphrase before signing, sign out; and the idle watch and the wipe after a revocation. Each
//! calls `dermdesk_core::lock` (the rules) and opens or closes the desk; no rule lives here.

use std::time::{Duration, Instant};

use dermdesk_core::lock::{shred, CacheKey, Unlocked};
use dermdesk_core::CoreError;
use dermdesk_protocol::audit::AuditEvent;
use tauri::{AppHandle, Emitter, Manager, Runtime, State};
use zeroize::Zeroizing;

use crate::error::{AppError, AppResult};
use crate::state::{close, AppState, LockView};

pub fn emit_lock_state<R: Runtime>(app: &AppHandle<R>) {
    let _ = app.emit("lock-state", app.state::<AppState>().lock_view());
}

#[tauri::command]
pub fn lock_status(state: State<'_, AppState>) -> LockView {
    state.lock_view()
}

/// First start: seals a new cache key under the passphrase, then opens the desk.
#[tauri::command]
pub async fn choose_passphrase<R: Runtime>(app: AppHandle<R>, passphrase: String) -> AppResult<LockView> {
    choose_passphrase_now(&app, &passphrase).await?;
    Ok(app.state::<AppState>().lock_view())
}

/// Unlocks with the passphrase (within the attempt rules) and opens the desk.
#[tauri::command]
pub async fn unlock<R: Runtime>(app: AppHandle<R>, passphrase: String) -> AppResult<LockView> {
    unlock_now(&app, &passphrase).await?;
    Ok(app.state::<AppState>().lock_view())
}

/// Runs a vault operation (Argon2id: a few hundred ms) off the async threads.
async fn with_vault<R: Runtime, T: Send + 'static>(
    app: &AppHandle<R>,
    f: impl FnOnce(&dermdesk_core::lock::Vault) -> Result<T, CoreError> + Send + 'static,
) -> AppResult<T> {
    let app = app.clone();
    tauri::async_runtime::spawn_blocking(move || {
        let state = app.state::<AppState>();
        Ok(f(&state.profile()?.vault)?)
    })
    .await
    .map_err(|e| AppError::new("internal", e.to_string()))?
}

pub async fn choose_passphrase_now<R: Runtime>(app: &AppHandle<R>, passphrase: &str) -> AppResult<()> {
    let state = app.state::<AppState>();
    let _one_at_a_time = state.transition.lock().await;
    let passphrase = Zeroizing::new(passphrase.to_owned());
    let key = with_vault(app, move |vault| vault.choose_passphrase(&passphrase)).await?;
    opened(app, key, 0).await
}

pub async fn unlock_now<R: Runtime>(app: &AppHandle<R>, passphrase: &str) -> AppResult<()> {
    let state = app.state::<AppState>();
    let _one_at_a_time = state.transition.lock().await;
    if state.lock_view().state == "unlocked" {
        return Ok(());
    }
    let passphrase = Zeroizing::new(passphrase.to_owned());
    let result = with_vault(app, move |vault| vault.unlock(&passphrase, Instant::now())).await;
    if result.as_ref().is_err_and(|error| error.kind == "too_many_attempts") {
        state.set_notice(Some(CoreError::TooManyAttempts.to_string()));
        clear_webview_data(app);
        emit_lock_state(app);
    }
    let Unlocked { key, failed_before } = result?;
    opened(app, key, failed_before).await
}

async fn opened<R: Runtime>(app: &AppHandle<R>, key: CacheKey, failed_before: u32) -> AppResult<()> {
    let state = app.state::<AppState>();
    crate::open_desk(app, key).await?;
    state.set_notice(None);
    if failed_before > 0 {
        audit(&state, AuditEvent::UnlockFailed, Some(&failed_before.to_string()));
    }
    audit(&state, AuditEvent::Unlocked, None);
    emit_lock_state(app);
    Ok(())
}

fn audit(state: &AppState, event: AuditEvent, detail: Option<&str>) {
    if let Ok(desk) = state.desk() {
        if let Err(error) = desk.audit(event, None, None, detail) {
            tracing::warn!(kind = ?error.kind(), "could not write the audit log");
        }
    }
}

/// Locks now: the database closes and the keys leave memory; the window shows the lock screen.
#[tauri::command]
pub async fn lock<R: Runtime>(app: AppHandle<R>) -> AppResult<LockView> {
    lock_now(&app, None).await;
    Ok(app.state::<AppState>().lock_view())
}

async fn lock_now<R: Runtime>(app: &AppHandle<R>, notice: Option<String>) {
    let state = app.state::<AppState>();
    let _one_at_a_time = state.transition.lock().await;
    audit(&state, AuditEvent::Locked, notice.as_deref().map(|_| "idle"));
    if let Some(running) = state.take_running() {
        close(running).await;
        tracing::info!("locked");
    }
    state.set_notice(notice);
    emit_lock_state(app);
}

/// The consultant did something in the window (the UI reports it every few seconds at most).
#[tauri::command]
pub fn activity(state: State<'_, AppState>) {
    state.touch(Instant::now());
}

/// Re-enters the passphrase before signing (same attempt rules as unlocking).
#[tauri::command]
pub async fn reauthenticate<R: Runtime>(app: AppHandle<R>, passphrase: String) -> AppResult<()> {
    let state = app.state::<AppState>();
    state.desk()?;
    let passphrase = Zeroizing::new(passphrase.to_owned());
    let result = with_vault(&app, move |vault| vault.unlock(&passphrase, Instant::now())).await;
    match result {
        Ok(Unlocked { failed_before, .. }) => {
            if failed_before > 0 {
                audit(&state, AuditEvent::UnlockFailed, Some(&failed_before.to_string()));
            }
            state.reauthenticated(Instant::now());
            Ok(())
        }
        Err(error) if error.kind == "too_many_attempts" => {
            // The vault has shredded the keys; close what is left and say so.
            wipe(&app, error.message.clone()).await;
            Err(error)
        }
        Err(error) => Err(error),
    }
}

/// Signs out: erases this computer's cache and keys (crypto-shred). Outcomes not yet sent are
/// never lost silently: without `confirm_unsent` the command refuses and says how many.
#[tauri::command]
pub async fn sign_out<R: Runtime>(app: AppHandle<R>, confirm_unsent: bool) -> AppResult<LockView> {
    let state = app.state::<AppState>();
    let desk = state.desk()?;
    let unsent = desk.unsent_outcomes()?;
    if unsent > 0 && !confirm_unsent {
        return Err(CoreError::UnsentOutcomes(unsent).into());
    }
    desk.audit(AuditEvent::SignedOut, None, None, (unsent > 0).then(|| unsent.to_string()).as_deref())?;
    // The audit log's last entries go to the service if it can be reached quickly.
    if let Ok(client) = desk.client() {
        let _ = tokio::time::timeout(Duration::from_secs(5), desk.push_audit(&client)).await;
    }
    drop(desk);
    let notice = if unsent > 0 {
        format!(
            "Signed out. This computer's cache and keys were erased, including {unsent} signed outcome(s) \
             that had not been sent, as you confirmed."
        )
    } else {
        "Signed out. This computer's cache and keys were erased.".to_owned()
    };
    wipe(&app, notice).await;
    Ok(state.lock_view())
}

/// The service refused this device (revoked): wipe it and tell the consultant plainly.
pub async fn wipe_revoked<R: Runtime>(app: &AppHandle<R>) {
    tracing::warn!("the service no longer accepts this device: wiping it");
    wipe(app, CoreError::DeviceRevoked.to_string()).await;
}

/// Closes the desk, crypto-shreds the profile (keychain entries first, then the cache files),
/// clears the web view's own storage, and shows `notice` on the lock screen.
async fn wipe<R: Runtime>(app: &AppHandle<R>, notice: String) {
    let state = app.state::<AppState>();
    let _one_at_a_time = state.transition.lock().await;
    if let Some(running) = state.take_running() {
        close(running).await;
    }
    if let (Some(data_dir), Ok(profile)) = (state.data_dir(), state.profile()) {
        match shred(&data_dir, profile.secrets.as_ref()) {
            Ok(removed) => tracing::info!(files = removed.len(), "device wiped"),
            Err(error) => tracing::error!(kind = ?error.kind(), "wiping the device failed: {error}"),
        }
    }
    clear_webview_data(app);
    state.set_notice(Some(notice));
    emit_lock_state(app);
}

fn clear_webview_data<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        if let Err(error) = window.clear_all_browsing_data() {
            tracing::warn!("could not clear the web view's storage: {error}");
        }
    }
}

/// Locks the app after the idle period (checked every second on the monotonic clock).
pub async fn watch_idle<R: Runtime>(app: AppHandle<R>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let state = app.state::<AppState>();
        if state.idle_expired(Instant::now()) {
            let seconds = state.policy.idle.as_secs();
            let notice = match seconds {
                0..=59 => format!("Locked after {seconds} seconds without activity."),
                _ => format!("Locked after {} minutes without activity.", seconds.div_ceil(60)),
            };
            lock_now(&app, Some(notice)).await;
        }
    }
}
