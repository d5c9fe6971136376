//! Secrets in the OS keychain: the cache's database key (sealed under the passphrase,
//! `lock.rs`), the device signing key and the device token (sealed under the cache key while
//! the desk is open, `lock::SealedStore`). Nothing here ever falls back to a file: with no
//! keychain, the caller gets [`CoreError::KeychainUnavailable`] and must not create a cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use zeroize::Zeroizing;

use crate::CoreError;

/// Names of the secrets one Derm Desk profile keeps.
/// The cache key unsealed: only tests and tools (`Desk::open`) and Derm Desk before the
/// passphrase; the app seals it (`lock::Vault::choose_passphrase` removes this one).
pub const CACHE_KEY: &str = "cache-key";
/// The cache key sealed under the passphrase (`lock.rs`).
pub const CACHE_KEY_WRAPPED: &str = "cache-key-wrapped";
/// Consecutive wrong passphrases (a decimal number), so a restart does not reset the count.
pub const UNLOCK_FAILURES: &str = "unlock-failures";
pub const DEVICE_SIGNING_KEY: &str = "device-signing-key";
/// The next signing key while a key replacement is under way (`keys.rs`).
pub const DEVICE_SIGNING_KEY_NEXT: &str = "device-signing-key-next";
pub const DEVICE_TOKEN: &str = "device-token";
/// Every entry a desk writes in its keychain profile (the crypto-shred deletes them all).
pub const ALL_ENTRIES: &[&str] = &[
    CACHE_KEY_WRAPPED,
    CACHE_KEY,
    DEVICE_TOKEN,
    DEVICE_SIGNING_KEY,
    DEVICE_SIGNING_KEY_NEXT,
    UNLOCK_FAILURES,
];

/// The most bytes one keychain entry may hold: the smallest of the three keychains, Windows
/// Credential Manager, whose `CREDENTIAL.CredentialBlobSize` is at most
/// `CRED_MAX_CREDENTIAL_BLOB_SIZE` = 5 * 512 = 2,560 bytes (wincred.h; `windows-sys`
/// `Win32::Security::Credentials`). keyring 4's Windows store (windows-native-keyring-store 1.1,
/// `validate_secret`) refuses a longer secret with `TooLong`; we write raw bytes with
/// `set_secret`, so the limit is on the bytes themselves (only `set_password` would double them
/// as UTF-16). The macOS Keychain and the Secret Service take far more.
/// crates/dermdesk-core/tests/keychain_sizes.rs makes every entry at its largest and checks it
/// fits with room to spare.
pub const KEYCHAIN_ENTRY_MAX: usize = 2_560;

/// The keychain profile of a data directory: different directories (demo, tests, real use)
/// never share keys. Derived from the path, so it needs no file of its own.
pub fn profile_for(data_dir: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(data_dir.to_string_lossy().as_bytes());
    format!("desk-{}", &hex::encode(digest)[..16])
}

/// A secret value whose `Debug` never shows the value.
#[derive(Clone)]
pub struct Sensitive<T>(pub T);

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where secrets live. The app uses [`Keychain`]; tests may use [`MemorySecretStore`].
pub trait SecretStore: Send + Sync {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, CoreError>;
    fn set(&self, name: &str, value: &[u8]) -> Result<(), CoreError>;
    fn delete(&self, name: &str) -> Result<(), CoreError>;
}

/// The OS keychain (Secret Service on Linux, Keychain on macOS, Credential Manager on Windows).
///
/// `profile` separates the secrets of different data directories (demo, tests, real use).
#[derive(Debug, Clone)]
pub struct Keychain {
    service: String,
    profile: String,
}

impl Keychain {
    pub fn new(profile: &str) -> Keychain {
        Keychain { service: "uk.dermdesk.desk".to_owned(), profile: profile.to_owned() }
    }

    fn entry(&self, name: &str) -> Result<keyring::Entry, CoreError> {
        keyring::Entry::new(&self.service, &format!("{}/{name}", self.profile)).map_err(unavailable)
    }
}

fn unavailable(error: keyring::Error) -> CoreError {
    CoreError::KeychainUnavailable(match error {
        keyring::Error::NoDefaultStore => "no keychain service is running".to_owned(),
        keyring::Error::NoStorageAccess(_) => "the keychain is locked or access was refused".to_owned(),
        other => other.to_string(),
    })
}

impl SecretStore for Keychain {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, CoreError> {
        match self.entry(name)?.get_secret() {
            Ok(secret) => Ok(Some(Zeroizing::new(secret))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(error) => Err(unavailable(error)),
        }
    }

    fn set(&self, name: &str, value: &[u8]) -> Result<(), CoreError> {
        self.entry(name)?.set_secret(value).map_err(unavailable)
    }

    fn delete(&self, name: &str) -> Result<(), CoreError> {
        match self.entry(name)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }
}

/// An in-process store for tests and the fault harness. It can be switched to behave like a
/// missing keychain. The desktop app never uses it.
#[derive(Default)]
pub struct MemorySecretStore {
    secrets: Mutex<HashMap<String, Zeroizing<Vec<u8>>>>,
    unavailable: std::sync::atomic::AtomicBool,
}

impl MemorySecretStore {
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, std::sync::atomic::Ordering::SeqCst);
    }

    /// The names of the entries held now, sorted (tests: what was written).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.secrets.lock().unwrap().keys().cloned().collect();
        names.sort();
        names
    }

    fn check(&self) -> Result<(), CoreError> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(CoreError::KeychainUnavailable("no keychain service is running".into()));
        }
        Ok(())
    }
}

impl SecretStore for MemorySecretStore {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, CoreError> {
        self.check()?;
        Ok(self.secrets.lock().unwrap().get(name).cloned())
    }

    fn set(&self, name: &str, value: &[u8]) -> Result<(), CoreError> {
        self.check()?;
        self.secrets.lock().unwrap().insert(name.to_owned(), Zeroizing::new(value.to_vec()));
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<(), CoreError> {
        self.check()?;
        self.secrets.lock().unwrap().remove(name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_never_prints_its_value() {
        let token = Sensitive("s3cr3t-token".to_owned());
        assert_eq!(format!("{token:?}"), "<redacted>");
    }
}
