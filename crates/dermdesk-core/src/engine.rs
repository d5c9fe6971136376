//! The background sync engine: a tokio task that syncs at start, periodically, when asked, and
//! when the service comes back after being unreachable. It publishes a [`SyncStatus`] and
//! tells the shell when referrals or outcomes changed. It can be shut down at any point: every
//! step it takes is a committed transaction or nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::client::HubClient;
use crate::desk::Desk;
use crate::views::{StatusError, SyncPhase, SyncProgress, SyncStatus};
use crate::CoreError;

#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Time between syncs while online.
    pub interval: Duration,
    /// Time between reachability checks while offline (also the fastest outbox retry).
    pub offline_poll: Duration,
    /// How long a referral stays cached after its outcome was acknowledged.
    pub retention: Duration,
    /// Photo downloads at the same time.
    pub photo_concurrency: usize,
    pub demo: bool,
}

/// Photos fetched between two looks at the outbox.
const PHOTO_BATCH: usize = 8;

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            interval: Duration::from_secs(120),
            offline_poll: Duration::from_secs(10),
            retention: crate::plan::DEFAULT_RETENTION,
            photo_concurrency: 3,
            demo: false,
        }
    }
}

/// Something the shell should refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    ReferralsChanged,
    OutcomeChanged {
        referral_id: String,
    },
    /// The service refused this device's token (revoked, or signed out elsewhere). The engine
    /// has stopped; the shell must crypto-shred the device (`lock::shred`) and say so.
    DeviceRevoked,
}

pub struct Engine {
    desk: Arc<Desk>,
    /// How many sync attempts have ended (finished, failed or cancelled).
    completed: watch::Receiver<u64>,
    trigger: Arc<Notify>,
    asked: Arc<std::sync::atomic::AtomicBool>,
    cancel: Arc<Notify>,
    status: watch::Receiver<SyncStatus>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Engine {
    /// Starts the engine on the current tokio runtime.
    pub fn start(
        desk: Arc<Desk>,
        settings: EngineSettings,
        on_event: impl Fn(EngineEvent) + Send + Sync + 'static,
    ) -> Engine {
        let trigger = Arc::new(Notify::new());
        let initial = SyncStatus {
            demo: settings.demo,
            consultant: desk.enrolment().ok().flatten().map(|e| e.consultant),
            outbox_waiting: desk.outbox_waiting().unwrap_or(0),
            last_sync_at: desk.last_sync_at().ok().flatten(),
            ..SyncStatus::default()
        };
        let (status_sender, status) = watch::channel(initial);
        let (stop, mut stopped) = watch::channel(false);
        let asked = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (completed_sender, completed) = watch::channel(0_u64);
        let engine_desk = Arc::clone(&desk);
        let worker = Worker {
            desk,
            settings,
            status: status_sender,
            on_event: Box::new(on_event),
            asked: Arc::clone(&asked),
        };
        let wake = Arc::clone(&trigger);
        let cancel = Arc::new(Notify::new());
        let cancelled = Arc::clone(&cancel);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    revoked = worker.sync_once() => if revoked {
                        (worker.on_event)(EngineEvent::DeviceRevoked);
                        break;
                    },
                    // Dropping the sync future cancels its requests; every step already taken
                    // is committed, and partial photo downloads resume next time.
                    _ = cancelled.notified() => worker.report(Err(CoreError::Cancelled)),
                    _ = stopped.changed() => break,
                }
                completed_sender.send_modify(|count| *count += 1);
                let pause = worker.pause();
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(pause) => {}
                    _ = stopped.changed() => break,
                }
            }
            worker.status.send_modify(|s| {
                s.syncing = false;
                s.phase = SyncPhase::Idle;
            });
        });
        Engine { desk: engine_desk, completed, trigger, asked, cancel, status, stop, task }
    }

    /// "Prepare for offline": runs a full sync now (feed to its end, every missing photo,
    /// outbox), waits for it to end, and reports what this computer holds. The progress bar
    /// follows [`Engine::status`] meanwhile (phase `photos`, `photos_done` of `photos_total`,
    /// `bytes_done` of `bytes_total`). If the sync stopped early (offline, cancelled, photos
    /// refused), `sync_problem` says why and `missing` says what is not here.
    ///
    /// The future does not borrow the engine: the shell can drop its lock on the engine while
    /// it waits (a lock of the app stops the engine and ends the wait with `Cancelled`).
    pub fn prepare_for_offline(
        &self,
    ) -> impl std::future::Future<Output = Result<crate::worklist::Readiness, CoreError>> + Send + 'static
    {
        let mut completed = self.completed.clone();
        // A sync already running may have read the feed before this was asked: wait for the
        // one after it too.
        let wanted = *completed.borrow_and_update() + if self.status.borrow().syncing { 2 } else { 1 };
        self.sync_now();
        let status = self.status.clone();
        let desk = Arc::clone(&self.desk);
        async move {
            completed.wait_for(|count| *count >= wanted).await.map_err(|_| CoreError::Cancelled)?;
            let problem = status.borrow().last_error.as_ref().map(|error| error.message.clone());
            let mut readiness = tokio::task::spawn_blocking(move || desk.readiness())
                .await
                .map_err(|e| CoreError::Cache(format!("readiness task failed: {e}")))??;
            readiness.sync_problem = problem;
            Ok(readiness)
        }
    }

    /// Asks for a sync as soon as possible (coalesces repeated requests).
    /// Queued outcomes go at once, whatever their backoff said: a person asked.
    pub fn sync_now(&self) {
        self.asked.store(true, std::sync::atomic::Ordering::SeqCst);
        self.trigger.notify_one();
    }

    /// Stops the sync in progress, if any; the next one starts on schedule or on demand.
    pub fn cancel_sync(&self) {
        if self.status.borrow().syncing {
            self.cancel.notify_one();
        }
    }

    pub fn status(&self) -> watch::Receiver<SyncStatus> {
        self.status.clone()
    }

    /// Stops the engine, cancelling any request in flight, and waits for it.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

struct Worker {
    desk: Arc<Desk>,
    settings: EngineSettings,
    status: watch::Sender<SyncStatus>,
    on_event: Box<dyn Fn(EngineEvent) + Send + Sync>,
    asked: Arc<std::sync::atomic::AtomicBool>,
}

impl Worker {
    fn pause(&self) -> Duration {
        let status = self.status.borrow();
        // Offline, busy, or the last sync did not finish: look again soon. That is also how a
        // sync resumes by itself when the connection comes back.
        let settled = status.online == Some(true) && status.last_error.is_none();
        let mut pause = if settled { self.settings.interval } else { self.settings.offline_poll };
        // Wake for the next outbox retry.
        if let Ok(Some(next)) = self.desk.next_outbox_attempt() {
            let until = (next - self.desk.now()).to_std().unwrap_or(Duration::ZERO);
            pause = pause.min(until.max(Duration::from_millis(200)));
        }
        pause
    }

    /// One sync; true when the service said this device is no longer enrolled.
    async fn sync_once(&self) -> bool {
        let client = match self.desk.client() {
            Ok(client) => client,
            Err(CoreError::NotEnrolled) => return false,
            Err(error) => {
                self.report(Err(error));
                return false;
            }
        };
        self.status.send_modify(|s| {
            s.syncing = true;
            s.progress = SyncProgress::default();
        });
        let result = match self.run(&client).await {
            // 401: the token is unknown or revoked (docs/api.md); nothing else answers 401.
            Err(CoreError::Hub { code: dermdesk_protocol::ErrorCode::Unauthorized, .. }) => {
                Err(CoreError::DeviceRevoked)
            }
            other => other,
        };
        let revoked = matches!(result, Err(CoreError::DeviceRevoked));
        self.report(result);
        revoked
    }

    async fn run(&self, client: &HubClient) -> Result<(), CoreError> {
        let was_offline = self.status.borrow().online == Some(false);
        if self.asked.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.desk.retry_outbox_now()?;
        }
        // Outcomes first: they are the consultant's work and the smallest thing to send.
        self.push(client).await?;

        self.phase(SyncPhase::Feed);
        let summary = self
            .desk
            .pull_feed(client, |page| {
                self.status.send_modify(|s| {
                    s.online = Some(true);
                    s.progress.referrals_done = page.changes;
                    s.progress.referrals_total = page.changes;
                });
            })
            .await?;
        if summary.changes > 0 {
            (self.on_event)(EngineEvent::ReferralsChanged);
        }
        if was_offline && self.desk.retry_outbox_now()? > 0 {
            // Back online after a gap: what waited goes now, not at the end of its backoff.
            self.push(client).await?;
        }

        self.phase(SyncPhase::Photos);
        let missing = self.desk.missing_photos()?;
        let bytes_total = missing.iter().map(|m| m.size).sum();
        self.status.send_modify(|s| {
            s.progress.photos_total = missing.len() as u64;
            s.progress.bytes_total = bytes_total;
        });
        let status = self.status.clone();
        let on_bytes: Arc<dyn Fn(u64) + Send + Sync> =
            Arc::new(move |bytes| status.send_modify(|s| s.progress.bytes_done += bytes));
        let mut failures = 0;
        let mut batches = missing.into_iter().peekable();
        while batches.peek().is_some() {
            let batch: Vec<_> = batches.by_ref().take(PHOTO_BATCH).collect();
            let summary = self
                .desk
                .fetch_photos(
                    client,
                    batch,
                    self.settings.photo_concurrency,
                    Arc::clone(&on_bytes),
                    |_, _| {
                        self.status.send_modify(|s| s.progress.photos_done += 1);
                    },
                )
                .await?;
            failures += summary.failed.len();
            (self.on_event)(EngineEvent::ReferralsChanged);
            // Let a freshly signed outcome overtake a long photo download.
            self.push(client).await?;
            self.phase(SyncPhase::Photos);
        }
        // Photos stored before previews and quality measures were kept at sync time get them
        // now, a batch per sync (each is one reduced decode, ~0.1 s for 24 MP).
        let desk = Arc::clone(&self.desk);
        let _ = tokio::task::spawn_blocking(move || desk.prepare_unprepared_photos(PHOTO_BATCH)).await;
        (self.on_event)(EngineEvent::ReferralsChanged);
        self.push(client).await?;
        if self.desk.purge_expired(self.settings.retention)? > 0 {
            (self.on_event)(EngineEvent::ReferralsChanged);
        }
        self.desk.record_sync_success()?;
        if failures > 0 {
            return Err(CoreError::PhotoDamaged(format!(
                "{} stayed damaged after {} attempts",
                if failures == 1 { "1 photo".to_owned() } else { format!("{failures} photos") },
                crate::plan::PHOTO_ATTEMPTS_PER_SYNC
            )));
        }
        Ok(())
    }

    async fn push(&self, client: &HubClient) -> Result<(), CoreError> {
        self.phase(SyncPhase::Outbox);
        for referral_id in self.desk.push_outbox(client).await? {
            (self.on_event)(EngineEvent::OutcomeChanged { referral_id });
        }
        let waiting = self.desk.outbox_waiting()?;
        self.status.send_modify(|s| s.outbox_waiting = waiting);
        // The audit log goes with the outcomes.
        self.desk.push_audit(client).await
    }

    fn phase(&self, phase: SyncPhase) {
        self.status.send_modify(|s| s.phase = phase);
    }

    fn report(&self, result: Result<(), CoreError>) {
        let last_sync_at = self.desk.last_sync_at().ok().flatten();
        let waiting = self.desk.outbox_waiting().ok();
        let consultant = self.desk.enrolment().ok().flatten().map(|e| e.consultant);
        self.status.send_modify(|s| {
            s.syncing = false;
            s.phase = SyncPhase::Idle;
            s.last_sync_at = last_sync_at.or(s.last_sync_at);
            s.consultant = consultant.or(s.consultant.take());
            if let Some(waiting) = waiting {
                s.outbox_waiting = waiting;
            }
            match &result {
                Ok(()) => {
                    s.online = Some(true);
                    s.last_error = None;
                }
                Err(CoreError::Cancelled) => s.last_error = None,
                Err(error) => {
                    if matches!(error, CoreError::Offline(_)) {
                        s.online = Some(false);
                    }
                    s.last_error = Some(StatusError { kind: error.kind(), message: error.to_string() });
                }
            }
        });
        if let Err(error) = result {
            tracing::warn!(kind = ?error.kind(), "sync incomplete");
        }
    }
}
