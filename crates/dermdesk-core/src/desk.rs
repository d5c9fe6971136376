//! `Desk`: one consultant's desk on this device: the cache, the keychain and the service
//! enrolment, with the operations the shell offers (worklist, open, sign) and the sync steps
//! the engine drives (pull the feed, fetch photos, push the outbox).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Utc;
use dermdesk_protocol::signature::{encode_public_key, key_id, sign_outcome};
use dermdesk_protocol::{Consultant, EnrolRequest, Outcome, OutcomePayload, PhotoMeta};
use ed25519_dalek::SigningKey;
use rand::rngs::OsRng;

use crate::cache::Cache;
use crate::client::{check_service_url, HubClient};
use crate::governance;
use crate::plan::{
    after_push, plan_feed_page, prove_delivery, referral_ids, retry_photo, FetchFailure, OutboxState,
    OutboxUpdate, PushResult,
};
use crate::secrets::{SecretStore, CACHE_KEY, DEVICE_SIGNING_KEY, DEVICE_TOKEN};
use crate::verify::verify_photo;
use crate::views::{self, OutcomeView, PhotoItem, ReferralView};
use crate::CoreError;

/// A photo download keeps what it has received in pieces of this size, so a download cut off by
/// a crash resumes rather than restarts; a dropped connection keeps everything received, whatever
/// this size. Smaller pieces mean less lost to a crash but more bytes written twice.
pub const CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// Largest draft kept (the form's JSON); a real draft is a few KiB.
pub const MAX_DRAFT_BYTES: usize = 256 * 1024;

/// File name of the encrypted cache inside the data directory.
pub const CACHE_FILE: &str = "cache.sqlite3";

#[derive(Debug, Clone)]
pub struct DeskConfig {
    /// Holds the encrypted cache and nothing else that is patient-identifiable.
    pub data_dir: PathBuf,
    pub device_name: String,
}

/// This device's enrolment with a service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Enrolment {
    pub hub_url: String,
    pub device_id: String,
    pub key_id: String,
    pub consultant: Consultant,
}

pub struct Desk {
    cache: Mutex<Cache>,
    pub(crate) secrets: Arc<dyn SecretStore>,
    config: DeskConfig,
    counters: SyncCounters,
    /// The service's working-day limit and the bank holiday calendar (deadline.rs).
    deadlines: crate::deadline::DeadlinePolicy,
    /// Previews, thumbnails and tile pyramids of recently viewed photos (memory only).
    pub(crate) photo_server: crate::photos::PhotoServer,
    /// Content ids refused for good (hostile metadata, or bytes that match their content id but
    /// are no usable image): not downloaded again. Filled from the cache's photo failures on
    /// first use, so a restart does not fetch a content-refused photo again either.
    refused_photos: Mutex<Option<std::collections::HashSet<String>>>,
    /// Where "now" comes from (`clock.rs`): the computer's clock unless [`Desk::with_clock`].
    clock: crate::clock::SharedClock,
    /// Asked before anything is signed: the life cycle's "unlocked, and the passphrase recent
    /// enough" (`lifecycle.rs`). A desk opened without one (tests, tools) has no such rule.
    signing_gate: std::sync::OnceLock<SigningGate>,
}

/// Says whether signing may go ahead now (`Desk::set_signing_gate`).
pub type SigningGate = Arc<dyn Fn() -> Result<(), CoreError> + Send + Sync>;

/// How a photo failure refused for good by its bytes starts (kept across restarts), and one
/// refused from its metadata alone (decided again after a restart).
const REFUSED_FOR_GOOD: &str = "refused: ";
const REFUSED_BEFORE_DOWNLOAD: &str = "refused before download: ";

/// What the photo downloads met since this desk was opened (for the fault harness, benchmarks
/// and diagnostics; never patient data).
#[derive(Debug, Default)]
pub struct SyncCounters {
    /// Downloads that arrived complete but failed verification (size, fingerprint, header).
    pub photos_damaged: std::sync::atomic::AtomicU64,
    /// Downloads that resumed from a kept piece instead of starting again.
    pub photos_resumed: std::sync::atomic::AtomicU64,
    /// Bytes not downloaded again thanks to resuming.
    pub bytes_resumed: std::sync::atomic::AtomicU64,
    /// Attempts that failed for want of a connection or a busy service.
    pub transient_failures: std::sync::atomic::AtomicU64,
}

/// What one feed pull changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FeedSummary {
    pub pages: u32,
    pub changes: u64,
}

/// What one round of photo downloads did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PhotoSummary {
    pub stored: u64,
    pub bytes: u64,
    /// Photos refused this round (content id, why); they stay invisible and are retried.
    pub failed: Vec<(String, String)>,
    /// Photos refused for good (content id, why): not an image Derm Desk opens, and their
    /// bytes match their content id, so they are not fetched again. Their referral stays.
    pub refused: Vec<(String, String)>,
}

impl Desk {
    /// Opens the desk's encrypted cache with a key kept unsealed in `secrets`, creating both on
    /// first use. For tests and tools (the fault harness, benchmarks); the app seals the key
    /// under the consultant's passphrase and calls [`Desk::open_with_key`] (`lock.rs`).
    ///
    /// Fails closed: without a keychain nothing is created; with a cache but no key the cache
    /// is left untouched.
    pub fn open(config: DeskConfig, secrets: Arc<dyn SecretStore>) -> Result<Desk, CoreError> {
        let path = config.data_dir.join(CACHE_FILE);
        let key = match secrets.get(CACHE_KEY)? {
            Some(key) => crate::lock::CacheKey::from_slice(&key)?,
            None if path.exists() => return Err(CoreError::CacheKeyMissing),
            None => {
                let key = crate::lock::CacheKey::random();
                secrets.set(CACHE_KEY, key.bytes())?;
                key
            }
        };
        Desk::open_with_key(config, secrets, &key)
    }

    /// Opens (creating on first use) the encrypted cache with `key`. The desk's keychain
    /// entries (device token, signing keys) are sealed under a key derived from it, so they are
    /// readable only while the desk is open.
    pub fn open_with_key(
        config: DeskConfig,
        secrets: Arc<dyn SecretStore>,
        key: &crate::lock::CacheKey,
    ) -> Result<Desk, CoreError> {
        std::fs::create_dir_all(&config.data_dir)?;
        restrict_to_owner(&config.data_dir)?;
        // Before anything is created: a replacement calendar that does not parse stops here.
        let deadlines = crate::deadline::DeadlinePolicy::for_data_dir(&config.data_dir)?;
        let path = config.data_dir.join(CACHE_FILE);
        let mut cache = Cache::open(&path, key.bytes())?;
        // Due dates counted with another calendar or limit (an older version, a replaced
        // calendar file) are counted again before anything shows them.
        let moved = cache.recount_due_dates(&deadlines.fingerprint(), |referral| {
            deadlines.due(referral.received_at, referral.practice.nation).due_at
        })?;
        if moved > 0 {
            tracing::info!(moved, "due dates counted again with the current calendar");
        }
        let secrets: Arc<dyn SecretStore> = Arc::new(crate::lock::SealedStore::new(secrets, key));
        let desk = Desk {
            cache: Mutex::new(cache),
            secrets,
            config,
            counters: SyncCounters::default(),
            deadlines,
            photo_server: crate::photos::PhotoServer::default(),
            refused_photos: Mutex::default(),
            clock: Arc::new(crate::clock::SystemClock),
            signing_gate: std::sync::OnceLock::new(),
        };
        // A key replacement interrupted after the service confirmed it is completed before
        // anything can be signed (keys.rs).
        desk.finish_local_key_swap()?;
        Ok(desk)
    }

    /// From now on every signature first asks `gate` (set once; a second call is ignored).
    pub fn set_signing_gate(&self, gate: SigningGate) {
        let _ = self.signing_gate.set(gate);
    }

    /// The same desk on another clock (the demo and the tests run at a chosen instant).
    pub fn with_clock(mut self, clock: crate::clock::SharedClock) -> Desk {
        self.clock = clock;
        self
    }

    /// Now, by the desk's clock: every due date shown and every time stamp kept is taken here.
    pub fn now(&self) -> chrono::DateTime<Utc> {
        self.clock.now()
    }

    /// The working-day limit and bank holiday calendar due dates are counted in.
    pub(crate) fn deadline_policy(&self) -> &crate::deadline::DeadlinePolicy {
        &self.deadlines
    }

    pub fn counters(&self) -> &SyncCounters {
        &self.counters
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    pub(crate) fn cache(&self) -> MutexGuard<'_, Cache> {
        // A panic while holding the lock cannot leave the database half-written (transactions),
        // so the cache stays usable.
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the cache from a blocking thread (for large blobs and many rows).
    async fn with_cache<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Cache) -> Result<T, CoreError> + Send + 'static,
    ) -> Result<T, CoreError> {
        let desk = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&mut desk.cache()))
            .await
            .map_err(|e| CoreError::Cache(format!("cache task failed: {e}")))?
    }

    pub fn integrity_check(&self) -> Result<String, CoreError> {
        self.cache().integrity_check()
    }

    // ------------------------------------------------------------------------------------
    // Enrolment

    pub fn enrolment(&self) -> Result<Option<Enrolment>, CoreError> {
        let cache = self.cache();
        let (Some(hub_url), Some(device_id), Some(key_id), Some(consultant)) = (
            cache.meta("hub_url")?,
            cache.meta("device_id")?,
            cache.meta("key_id")?,
            cache.meta("consultant")?,
        ) else {
            return Ok(None);
        };
        let consultant = serde_json::from_str(&consultant)
            .map_err(|e| CoreError::Cache(format!("enrolment record: {e}")))?;
        Ok(Some(Enrolment { hub_url, device_id, key_id, consultant }))
    }

    /// Enrols this device with the service using a one-time code: creates the device key in the
    /// keychain, registers its public half, and keeps the device token in the keychain.
    pub async fn enrol(&self, hub_url: &str, enrolment_code: &str) -> Result<Enrolment, CoreError> {
        if let Some(existing) = self.enrolment()? {
            return Ok(existing);
        }
        check_service_url(hub_url)?;
        let signing_key = SigningKey::generate(&mut OsRng);
        self.secrets.set(DEVICE_SIGNING_KEY, signing_key.as_bytes())?;
        let request = EnrolRequest {
            enrolment_code: enrolment_code.trim().to_owned(),
            device_name: self.config.device_name.clone(),
            public_key: encode_public_key(&signing_key.verifying_key()),
        };
        let response = HubClient::new(hub_url, None)?.enrol(&request).await?;
        let local_key_id = key_id(&signing_key.verifying_key());
        if response.key_id != local_key_id {
            return Err(CoreError::Protocol("the service registered a different key".into()));
        }
        self.secrets.set(DEVICE_TOKEN, response.device_token.as_bytes())?;
        let consultant =
            serde_json::to_string(&response.consultant).map_err(|e| CoreError::Cache(e.to_string()))?;
        // Public keys: the service's, to check its receipts; this device's, to export outcomes.
        let hub_key = response.hub_key.as_ref().filter(|key| key.decode().is_ok());
        let hub_key =
            hub_key.map(serde_json::to_string).transpose().map_err(|e| CoreError::Cache(e.to_string()))?;
        let public_keys =
            serde_json::json!({ &local_key_id: encode_public_key(&signing_key.verifying_key()) });
        {
            let cache = self.cache();
            cache.set_meta("device_id", &response.device_id)?;
            cache.set_meta("key_id", &local_key_id)?;
            cache.set_meta("consultant", &consultant)?;
            if let Some(hub_key) = &hub_key {
                cache.set_meta(crate::keys::META_HUB_KEY, hub_key)?;
            }
            cache.set_meta(crate::keys::META_PUBLIC_KEYS, &public_keys.to_string())?;
            // Written last: its presence means the enrolment is complete.
            cache.set_meta("hub_url", hub_url)?;
        }
        tracing::info!("device enrolled");
        Ok(Enrolment {
            hub_url: hub_url.to_owned(),
            device_id: response.device_id,
            key_id: local_key_id,
            consultant: response.consultant,
        })
    }

    /// Points an existing enrolment at a new address of the same service (the embedded demo
    /// hub listens on a new loopback port at every start).
    pub fn set_hub_url(&self, hub_url: &str) -> Result<(), CoreError> {
        check_service_url(hub_url)?;
        if self.enrolment()?.is_none() {
            return Err(CoreError::NotEnrolled);
        }
        self.cache().set_meta("hub_url", hub_url)
    }

    /// A client for the enrolled service, with the device token from the keychain.
    pub fn client(&self) -> Result<HubClient, CoreError> {
        let enrolment = self.enrolment()?.ok_or(CoreError::NotEnrolled)?;
        let token = self.secrets.get(DEVICE_TOKEN)?.ok_or(CoreError::NotEnrolled)?;
        let token = String::from_utf8(token.to_vec()).map_err(|_| CoreError::NotEnrolled)?;
        HubClient::new(&enrolment.hub_url, Some(token))
    }

    // ------------------------------------------------------------------------------------
    // What the consultant sees

    // `worklist`, `worklist_query`, `due_within` and `readiness` are in worklist.rs.

    /// The referral with its photos and outcome; marks it opened and audits the view.
    pub fn open_referral(&self, referral_id: &str) -> Result<ReferralView, CoreError> {
        let view = self.referral_view(referral_id)?;
        self.audit(dermdesk_protocol::audit::AuditEvent::ReferralViewed, Some(referral_id), None, None)?;
        Ok(view)
    }

    fn referral_view(&self, referral_id: &str) -> Result<ReferralView, CoreError> {
        let cache = self.cache();
        let cached =
            cache.referral(referral_id)?.ok_or_else(|| CoreError::UnknownReferral(referral_id.to_owned()))?;
        cache.mark_opened(referral_id, self.now())?;
        let failures: HashMap<String, String> =
            cache.photo_failures()?.into_iter().map(|(id, _attempts, problem)| (id, problem)).collect();
        let photo_items = |metas: &[dermdesk_protocol::PhotoMeta]| -> Result<Vec<PhotoItem>, CoreError> {
            let mut photos = Vec::with_capacity(metas.len());
            for meta in metas {
                let ready = cache.has_photo(&meta.content_id)?;
                let quality = if ready { cache.photo_quality(&meta.content_id)? } else { None };
                photos.push(PhotoItem {
                    meta: meta.clone(),
                    ready,
                    url: None,
                    problem: if ready { None } else { failures.get(&meta.content_id).cloned() },
                    quality: quality.as_deref().and_then(views::photo_quality),
                });
            }
            Ok(photos)
        };
        let photos = photo_items(&cached.referral.photos)?;
        let mut priors = Vec::new();
        let patient = &cached.referral.patient.nhs_number;
        for id in
            cache.earlier_referral_ids(patient, &cached.referral.received_at.to_rfc3339(), referral_id)?
        {
            if let Some(prior) = cache.referral(&id)? {
                priors.push(views::PriorReferral {
                    photos: photo_items(&prior.referral.photos)?,
                    referral_id: id,
                    received_at: prior.referral.received_at,
                    question: prior.referral.clinical.question.clone(),
                });
            }
        }
        let latest = cache.latest_outcome(referral_id)?;
        let draft = cache.draft(referral_id)?;
        let draft_value = draft.as_ref().and_then(|(body, _)| serde_json::from_str(body).ok());
        // Signed for an earlier version than the practice's current one: say what changed.
        let changes = match &latest {
            Some(row) if row.signed.payload.referral_version != cached.referral.version => cache
                .reviewed_referral(&row.outcome_id)?
                .map(|before| views::referral_changes(&before, &cached.referral))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let can_sign_again = cached.removed_reason.is_none()
            && latest.as_ref().is_some_and(|row| {
                row.state == OutboxState::Conflict
                    && row.signed.payload.referral_version != cached.referral.version
            });
        Ok(ReferralView {
            changes_since_signed: changes,
            can_sign_again,
            due_at: cached.due_at,
            due: views::due_view(&cached, self.now(), &self.deadlines.calendar),
            removed_reason: cached.removed_reason.map(|r| crate::cache::removal_reason_str(r).to_owned()),
            conflict: views::conflict_reason(&cached, latest.as_ref(), draft.is_some()),
            outcome: latest.as_ref().map(views::outcome_view),
            draft: draft_value,
            draft_saved_at: draft.map(|(_, at)| at),
            nhs_number_problem: views::nhs_number_problem(&cached.referral.patient.nhs_number),
            // Identifiers are shown with any direction control visible (names are isolated for
            // direction by the UI, never changed).
            referral: dermdesk_protocol::Referral {
                patient: dermdesk_protocol::Patient {
                    nhs_number: views::visible_controls(&cached.referral.patient.nhs_number),
                    ..cached.referral.patient
                },
                practice: dermdesk_protocol::GpPractice {
                    ods_code: views::visible_controls(&cached.referral.practice.ods_code),
                    ..cached.referral.practice
                },
                ..cached.referral
            },
            photos,
            priors,
        })
    }

    /// A verified photo's media type and bytes, decrypted in memory only.
    pub fn photo(&self, content_id: &str) -> Result<Option<(String, Vec<u8>)>, CoreError> {
        self.cache().photo(content_id)
    }

    /// Saves the consultant's unsigned outcome form as they type; it survives a crash.
    pub fn save_draft(&self, referral_id: &str, draft: &serde_json::Value) -> Result<(), CoreError> {
        if !draft.is_object() {
            return Err(CoreError::Protocol("a draft must be a JSON object".into()));
        }
        let body = draft.to_string();
        if body.len() > MAX_DRAFT_BYTES {
            return Err(CoreError::Protocol(format!(
                "the draft is larger than {} KiB; the previous draft was kept",
                MAX_DRAFT_BYTES / 1024
            )));
        }
        self.cache().save_draft(referral_id, &body, self.now()).map_err(|e| e.while_saving("the draft"))
    }

    pub fn discard_draft(&self, referral_id: &str) -> Result<(), CoreError> {
        self.cache().discard_draft(referral_id)
    }

    pub fn outbox_waiting(&self) -> Result<u32, CoreError> {
        self.cache().outbox_waiting()
    }

    pub fn last_sync_at(&self) -> Result<Option<chrono::DateTime<Utc>>, CoreError> {
        Ok(self
            .cache()
            .meta("last_sync_at")?
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    // ------------------------------------------------------------------------------------
    // Signing

    /// Signs the outcome with the device key and queues it, in one step: when this returns
    /// Ok, the signed outcome is durable and will be delivered exactly once.
    ///
    /// `reviewed_version` is the referral version the consultant had on screen; if the cache
    /// has moved on (the GP changed the referral), nothing is signed.
    pub fn sign_outcome(
        &self,
        referral_id: &str,
        reviewed_version: u64,
        outcome: Outcome,
    ) -> Result<OutcomeView, CoreError> {
        if let Some(gate) = self.signing_gate.get() {
            gate()?;
        }
        outcome.check()?;
        let enrolment = self.enrolment()?.ok_or(CoreError::NotEnrolled)?;
        let mut cache = self.cache();
        let cached =
            cache.referral(referral_id)?.ok_or_else(|| CoreError::UnknownReferral(referral_id.to_owned()))?;
        if let Some(reason) = cached.removed_reason {
            return Err(CoreError::ReferralRemoved(crate::cache::removal_reason_str(reason).to_owned()));
        }
        if cached.referral.version != reviewed_version {
            return Err(CoreError::ReferralChanged {
                reviewed: reviewed_version,
                current: cached.referral.version,
            });
        }
        governance::check(
            governance_context(&cached.referral),
            &outcome,
            crate::diagnoses::is_suspected_malignancy(outcome.diagnosis_code.as_deref()),
        )?;
        // Key photos must be this referral's own photos.
        if outcome.key_photos.iter().any(|id| !cached.referral.photos.iter().any(|p| &p.content_id == id)) {
            return Err(CoreError::InvalidOutcome(dermdesk_protocol::OutcomeProblem::BadKeyPhoto));
        }
        let seed = self
            .secrets
            .get(DEVICE_SIGNING_KEY)?
            .ok_or_else(|| CoreError::Signing("the device key is missing from the keychain".into()))?;
        let seed: &[u8; 32] =
            seed.as_slice().try_into().map_err(|_| CoreError::Signing("the device key is damaged".into()))?;
        let key = SigningKey::from_bytes(seed);
        if key_id(&key.verifying_key()) != enrolment.key_id {
            return Err(CoreError::Signing(
                "the keychain holds a different key than the one enrolled".into(),
            ));
        }
        let now = self.now();
        let payload = OutcomePayload {
            outcome_id: uuid::Uuid::new_v4().to_string(),
            referral_id: referral_id.to_owned(),
            referral_version: cached.referral.version,
            consultant_id: enrolment.consultant.id,
            device_id: enrolment.device_id,
            key_id: enrolment.key_id,
            signed_at: now,
            outcome,
        };
        let signed = sign_outcome(payload, &key).map_err(|e| CoreError::Signing(e.to_string()))?;
        cache
            .queue_outcome(&signed, &cached.referral, now)
            .map_err(|e| e.while_saving("the signed outcome"))?;
        tracing::info!("outcome signed and queued");
        cache.append_audit(
            dermdesk_protocol::audit::AuditEvent::OutcomeSigned,
            Some(referral_id),
            Some(&signed.payload.outcome_id),
            None,
            now,
        )?;
        let row = cache
            .latest_outcome(referral_id)?
            .ok_or_else(|| CoreError::Cache("queued outcome vanished".into()))?;
        Ok(views::outcome_view(&row))
    }

    /// What the governance rules say of each kind of outcome for this referral, given the
    /// diagnosis chosen so far (a picklist concept id, or none).
    pub fn outcome_advice(
        &self,
        referral_id: &str,
        diagnosis_code: Option<&str>,
    ) -> Result<Vec<governance::KindAdvice>, CoreError> {
        let cached = self
            .cache()
            .referral(referral_id)?
            .ok_or_else(|| CoreError::UnknownReferral(referral_id.to_owned()))?;
        Ok(governance::advise(
            governance_context(&cached.referral),
            crate::diagnoses::is_suspected_malignancy(diagnosis_code),
        ))
    }

    // ------------------------------------------------------------------------------------
    // Sync steps (driven by the engine)

    /// Pulls the change feed to its end, applying each page atomically with its cursor.
    pub async fn pull_feed(
        self: &Arc<Self>,
        client: &HubClient,
        mut on_page: impl FnMut(FeedSummary),
    ) -> Result<FeedSummary, CoreError> {
        let mut summary = FeedSummary::default();
        loop {
            let cursor = self.cache().meta("feed_cursor")?;
            let page = client.feed(cursor.as_deref()).await?;
            let has_more = page.has_more;
            summary.pages += 1;
            summary.changes += page.changes.len() as u64;
            let deadlines = self.deadlines.clone();
            let now = self.now();
            self.with_cache(move |cache| {
                let operations =
                    plan_feed_page(&cache.local_referrals(&referral_ids(&page))?, &page, &deadlines);
                cache.apply(&operations, now)
            })
            .await?;
            on_page(summary);
            if !has_more {
                break;
            }
        }
        self.cache().set_meta("last_feed_at", &self.now().to_rfc3339())?;
        Ok(summary)
    }

    /// Photos referenced by cached referrals but not yet stored, with their metadata; photos
    /// refused for good are recorded as refused (their referral stays reviewable) and left out.
    pub fn missing_photos(&self) -> Result<Vec<PhotoMeta>, CoreError> {
        let wanted = self.missing_photo_metadata()?;
        let mut missing = Vec::with_capacity(wanted.len());
        for meta in wanted {
            if self.is_refused(&meta.content_id) {
                continue;
            }
            match crate::verify::refuse_before_download(&meta) {
                // Metadata may be corrected in a later version: decided afresh after a restart.
                Some(problem) => {
                    self.refuse_photo(&meta.content_id, &format!("{REFUSED_BEFORE_DOWNLOAD}{problem}"))?;
                }
                None => missing.push(meta),
            }
        }
        Ok(missing)
    }

    fn refused_photos(&self) -> std::sync::MutexGuard<'_, Option<std::collections::HashSet<String>>> {
        let mut refused = self.refused_photos.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if refused.is_none() {
            // Bytes refused for good stay refused: they hash to their content id, so a new
            // download could only bring them again.
            let failures = self.cache().photo_failures().unwrap_or_default();
            *refused = Some(
                failures
                    .into_iter()
                    .filter(|(_, _, problem)| problem.starts_with(REFUSED_FOR_GOOD))
                    .map(|(content_id, _, _)| content_id)
                    .collect(),
            );
        }
        refused
    }

    fn is_refused(&self, content_id: &str) -> bool {
        self.refused_photos().as_ref().is_some_and(|refused| refused.contains(content_id))
    }

    /// Records a photo as refused for good: visible as such in readiness, never fetched again
    /// by this desk, and no reason for the sync to count as incomplete.
    fn refuse_photo(&self, content_id: &str, problem: &str) -> Result<String, CoreError> {
        self.refused_photos().get_or_insert_with(Default::default).insert(content_id.to_owned());
        self.record_photo_failure(content_id, problem)
    }

    fn missing_photo_metadata(&self) -> Result<Vec<PhotoMeta>, CoreError> {
        let cache = self.cache();
        let missing = cache.missing_photos()?;
        if missing.is_empty() {
            // The usual case once synced: no need to read and parse every cached referral.
            return Ok(Vec::new());
        }
        let mut metas: HashMap<String, PhotoMeta> = HashMap::new();
        for cached in cache.referrals()? {
            for meta in cached.referral.photos {
                metas.insert(meta.content_id.clone(), meta);
            }
        }
        Ok(missing.into_iter().filter_map(|id| metas.remove(&id)).collect())
    }

    /// Downloads `photos` with at most `concurrency` downloads at a time, each resumable and
    /// verified before it is stored. `on_bytes` is told of every piece received, `on_done` of
    /// every photo finished (stored or refused). Stops at the first sign that the service is
    /// unreachable (after retries), keeping what was received for the next attempt.
    pub async fn fetch_photos(
        self: &Arc<Self>,
        client: &HubClient,
        photos: Vec<PhotoMeta>,
        concurrency: usize,
        on_bytes: Arc<dyn Fn(u64) + Send + Sync>,
        mut on_done: impl FnMut(&PhotoMeta, &Result<u64, String>),
    ) -> Result<PhotoSummary, CoreError> {
        let mut summary = PhotoSummary::default();
        let mut queue = photos.into_iter();
        let mut running = tokio::task::JoinSet::new();
        let mut first_error = None;
        loop {
            while first_error.is_none() && running.len() < concurrency.max(1) {
                let Some(meta) = queue.next() else { break };
                let (desk, client, on_bytes) = (Arc::clone(self), client.clone(), Arc::clone(&on_bytes));
                running.spawn(async move {
                    let result = desk.fetch_photo(&client, meta.clone(), on_bytes.as_ref()).await;
                    (meta, result)
                });
            }
            let Some(joined) = running.join_next().await else { break };
            let (meta, result) = joined.map_err(|e| CoreError::Cache(format!("photo task failed: {e}")))?;
            match result {
                Ok(outcome) => {
                    match &outcome {
                        Ok(bytes) => {
                            summary.stored += 1;
                            summary.bytes += bytes;
                        }
                        Err(problem) if self.is_refused(&meta.content_id) => {
                            summary.refused.push((meta.content_id.clone(), problem.clone()))
                        }
                        Err(problem) => summary.failed.push((meta.content_id.clone(), problem.clone())),
                    }
                    on_done(&meta, &outcome);
                }
                // Let the downloads in flight finish (their progress is kept), start no more.
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(summary),
        }
    }

    /// Downloads, verifies and stores one photo, retrying within this sync as
    /// [`crate::plan::retry_photo`] says. `Ok(Err(problem))`: the photo was refused and stays
    /// invisible; `Err`: the service is unreachable or the cache cannot be written.
    pub async fn fetch_photo(
        self: &Arc<Self>,
        client: &HubClient,
        meta: PhotoMeta,
        on_bytes: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Result<u64, String>, CoreError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (failure, error) = match self.fetch_photo_once(client, &meta, on_bytes).await {
                Ok(size) => return Ok(Ok(size)),
                Err(error @ (CoreError::DiskFull(_) | CoreError::Cache(_) | CoreError::NotEnrolled)) => {
                    return Err(error)
                }
                Err(error) if error.is_transient() => {
                    self.counters.transient_failures.fetch_add(1, Relaxed);
                    (FetchFailure::Transient, error)
                }
                Err(error @ CoreError::RangeRefused) => (FetchFailure::Damaged, error),
                Err(error @ CoreError::PhotoDamaged(_)) => {
                    self.counters.photos_damaged.fetch_add(1, Relaxed);
                    (FetchFailure::Damaged, error)
                }
                Err(error) => (FetchFailure::Refused, error),
            };
            match retry_photo(failure, attempts) {
                Some(wait) => {
                    tracing::debug!(attempts, ?failure, "photo download failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                None if failure == FetchFailure::Transient => return Err(error),
                None if matches!(error, CoreError::PhotoRefused(_)) => {
                    tracing::warn!("photo refused for good");
                    return Ok(Err(
                        self.refuse_photo(&meta.content_id, &format!("{REFUSED_FOR_GOOD}{error}"))?
                    ));
                }
                None => return Ok(Err(self.record_photo_failure(&meta.content_id, &error.to_string())?)),
            }
        }
    }

    /// One attempt: resume from what the cache holds, stream the rest, keep pieces as they
    /// arrive (so a crash or a dropped connection loses at most [`CHUNK_BYTES`]), verify the
    /// whole, then store it and drop the pieces in one transaction.
    async fn fetch_photo_once(
        self: &Arc<Self>,
        client: &HubClient,
        meta: &PhotoMeta,
        on_bytes: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, CoreError> {
        let content_id = meta.content_id.clone();
        let (mut bytes, etag) = {
            let id = content_id.clone();
            self.with_cache(move |cache| cache.photo_partial(&id)).await?
        };
        if bytes.len() as u64 >= meta.size {
            // Complete but never verified, or longer than it should be: start again.
            self.cache().discard_photo_partial(&content_id)?;
            bytes.clear();
        }
        let mut download =
            match client.photo(&content_id, meta.size, bytes.len() as u64, etag.as_deref()).await {
                Err(CoreError::RangeRefused) => {
                    self.cache().discard_photo_partial(&content_id)?;
                    return Err(CoreError::RangeRefused);
                }
                other => other?,
            };
        if download.start == 0 && !bytes.is_empty() {
            // The service sent the whole photo again (its copy changed, or it ignores ranges).
            self.cache().discard_photo_partial(&content_id)?;
            bytes.clear();
        } else if download.start > 0 {
            self.counters.photos_resumed.fetch_add(1, Relaxed);
            self.counters.bytes_resumed.fetch_add(download.start, Relaxed);
        }
        bytes.reserve(meta.size as usize - bytes.len());
        let mut kept = bytes.len();
        let result = loop {
            match download.next_chunk().await {
                Ok(Some(chunk)) => {
                    on_bytes(chunk.len() as u64);
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() - kept >= CHUNK_BYTES {
                        self.keep_chunk(&content_id, kept, download.etag.as_deref(), &bytes[kept..]).await?;
                        kept = bytes.len();
                    }
                }
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        if let Err(error) = result {
            // Keep what arrived; the next attempt asks only for the rest.
            if bytes.len() > kept {
                self.keep_chunk(&content_id, kept, download.etag.as_deref(), &bytes[kept..]).await?;
            }
            return Err(error);
        }
        if (bytes.len() as u64) < meta.size {
            // The body ended early without an error (a truncating proxy): keep the prefix and
            // resume; if it was not a prefix after all, the fingerprint check catches it.
            if bytes.len() > kept {
                self.keep_chunk(&content_id, kept, download.etag.as_deref(), &bytes[kept..]).await?;
            }
            return Err(CoreError::Offline(format!(
                "the photo download stopped after {} of {} bytes",
                bytes.len(),
                meta.size
            )));
        }
        let verified = {
            let meta = meta.clone();
            tokio::task::spawn_blocking(move || verify_photo(&meta, &bytes).map(|()| bytes))
                .await
                .map_err(|e| CoreError::Cache(format!("verification task failed: {e}")))?
        };
        match verified {
            Ok(bytes) => {
                let size = bytes.len() as u64;
                let media_type = meta.media_type.clone();
                let bytes = Arc::new(bytes);
                let (id, stored, now) = (content_id.clone(), Arc::clone(&bytes), self.now());
                self.with_cache(move |cache| {
                    cache
                        .store_verified_photo(&id, &media_type, &stored, now)
                        .map_err(|e| e.while_saving("a downloaded photo"))
                })
                .await?;
                // Preview, thumbnail and quality measures, made once now (off the cache lock);
                // any failure is logged and leaves the photo as stored.
                let desk = Arc::clone(self);
                let _ = tokio::task::spawn_blocking(move || desk.prepare_photo(&content_id, &bytes)).await;
                Ok(size)
            }
            Err(problem) => {
                // Some received piece was wrong (or the whole is no usable image); nothing of it
                // is kept.
                self.cache().discard_photo_partial(&content_id)?;
                if problem.is_transit() {
                    Err(CoreError::PhotoDamaged(problem.to_string()))
                } else {
                    Err(CoreError::PhotoRefused(problem.to_string()))
                }
            }
        }
    }

    async fn keep_chunk(
        self: &Arc<Self>,
        content_id: &str,
        start: usize,
        etag: Option<&str>,
        piece: &[u8],
    ) -> Result<(), CoreError> {
        let (content_id, etag, piece) = (content_id.to_owned(), etag.map(str::to_owned), piece.to_vec());
        self.with_cache(move |cache| {
            cache
                .save_photo_chunk(&content_id, start as u64, etag.as_deref(), &piece)
                .map_err(|e| e.while_saving("part of a photo download"))
        })
        .await
    }

    fn record_photo_failure(&self, content_id: &str, problem: &str) -> Result<String, CoreError> {
        let attempts = self.cache().record_photo_failure(content_id, problem)?;
        tracing::warn!(attempts, "photo refused: {problem}");
        Ok(problem.to_owned())
    }

    /// Pushes every queued outcome that is due; returns the referral ids whose outcome changed.
    /// An outcome becomes `sent` only on a receipt signed by the service's key for exactly it.
    pub async fn push_outbox(self: &Arc<Self>, client: &HubClient) -> Result<Vec<String>, CoreError> {
        self.finish_key_rotation(client).await;
        let now = self.now();
        let due: Vec<_> = self
            .cache()
            .outbox()?
            .into_iter()
            .filter(|row| row.state == OutboxState::Queued && row.next_attempt_at <= now)
            .collect();
        let mut changed = Vec::new();
        if due.is_empty() {
            return Ok(changed);
        }
        let hub_key = self.receipt_key(client).await?;
        for row in due {
            let result = prove_delivery(client.submit(&row.signed).await, &row.signed, hub_key.as_ref());
            if let PushResult::UnprovenReceipt(problem) = &result {
                tracing::warn!(
                    "the service acknowledged an outcome, but its receipt does not prove it: {problem}"
                );
                changed.push(row.referral_id.clone());
            }
            let update = after_push(result, row.attempts, self.now(), rand::random::<f64>());
            let cache = self.cache();
            match &update {
                OutboxUpdate::Sent(receipt) => {
                    cache.mark_sent(&row.outcome_id, receipt, self.now())?;
                    tracing::info!("outcome delivered");
                    drop(cache);
                    self.audit(
                        dermdesk_protocol::audit::AuditEvent::OutcomeSent,
                        Some(&row.referral_id),
                        Some(&row.outcome_id),
                        None,
                    )?;
                }
                OutboxUpdate::Failed { state, problem } => {
                    cache.mark_outcome_failed(&row.outcome_id, *state, problem)?;
                    tracing::warn!(state = state.as_str(), "outcome not accepted");
                }
                OutboxUpdate::RetryAt { at, problem } => {
                    cache.schedule_retry(&row.outcome_id, *at, problem)?
                }
            }
            if !matches!(update, OutboxUpdate::RetryAt { .. }) {
                changed.push(row.referral_id.clone());
            }
        }
        Ok(changed)
    }

    /// The newest signed outcome for a referral exactly as queued (for export and tests).
    pub fn signed_outcome_for(
        &self,
        referral_id: &str,
    ) -> Result<Option<dermdesk_protocol::SignedOutcome>, CoreError> {
        Ok(self.cache().latest_outcome(referral_id)?.map(|row| row.signed))
    }

    /// Makes every queued outcome due for sending now.
    pub fn retry_outbox_now(&self) -> Result<usize, CoreError> {
        self.cache().retry_outbox_now(self.now())
    }

    /// When the next queued outcome is due for a retry, if any.
    pub fn next_outbox_attempt(&self) -> Result<Option<chrono::DateTime<Utc>>, CoreError> {
        Ok(self
            .cache()
            .outbox()?
            .into_iter()
            .filter(|r| r.state == OutboxState::Queued)
            .map(|r| r.next_attempt_at)
            .min())
    }

    /// Applies the retention rule; returns how many referrals were purged.
    pub fn purge_expired(&self, retention: std::time::Duration) -> Result<usize, CoreError> {
        let mut cache = self.cache();
        let purge = crate::plan::referrals_to_purge(&cache.sent_referrals()?, self.now(), retention);
        if !purge.is_empty() {
            cache.purge_referrals(&purge)?;
            tracing::info!(count = purge.len(), "purged referrals past retention");
        }
        Ok(purge.len())
    }

    pub fn record_sync_success(&self) -> Result<(), CoreError> {
        self.cache().set_meta("last_sync_at", &self.now().to_rfc3339())
    }
}

fn governance_context(referral: &dermdesk_protocol::Referral) -> governance::Context {
    governance::Context { urgency: referral.urgency, consent_given: referral.consent.given }
}

#[cfg(unix)]
fn restrict_to_owner(dir: &Path) -> Result<(), CoreError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

#[cfg(not(unix))]
fn restrict_to_owner(_dir: &Path) -> Result<(), CoreError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MemorySecretStore;

    fn config(dir: &Path) -> DeskConfig {
        DeskConfig { data_dir: dir.join("desk"), device_name: "test".into() }
    }

    #[test]
    fn no_keychain_means_no_cache_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Arc::new(MemorySecretStore::default());
        secrets.set_unavailable(true);
        let error = Desk::open(config(dir.path()), secrets).err().expect("must fail closed");
        assert!(matches!(error, CoreError::KeychainUnavailable(_)), "{error}");
        assert!(!dir.path().join("desk").join(CACHE_FILE).exists(), "no cache file may be created");
    }

    #[test]
    fn a_cache_whose_key_is_gone_is_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Arc::new(MemorySecretStore::default());
        drop(Desk::open(config(dir.path()), secrets.clone()).unwrap());
        let path = dir.path().join("desk").join(CACHE_FILE);
        let before = std::fs::read(&path).unwrap();
        secrets.delete(CACHE_KEY).unwrap();
        let error = Desk::open(config(dir.path()), secrets).err().expect("must refuse");
        assert!(matches!(error, CoreError::CacheKeyMissing), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "the cache must not be modified");
    }

    #[test]
    fn the_cache_is_encrypted_and_a_wrong_key_cannot_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Arc::new(MemorySecretStore::default());
        let desk = Desk::open(config(dir.path()), secrets.clone()).unwrap();
        desk.cache().set_meta("canary", "CANARY-PLAINTEXT-7731").unwrap();
        drop(desk);
        let path = dir.path().join("desk").join(CACHE_FILE);
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.starts_with(b"SQLite format 3"), "the header of an encrypted database is random");
        assert!(!bytes.windows(21).any(|w| w == b"CANARY-PLAINTEXT-7731"));
        let error = Cache::open(&path, &[0x42; 32]).err().expect("wrong key must fail");
        assert!(error.to_string().contains("cannot be decrypted"), "{error}");
        // The right key still works afterwards.
        let desk = Desk::open(config(dir.path()), secrets).unwrap();
        assert_eq!(desk.cache().meta("canary").unwrap().as_deref(), Some("CANARY-PLAINTEXT-7731"));
        assert_eq!(desk.integrity_check().unwrap(), "ok");
    }
}
