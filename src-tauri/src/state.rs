//! What the shell holds while running: the desk and its engine once the cache is open, or why
//! it could not be opened.

use std::sync::{Arc, Mutex, OnceLock};

use dermdesk_core::engine::Engine;
use dermdesk_core::views::{StatusError, SyncPhase, SyncStatus};
use dermdesk_core::Desk;

use crate::demo::EmbeddedHub;
use crate::error::{AppError, AppResult};

pub struct Running {
    pub desk: Arc<Desk>,
    pub engine: Engine,
    /// Kept alive for the app's lifetime in demo mode.
    pub _hub: Option<EmbeddedHub>,
}

#[derive(Default)]
pub struct AppState {
    running: OnceLock<Running>,
    startup_error: Mutex<Option<StatusError>>,
    pub demo: bool,
}

impl AppState {
    pub fn new(demo: bool) -> AppState {
        AppState { demo, ..AppState::default() }
    }

    pub fn set_running(&self, running: Running) {
        let _ = self.running.set(running);
    }

    pub fn set_startup_error(&self, error: StatusError) {
        *self.startup_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }

    pub fn desk(&self) -> AppResult<Arc<Desk>> {
        match self.running.get() {
            Some(running) => Ok(Arc::clone(&running.desk)),
            None => Err(match &*self.startup_error.lock().unwrap_or_else(|e| e.into_inner()) {
                Some(error) => AppError::from_status(error),
                None => AppError::starting(),
            }),
        }
    }

    pub fn cancel_sync(&self) {
        if let Some(running) = self.running.get() {
            running.engine.cancel_sync();
        }
    }

    pub fn sync_now(&self) {
        if let Some(running) = self.running.get() {
            running.engine.sync_now();
        }
    }

    /// Runs a full sync and reports readiness (see `Engine::prepare_for_offline`).
    pub async fn prepare_for_offline(&self) -> AppResult<dermdesk_core::worklist::Readiness> {
        match self.running.get() {
            Some(running) => Ok(running.engine.prepare_for_offline().await?),
            None => Err(self.desk().err().unwrap_or_else(AppError::starting)),
        }
    }

    pub fn status(&self) -> SyncStatus {
        match self.running.get() {
            Some(running) => running.engine.status().borrow().clone(),
            None => {
                let error = self.startup_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
                SyncStatus {
                    syncing: error.is_none(),
                    phase: if error.is_none() { SyncPhase::Enrolling } else { SyncPhase::Idle },
                    last_error: error,
                    demo: self.demo,
                    ..SyncStatus::default()
                }
            }
        }
    }
}
