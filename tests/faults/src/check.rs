//! What the harness checks in the client's cache after every kill, with the client dead: the
//! cache is opened the way the app opens it (the key from the same secret store), never through
//! the client process, so nothing the client believes about itself is taken on trust.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read as _;
use std::path::Path;

use dermdesk_core::cache::{Cache, OutboxRow};
use dermdesk_core::desk::CACHE_FILE;
use dermdesk_core::plan::OutboxState;
use dermdesk_core::secrets::{SecretStore as _, CACHE_KEY, DEVICE_SIGNING_KEY};
use dermdesk_core::verify::verify_photo;
use dermdesk_faults::journal;
use dermdesk_faults::secrets::FileSecretStore;
use dermdesk_hub::{Hub, StoredOutcome};
use dermdesk_protocol::signature::{key_id, verify_outcome};
use dermdesk_protocol::PhotoMeta;
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

/// Where one client keeps its state, and what the harness knows about it.
#[derive(Debug, Clone)]
pub struct ClientFiles<'a> {
    pub data_dir: &'a Path,
    pub secrets: &'a Path,
    pub journal: &'a Path,
    /// The hub's photo directory: the reference bytes for partial downloads.
    pub hub_photo_dir: &'a Path,
}

/// One inspection's findings. Every list names what broke an invariant; all must stay empty.
#[derive(Debug, Default, Clone)]
pub struct Inspection {
    /// The cache file exists (a client killed while opening it for the first time may not
    /// have created it yet).
    pub cache_present: bool,
    pub enrolled: bool,
    /// Anything but "ok" from `PRAGMA integrity_check`, or a cache that would not open/read.
    pub integrity_failures: Vec<String>,
    pub photos_checked: usize,
    /// Visible photos whose bytes do not hash to their content id or fail verification.
    pub corrupt_photos: Vec<String>,
    /// Kept pieces of unfinished downloads, and how many bytes they hold.
    pub partials: usize,
    pub partial_bytes: u64,
    /// Kept pieces that are not a prefix of the real photo (only meaningful without injected
    /// corruption: a flipped byte is kept until the whole photo fails verification).
    pub bad_partials: Vec<String>,
    pub outbox_rows: usize,
    pub bad_signatures: Vec<String>,
    /// Outcomes in the journal (the user was told "queued") that the cache does not hold.
    pub journal_missing: Vec<String>,
    pub journal_entries: usize,
    pub journal_torn: bool,
    /// Referrals with more than one live (queued or sent) outcome: the same decision signed twice.
    pub double_signed: Vec<String>,
    /// Outbox rows marked sent that the hub does not hold.
    pub sent_not_on_hub: Vec<String>,
    /// Outcomes the hub holds for this client's referrals that the cache does not (a signed
    /// outcome deleted locally after it was sent).
    pub hub_unknown_locally: Vec<String>,
    /// The outbox, by outcome id (for the end-of-epoch accounting).
    pub outbox: BTreeMap<String, OutboxRow>,
    /// Photos referenced by cached referrals and not yet stored.
    pub missing_photos: usize,
}

/// Inspects the cache of a dead client. `check_partials`: compare kept download pieces with
/// the real bytes (off while the hub flips bits on purpose). `referrals`: every referral the hub
/// holds for this client's consultant.
pub fn inspect(files: &ClientFiles<'_>, hub: &Hub, referrals: &[String], check_partials: bool) -> Inspection {
    let mut inspection = Inspection::default();
    if let Err(problem) = inspect_into(&mut inspection, files, hub, referrals, check_partials) {
        inspection.integrity_failures.push(problem);
    }
    inspection
}

fn inspect_into(
    found: &mut Inspection,
    files: &ClientFiles<'_>,
    hub: &Hub,
    referrals: &[String],
    check_partials: bool,
) -> Result<(), String> {
    let (journal, torn) = journal::read(files.journal).map_err(|e| format!("journal: {e}"))?;
    found.journal_entries = journal.len();
    found.journal_torn = torn;

    let path = files.data_dir.join(CACHE_FILE);
    if !path.exists() {
        // Nothing can have been promised before the cache existed.
        found.journal_missing.extend(journal.iter().map(|e| e.outcome_id.clone()));
        return Ok(());
    }
    found.cache_present = true;
    let secrets = FileSecretStore::new(files.secrets);
    let key = secrets
        .get(CACHE_KEY)
        .map_err(|e| format!("secret store: {e}"))?
        .ok_or("the cache exists but its key is not in the secret store")?;
    let key: [u8; 32] = key.as_slice().try_into().map_err(|_| "the cache key has the wrong length")?;
    let cache = Cache::open(&path, &key).map_err(|e| format!("opening the cache: {e}"))?;
    // The desk's own entries are sealed under the cache key (lock::SealedStore).
    let sealing_key = dermdesk_core::lock::CacheKey::from_slice(&key).map_err(|e| e.to_string())?;
    let secrets = dermdesk_core::lock::SealedStore::new(std::sync::Arc::new(secrets), &sealing_key);

    let integrity = cache.integrity_check().map_err(|e| format!("integrity_check: {e}"))?;
    if integrity != "ok" {
        // The first two lines say enough (the rest lists every page that followed).
        let lines: Vec<&str> = integrity.lines().collect();
        found.integrity_failures.push(format!(
            "{} ({} lines)",
            lines[..lines.len().min(2)].join(" / "),
            lines.len()
        ));
    }

    // Every visible photo: its bytes hash to its content id and pass the app's own verification
    // against the metadata of a referral that uses it.
    let referrals_cached = cache.referrals().map_err(|e| format!("reading referrals: {e}"))?;
    let metas: HashMap<String, PhotoMeta> = referrals_cached
        .iter()
        .flat_map(|cached| cached.referral.photos.iter().map(|meta| (meta.content_id.clone(), meta.clone())))
        .collect();
    for content_id in cache.stored_photo_ids().map_err(|e| format!("listing photos: {e}"))? {
        found.photos_checked += 1;
        let Some((_, bytes)) = cache.photo(&content_id).map_err(|e| format!("reading a photo: {e}"))? else {
            continue;
        };
        let hash = hex::encode(Sha256::digest(&bytes));
        let verdict = match metas.get(&content_id) {
            _ if hash != content_id => Err(format!("{content_id}: bytes hash to {hash}")),
            Some(meta) => verify_photo(meta, &bytes).map_err(|problem| format!("{content_id}: {problem}")),
            None => Err(format!("{content_id}: stored but no cached referral uses it")),
        };
        if let Err(problem) = verdict {
            found.corrupt_photos.push(problem);
        }
    }

    // Kept pieces of unfinished downloads: never visible, and (without injected corruption)
    // exactly a prefix of the photo.
    let missing = cache.missing_photos().map_err(|e| format!("missing photos: {e}"))?;
    found.missing_photos = missing.len();
    for content_id in &missing {
        let (bytes, _etag) = cache.photo_partial(content_id).map_err(|e| format!("partial: {e}"))?;
        if bytes.is_empty() {
            continue;
        }
        found.partials += 1;
        found.partial_bytes += bytes.len() as u64;
        if check_partials {
            let mut real = Vec::with_capacity(bytes.len());
            std::fs::File::open(files.hub_photo_dir.join(content_id))
                .and_then(|file| file.take(bytes.len() as u64).read_to_end(&mut real))
                .map_err(|e| format!("reading the hub's copy of {content_id}: {e}"))?;
            if real != bytes {
                found.bad_partials.push(format!("{content_id}: {} kept bytes differ", bytes.len()));
            }
        }
    }

    // The outbox: every row decodes (outbox() fails otherwise) and its signature verifies with
    // the device key the enrolment registered.
    let rows = cache.outbox().map_err(|e| format!("reading the outbox: {e}"))?;
    found.outbox_rows = rows.len();
    let enrolled_key_id = cache.meta("key_id").map_err(|e| e.to_string())?;
    found.enrolled = cache.meta("hub_url").map_err(|e| e.to_string())?.is_some();
    if !rows.is_empty() {
        let seed = secrets
            .get(DEVICE_SIGNING_KEY)
            .map_err(|e| format!("secret store: {e}"))?
            .ok_or("outcomes are queued but the device key is gone")?;
        let seed: [u8; 32] = seed.as_slice().try_into().map_err(|_| "the device key has the wrong length")?;
        let public_key = SigningKey::from_bytes(&seed).verifying_key();
        if enrolled_key_id.as_deref() != Some(key_id(&public_key).as_str()) {
            found.bad_signatures.push("the device key is not the enrolled one".into());
        }
        for row in &rows {
            if let Err(error) = verify_outcome(&row.signed, &public_key) {
                found.bad_signatures.push(format!("{}: {error}", row.outcome_id));
            }
        }
    }
    let mut live: BTreeMap<&str, usize> = BTreeMap::new();
    for row in rows.iter().filter(|row| matches!(row.state, OutboxState::Queued | OutboxState::Sent)) {
        *live.entry(row.referral_id.as_str()).or_default() += 1;
    }
    found
        .double_signed
        .extend(live.into_iter().filter(|(_, n)| *n > 1).map(|(id, n)| format!("{id} ({n}×)")));
    found.outbox = rows.into_iter().map(|row| (row.outcome_id.clone(), row)).collect();

    // Every promise is kept locally.
    for entry in &journal {
        if !found.outbox.contains_key(&entry.outcome_id) {
            found.journal_missing.push(format!("{} for {}", entry.outcome_id, entry.referral_id));
        }
    }

    // The cache and the hub agree: what the cache calls sent is on the hub, and everything the
    // hub holds from this client is still in the cache, byte for byte.
    let on_hub = hub_outcomes(hub, referrals)?;
    let hub_ids: BTreeSet<&str> = on_hub.values().flatten().map(|o| o.outcome_id.as_str()).collect();
    for row in found.outbox.values().filter(|row| row.state == OutboxState::Sent) {
        if !hub_ids.contains(row.outcome_id.as_str()) {
            found.sent_not_on_hub.push(format!("{} for {}", row.outcome_id, row.referral_id));
        }
    }
    for outcome in on_hub.values().flatten() {
        match found.outbox.get(&outcome.outcome_id) {
            Some(row) if row.signed.jws == outcome.jws && row.signed.payload == outcome.payload => {}
            Some(_) => {
                found.hub_unknown_locally.push(format!("{}: differs from the cache", outcome.outcome_id))
            }
            None => {
                found.hub_unknown_locally.push(format!("{} for {}", outcome.outcome_id, outcome.referral_id))
            }
        }
    }
    Ok(())
}

/// Every outcome the hub holds, by referral.
pub fn hub_outcomes(hub: &Hub, referrals: &[String]) -> Result<BTreeMap<String, Vec<StoredOutcome>>, String> {
    referrals
        .iter()
        .map(|id| Ok((id.clone(), hub.outcomes(id).map_err(|e| format!("hub outcomes of {id}: {e}"))?)))
        .collect()
}
