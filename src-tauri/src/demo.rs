//! The embedded demo: the reference hub, started in-process on a random loopback port with
//! synthetic referrals, so Derm Desk can be tried (and tested) without any real service.
//! The hub's own data (synthetic, the "central service" side) lives in the user's cache
//! directory, apart from the app's encrypted cache.

use std::path::{Path, PathBuf};

use chrono::Utc;
use dermdesk_hub::{Hub, ServerConfig};
use dermdesk_synth::{DemoOptions, PhotoScale};
use tokio::sync::oneshot;

/// The running demo hub; dropping it stops the server.
pub struct EmbeddedHub {
    pub url: String,
    pub hub: Hub,
    pub consultant_id: String,
    _shutdown: oneshot::Sender<()>,
}

/// Photo sizes of the demo: phone-camera sizes unless `DERMDESK_DEMO_SCALE=small` (fast tests).
fn photo_scale() -> PhotoScale {
    match std::env::var("DERMDESK_DEMO_SCALE").as_deref() {
        Ok("small") => PhotoScale::Small(1024),
        _ => PhotoScale::Full,
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SeedRecord {
    consultant_id: String,
}

/// Starts (seeding on first use) the demo hub under `demo_dir`. `fresh` starts the hub's
/// referrals over (a new, unenrolled desk should not meet outcomes an earlier demo desk sent);
/// the rendered synthetic photographs are reused either way.
pub async fn start(demo_dir: PathBuf, fresh: bool) -> Result<EmbeddedHub, String> {
    let scale = photo_scale();
    let hub_dir = demo_dir.join(match scale {
        PhotoScale::Full => "hub",
        PhotoScale::Small(_) => "hub-small",
    });
    if fresh && hub_dir.exists() {
        std::fs::remove_dir_all(&hub_dir).map_err(|e| format!("resetting the demo hub: {e}"))?;
    }
    let (hub, consultant_id) = tokio::task::spawn_blocking(move || open_or_seed(&demo_dir, &hub_dir, scale))
        .await
        .map_err(|e| e.to_string())??;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let router = dermdesk_hub::app(hub.clone(), ServerConfig::default());
    let (shutdown, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = dermdesk_hub::serve(listener, router, async {
            let _ = stopped.await;
        })
        .await;
    });
    tracing::info!(%url, "demo hub listening");
    Ok(EmbeddedHub { url, hub, consultant_id, _shutdown: shutdown })
}

fn open_or_seed(demo_dir: &Path, hub_dir: &Path, scale: PhotoScale) -> Result<(Hub, String), String> {
    std::fs::create_dir_all(hub_dir).map_err(|e| e.to_string())?;
    let seed_file = hub_dir.join("seed.json");
    let hub =
        Hub::open(Some(&hub_dir.join("hub.sqlite3")), &hub_dir.join("photos")).map_err(|e| e.to_string())?;
    if let Ok(text) = std::fs::read_to_string(&seed_file) {
        if let Ok(record) = serde_json::from_str::<SeedRecord>(&text) {
            return Ok((hub, record.consultant_id));
        }
    }
    let options = DemoOptions { seed: 2026, referrals: 12, photo_scale: scale, now: Utc::now() };
    let started = std::time::Instant::now();
    let set =
        dermdesk_synth::build_demo_set(&demo_dir.join("synthetic"), &options).map_err(|e| e.to_string())?;
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "demo data ready");
    let seed = hub.seed_demo(&set).map_err(|e| e.to_string())?;
    let record = SeedRecord { consultant_id: seed.consultant.id.clone() };
    std::fs::write(&seed_file, serde_json::to_vec(&record).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    Ok((hub, record.consultant_id))
}
