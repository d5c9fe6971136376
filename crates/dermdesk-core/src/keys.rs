//! What makes a signed outcome provable from this device: the service's receipt key (kept at
//! enrolment; receipts are checked against it before an outcome counts as sent), the device's
//! own keys (every public key it has signed with, and replacing the signing key), and the
//! export of a signed outcome as a file anyone can verify (docs/VERIFY.md).
//!
//! # Replacing the signing key without ever being unable to sign
//!
//! [`Desk::rotate_key`] takes three steps, each durable before the next:
//!
//! 1. The new key goes into the keychain *beside* the current one (`device-signing-key-next`),
//!    then the cache notes the rotation as pending (`pending_key_id`).
//! 2. The service is asked to switch, with a proof signed by the current key. It answers a
//!    repeat of the same request as it answered the first, so the request can be sent again
//!    whenever its answer is in doubt.
//! 3. Once the service confirms: the cache records the new key id (one transaction, which also
//!    clears `pending_key_id`), then the keychain's current key is replaced and the spare removed.
//!
//! Until step 3 the device signs with its current key, which the service accepts until it
//! switches. After a crash or a lost answer in step 2, the rotation stays pending and the next
//! sync finishes it before sending anything ([`Desk::finish_key_rotation`]). A crash inside step
//! 3 leaves the cache naming the new key while the keychain's current key is the old one; the
//! new one is still the spare, and [`Desk::open`] completes the swap before anything is signed.
//!
//! The one window left: the service switched (step 2 done) but the answer never arrived, and
//! the consultant signs before the next sync finishes the rotation. That outcome is signed with
//! the retired key after its retirement, and the service refuses it (`key_retired`): it is kept,
//! never lost, shown with the reason, and can be signed again.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use dermdesk_protocol::export::export_signed_outcome;
use dermdesk_protocol::signature::{encode_public_key, key_id, sign_key_rotation};
use dermdesk_protocol::{KeyRotationResponse, PublicKeyInfo};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::rngs::OsRng;

use crate::client::HubClient;
use crate::secrets::{DEVICE_SIGNING_KEY, DEVICE_SIGNING_KEY_NEXT};
use crate::{CoreError, Desk};

/// Cache meta entries kept here.
pub(crate) const META_HUB_KEY: &str = "hub_key";
pub(crate) const META_PUBLIC_KEYS: &str = "public_keys";
const META_PENDING_KEY_ID: &str = "pending_key_id";

/// What the device panel shows: who this device signs for and with which key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceView {
    pub consultant_name: String,
    pub hub_url: String,
    pub device_id: String,
    /// The key outcomes are signed with now.
    pub key_id: String,
    /// Keys this device signed with before; outcomes they signed still verify.
    pub earlier_key_ids: Vec<String>,
    /// A replacement was started and the service has not confirmed it yet (the next sync asks).
    pub rotation_pending: bool,
    /// The key the service signs its receipts with, as kept at enrolment.
    pub hub_key_id: Option<String>,
}

fn signing_key_from(seed: &[u8]) -> Result<SigningKey, CoreError> {
    let seed: &[u8; 32] =
        seed.try_into().map_err(|_| CoreError::Signing("a device key in the keychain is damaged".into()))?;
    Ok(SigningKey::from_bytes(seed))
}

impl Desk {
    /// The service's receipt key, as kept at enrolment (or first fetched for an older enrolment).
    pub fn hub_key(&self) -> Result<Option<PublicKeyInfo>, CoreError> {
        self.cache()
            .meta(META_HUB_KEY)?
            .map(|json| {
                serde_json::from_str(&json).map_err(|e| CoreError::Cache(format!("service key record: {e}")))
            })
            .transpose()
    }

    /// The key receipts are checked with. A device enrolled before receipts were signed has none
    /// on record: it takes the one the service publishes, over the same connection its outcomes
    /// go over, and keeps it. `None` (nothing proven, outcomes stay queued) if that fails.
    pub(crate) async fn receipt_key(&self, client: &HubClient) -> Result<Option<VerifyingKey>, CoreError> {
        if let Some(known) = self.hub_key()? {
            let key = known.decode().map_err(|e| CoreError::Cache(format!("service key record: {e}")))?;
            return Ok(Some(key));
        }
        let published = match client.hub_key().await {
            Ok(published) => published,
            Err(error) => {
                tracing::warn!(kind = ?error.kind(), "the service's receipt key could not be fetched");
                return Ok(None);
            }
        };
        let Ok(key) = published.decode() else {
            tracing::warn!("the service published an invalid receipt key");
            return Ok(None);
        };
        let json = serde_json::to_string(&published).map_err(|e| CoreError::Cache(e.to_string()))?;
        self.cache().set_meta(META_HUB_KEY, &json)?;
        Ok(Some(key))
    }

    /// Every public key this device has signed with, by key id.
    fn public_keys(&self) -> Result<BTreeMap<String, String>, CoreError> {
        match self.cache().meta(META_PUBLIC_KEYS)? {
            Some(json) => {
                serde_json::from_str(&json).map_err(|e| CoreError::Cache(format!("public key record: {e}")))
            }
            None => Ok(BTreeMap::new()),
        }
    }

    /// The public key with id `wanted`: from the record, or (for a device enrolled before the
    /// record was kept) derived from the keychain's current key.
    fn public_key(&self, wanted: &str) -> Result<VerifyingKey, CoreError> {
        if let Some(encoded) = self.public_keys()?.get(wanted) {
            let info = PublicKeyInfo { key_id: wanted.to_owned(), public_key: encoded.clone() };
            return info.decode().map_err(|e| CoreError::Cache(format!("public key record: {e}")));
        }
        if let Some(current) = self.stored_signing_key(DEVICE_SIGNING_KEY)? {
            if key_id(&current.verifying_key()) == wanted {
                return Ok(current.verifying_key());
            }
        }
        Err(CoreError::Signing("the public key of the key that signed it is not on record".into()))
    }

    fn stored_signing_key(&self, name: &str) -> Result<Option<SigningKey>, CoreError> {
        self.secrets.get(name)?.map(|seed| signing_key_from(&seed)).transpose()
    }

    /// Completes step 3 of a rotation interrupted inside it (see the module documentation).
    /// Local only: called when the desk opens.
    pub(crate) fn finish_local_key_swap(&self) -> Result<(), CoreError> {
        let Some(next) = self.stored_signing_key(DEVICE_SIGNING_KEY_NEXT)? else { return Ok(()) };
        let cache = self.cache();
        if cache.meta(META_PENDING_KEY_ID)?.is_some() {
            return Ok(()); // not confirmed yet: the next sync asks the service
        }
        if cache.meta("key_id")?.as_deref() == Some(key_id(&next.verifying_key()).as_str()) {
            self.secrets.set(DEVICE_SIGNING_KEY, next.as_bytes())?;
            tracing::info!("device key replacement completed");
        }
        // Otherwise a spare never offered to the service (a crash inside step 1): nothing to keep.
        self.secrets.delete(DEVICE_SIGNING_KEY_NEXT)
    }

    /// Replaces this device's signing key with a new one, crash-safely (see the module
    /// documentation). Outcomes signed before keep verifying; from now on the device signs with
    /// the new key. Calling it while a rotation is pending finishes that one.
    pub async fn rotate_key(&self) -> Result<KeyRotationResponse, CoreError> {
        let client = self.client()?;
        if self.cache().meta(META_PENDING_KEY_ID)?.is_none() {
            let next = SigningKey::generate(&mut OsRng);
            self.secrets.set(DEVICE_SIGNING_KEY_NEXT, next.as_bytes())?;
            self.cache().set_meta(META_PENDING_KEY_ID, &key_id(&next.verifying_key()))?;
        }
        let response = self.complete_key_rotation(&client).await?;
        self.audit(dermdesk_protocol::audit::AuditEvent::KeyReplaced, None, None, None)?;
        Ok(response)
    }

    /// Finishes a pending rotation, if any, before the outbox is sent (so nothing is signed or
    /// sent with a key the service has retired for longer than need be). Failures are logged and
    /// the rotation stays pending: it never stops a sync.
    pub(crate) async fn finish_key_rotation(&self, client: &HubClient) {
        match self.cache().meta(META_PENDING_KEY_ID) {
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(kind = ?error.kind(), "could not read the key rotation state");
                return;
            }
        }
        if let Err(error) = self.complete_key_rotation(client).await {
            tracing::warn!(kind = ?error.kind(), "device key replacement not finished yet");
        }
    }

    async fn complete_key_rotation(&self, client: &HubClient) -> Result<KeyRotationResponse, CoreError> {
        let enrolment = self.enrolment()?.ok_or(CoreError::NotEnrolled)?;
        let pending = self
            .cache()
            .meta(META_PENDING_KEY_ID)?
            .ok_or_else(|| CoreError::Signing("no key replacement is pending".into()))?;
        let next = match self.stored_signing_key(DEVICE_SIGNING_KEY_NEXT)? {
            Some(next) if key_id(&next.verifying_key()) == pending => next,
            _ => {
                // The spare is gone from the keychain (removed by hand?). Without it the rotation
                // cannot be completed, so the device stays with its current key. Had the service
                // already switched, it will refuse what that key signs from then on (key_retired),
                // and the device has to be enrolled again.
                self.abandon_key_rotation()?;
                return Err(CoreError::Signing(
                    "the new key was lost from the keychain before the replacement was confirmed; \
                     this device keeps its current key"
                        .into(),
                ));
            }
        };
        let current = self
            .stored_signing_key(DEVICE_SIGNING_KEY)?
            .filter(|current| key_id(&current.verifying_key()) == enrolment.key_id)
            .ok_or_else(|| {
                CoreError::Signing("the keychain holds a different key than the one enrolled".into())
            })?;
        let request = sign_key_rotation(&enrolment.device_id, &next.verifying_key(), &current)
            .map_err(|e| CoreError::Signing(e.to_string()))?;
        let response = match client.rotate_key(&request).await {
            Ok(response) => response,
            Err(error @ CoreError::Hub { .. }) => {
                // Refused, not lost: the service keeps the current key, and so does the device.
                self.abandon_key_rotation()?;
                return Err(error);
            }
            // Unreachable, busy, or an answer cut short: the service may have switched. Kept
            // pending; the same request goes again at the next sync.
            Err(error) => return Err(error),
        };
        if response.key_id != pending || response.device_id != enrolment.device_id {
            return Err(CoreError::Protocol("the service confirmed a different key".into()));
        }
        let mut public_keys = self.public_keys()?;
        public_keys.insert(enrolment.key_id.clone(), encode_public_key(&current.verifying_key()));
        public_keys.insert(pending.clone(), encode_public_key(&next.verifying_key()));
        let public_keys = serde_json::to_string(&public_keys).map_err(|e| CoreError::Cache(e.to_string()))?;
        self.cache()
            .update_meta(&[("key_id", &pending), (META_PUBLIC_KEYS, &public_keys)], &[META_PENDING_KEY_ID])?;
        self.secrets.set(DEVICE_SIGNING_KEY, next.as_bytes())?;
        self.secrets.delete(DEVICE_SIGNING_KEY_NEXT)?;
        tracing::info!("device key replaced");
        Ok(response)
    }

    fn abandon_key_rotation(&self) -> Result<(), CoreError> {
        self.cache().update_meta(&[], &[META_PENDING_KEY_ID])?;
        self.secrets.delete(DEVICE_SIGNING_KEY_NEXT)
    }

    /// This device's enrolment and keys, or `None` before enrolment.
    pub fn device(&self) -> Result<Option<DeviceView>, CoreError> {
        let Some(enrolment) = self.enrolment()? else { return Ok(None) };
        let earlier_key_ids = self.public_keys()?.into_keys().filter(|id| *id != enrolment.key_id).collect();
        // One statement per cache read: a guard held across a second `cache()` would deadlock.
        let rotation_pending = self.cache().meta(META_PENDING_KEY_ID)?.is_some();
        let hub_key_id = self.hub_key()?.map(|key| key.key_id);
        Ok(Some(DeviceView {
            consultant_name: enrolment.consultant.display_name,
            hub_url: enrolment.hub_url,
            device_id: enrolment.device_id,
            key_id: enrolment.key_id,
            earlier_key_ids,
            rotation_pending,
            hub_key_id,
        }))
    }

    /// Writes [`Desk::export_outcome`] into `dir` as `signed-outcome-<outcome id>.json` and
    /// returns its path. The name comes from the outcome id this device generated, never from
    /// anything the service sent. Written whole or not at all: a temporary file, flushed to disk,
    /// then renamed; an existing export of the same outcome is replaced (the content is the same
    /// apart from a receipt that arrived since).
    pub fn export_outcome_file(&self, referral_id: &str, dir: &Path) -> Result<PathBuf, CoreError> {
        let json = self.export_outcome(referral_id)?;
        let outcome_id = self
            .cache()
            .latest_outcome(referral_id)?
            .ok_or_else(|| CoreError::NoSignedOutcome(referral_id.to_owned()))?
            .outcome_id;
        let outcome_id = uuid::Uuid::parse_str(&outcome_id)
            .map_err(|_| CoreError::Cache("an outcome id on record is not a UUID".into()))?;
        let io = |what: &str, error: std::io::Error| {
            if error.kind() == std::io::ErrorKind::StorageFull {
                CoreError::DiskFull("the exported file".into())
            } else {
                CoreError::Io(format!("{what} {}: {error}", dir.display()))
            }
        };
        std::fs::create_dir_all(dir).map_err(|e| io("could not create", e))?;
        let path = dir.join(format!("signed-outcome-{}.json", outcome_id.hyphenated()));
        let temporary = dir.join(format!(".signed-outcome-{}.json.partial", outcome_id.hyphenated()));
        let written = (|| {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(json.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temporary, &path)?;
            if let Ok(directory) = std::fs::File::open(dir) {
                let _ = directory.sync_all(); // not supported everywhere (Windows)
            }
            Ok(())
        })();
        if let Err(error) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(io("could not write the export into", error));
        }
        tracing::info!("signed outcome exported");
        let outcome_id = outcome_id.hyphenated().to_string();
        self.audit(
            dermdesk_protocol::audit::AuditEvent::OutcomeExported,
            Some(referral_id),
            Some(&outcome_id),
            None,
        )?;
        Ok(path)
    }

    /// The newest signed outcome for a referral as a standalone file (JSON, format
    /// `dermdesk-signed-outcome/1`) the GP practice can verify without Derm Desk: the payload, the
    /// consultant's signature and public key and, once delivered, the service's signed receipt.
    /// Checked before it is returned: a file that would not verify is never produced.
    pub fn export_outcome(&self, referral_id: &str) -> Result<String, CoreError> {
        let row = self
            .cache()
            .latest_outcome(referral_id)?
            .ok_or_else(|| CoreError::NoSignedOutcome(referral_id.to_owned()))?;
        let public_key = self.public_key(&row.signed.payload.key_id)?;
        // Only a receipt whose signature was verified is proof; an unsigned one (from a service
        // older than signed receipts) is left out rather than offered as proof.
        let receipt = row.receipt.filter(|_| row.receipt_verified);
        let export = export_signed_outcome(&row.signed, &public_key, receipt.as_ref())
            .map_err(|e| CoreError::Signing(format!("the signed outcome does not verify ({e})")))?;
        Ok(export.to_json_pretty())
    }
}
