//! `FileSecretStore`: the fault harness's stand-in for the OS keychain, a 0600 file replaced
//! atomically on every change.
//!
//! Why not the keychain: the harness kills and restarts the client hundreds of times per run.
//! Against the real keychain (Secret Service over D-Bus) that would test the keychain daemon's
//! behaviour under a client dying mid-call, not Derm Desk's sync; the keychain integration has
//! its own tests (`secrets.rs`, the end-to-end tests under GNOME Keyring). The harness also needs
//! to read the cache key itself after every kill to check the cache, which a file makes simple.
//!
//! The desktop app never uses this: it keeps secrets only in the keychain, with no file fallback.
//! This file lives in a test crate and holds keys of synthetic test data only.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use dermdesk_core::secrets::SecretStore;
use dermdesk_core::CoreError;
use zeroize::Zeroizing;

/// Secrets in one file, one `name hex-value` line each.
///
/// Every change writes the whole file under a temporary name, fsyncs it, renames it over the
/// old one and fsyncs the directory: a process killed at any instant leaves either the old file
/// or the new one, never a mix. (A torn secrets file would look like a lost cache key, which the
/// core reports as `CacheKeyMissing` — a harness artefact, not a finding.)
#[derive(Debug)]
pub struct FileSecretStore {
    path: PathBuf,
    /// Serialises read-modify-write within one process; only one process uses the file at a time
    /// (the harness reads it only while the client is dead).
    lock: Mutex<()>,
}

impl FileSecretStore {
    pub fn new(path: impl Into<PathBuf>) -> FileSecretStore {
        FileSecretStore { path: path.into(), lock: Mutex::new(()) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_all(&self) -> Result<BTreeMap<String, Zeroizing<Vec<u8>>>, CoreError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => Zeroizing::new(text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(error) => return Err(unavailable(&self.path, error)),
        };
        let mut secrets = BTreeMap::new();
        for line in text.lines().filter(|line| !line.is_empty()) {
            let (name, value) = line.split_once(' ').ok_or_else(|| damaged(&self.path))?;
            let value = hex::decode(value).map_err(|_| damaged(&self.path))?;
            secrets.insert(name.to_owned(), Zeroizing::new(value));
        }
        Ok(secrets)
    }

    fn write_all(&self, secrets: &BTreeMap<String, Zeroizing<Vec<u8>>>) -> Result<(), CoreError> {
        let mut text = Zeroizing::new(String::new());
        for (name, value) in secrets {
            text.push_str(name);
            text.push(' ');
            text.push_str(&hex::encode(value.as_slice()));
            text.push('\n');
        }
        let temporary = self.path.with_extension("tmp");
        let written = (|| {
            let mut file = owner_only().open(&temporary)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            fs::rename(&temporary, &self.path)?;
            sync_dir(&self.path)
        })();
        written.map_err(|error| unavailable(&self.path, error))
    }
}

impl SecretStore for FileSecretStore {
    fn get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>, CoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(self.read_all()?.remove(name))
    }

    fn set(&self, name: &str, value: &[u8]) -> Result<(), CoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut secrets = self.read_all()?;
        secrets.insert(name.to_owned(), Zeroizing::new(value.to_vec()));
        self.write_all(&secrets)
    }

    fn delete(&self, name: &str) -> Result<(), CoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut secrets = self.read_all()?;
        if secrets.remove(name).is_some() {
            self.write_all(&secrets)?;
        }
        Ok(())
    }
}

fn unavailable(path: &Path, error: std::io::Error) -> CoreError {
    CoreError::KeychainUnavailable(format!("test secrets file {}: {error}", path.display()))
}

fn damaged(path: &Path) -> CoreError {
    CoreError::KeychainUnavailable(format!("test secrets file {} is damaged", path.display()))
}

#[cfg(unix)]
fn owner_only() -> OpenOptions {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true).mode(0o600);
    options
}

#[cfg(not(unix))]
fn owner_only() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    options
}

/// Makes a rename in `file`'s directory durable (on Linux a directory can be fsynced; elsewhere
/// this is a no-op that still compiles).
pub fn sync_dir(file: &Path) -> std::io::Result<()> {
    let dir = file.parent().filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
