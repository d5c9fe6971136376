//! Updates of Derm Desk itself, the core's half: where the enrolled service publishes them,
//! when to look, what the offer in the window says, whether it may be installed now, and what a
//! refusal tells the consultant. Pure, but for [`Updates::check`] and [`Updates::download`],
//! which go through `client.rs` (the only module on the network).
//!
//! Checking the installer's minisign signature against [`RELEASE_PUBLIC_KEY`] and running it
//! (`pkexec dpkg -i` on Debian) is tauri-plugin-updater's, called by the shell: the shell hands
//! the manifest fetched here to the plugin (`Updater::restore_update`, which also requires the
//! signature to name the announced version), and the installer downloaded here to
//! `Update::install`, which verifies before it installs. The plugin itself requests nothing.
//!
//! The rules:
//! - Look only while the desk is open and the service was reachable at the last sync: once
//!   after unlock, then every [`CHECK_EVERY`]; after a failed look, again after
//!   [`RETRY_AFTER_FAILURE`]. Offline it stays silent: no offer, no error, nothing logged above
//!   debug.
//! - An update is only offered, never installed without the consultant's click.
//! - Signed outcomes waiting in the outbox do not block it: they are committed to the encrypted
//!   cache (`synchronous = FULL`) and the restart does not touch the cache, so the offer says
//!   they are kept and go after the restart. A repeat push after a restart is not a duplicate
//!   (the outcome id is the idempotency key).
//! - Never an older or equal version (the plugin compares too; this is the offer's own check).

use std::time::{Duration, Instant};

use serde::Serialize;
use url::Url;

use crate::client::HubClient;
use crate::CoreError;

/// Where a service publishes Derm Desk updates, under its address (docs/api.md, Updates).
pub const MANIFEST_PATH: &str = "/updates/latest.json";
/// How often an open desk looks for an update while online.
pub const CHECK_EVERY: Duration = Duration::from_secs(4 * 60 * 60);
/// After a look that failed (the service went away meanwhile), the next one.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10 * 60);
/// Largest manifest read: one release, a few platforms, short notes.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;
/// Largest installer read (a .deb is ~7 MB, an AppImage ~80 MB).
pub const MAX_PACKAGE_BYTES: u64 = 256 * 1024 * 1024;

/// The release key's public half (minisign, base64 of the `.pub` file as Tauri writes it),
/// compiled in: `keys/update-release.pub`, or `DERMDESK_UPDATE_PUBKEY` at build time (tests
/// build with a throwaway key). Nothing at run time can change it. The private half is never in
/// the repository: it is the hosted CI secret `TAURI_SIGNING_PRIVATE_KEY` (README, Releases).
pub const RELEASE_PUBLIC_KEY: &str = match option_env!("DERMDESK_UPDATE_PUBKEY") {
    Some(key) => key.trim_ascii(),
    None => include_str!("../../../keys/update-release.pub").trim_ascii(),
};

/// The manifest's address for a service address (its path kept: a service may live under one).
pub fn manifest_url(service: &Url) -> Url {
    let mut url = service.clone();
    let prefix = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{prefix}{MANIFEST_PATH}"));
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// A version as `MAJOR.MINOR.PATCH` (a leading `v` forgiven); pre-releases and build metadata
/// are not offered to consultants, so they do not parse.
pub fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let mut parts = text.trim().trim_start_matches('v').split('.');
    let mut next =
        || parts.next().filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))?.parse().ok();
    let version = (next()?, next()?, next()?);
    parts.next().is_none().then_some(version)
}

/// Is `available` newer than `current`? Unreadable versions are never newer.
pub fn is_newer(current: &str, available: &str) -> bool {
    matches!((parse_version(current), parse_version(available)), (Some(c), Some(a)) if a > c)
}

/// What the last look found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookResult {
    Done,
    Failed,
}

/// Is a look due now? Only online (the last sync reached the service), and then: never looked
/// this run, or [`CHECK_EVERY`] after a look, or [`RETRY_AFTER_FAILURE`] after a failed one.
pub fn check_due(last: Option<(Instant, LookResult)>, now: Instant, online: Option<bool>) -> bool {
    if online != Some(true) {
        return false;
    }
    match last {
        None => true,
        Some((at, LookResult::Done)) => now.saturating_duration_since(at) >= CHECK_EVERY,
        Some((at, LookResult::Failed)) => now.saturating_duration_since(at) >= RETRY_AFTER_FAILURE,
    }
}

/// The offer the window shows (the status bar's banner), words and all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateOffer {
    pub current_version: String,
    pub version: String,
    /// "Derm Desk 0.1.1 is available".
    pub headline: String,
    /// The button: "Install and restart".
    pub action: String,
    /// What happens to what is waiting, when something is.
    pub note: Option<String>,
    /// The release notes from the manifest, shown as text (never HTML).
    pub release_notes: Option<String>,
    pub outcomes_waiting: u32,
}

/// The offer for `available` while `outcomes_waiting` signed outcomes wait to go, or `None` when
/// it is not newer than `current`.
pub fn offer(
    current: &str,
    available: &str,
    release_notes: Option<&str>,
    outcomes_waiting: u32,
) -> Option<UpdateOffer> {
    if !is_newer(current, available) {
        return None;
    }
    let note = match outcomes_waiting {
        0 => None,
        1 => Some(
            "1 signed outcome is waiting to be sent. It is kept in the encrypted cache and goes to the \
             service after the restart."
                .to_owned(),
        ),
        n => Some(format!(
            "{n} signed outcomes are waiting to be sent. They are kept in the encrypted cache and go to the \
             service after the restart."
        )),
    };
    let release_notes = release_notes
        .map(str::trim)
        .filter(|notes| !notes.is_empty())
        .map(|notes| notes.chars().take(2000).collect());
    Some(UpdateOffer {
        current_version: current.to_owned(),
        version: available.to_owned(),
        headline: format!("Derm Desk {available} is available"),
        action: "Install and restart".to_owned(),
        note,
        release_notes,
        outcomes_waiting,
    })
}

/// Why an offered update was not installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The service or the installer's address could not be reached.
    Unreachable,
    /// The installer's address is not https (nor http to this computer), or it redirected.
    Address(String),
    /// Larger than [`MAX_PACKAGE_BYTES`], or not what the service said it was.
    Download(String),
    /// The signature is not the release key's over these bytes: tampered or wrongly signed.
    Signature,
    /// Signed for another version than the one announced (a replayed older installer).
    SignedVersion { signed: String },
    /// The bytes are not an installer of this kind (not a .deb for an installed .deb).
    NotAnInstaller,
    /// The system's installer (dpkg through pkexec or sudo) failed or was cancelled.
    InstallerFailed,
    /// The manifest no longer offers it (withdrawn meanwhile), or there is no offer.
    NoLongerOffered,
    /// This copy of Derm Desk was not installed from a package the updater can replace (a
    /// development build, or an install it cannot write).
    NotUpdatable(String),
}

/// What the consultant reads when an update was refused. Every refusal before the system
/// installer ran leaves everything as it was, and says so.
pub fn refusal_message(refusal: &Refusal, current: &str, version: &str) -> String {
    let unchanged = format!(
        "Nothing was installed or changed: Derm Desk {current}, your cache, drafts and outbox are as they were."
    );
    match refusal {
        Refusal::Unreachable => format!(
            "The update to Derm Desk {version} could not be downloaded (the service is not reachable now). \
             {unchanged} It is offered again when the service is back."
        ),
        Refusal::Address(why) => format!(
            "The update to Derm Desk {version} was refused: its download address is not allowed ({why}). \
             {unchanged} Tell your service's IT team."
        ),
        Refusal::Download(why) => format!(
            "The update to Derm Desk {version} was refused: {why}. {unchanged} Tell your service's IT team."
        ),
        Refusal::Signature => format!(
            "The update to Derm Desk {version} was refused: its signature does not match Derm Desk's release \
             key, so the file may have been altered or was not made by Derm Desk's release process. {unchanged} \
             Tell your service's IT team."
        ),
        Refusal::SignedVersion { signed } => format!(
            "The update was refused: the service announced Derm Desk {version}, but the file is signed as \
             version {signed}. {unchanged} Tell your service's IT team."
        ),
        Refusal::NotAnInstaller => format!(
            "The update to Derm Desk {version} was refused: the file is not an installer for this computer. \
             {unchanged} Tell your service's IT team."
        ),
        Refusal::InstallerFailed => format!(
            "The system installer did not install Derm Desk {version} (it failed, or permission was not \
             given). Derm Desk {current} keeps running; your cache, drafts and outbox are as they were. \
             Try again, or ask your IT team."
        ),
        Refusal::NoLongerOffered => format!(
            "Derm Desk {version} is no longer offered by your service. {unchanged}"
        ),
        Refusal::NotUpdatable(why) => format!(
            "This copy of Derm Desk cannot update itself ({why}). {unchanged} Install Derm Desk {version} \
             from your service's installer."
        ),
    }
}

/// The update state of one run of the app: the last look and what it found. The shell keeps
/// one beside the lifecycle and calls it; the rules are here.
#[derive(Debug)]
pub struct Updates {
    current: String,
    state: std::sync::Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last: Option<(Instant, LookResult)>,
    /// The manifest of the release on offer, as the service sent it (the plugin reads it
    /// again at install time), and its version and notes.
    offered: Option<Offered>,
}

#[derive(Debug, Clone)]
struct Offered {
    manifest: serde_json::Value,
    version: String,
    notes: Option<String>,
}

impl Updates {
    /// `current` is this build's version (`CARGO_PKG_VERSION` of the app).
    pub fn new(current: &str) -> Updates {
        Updates { current: current.to_owned(), state: Default::default() }
    }

    pub fn current_version(&self) -> &str {
        &self.current
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Is a look due now ([`check_due`])?
    pub fn due(&self, now: Instant, online: Option<bool>) -> bool {
        check_due(self.state().last, now, online)
    }

    /// Looks at the service's manifest. `None` when there is nothing to judge (none published,
    /// or the service did not answer: that is silent, logged at debug only). The manifest is
    /// kept for [`Updates::offered`] once the updater has judged it.
    pub async fn check(&self, client: &HubClient, now: Instant) -> Option<serde_json::Value> {
        let result = client.update_manifest().await;
        let look = if result.is_ok() { LookResult::Done } else { LookResult::Failed };
        self.state().last = Some((now, look));
        match result {
            Ok(manifest) => manifest,
            Err(error) => {
                tracing::debug!(kind = ?error.kind(), "no update manifest this time");
                None
            }
        }
    }

    /// The updater judged `manifest` an update to `version` for this computer: keep it on offer.
    /// A version not newer than this build is not kept.
    pub fn offered(&self, manifest: serde_json::Value, version: &str, notes: Option<&str>) {
        let newer = is_newer(&self.current, version);
        self.state().offered =
            newer.then(|| Offered { manifest, version: version.to_owned(), notes: notes.map(str::to_owned) });
    }

    /// Nothing to offer (the manifest names no newer release, or none for this computer).
    pub fn nothing_offered(&self) {
        self.state().offered = None;
    }

    /// The offer as the window shows it now, with the outbox as it is now.
    pub fn offer(&self, outcomes_waiting: u32) -> Option<UpdateOffer> {
        let state = self.state();
        let offered = state.offered.as_ref()?;
        offer(&self.current, &offered.version, offered.notes.as_deref(), outcomes_waiting)
    }

    /// The manifest to install from, and its version: the one on offer.
    pub fn to_install(&self) -> Result<(serde_json::Value, String), CoreError> {
        let state = self.state();
        let offered = state.offered.as_ref().ok_or_else(|| {
            CoreError::UpdateRefused(refusal_message(&Refusal::NoLongerOffered, &self.current, "(none)"))
        })?;
        Ok((offered.manifest.clone(), offered.version.clone()))
    }

    /// Downloads the installer the updater picked (capped, https or loopback http, no redirect).
    pub async fn download(&self, client: &HubClient, url: &str, version: &str) -> Result<Vec<u8>, CoreError> {
        client.update_package(url).await.map_err(|error| {
            let refusal = match error {
                CoreError::BadServiceUrl(why) => Refusal::Address(why),
                CoreError::Offline(_) | CoreError::Busy(_) => Refusal::Unreachable,
                CoreError::Protocol(why) => Refusal::Download(why),
                other => Refusal::Download(other.to_string()),
            };
            self.refused(&refusal, version)
        })
    }

    /// The error for a refusal of `version`.
    pub fn refused(&self, refusal: &Refusal, version: &str) -> CoreError {
        tracing::warn!(?refusal, "an update was not installed");
        CoreError::UpdateRefused(refusal_message(refusal, &self.current, version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_lives_under_the_service_address() {
        let at = |service: &str| manifest_url(&Url::parse(service).unwrap()).to_string();
        assert_eq!(at("https://hub.example.nhs.uk"), "https://hub.example.nhs.uk/updates/latest.json");
        assert_eq!(at("https://example.nhs.uk/derm/"), "https://example.nhs.uk/derm/updates/latest.json");
        assert_eq!(at("http://127.0.0.1:8787/?x=1#y"), "http://127.0.0.1:8787/updates/latest.json");
    }

    #[test]
    fn only_a_newer_plain_release_is_newer() {
        assert!(is_newer("0.1.0", "0.1.1"));
        assert!(is_newer("0.1.9", "0.2.0"));
        assert!(is_newer("0.9.0", "v1.0.0"));
        assert!(!is_newer("0.1.1", "0.1.1"));
        assert!(!is_newer("0.1.1", "0.1.0"), "never a downgrade");
        assert!(!is_newer("0.1.0", "0.1.1-beta.1"), "no pre-releases for consultants");
        assert!(!is_newer("0.1.0", "0.1"));
        assert!(!is_newer("0.1.0", "0.1.1.1"));
        assert!(!is_newer("0.1.0", "latest"));
        assert!(!is_newer("0.1.0", "0.1.+1"));
    }

    #[test]
    fn a_look_is_due_once_online_then_every_four_hours() {
        let start = Instant::now();
        let hours = |h: u64| start + Duration::from_secs(h * 3600);
        // Offline or not yet known: silent.
        assert!(!check_due(None, start, None));
        assert!(!check_due(None, start, Some(false)));
        // First look of the run, as soon as the service answered.
        assert!(check_due(None, start, Some(true)));
        let looked = Some((start, LookResult::Done));
        assert!(!check_due(looked, hours(3), Some(true)));
        assert!(check_due(looked, hours(4), Some(true)));
        assert!(!check_due(looked, hours(5), Some(false)));
        // A failed look is retried sooner, still only online.
        let failed = Some((start, LookResult::Failed));
        assert!(!check_due(failed, start + Duration::from_secs(9 * 60), Some(true)));
        assert!(check_due(failed, start + Duration::from_secs(10 * 60), Some(true)));
    }

    #[test]
    fn the_offer_says_what_happens_to_waiting_outcomes() {
        let plain = offer("0.1.0", "0.1.1", None, 0).unwrap();
        assert_eq!(plain.headline, "Derm Desk 0.1.1 is available");
        assert_eq!(plain.action, "Install and restart");
        assert_eq!(plain.note, None);

        let one = offer("0.1.0", "0.1.1", None, 1).unwrap();
        assert_eq!(
            one.note.as_deref(),
            Some(
                "1 signed outcome is waiting to be sent. It is kept in the encrypted cache and goes to the \
                 service after the restart."
            )
        );
        let three = offer("0.1.0", "0.1.1", Some("  Fixes  "), 3).unwrap();
        assert!(three.note.unwrap().starts_with("3 signed outcomes are waiting"));
        assert_eq!(three.release_notes.as_deref(), Some("Fixes"));
        assert_eq!(three.outcomes_waiting, 3);

        assert_eq!(offer("0.1.1", "0.1.1", None, 0), None);
        assert_eq!(offer("0.1.1", "0.1.0", None, 0), None);
    }

    #[test]
    fn every_refusal_before_the_installer_ran_says_nothing_changed() {
        for refusal in [
            Refusal::Unreachable,
            Refusal::Address("http to another computer".into()),
            Refusal::Download("too large".into()),
            Refusal::Signature,
            Refusal::SignedVersion { signed: "0.1.0".into() },
            Refusal::NotAnInstaller,
            Refusal::NoLongerOffered,
            Refusal::NotUpdatable("a development build".into()),
        ] {
            let message = refusal_message(&refusal, "0.1.0", "0.1.1");
            assert!(
                message.contains(
                    "Nothing was installed or changed: Derm Desk 0.1.0, your cache, drafts and outbox"
                ),
                "{refusal:?}: {message}"
            );
        }
        let signature = refusal_message(&Refusal::Signature, "0.1.0", "0.1.1");
        assert!(signature.contains("signature does not match Derm Desk's release key"), "{signature}");
        let replay = refusal_message(&Refusal::SignedVersion { signed: "0.0.9".into() }, "0.1.0", "0.1.1");
        assert!(
            replay.contains("announced Derm Desk 0.1.1, but the file is signed as version 0.0.9"),
            "{replay}"
        );
    }

    #[test]
    fn only_a_newer_release_is_kept_on_offer() {
        let updates = Updates::new("0.1.0");
        assert_eq!(updates.offer(0), None);
        assert!(updates.to_install().is_err());
        updates.offered(serde_json::json!({"version": "0.1.1"}), "0.1.1", Some("notes"));
        assert_eq!(updates.offer(2).unwrap().outcomes_waiting, 2);
        assert_eq!(updates.to_install().unwrap().1, "0.1.1");
        updates.offered(serde_json::json!({"version": "0.1.0"}), "0.1.0", None);
        assert_eq!(updates.offer(0), None);
        updates.offered(serde_json::json!({"version": "0.1.1"}), "0.1.1", None);
        updates.nothing_offered();
        assert_eq!(updates.offer(0), None);
    }

    #[test]
    fn the_release_key_is_a_minisign_public_key() {
        use base64::Engine as _;
        let text = base64::engine::general_purpose::STANDARD.decode(RELEASE_PUBLIC_KEY).unwrap();
        let text = String::from_utf8(text).unwrap();
        let mut lines = text.lines();
        assert!(lines.next().unwrap().starts_with("untrusted comment: "), "{text}");
        let key = base64::engine::general_purpose::STANDARD.decode(lines.next().unwrap()).unwrap();
        // "Ed", an 8-byte key id, a 32-byte Ed25519 public key.
        assert_eq!(key.len(), 42);
        assert_eq!(&key[..2], b"Ed");
        assert!(!text.contains("secret"), "a public key only");
    }
}
