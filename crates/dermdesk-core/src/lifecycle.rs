//! The desk's life cycle at run time: the [`Stage`] (`life.rs`) behind one lock, with the I/O
//! each transition needs — the vault, enrolment, opening and closing the cache, the engine,
//! the crypto-shred — and the audit entries they leave. A shell (the Tauri app, a test) makes
//! one [`Lifecycle`], forwards the consultant's commands to it and shows the [`LifeEvent`]s it
//! reports; it decides nothing.
//!
//! Invariants:
//! - Patient data is reachable ([`Lifecycle::desk`]) only while the stage is open.
//! - One transition at a time (`transition`); the stage changes only through [`life::next`].
//! - A connect that fails leaves nothing behind: the half-made cache and its keychain entries
//!   are shredded (unless the desk already had its passphrase: then it stays, to connect again).
//! - Signing is refused by the desk itself unless the stage allows it ([`Stage::may_sign`]):
//!   every desk this opens carries a gate back to the stage.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use dermdesk_protocol::audit::AuditEvent;
use zeroize::Zeroizing;

use crate::clock::SharedClock;
use crate::connect::{judge_service, parse_enrolment_code, parse_service_address, DeploymentConfig};
use crate::engine::{Engine, EngineEvent, EngineSettings};
use crate::life::{self, Ended, Event, LifeView, Stage};
use crate::lock::{shred, CacheKey, KdfParams, LockPolicy, Unlocked, Vault, VaultState};
use crate::secrets::SecretStore;
use crate::views::{StatusError, SyncPhase, SyncStatus};
use crate::worklist::Readiness;
use crate::{CoreError, Desk, DeskConfig};

/// What a lifecycle needs to know, decided by the shell at start.
pub struct LifeSettings {
    pub desk: DeskConfig,
    pub secrets: Arc<dyn SecretStore>,
    pub kdf: KdfParams,
    pub clock: SharedClock,
    pub policy: LockPolicy,
    pub engine: EngineSettings,
    pub deployment: DeploymentConfig,
}

/// What the shell shows.
#[derive(Debug, Clone)]
pub enum LifeEvent {
    /// The stage changed (the lock and Connect screens).
    Stage(LifeView),
    /// The sync status changed.
    Status(SyncStatus),
    ReferralsChanged,
    OutcomeChanged {
        referral_id: String,
    },
    /// The device was crypto-shredded: the shell clears whatever it keeps itself (web storage).
    Wiped,
}

type Sink = Box<dyn Fn(LifeEvent) + Send + Sync>;

pub struct Lifecycle {
    settings: LifeSettings,
    vault: OnceLock<Vault>,
    /// The one lock: the stage, and what it holds open.
    inner: Mutex<Inner>,
    /// One transition (connect, unlock, lock, sign-out, wipe) at a time.
    transition: tokio::sync::Mutex<()>,
    sink: Sink,
    me: Weak<Lifecycle>,
}

struct Inner {
    stage: Stage,
    /// The open cache and its engine (stage Unlocked or Recheck).
    open: Option<Open>,
    /// A desk made or opened but not yet working: enrolled and waiting for its passphrase, or
    /// unlocked but not enrolled.
    pending: Option<Pending>,
    /// The service moved (the embedded demo hub takes a new loopback port each start).
    service_moved_to: Option<String>,
    /// The address last typed on the Connect screen.
    last_address: Option<String>,
}

struct Open {
    desk: Arc<Desk>,
    engine: Engine,
}

struct Pending {
    key: CacheKey,
    desk: Arc<Desk>,
    passphrase_set: bool,
}

fn guard(mutex: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CoreError> + Send + 'static,
) -> Result<T, CoreError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| CoreError::Io(e.to_string()))?
}

impl Lifecycle {
    /// A lifecycle at [`Stage::Starting`]; nothing is read until [`Lifecycle::prepare`].
    pub fn new(settings: LifeSettings, sink: impl Fn(LifeEvent) + Send + Sync + 'static) -> Arc<Lifecycle> {
        Arc::new_cyclic(|me| Lifecycle {
            settings,
            vault: OnceLock::new(),
            inner: Mutex::new(Inner {
                stage: Stage::Starting,
                open: None,
                pending: None,
                service_moved_to: None,
                last_address: None,
            }),
            transition: tokio::sync::Mutex::new(()),
            sink: Box::new(sink),
            me: me.clone(),
        })
    }

    /// A lifecycle that could not even be set up (no data folder, a bad machine-wide setting):
    /// it stays at [`Stage::Failed`] with `error`, and every command says so.
    pub fn could_not_start(
        error: CoreError,
        demo: bool,
        sink: impl Fn(LifeEvent) + Send + Sync + 'static,
    ) -> Arc<Lifecycle> {
        let settings = LifeSettings {
            desk: DeskConfig { data_dir: PathBuf::new(), device_name: String::new() },
            secrets: Arc::new(crate::secrets::MemorySecretStore::default()),
            kdf: KdfParams::default(),
            clock: Arc::new(crate::clock::SystemClock),
            policy: LockPolicy::default(),
            engine: EngineSettings { demo, ..EngineSettings::default() },
            deployment: DeploymentConfig::default(),
        };
        let life = Lifecycle::new(settings, sink);
        life.fail(error);
        life
    }

    /// Start-up failed before the vault was read (the shell's own part, e.g. the demo hub).
    pub fn fail(&self, error: CoreError) {
        tracing::error!(kind = ?error.kind(), "start-up failed");
        let _ =
            self.apply(Event::StartFailed(StatusError { kind: error.kind(), message: error.to_string() }));
        (self.sink)(LifeEvent::Status(self.status()));
    }

    pub fn policy(&self) -> &LockPolicy {
        &self.settings.policy
    }

    pub fn data_dir(&self) -> PathBuf {
        self.settings.desk.data_dir.clone()
    }

    /// The service lives at a new address now (same service, same enrolment): the desk is
    /// pointed at it whenever it opens.
    pub fn service_moved_to(&self, url: &str) {
        guard(&self.inner).service_moved_to = Some(url.to_owned());
    }

    // -- what the shell reads ----------------------------------------------------------------

    pub fn stage(&self) -> Stage {
        guard(&self.inner).stage.clone()
    }

    pub fn view(&self) -> LifeView {
        let inner = guard(&self.inner);
        let deployment = &self.settings.deployment;
        LifeView {
            state: inner.stage.name(),
            failures: self.vault.get().and_then(|vault| vault.failures().ok()).unwrap_or(0),
            notice: inner.stage.notice(),
            service_url: deployment.service_url.clone().or_else(|| inner.last_address.clone()),
            service_url_locked: deployment.service_url_locked && deployment.service_url.is_some(),
        }
    }

    /// The open desk; refused (with what to do) in every other stage.
    pub fn desk(&self) -> Result<Arc<Desk>, CoreError> {
        let inner = guard(&self.inner);
        match &inner.open {
            Some(open) => Ok(Arc::clone(&open.desk)),
            None => Err(refusal(&inner.stage, "show patient data")),
        }
    }

    pub fn status(&self) -> SyncStatus {
        let inner = guard(&self.inner);
        if let Some(open) = &inner.open {
            return open.engine.status().borrow().clone();
        }
        SyncStatus {
            phase: if inner.stage == Stage::Connecting { SyncPhase::Enrolling } else { SyncPhase::Idle },
            last_error: match &inner.stage {
                Stage::Failed(error) => Some(error.clone()),
                _ => None,
            },
            demo: self.settings.engine.demo,
            ..SyncStatus::default()
        }
    }

    pub fn sync_now(&self) -> Result<(), CoreError> {
        let inner = guard(&self.inner);
        let open = inner.open.as_ref().ok_or_else(|| refusal(&inner.stage, "sync"))?;
        open.engine.sync_now();
        Ok(())
    }

    pub fn cancel_sync(&self) -> Result<(), CoreError> {
        let inner = guard(&self.inner);
        let open = inner.open.as_ref().ok_or_else(|| refusal(&inner.stage, "stop a sync"))?;
        open.engine.cancel_sync();
        Ok(())
    }

    /// A full sync now, then what is here for working offline (`Engine::prepare_for_offline`).
    pub async fn prepare_for_offline(&self) -> Result<Readiness, CoreError> {
        let prepared = {
            let inner = guard(&self.inner);
            let open = inner.open.as_ref().ok_or_else(|| refusal(&inner.stage, "prepare for offline"))?;
            open.engine.prepare_for_offline()
        };
        prepared.await
    }

    // -- transitions ---------------------------------------------------------------------------

    /// Applies `event` to the stage (or refuses it) and tells the shell.
    fn apply(&self, event: Event) -> Result<(), CoreError> {
        {
            let mut inner = guard(&self.inner);
            inner.stage = life::next(&inner.stage, event).map_err(life::Refused::into_error)?;
        }
        self.emit_stage();
        Ok(())
    }

    pub fn emit_stage(&self) {
        (self.sink)(LifeEvent::Stage(self.view()));
    }

    fn vault(&self) -> Result<&Vault, CoreError> {
        self.vault.get().ok_or_else(|| refusal(&Stage::Starting, "open"))
    }

    /// Finds the keychain and the vault. A set-up interrupted between enrolment and passphrase
    /// left a cache nobody can open: it is erased here and the Connect screen says so.
    pub async fn prepare(&self) {
        let _one = self.transition.lock().await;
        let dir = self.settings.desk.data_dir.clone();
        let secrets = Arc::clone(&self.settings.secrets);
        let kdf = self.settings.kdf;
        let result = blocking(move || {
            let vault = Vault::new(&dir, Arc::clone(&secrets), kdf, Instant::now())?;
            let passphrase_set = vault.state()? == VaultState::Locked;
            let cache_exists = dir.join(crate::desk::CACHE_FILE).exists();
            let legacy = !passphrase_set && cache_exists && vault.has_unsealed_key()?;
            let interrupted = !passphrase_set && cache_exists && !legacy;
            if interrupted {
                let removed = shred(&dir, secrets.as_ref())?;
                tracing::warn!(files = removed.len(), "an interrupted set-up was erased");
            }
            Ok((vault, passphrase_set, interrupted, legacy))
        })
        .await;
        let event = match result {
            Ok((vault, passphrase_set, interrupted, legacy)) => {
                let _ = self.vault.set(vault);
                if legacy {
                    // An older Derm Desk's enrolled cache with its key unsealed: it only needs
                    // a passphrase (Vault::choose_passphrase seals that key).
                    guard(&self.inner).stage = Stage::ChoosePassphrase;
                    self.emit_stage();
                    return;
                }
                Event::Prepared { passphrase_set, interrupted }
            }
            Err(error) => {
                tracing::error!(kind = ?error.kind(), "start-up failed");
                Event::StartFailed(StatusError { kind: error.kind(), message: error.to_string() })
            }
        };
        let _ = self.apply(event);
        (self.sink)(LifeEvent::Status(self.status()));
    }

    /// The Connect screen: checks the address and the code, asks the service who it is, then
    /// enrols a new desk (its cache key in memory until the passphrase is chosen). On any
    /// failure the screen is usable again and nothing half-made is left.
    pub async fn connect(&self, address: &str, code: &str) -> Result<(), CoreError> {
        let _one = self.transition.lock().await;
        let deployment = &self.settings.deployment;
        let address = match (&deployment.service_url, deployment.service_url_locked) {
            (Some(fixed), true) => fixed.clone(),
            _ => parse_service_address(address)?,
        };
        guard(&self.inner).last_address = Some(address.clone());
        let code = parse_enrolment_code(code)?;
        self.apply(Event::ConnectStarted)?;
        match self.enrol_desk(&address, &code).await {
            Ok(passphrase_set) => {
                let event = Event::Enrolled { passphrase_set, now: Instant::now() };
                if passphrase_set {
                    let pending = guard(&self.inner).pending.take().expect("an enrolled desk is pending");
                    return self.go_to_work(pending.desk, event);
                }
                self.apply(event)
            }
            Err(error) => {
                tracing::info!(kind = ?error.kind(), "connecting failed");
                self.discard_half_made().await;
                self.apply(Event::ConnectFailed)?;
                Err(error)
            }
        }
    }

    /// Returns whether the desk already had a passphrase.
    async fn enrol_desk(&self, address: &str, code: &str) -> Result<bool, CoreError> {
        let client = crate::client::HubClient::new(address, None)?;
        let info = client.service_info().await?;
        judge_service(address, &info, self.settings.clock.now())?;
        let existing = guard(&self.inner).pending.as_ref().map(|p| (Arc::clone(&p.desk), p.passphrase_set));
        let (desk, passphrase_set) = match existing {
            Some(existing) => existing,
            None => {
                let key = CacheKey::random();
                let desk = self.open_cache(&key).await?;
                guard(&self.inner).pending =
                    Some(Pending { key, desk: Arc::clone(&desk), passphrase_set: false });
                (desk, false)
            }
        };
        desk.enrol(address, code).await.map_err(|error| match error {
            CoreError::Offline(why) => CoreError::ServiceUnreachable(format!("{address}: {why}")),
            other => other,
        })?;
        Ok(passphrase_set)
    }

    /// After a failed connect: a desk without a passphrase is erased (files and keychain
    /// entries); one that has its passphrase stays pending, to connect again.
    async fn discard_half_made(&self) {
        let pending = {
            let mut inner = guard(&self.inner);
            match &inner.pending {
                Some(pending) if !pending.passphrase_set => inner.pending.take(),
                _ => None,
            }
        };
        if let Some(pending) = pending {
            drop(pending.key);
            close_desk(pending.desk).await;
            self.shred_files().await;
        }
    }

    async fn open_cache(&self, key: &CacheKey) -> Result<Arc<Desk>, CoreError> {
        let config = self.settings.desk.clone();
        let secrets = Arc::clone(&self.settings.secrets);
        let clock = Arc::clone(&self.settings.clock);
        let key = CacheKey::from_slice(key.bytes())?;
        let gate = self.me.clone();
        let desk = blocking(move || {
            let desk = Desk::open_with_key(config, secrets, &key)?.with_clock(clock);
            desk.set_signing_gate(Arc::new(move || match gate.upgrade() {
                Some(life) => life.check_may_sign(),
                None => Err(CoreError::Locked),
            }));
            Ok(desk)
        })
        .await?;
        Ok(Arc::new(desk))
    }

    /// The gate every desk's `sign_outcome` passes: unlocked, and the passphrase recent enough.
    /// Refused for its age, the stage becomes Recheck (the window asks for the passphrase).
    fn check_may_sign(&self) -> Result<(), CoreError> {
        let now = Instant::now();
        let stage = self.stage();
        if stage.may_sign(&self.settings.policy, now) {
            return Ok(());
        }
        if matches!(stage, Stage::Unlocked(_)) {
            self.apply(Event::SignRefused)?;
        }
        Err(match stage {
            Stage::Unlocked(_) | Stage::Recheck(_) => CoreError::ReauthRequired,
            other => refusal(&other, "sign"),
        })
    }

    /// The first passphrase of a new (or an older, unsealed) desk: seals its key and opens it.
    pub async fn choose_passphrase(&self, passphrase: &str) -> Result<(), CoreError> {
        let _one = self.transition.lock().await;
        if self.stage() != Stage::ChoosePassphrase {
            return Err(refusal(&self.stage(), "choose a passphrase"));
        }
        let pending = guard(&self.inner).pending.take();
        let passphrase = Zeroizing::new(passphrase.to_owned());
        let desk = match pending {
            Some(pending) => {
                let key = CacheKey::from_slice(pending.key.bytes())?;
                let me = self.me.upgrade().expect("alive while called");
                let sealed = blocking(move || me.vault()?.seal_key(&key, &passphrase)).await;
                if let Err(error) = sealed {
                    guard(&self.inner).pending = Some(pending);
                    return Err(error);
                }
                pending.desk
            }
            None => {
                let me = self.me.upgrade().expect("alive while called");
                let key = blocking(move || me.vault()?.choose_passphrase(&passphrase)).await?;
                self.open_cache(&key).await?
            }
        };
        self.go_to_work(desk, Event::PassphraseChosen { now: Instant::now() })
    }

    /// Unlocks with the passphrase (within the attempt rules) and opens the desk.
    pub async fn unlock(&self, passphrase: &str) -> Result<(), CoreError> {
        let _one = self.transition.lock().await;
        match self.stage() {
            Stage::Locked { .. } => {}
            stage if stage.is_open() => return Ok(()),
            stage => return Err(refusal(&stage, "unlock")),
        }
        let passphrase = Zeroizing::new(passphrase.to_owned());
        let me = self.me.upgrade().expect("alive while called");
        let result = blocking(move || me.vault()?.unlock(&passphrase, Instant::now())).await;
        let Unlocked { key, failed_before } = match result {
            Ok(unlocked) => unlocked,
            Err(CoreError::TooManyAttempts) => {
                // The vault has shredded the device already.
                self.ended(Ended::TooManyAttempts);
                return Err(CoreError::TooManyAttempts);
            }
            Err(error) => {
                self.emit_stage();
                return Err(error);
            }
        };
        let desk = self.open_cache(&key).await?;
        let moved = guard(&self.inner).service_moved_to.clone();
        if desk.enrolment()?.is_none() {
            // Unlocked, but never enrolled (an older Derm Desk let a failed enrolment leave this):
            // the Connect screen, enrolling into this desk, and then straight to work.
            guard(&self.inner).pending = Some(Pending { key, desk, passphrase_set: true });
            self.apply(Event::Unlocked { now: Instant::now() })?;
            self.apply(Event::NeedsEnrolment)?;
            return Ok(());
        }
        if let Some(url) = moved {
            desk.set_hub_url(&url)?;
        }
        if failed_before > 0 {
            audit(&desk, AuditEvent::UnlockFailed, Some(&failed_before.to_string()));
        }
        self.go_to_work(desk, Event::Unlocked { now: Instant::now() })
    }

    /// The passphrase again before signing (same attempt rules as unlocking).
    pub async fn reauthenticate(&self, passphrase: &str) -> Result<(), CoreError> {
        let stage = self.stage();
        if !stage.is_open() {
            return Err(refusal(&stage, "confirm the passphrase"));
        }
        let passphrase = Zeroizing::new(passphrase.to_owned());
        let me = self.me.upgrade().expect("alive while called");
        match blocking(move || me.vault()?.unlock(&passphrase, Instant::now())).await {
            Ok(Unlocked { failed_before, .. }) => {
                if failed_before > 0 {
                    if let Ok(desk) = self.desk() {
                        audit(&desk, AuditEvent::UnlockFailed, Some(&failed_before.to_string()));
                    }
                }
                self.apply(Event::Rechecked { now: Instant::now() })
            }
            Err(CoreError::TooManyAttempts) => {
                let _one = self.transition.lock().await;
                self.close_open().await;
                self.ended(Ended::TooManyAttempts);
                Err(CoreError::TooManyAttempts)
            }
            Err(error) => Err(error),
        }
    }

    /// The passphrase check before signing was cancelled.
    pub fn cancel_recheck(&self) -> Result<(), CoreError> {
        self.apply(Event::RecheckCancelled)
    }

    /// The consultant did something in the window.
    pub fn activity(&self, now: Instant) {
        let mut inner = guard(&self.inner);
        if let Ok(stage) = life::next(&inner.stage, Event::Activity { now }) {
            inner.stage = stage;
        }
    }

    /// Locks now (`idle`: because of inactivity): the database closes, its keys leave memory.
    pub async fn lock(&self, idle: Option<Duration>) -> Result<(), CoreError> {
        let _one = self.transition.lock().await;
        if !self.stage().is_open() {
            return Ok(());
        }
        if let Ok(desk) = self.desk() {
            audit(&desk, AuditEvent::Locked, idle.map(|_| "idle"));
        }
        self.close_open().await;
        self.apply(Event::Locked { idle })?;
        tracing::info!("locked");
        Ok(())
    }

    /// Signs out: erases this computer's cache and keys (crypto-shred). Outcomes not yet sent
    /// are never lost silently: without `confirm_unsent` it refuses and says how many.
    pub async fn sign_out(&self, confirm_unsent: bool) -> Result<(), CoreError> {
        let desk = self.desk()?;
        let unsent = desk.unsent_outcomes()?;
        if unsent > 0 && !confirm_unsent {
            return Err(CoreError::UnsentOutcomes(unsent));
        }
        desk.audit(AuditEvent::SignedOut, None, None, (unsent > 0).then(|| unsent.to_string()).as_deref())?;
        // The audit log's last entries go to the service if it can be reached quickly.
        if let Ok(client) = desk.client() {
            let _ = tokio::time::timeout(Duration::from_secs(5), desk.push_audit(&client)).await;
        }
        drop(desk);
        self.wipe(Ended::SignedOut { unsent }).await;
        Ok(())
    }

    /// The service refused this device (revoked): wipe it and say so plainly.
    pub async fn revoked(&self) {
        tracing::warn!("the service no longer accepts this device: wiping it");
        self.wipe(Ended::Revoked).await;
    }

    /// Closes whatever is open, crypto-shreds the profile (keychain entries first, then the
    /// cache files) and shows the Connect screen with why.
    async fn wipe(&self, ended: Ended) {
        let _one = self.transition.lock().await;
        self.close_open().await;
        let pending = guard(&self.inner).pending.take();
        if let Some(pending) = pending {
            close_desk(pending.desk).await;
        }
        self.shred_files().await;
        self.ended(ended);
    }

    async fn shred_files(&self) {
        let dir = self.settings.desk.data_dir.clone();
        let secrets = Arc::clone(&self.settings.secrets);
        match blocking(move || shred(&dir, secrets.as_ref())).await {
            Ok(removed) => tracing::info!(files = removed.len(), "device wiped"),
            Err(error) => tracing::error!(kind = ?error.kind(), "wiping the device failed: {error}"),
        }
    }

    fn ended(&self, ended: Ended) {
        (self.sink)(LifeEvent::Wiped);
        if let Err(error) = self.apply(Event::Ended(ended)) {
            tracing::warn!("{error}");
        }
        (self.sink)(LifeEvent::Status(self.status()));
    }

    /// Locks the desk after the idle period (checked every second on the monotonic clock).
    pub async fn watch_idle(self: Arc<Self>) {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if self.stage().idle_expired(&self.settings.policy, Instant::now()) {
                let _ = self.lock(Some(self.settings.policy.idle)).await;
            }
        }
    }

    // -- the open desk ----------------------------------------------------------------------

    fn start_engine(&self, desk: Arc<Desk>) {
        let me = self.me.clone();
        let engine = Engine::start(Arc::clone(&desk), self.settings.engine.clone(), move |event| {
            let Some(life) = me.upgrade() else { return };
            match event {
                EngineEvent::ReferralsChanged => (life.sink)(LifeEvent::ReferralsChanged),
                EngineEvent::OutcomeChanged { referral_id } => {
                    (life.sink)(LifeEvent::OutcomeChanged { referral_id })
                }
                // Not from inside the engine's own task: wiping waits for the engine to stop.
                EngineEvent::DeviceRevoked => {
                    tokio::spawn(async move { life.revoked().await });
                }
            }
        });
        let mut status = engine.status();
        let me = self.me.clone();
        tokio::spawn(async move {
            while status.changed().await.is_ok() {
                let snapshot = status.borrow_and_update().clone();
                match me.upgrade() {
                    Some(life) => (life.sink)(LifeEvent::Status(snapshot)),
                    None => break,
                }
            }
        });
        guard(&self.inner).open = Some(Open { desk, engine });
    }

    /// Opens for work: the engine starts, the audit log records it, and the window hears the
    /// status (last sync, outbox, consultant) and that referrals are there to show *before* the
    /// stage changes, so no "Not synced yet" or empty worklist flashes when the lock screen goes.
    fn go_to_work(&self, desk: Arc<Desk>, event: Event) -> Result<(), CoreError> {
        audit(&desk, AuditEvent::Unlocked, None);
        self.start_engine(desk);
        (self.sink)(LifeEvent::Status(self.status()));
        (self.sink)(LifeEvent::ReferralsChanged);
        self.apply(event)
    }

    async fn close_open(&self) {
        let open = guard(&self.inner).open.take();
        if let Some(Open { desk, engine }) = open {
            engine.shutdown().await;
            close_desk(desk).await;
        }
    }
}

/// Waits until nothing else holds the desk, so the database is closed (and its key zeroized)
/// when this returns. Requests in flight finish first (bounded wait).
async fn close_desk(desk: Arc<Desk>) {
    let started = Instant::now();
    while Arc::strong_count(&desk) > 1 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if Arc::strong_count(&desk) > 1 {
        tracing::warn!("the desk was still in use when closing; it closes when the last request ends");
    }
}

fn audit(desk: &Desk, event: AuditEvent, detail: Option<&str>) {
    if let Err(error) = desk.audit(event, None, None, detail) {
        tracing::warn!(kind = ?error.kind(), "could not write the audit log");
    }
}

/// Why `what` cannot be done in `stage`, as the consultant reads it.
fn refusal(stage: &Stage, what: &'static str) -> CoreError {
    match stage {
        Stage::Failed(error) => CoreError::NotNow(error.message.clone()),
        stage => life::Refused { stage: stage.name(), event: what }.into_error(),
    }
}
