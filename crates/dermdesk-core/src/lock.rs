//! The local passphrase, the lock and the crypto-shred: the rules a lost laptop depends on.
//!
//! **Wrapped cache key.** The cache key stays a random 256-bit key (SQLCipher opens it in a few
//! milliseconds). What the keychain holds is that key sealed with XChaCha20-Poly1305 under a key
//! derived from the consultant's passphrase with Argon2id (64 MiB, 3 passes, 1 lane, a random
//! 16-byte salt; the parameters are stored with the sealed key so they can be raised later). A
//! stolen laptop whose keychain is open still cannot open the cache without the passphrase. The
//! device token and signing keys are sealed under a key derived from the cache key
//! ([`SealedStore`]), so they too are useless without the passphrase.
//!
//! **Lock.** [`Session`] is pure: it is told the time (a monotonic [`Instant`]) and activity,
//! and says when to lock (idle for [`LockPolicy::idle`], default 15 minutes) and whether signing
//! needs the passphrase again (last unlock older than [`LockPolicy::reauth_before_signing`],
//! default 5 minutes). Locking is the caller dropping the `Desk` (the database closes, every key
//! it held is zeroized on drop).
//!
//! **Wrong attempts.** [`unlock_delay`]: 1 s after each of the first two failures, then 5 s
//! doubling up to 5 minutes. The count is kept in the keychain, so a restart does not reset it,
//! and the delay starts again at every start (measured on the monotonic clock, so changing the
//! computer's clock does not shorten it). At [`MAX_FAILED_UNLOCKS`] consecutive failures the
//! device is crypto-shredded ([`shred`]) and must be enrolled again; the lock screen says how many
//! attempts remain from the fourth failure on.
//!
//! **Shred.** [`shred`] deletes every secret of the profile from the keychain first (the files
//! are unreadable from that moment), then removes the cache files (database, `-wal`, `-shm`,
//! `-journal`, temporary files).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::rngs::OsRng;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::secrets::{SecretStore, CACHE_KEY, CACHE_KEY_WRAPPED, UNLOCK_FAILURES};
use crate::CoreError;

/// Consecutive wrong passphrases after which the device wipes itself.
pub const MAX_FAILED_UNLOCKS: u32 = 10;
/// Shortest passphrase accepted.
pub const MIN_PASSPHRASE_CHARS: usize = 10;

/// How long to wait before the next attempt after `failures` consecutive wrong passphrases.
pub fn unlock_delay(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        1 | 2 => Duration::from_secs(1),
        n => Duration::from_secs(5u64.saturating_mul(1 << (n - 3).min(16))).min(Duration::from_secs(300)),
    }
}

/// When the app locks itself and when signing asks for the passphrase again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockPolicy {
    pub idle: Duration,
    pub reauth_before_signing: Duration,
}

impl Default for LockPolicy {
    fn default() -> Self {
        LockPolicy { idle: Duration::from_secs(15 * 60), reauth_before_signing: Duration::from_secs(5 * 60) }
    }
}

/// An unlocked session's clock: when it was unlocked and when the consultant last did anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    unlocked_at: Instant,
    last_activity: Instant,
}

impl Session {
    pub fn unlocked(now: Instant) -> Session {
        Session { unlocked_at: now, last_activity: now }
    }

    /// The consultant did something (the UI reports keys, clicks, wheel, at most every few s).
    pub fn touch(&mut self, now: Instant) {
        self.last_activity = self.last_activity.max(now);
    }

    /// The passphrase was typed again (before signing).
    pub fn reauthenticated(&mut self, now: Instant) {
        self.unlocked_at = now;
        self.touch(now);
    }

    pub fn idle_expired(&self, policy: &LockPolicy, now: Instant) -> bool {
        now.saturating_duration_since(self.last_activity) >= policy.idle
    }

    pub fn may_sign(&self, policy: &LockPolicy, now: Instant) -> bool {
        now.saturating_duration_since(self.unlocked_at) < policy.reauth_before_signing
    }
}

/// The random key of the encrypted cache, in memory only while unlocked.
pub struct CacheKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey(<redacted>)")
    }
}

impl CacheKey {
    pub fn random() -> CacheKey {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(key.as_mut());
        CacheKey(key)
    }

    pub fn from_slice(bytes: &[u8]) -> Result<CacheKey, CoreError> {
        let key: [u8; 32] =
            bytes.try_into().map_err(|_| CoreError::Cache("the cache key has the wrong length".into()))?;
        Ok(CacheKey(Zeroizing::new(key)))
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A separate key (for sealing keychain entries), so the database key itself is used once.
    fn derive(&self, purpose: &str) -> Zeroizing<[u8; 32]> {
        let mut hasher = Sha256::new();
        hasher.update(b"dermdesk/");
        hasher.update(purpose.as_bytes());
        hasher.update([0]);
        hasher.update(self.0.as_ref());
        Zeroizing::new(hasher.finalize().into())
    }
}

/// Argon2id cost. Stored with each sealed key, so raising it later still opens old ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: ~0.3 s on a laptop core; above OWASP's minimum (19 MiB, 2).
    fn default() -> Self {
        KdfParams { memory_kib: 64 * 1024, passes: 3, lanes: 1 }
    }
}

impl KdfParams {
    /// Cheap parameters for unit tests only.
    pub fn for_tests() -> KdfParams {
        KdfParams { memory_kib: 256, passes: 1, lanes: 1 }
    }

    fn derive(&self, passphrase: &str, salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, CoreError> {
        let params = Params::new(self.memory_kib, self.passes, self.lanes, Some(32))
            .map_err(|e| CoreError::Cache(format!("passphrase key parameters: {e}")))?;
        let mut out = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), salt, out.as_mut())
            .map_err(|e| CoreError::Cache(format!("passphrase key: {e}")))?;
        Ok(out)
    }
}

const WRAP_MAGIC: &[u8; 4] = b"DDW1";
const WRAP_AAD: &[u8] = b"dermdesk cache key, wrapped under the passphrase";
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;

/// `DDW1 | memory_kib | passes | lanes (u32 LE) | salt 16 | nonce 24 | sealed key 32 + tag 16`.
fn wrap_key(key: &CacheKey, passphrase: &str, kdf: KdfParams) -> Result<Vec<u8>, CoreError> {
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut nonce);
    let wrapping = kdf.derive(passphrase, &salt)?;
    let sealed = XChaCha20Poly1305::new(wrapping.as_ref().into())
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: key.bytes(), aad: WRAP_AAD })
        .map_err(|_| CoreError::Cache("the cache key could not be sealed".into()))?;
    let mut blob = WRAP_MAGIC.to_vec();
    for value in [kdf.memory_kib, kdf.passes, kdf.lanes] {
        blob.extend_from_slice(&value.to_le_bytes());
    }
    blob.extend_from_slice(&salt);
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&sealed);
    Ok(blob)
}

/// `Ok(None)`: the passphrase is wrong (the seal does not open).
fn unwrap_key(blob: &[u8], passphrase: &str) -> Result<Option<CacheKey>, CoreError> {
    let damaged = || CoreError::Cache("the sealed cache key in the keychain is damaged".into());
    let rest = blob.strip_prefix(WRAP_MAGIC).ok_or_else(damaged)?;
    if rest.len() != 12 + SALT_LEN + NONCE_LEN + 32 + 16 {
        return Err(damaged());
    }
    let number = |at: usize| u32::from_le_bytes(rest[at..at + 4].try_into().expect("4 bytes"));
    let kdf = KdfParams { memory_kib: number(0), passes: number(4), lanes: number(8) };
    let (salt, rest) = rest[12..].split_at(SALT_LEN);
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let wrapping = kdf.derive(passphrase, salt)?;
    match XChaCha20Poly1305::new(wrapping.as_ref().into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: WRAP_AAD })
    {
        Ok(key) => Ok(Some(CacheKey::from_slice(&Zeroizing::new(key))?)),
        Err(_) => Ok(None),
    }
}

/// Whether a passphrase has been chosen on this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VaultState {
    /// First start (or after a sign-out): the consultant chooses a passphrase.
    NoPassphrase,
    /// The cache key is sealed under the passphrase.
    Locked,
}

/// A successful unlock: the key, and how many wrong attempts came before it (for the audit log).
#[derive(Debug)]
pub struct Unlocked {
    pub key: CacheKey,
    pub failed_before: u32,
}

/// The sealed cache key in the keychain and the wrong-attempt rules.
pub struct Vault {
    secrets: Arc<dyn SecretStore>,
    data_dir: PathBuf,
    kdf: KdfParams,
    /// No attempt is tried before this (monotonic; set at start from the kept count, and after
    /// each failure).
    not_before: Mutex<Instant>,
}

impl Vault {
    pub fn new(
        data_dir: &Path,
        secrets: Arc<dyn SecretStore>,
        kdf: KdfParams,
        now: Instant,
    ) -> Result<Vault, CoreError> {
        let vault = Vault { secrets, data_dir: data_dir.to_owned(), kdf, not_before: Mutex::new(now) };
        // A restart does not reset the wait: it starts again in full.
        let failures = vault.failures()?;
        *vault.not_before.lock().unwrap() = now + unlock_delay(failures);
        Ok(vault)
    }

    pub fn state(&self) -> Result<VaultState, CoreError> {
        Ok(match self.secrets.get(CACHE_KEY_WRAPPED)? {
            Some(_) => VaultState::Locked,
            None => VaultState::NoPassphrase,
        })
    }

    /// Consecutive wrong passphrases so far (kept in the keychain across restarts).
    pub fn failures(&self) -> Result<u32, CoreError> {
        Ok(self
            .secrets
            .get(UNLOCK_FAILURES)?
            .and_then(|value| std::str::from_utf8(&value).ok().and_then(|text| text.parse().ok()))
            .unwrap_or(0))
    }

    /// First start: seals the cache key under a new passphrase. The key is new, or the one an
    /// older Derm Desk kept unsealed (which is then deleted from the keychain).
    pub fn choose_passphrase(&self, passphrase: &str) -> Result<CacheKey, CoreError> {
        if self.state()? == VaultState::Locked {
            return Err(CoreError::PassphraseAlreadySet);
        }
        check_passphrase(passphrase)?;
        let cache_exists = self.data_dir.join(crate::desk::CACHE_FILE).exists();
        let key = match self.secrets.get(CACHE_KEY)? {
            Some(legacy) => CacheKey::from_slice(&legacy)?,
            None if cache_exists => return Err(CoreError::CacheKeyMissing),
            None => CacheKey::random(),
        };
        self.secrets.set(CACHE_KEY_WRAPPED, &wrap_key(&key, passphrase, self.kdf)?)?;
        self.secrets.delete(CACHE_KEY)?;
        self.secrets.delete(UNLOCK_FAILURES)?;
        Ok(key)
    }

    /// A new desk's first passphrase: seals `key` (made when the desk enrolled, in memory until
    /// now) under it.
    pub fn seal_key(&self, key: &CacheKey, passphrase: &str) -> Result<(), CoreError> {
        if self.state()? == VaultState::Locked {
            return Err(CoreError::PassphraseAlreadySet);
        }
        check_passphrase(passphrase)?;
        self.secrets.set(CACHE_KEY_WRAPPED, &wrap_key(key, passphrase, self.kdf)?)?;
        self.secrets.delete(UNLOCK_FAILURES)?;
        Ok(())
    }

    /// An older Derm Desk kept the cache key unsealed in the keychain (before passphrases).
    pub fn has_unsealed_key(&self) -> Result<bool, CoreError> {
        Ok(self.secrets.get(CACHE_KEY)?.is_some())
    }

    /// Opens the sealed cache key with the passphrase, within the attempt rules. After
    /// [`MAX_FAILED_UNLOCKS`] wrong ones in a row the device is shredded.
    pub fn unlock(&self, passphrase: &str, now: Instant) -> Result<Unlocked, CoreError> {
        let wait = self.not_before.lock().unwrap().saturating_duration_since(now);
        if !wait.is_zero() {
            return Err(CoreError::UnlockDelayed { wait_seconds: wait.as_secs().max(1) });
        }
        let blob = self.secrets.get(CACHE_KEY_WRAPPED)?.ok_or(CoreError::NoPassphrase)?;
        let failures = self.failures()?;
        match unwrap_key(&blob, passphrase)? {
            Some(key) => {
                if failures > 0 {
                    self.secrets.delete(UNLOCK_FAILURES)?;
                }
                Ok(Unlocked { key, failed_before: failures })
            }
            None => {
                let failures = failures + 1;
                if failures >= MAX_FAILED_UNLOCKS {
                    let removed = shred(&self.data_dir, self.secrets.as_ref())?;
                    tracing::warn!(files = removed.len(), "too many wrong passphrases: the device was wiped");
                    return Err(CoreError::TooManyAttempts);
                }
                self.secrets.set(UNLOCK_FAILURES, failures.to_string().as_bytes())?;
                let wait = unlock_delay(failures);
                *self.not_before.lock().unwrap() = now + wait;
                tracing::info!(failures, "wrong passphrase");
                Err(CoreError::WrongPassphrase {
                    attempts_left: MAX_FAILED_UNLOCKS - failures,
                    wait_seconds: wait.as_secs(),
                })
            }
        }
    }
}

fn check_passphrase(passphrase: &str) -> Result<(), CoreError> {
    let chars = passphrase.chars().count();
    if chars < MIN_PASSPHRASE_CHARS {
        return Err(CoreError::WeakPassphrase(format!(
            "it must have at least {MIN_PASSPHRASE_CHARS} characters (it has {chars})"
        )));
    }
    let mut distinct: Vec<char> = passphrase.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 4 {
        return Err(CoreError::WeakPassphrase("it must use at least 4 different characters".into()));
    }
    Ok(())
}

/// Crypto-shreds a device: deletes every secret of its keychain profile (from then on the cache
/// cannot be decrypted by anyone), then removes the cache files. Returns the file names removed.
/// The caller must have closed the database (dropped the `Desk`) first.
pub fn shred(data_dir: &Path, secrets: &dyn SecretStore) -> Result<Vec<String>, CoreError> {
    for name in crate::secrets::ALL_ENTRIES {
        secrets.delete(name)?;
    }
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(data_dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(error) => return Err(error.into()),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // The replacement bank holiday calendar is configuration, not patient data.
        if name == crate::deadline::CALENDAR_FILE_NAME {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
        removed.push(name);
    }
    Ok(removed)
}

const SEAL_MAGIC: &[u8; 4] = b"DDS1";

/// The desk's view of the keychain while unlocked: every value it writes is sealed
/// (XChaCha20-Poly1305) under a key derived from the cache key, so the device token and signing
/// keys in the keychain are useless without the passphrase. A value an older Derm Desk wrote
/// unsealed is read once and sealed in place.
pub struct SealedStore {
    inner: Arc<dyn SecretStore>,
    key: Zeroizing<[u8; 32]>,
}

impl SealedStore {
    pub fn new(inner: Arc<dyn SecretStore>, cache_key: &CacheKey) -> SealedStore {
        SealedStore { inner, key: cache_key.derive("keychain-seal") }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.as_ref().into())
    }
}

impl SecretStore for SealedStore {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, CoreError> {
        let Some(stored) = self.inner.get(name)? else { return Ok(None) };
        let Some(rest) = stored.strip_prefix(SEAL_MAGIC) else {
            // Written before sealing existed: seal it now.
            self.set(name, &stored)?;
            return Ok(Some(stored));
        };
        if rest.len() < NONCE_LEN {
            return Err(CoreError::KeychainUnavailable(format!("the keychain entry {name} is damaged")));
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: name.as_bytes() })
            .map(|value| Some(Zeroizing::new(value)))
            .map_err(|_| {
                CoreError::KeychainUnavailable(format!(
                    "the keychain entry {name} does not belong to this cache"
                ))
            })
    }

    fn set(&self, name: &str, value: &[u8]) -> Result<(), CoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: value, aad: name.as_bytes() })
            .map_err(|_| CoreError::Cache("a keychain entry could not be sealed".into()))?;
        let mut stored = SEAL_MAGIC.to_vec();
        stored.extend_from_slice(&nonce);
        stored.extend_from_slice(&sealed);
        self.inner.set(name, &stored)
    }

    fn delete(&self, name: &str) -> Result<(), CoreError> {
        self.inner.delete(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MemorySecretStore;
    use crate::secrets::{DEVICE_SIGNING_KEY, DEVICE_TOKEN};

    const PASSPHRASE: &str = "correct horse battery";

    fn vault(dir: &Path, secrets: &Arc<MemorySecretStore>, now: Instant) -> Vault {
        Vault::new(dir, secrets.clone(), KdfParams::for_tests(), now).unwrap()
    }

    #[test]
    fn the_keychain_holds_the_cache_key_only_sealed_under_the_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Arc::new(MemorySecretStore::default());
        let now = Instant::now();
        let vault = vault(dir.path(), &secrets, now);
        assert_eq!(vault.state().unwrap(), VaultState::NoPassphrase);
        let key = vault.choose_passphrase(PASSPHRASE).unwrap();
        assert_eq!(vault.state().unwrap(), VaultState::Locked);
        assert!(secrets.get(CACHE_KEY).unwrap().is_none(), "no unsealed key is left");
        let blob = secrets.get(CACHE_KEY_WRAPPED).unwrap().unwrap();
        assert!(!blob.windows(32).any(|w| w == key.bytes()), "the key does not appear in the sealed blob");
        let unlocked = vault.unlock(PASSPHRASE, now).unwrap();
        assert_eq!(unlocked.key.bytes(), key.bytes());
        assert_eq!(format!("{:?}", unlocked.key), "CacheKey(<redacted>)");
        assert!(matches!(
            vault.choose_passphrase("another passphrase"),
            Err(CoreError::PassphraseAlreadySet)
        ));
    }

    #[test]
    fn an_older_unsealed_key_is_sealed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Arc::new(MemorySecretStore::default());
        secrets.set(CACHE_KEY, &[7u8; 32]).unwrap();
        std::fs::write(dir.path().join(crate::desk::CACHE_FILE), b"encrypted").unwrap();
        let key = vault(dir.path(), &secrets, Instant::now()).choose_passphrase(PASSPHRASE).unwrap();
        assert_eq!(key.bytes(), &[7u8; 32]);
        assert!(secrets.get(CACHE_KEY).unwrap().is_none());
    }

    #[test]
    fn a_cache_without_any_key_is_not_given_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Arc::new(MemorySecretStore::default());
        std::fs::write(dir.path().join(crate::desk::CACHE_FILE), b"encrypted").unwrap();
        let error = vault(dir.path(), &secrets, Instant::now()).choose_passphrase(PASSPHRASE).unwrap_err();
        assert!(matches!(error, CoreError::CacheKeyMissing), "{error}");
    }

    #[test]
    fn weak_passphrases_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Arc::new(MemorySecretStore::default());
        let vault = vault(dir.path(), &secrets, Instant::now());
        for weak in ["short", "aaaaaaaaaaaaaaa", "ababababababab"] {
            let error = vault.choose_passphrase(weak).unwrap_err();
            assert!(matches!(error, CoreError::WeakPassphrase(_)), "{weak}: {error}");
        }
        assert_eq!(vault.state().unwrap(), VaultState::NoPassphrase, "nothing was stored");
    }

    #[test]
    fn delays_grow_after_three_failures_and_are_capped() {
        let table: Vec<u64> = (0..=12).map(|n| unlock_delay(n).as_secs()).collect();
        assert_eq!(table, [0, 1, 1, 5, 10, 20, 40, 80, 160, 300, 300, 300, 300]);
    }

    #[test]
    fn wrong_attempts_are_slowed_counted_across_restarts_and_end_in_a_wipe() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Arc::new(MemorySecretStore::default());
        std::fs::write(dir.path().join(crate::desk::CACHE_FILE), b"encrypted").unwrap();
        std::fs::write(dir.path().join("cache.sqlite3-wal"), b"wal").unwrap();
        std::fs::write(dir.path().join(crate::deadline::CALENDAR_FILE_NAME), b"{}").unwrap();
        secrets.set(CACHE_KEY, &[9u8; 32]).unwrap();
        secrets.set(DEVICE_TOKEN, b"token").unwrap();
        let mut now = Instant::now();
        vault(dir.path(), &secrets, now).choose_passphrase(PASSPHRASE).unwrap();

        let mut vault_now = vault(dir.path(), &secrets, now);
        // First wrong attempt: 1 s before the next.
        let error = vault_now.unlock("wrong passphrase", now).unwrap_err();
        assert!(matches!(error, CoreError::WrongPassphrase { attempts_left: 9, wait_seconds: 1 }), "{error}");
        // Too soon: not even tried (the right passphrase too), and not counted.
        let error = vault_now.unlock(PASSPHRASE, now).unwrap_err();
        assert!(matches!(error, CoreError::UnlockDelayed { .. }), "{error}");
        assert_eq!(vault_now.failures().unwrap(), 1);
        for expected_wait in [1, 5] {
            now += Duration::from_secs(300);
            let error = vault_now.unlock("wrong passphrase", now).unwrap_err();
            let CoreError::WrongPassphrase { wait_seconds, .. } = error else { panic!("{error}") };
            assert_eq!(wait_seconds, expected_wait);
        }
        // A restart keeps the count and the wait.
        vault_now = vault(dir.path(), &secrets, now);
        assert_eq!(vault_now.failures().unwrap(), 3);
        assert!(matches!(
            vault_now.unlock(PASSPHRASE, now),
            Err(CoreError::UnlockDelayed { wait_seconds: 5 })
        ));
        now += Duration::from_secs(5);
        let unlocked = vault_now.unlock(PASSPHRASE, now).unwrap();
        assert_eq!(unlocked.failed_before, 3, "reported for the audit log");
        assert_eq!(vault_now.failures().unwrap(), 0, "a right passphrase resets the count");

        for attempt in 1..=MAX_FAILED_UNLOCKS {
            now += Duration::from_secs(301);
            let error = vault_now.unlock("wrong passphrase", now).unwrap_err();
            if attempt < MAX_FAILED_UNLOCKS {
                assert!(matches!(error, CoreError::WrongPassphrase { .. }), "{error}");
            } else {
                assert!(matches!(error, CoreError::TooManyAttempts), "{error}");
            }
        }
        assert!(secrets.get(CACHE_KEY_WRAPPED).unwrap().is_none(), "the sealed key is gone");
        assert!(secrets.get(DEVICE_TOKEN).unwrap().is_none(), "the device token is gone");
        assert!(!dir.path().join(crate::desk::CACHE_FILE).exists());
        assert!(!dir.path().join("cache.sqlite3-wal").exists());
        assert!(dir.path().join(crate::deadline::CALENDAR_FILE_NAME).exists(), "configuration is kept");
        assert_eq!(vault_now.state().unwrap(), VaultState::NoPassphrase);
    }

    #[test]
    fn the_session_locks_when_idle_and_asks_again_before_signing() {
        let policy = LockPolicy::default();
        let start = Instant::now();
        let mut session = Session::unlocked(start);
        assert!(session.may_sign(&policy, start + Duration::from_secs(299)));
        assert!(!session.may_sign(&policy, start + Duration::from_secs(300)));
        session.touch(start + Duration::from_secs(600));
        assert!(!session.idle_expired(&policy, start + Duration::from_secs(600 + 899)));
        assert!(session.idle_expired(&policy, start + Duration::from_secs(600 + 900)));
        // An activity report that arrives late never moves the clock back.
        session.touch(start);
        assert!(session.idle_expired(&policy, start + Duration::from_secs(600 + 900)));
        session.reauthenticated(start + Duration::from_secs(1000));
        assert!(session.may_sign(&policy, start + Duration::from_secs(1000)));
    }

    #[test]
    fn sealed_entries_are_useless_without_the_cache_key() {
        let inner = Arc::new(MemorySecretStore::default());
        inner.set(DEVICE_TOKEN, b"legacy-token").unwrap();
        let key = CacheKey::random();
        let sealed = SealedStore::new(inner.clone(), &key);
        // Legacy plaintext is read once and sealed in place.
        assert_eq!(sealed.get(DEVICE_TOKEN).unwrap().unwrap().as_slice(), b"legacy-token");
        let stored = inner.get(DEVICE_TOKEN).unwrap().unwrap();
        assert!(stored.starts_with(SEAL_MAGIC));
        assert!(!stored.windows(12).any(|w| w == b"legacy-token"));
        assert_eq!(sealed.get(DEVICE_TOKEN).unwrap().unwrap().as_slice(), b"legacy-token");
        // Another key cannot open it; nor can an entry be moved to another name.
        let other = SealedStore::new(inner.clone(), &CacheKey::random());
        assert!(other.get(DEVICE_TOKEN).is_err());
        inner.set(DEVICE_SIGNING_KEY, &stored).unwrap();
        assert!(sealed.get(DEVICE_SIGNING_KEY).is_err());
    }
}
