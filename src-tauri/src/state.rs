//! What the shell holds while running: the core's [`Lifecycle`] (which holds the stage, the
//! vault, and once unlocked the desk and its engine) and, in demo mode, the embedded hub.
//! Every rule is the lifecycle's; this only hands it to the commands.

use std::sync::{Arc, Mutex, OnceLock};

use dermdesk_core::lifecycle::Lifecycle;
use dermdesk_core::updates::Updates;
use dermdesk_core::Desk;

use crate::demo::EmbeddedHub;
use crate::error::{AppError, AppResult};

pub struct AppState {
    life: OnceLock<Arc<Lifecycle>>,
    /// Kept alive for the app's lifetime in demo mode.
    hub: Mutex<Option<EmbeddedHub>>,
    /// This run's look for updates and the offer (`dermdesk_core::updates`).
    updates: Updates,
}

impl Default for AppState {
    fn default() -> AppState {
        AppState {
            life: OnceLock::new(),
            hub: Mutex::new(None),
            updates: Updates::new(env!("CARGO_PKG_VERSION")),
        }
    }
}

impl AppState {
    pub fn set_life(&self, life: Arc<Lifecycle>) {
        let _ = self.life.set(life);
    }

    /// The lifecycle; set in `setup`, before the window can call anything.
    pub fn life(&self) -> AppResult<&Arc<Lifecycle>> {
        self.life.get().ok_or_else(AppError::starting)
    }

    pub fn desk(&self) -> AppResult<Arc<Desk>> {
        Ok(self.life()?.desk()?)
    }

    pub fn updates(&self) -> &Updates {
        &self.updates
    }

    pub fn keep_hub(&self, hub: EmbeddedHub) {
        *self.hub.lock().unwrap_or_else(|e| e.into_inner()) = Some(hub);
    }

    /// The embedded demo hub's address and a fresh enrolment code for a new desk.
    pub fn demo_service(&self) -> Option<Result<(String, String), String>> {
        let hub = self.hub.lock().unwrap_or_else(|e| e.into_inner());
        hub.as_ref().map(|hub| hub.enrolment_code_for_new_desk().map(|code| (hub.url().to_owned(), code)))
    }
}
