//! What the shell holds while running: the vault (the passphrase-sealed cache key), and once
//! unlocked the desk and its engine; or why the cache could not be opened. Locking drops the
//! desk (the database closes and its keys are zeroized); the rules are in `dermdesk_core::lock`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use dermdesk_core::engine::Engine;
use dermdesk_core::lock::{LockPolicy, Session, Vault, VaultState};
use dermdesk_core::secrets::SecretStore;
use dermdesk_core::views::{StatusError, SyncPhase, SyncStatus};
use dermdesk_core::{CoreError, Desk, DeskConfig};
use serde::Serialize;

use crate::demo::EmbeddedHub;
use crate::error::{AppError, AppResult};

pub struct Running {
    pub desk: Arc<Desk>,
    pub engine: Engine,
}

/// Everything needed to open the desk once the passphrase is known.
pub struct Profile {
    pub config: DeskConfig,
    pub secrets: Arc<dyn SecretStore>,
    pub vault: Vault,
    /// Kept alive for the app's lifetime in demo mode.
    pub hub: Option<EmbeddedHub>,
    /// "Now" for the desk (and the embedded hub): the computer's clock, or `DERMDESK_NOW` in
    /// the demo and development builds (`dermdesk_core::clock`).
    pub clock: dermdesk_core::clock::SharedClock,
}

/// What the lock screen shows.
#[derive(Debug, Clone, Serialize)]
pub struct LockView {
    /// `choose_passphrase`, `locked`, `unlocked`, `starting` or `failed` (the notice says why).
    pub state: &'static str,
    /// Consecutive wrong passphrases so far.
    pub failures: u32,
    /// Something the consultant must read (the device was wiped, signed out…).
    pub notice: Option<String>,
}

#[derive(Default)]
pub struct AppState {
    running: Mutex<Option<Running>>,
    session: Mutex<Option<Session>>,
    profile: OnceLock<Profile>,
    startup_error: Mutex<Option<StatusError>>,
    notice: Mutex<Option<String>>,
    /// One unlock, lock or sign-out at a time.
    pub transition: tokio::sync::Mutex<()>,
    pub policy: LockPolicy,
    pub demo: bool,
}

fn guard<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl AppState {
    pub fn new(demo: bool, policy: LockPolicy) -> AppState {
        AppState { demo, policy, ..AppState::default() }
    }

    pub fn set_profile(&self, profile: Profile) {
        let _ = self.profile.set(profile);
    }

    pub fn profile(&self) -> AppResult<&Profile> {
        self.profile.get().ok_or_else(|| match &*guard(&self.startup_error) {
            Some(error) => AppError::from_status(error),
            None => AppError::starting(),
        })
    }

    pub fn data_dir(&self) -> Option<PathBuf> {
        self.profile.get().map(|profile| profile.config.data_dir.clone())
    }

    pub fn set_running(&self, running: Running, now: Instant) {
        *guard(&self.running) = Some(running);
        *guard(&self.session) = Some(Session::unlocked(now));
    }

    /// Takes the desk and engine out (locking, signing out, wiping).
    pub fn take_running(&self) -> Option<Running> {
        *guard(&self.session) = None;
        guard(&self.running).take()
    }

    pub fn set_startup_error(&self, error: StatusError) {
        *guard(&self.startup_error) = Some(error);
    }

    pub fn set_notice(&self, notice: Option<String>) {
        *guard(&self.notice) = notice;
    }

    pub fn desk(&self) -> AppResult<Arc<Desk>> {
        if let Some(running) = &*guard(&self.running) {
            return Ok(Arc::clone(&running.desk));
        }
        if let Some(error) = &*guard(&self.startup_error) {
            return Err(AppError::from_status(error));
        }
        Err(match self.profile.get() {
            Some(_) => CoreError::Locked.into(),
            None => AppError::starting(),
        })
    }

    pub fn lock_view(&self) -> LockView {
        let notice = guard(&self.notice).clone();
        let Some(profile) = self.profile.get() else {
            return match &*guard(&self.startup_error) {
                Some(error) => LockView { state: "failed", failures: 0, notice: Some(error.message.clone()) },
                None => LockView { state: "starting", failures: 0, notice },
            };
        };
        let failures = profile.vault.failures().unwrap_or(0);
        let state = if guard(&self.running).is_some() {
            "unlocked"
        } else {
            match profile.vault.state() {
                Ok(VaultState::NoPassphrase) => "choose_passphrase",
                _ => "locked",
            }
        };
        LockView { state, failures, notice }
    }

    /// The consultant did something in the window.
    pub fn touch(&self, now: Instant) {
        if let Some(session) = &mut *guard(&self.session) {
            session.touch(now);
        }
    }

    pub fn idle_expired(&self, now: Instant) -> bool {
        guard(&self.session).as_ref().is_some_and(|session| session.idle_expired(&self.policy, now))
    }

    pub fn may_sign(&self, now: Instant) -> bool {
        guard(&self.session).as_ref().is_some_and(|session| session.may_sign(&self.policy, now))
    }

    pub fn reauthenticated(&self, now: Instant) {
        if let Some(session) = &mut *guard(&self.session) {
            session.reauthenticated(now);
        }
    }

    pub fn cancel_sync(&self) {
        if let Some(running) = &*guard(&self.running) {
            running.engine.cancel_sync();
        }
    }

    pub fn sync_now(&self) {
        if let Some(running) = &*guard(&self.running) {
            running.engine.sync_now();
        }
    }

    /// Runs a full sync and reports readiness (see `Engine::prepare_for_offline`).
    pub async fn prepare_for_offline(&self) -> AppResult<dermdesk_core::worklist::Readiness> {
        let prepared = match &*guard(&self.running) {
            Some(running) => running.engine.prepare_for_offline(),
            None => return Err(self.desk().err().unwrap_or_else(AppError::starting)),
        };
        Ok(prepared.await?)
    }

    pub fn status(&self) -> SyncStatus {
        if let Some(running) = &*guard(&self.running) {
            return running.engine.status().borrow().clone();
        }
        let error = guard(&self.startup_error).clone();
        SyncStatus {
            syncing: false,
            phase: if error.is_none() && self.profile.get().is_none() {
                SyncPhase::Enrolling
            } else {
                SyncPhase::Idle
            },
            last_error: error,
            demo: self.demo,
            ..SyncStatus::default()
        }
    }
}

/// Stops the engine and waits until nothing else holds the desk, so the database is closed
/// (and its key zeroized) when this returns. Commands in flight finish first (bounded wait).
pub async fn close(running: Running) {
    running.engine.shutdown().await;
    let desk = running.desk;
    let started = Instant::now();
    while Arc::strong_count(&desk) > 1 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if Arc::strong_count(&desk) > 1 {
        tracing::warn!("the desk was still in use when locking; it closes when the last request ends");
    }
    drop(desk);
}
