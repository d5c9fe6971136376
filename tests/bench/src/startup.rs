//! `startup-seed`: what `cargo xtask bench startup` measures the app's start against, made the
//! way a consultant's computer gets it. A reference hub with its database on disk (so the hub
//! binary can serve it again afterwards, on the same port) holds `--referrals` synthetic
//! referrals for one consultant; a desk in the app's own data folder
//! (`$XDG_DATA_HOME/uk.dermdesk.desk/desk`) chooses its passphrase in the real keychain (the
//! Secret Service of the D-Bus session this runs in; Argon2id at the app's own cost), enrols with
//! a one-time code and syncs everything: the feed to its end and every photo. Then this process
//! exits, and the app finds an enrolled, locked desk with 10,000 referrals cached.
//!
//! The referrals are copies of 12 small synthetic templates (`fixtures::many_referrals`), so
//! their photos are few and the sync is quick; the worklist holds 10,000 rows all the same.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use dermdesk_core::lock::{KdfParams, Vault};
use dermdesk_core::secrets::{profile_for, Keychain, SecretStore};
use dermdesk_core::{Desk, DeskConfig};
use dermdesk_hub::{Hub, ServerConfig};

use crate::fixtures::{many_referrals, Result};

#[derive(Debug, Clone)]
pub struct SeedSettings {
    /// The app's XDG_DATA_HOME.
    pub data_home: PathBuf,
    /// Where the hub keeps its database and photos (`hub.sqlite3`, `photos/`).
    pub hub_dir: PathBuf,
    /// The loopback port the hub listens on now and, as the hub binary, later.
    pub port: u16,
    pub referrals: usize,
    pub passphrase: String,
    /// Where the synthetic template photos are rendered (kept between runs).
    pub templates: PathBuf,
}

/// The desk's folder inside the app's data folder: Tauri's `app_data_dir` (the identifier in
/// tauri.conf.json) and the app's non-demo `desk` (src-tauri/src/lib.rs `prepare`).
pub fn app_desk_dir(data_home: &std::path::Path) -> PathBuf {
    data_home.join("uk.dermdesk.desk").join("desk")
}

pub async fn seed(settings: SeedSettings) -> Result {
    let started = Instant::now();
    std::fs::create_dir_all(&settings.hub_dir).map_err(|e| e.to_string())?;
    let hub = Hub::open(Some(&settings.hub_dir.join("hub.sqlite3")), &settings.hub_dir.join("photos"))
        .map_err(|e| format!("opening the hub: {e}"))?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", settings.port))
        .await
        .map_err(|e| format!("127.0.0.1:{}: {e}", settings.port))?;
    let url = format!("http://127.0.0.1:{}", settings.port);
    let router = dermdesk_hub::app(hub.clone(), ServerConfig::default());
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(dermdesk_hub::serve(listener, router, async {
        let _ = stopped.await;
    }));

    let (templates, referrals) = {
        let (cache, count) = (settings.templates.clone(), settings.referrals);
        tokio::task::spawn_blocking(move || many_referrals(&cache, count))
            .await
            .map_err(|e| e.to_string())??
    };
    let consultant = hub.create_consultant("Dr Startup Bench (synthetic)").map_err(|e| e.to_string())?;
    {
        let (hub, consultant) = (hub.clone(), consultant.clone());
        tokio::task::spawn_blocking(move || -> Result {
            for path in templates.photo_files.values() {
                hub.add_photo_file(path).map_err(|e| e.to_string())?;
            }
            for referral in &referrals {
                hub.create_referral(referral, &consultant.id).map_err(|e| e.to_string())?;
            }
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())??;
    }
    eprintln!("startup-seed: hub seeded with {} referrals in {:.1?}", settings.referrals, started.elapsed());

    let data_dir = app_desk_dir(&settings.data_home);
    let secrets: Arc<dyn SecretStore> = Arc::new(Keychain::new(&profile_for(&data_dir)));
    let (vault_dir, vault_secrets, passphrase) =
        (data_dir.clone(), Arc::clone(&secrets), settings.passphrase);
    let key = tokio::task::spawn_blocking(move || {
        Vault::new(&vault_dir, vault_secrets, KdfParams::default(), Instant::now())?
            .choose_passphrase(&passphrase)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("choosing the passphrase in the keychain: {e}"))?;
    let config = DeskConfig { data_dir, device_name: "Derm Desk on linux".into() };
    let desk = Arc::new(Desk::open_with_key(config, secrets, &key).map_err(|e| e.to_string())?);
    let code = hub.create_enrolment_code(&consultant.id).map_err(|e| e.to_string())?;
    desk.enrol(&url, &code).await.map_err(|e| format!("enrolling: {e}"))?;
    let client = desk.client().map_err(|e| e.to_string())?;
    let synced = Instant::now();
    let summary = desk.pull_feed(&client, |_| {}).await.map_err(|e| e.to_string())?;
    let missing = desk.missing_photos().map_err(|e| e.to_string())?;
    desk.fetch_photos(&client, missing, 3, Arc::new(|_| {}), |_, _| {}).await.map_err(|e| e.to_string())?;
    desk.record_sync_success().map_err(|e| e.to_string())?;
    let cached = desk.worklist().map_err(|e| e.to_string())?.len();
    eprintln!(
        "startup-seed: {} changes synced, {cached} referrals cached, photos complete, in {:.1?}",
        summary.changes,
        synced.elapsed()
    );
    if cached != settings.referrals {
        return Err(format!("{cached} referrals cached, {} expected", settings.referrals));
    }
    drop(desk);
    let _ = shutdown.send(());
    let _ = server.await;
    Ok(())
}
