//! The embedded demo: the reference hub, started in-process on a random loopback port with
//! synthetic referrals, so Derm Desk can be tried (and tested) without any real service.
//! The hub's own data (synthetic, the "central service" side) lives in the user's cache
//! directory, apart from the app's encrypted cache.

use std::path::{Path, PathBuf};

use dermdesk_hub::{DemoSeed, Hub, ServerConfig};
use dermdesk_synth::{DemoExtras, PhotoScale};
use tokio::sync::oneshot;

/// The running demo hub; dropping it stops the server.
pub struct EmbeddedHub {
    pub url: String,
    /// One-time code for enrolling a new demo desk.
    pub enrolment_code: String,
    hub: Hub,
    consultant_id: String,
    first_code_used: std::sync::atomic::AtomicBool,
    _shutdown: oneshot::Sender<()>,
}

impl EmbeddedHub {
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The seeded one-time code the first time; a new one for the demo consultant after that
    /// (enrolling again after a sign-out or a wipe).
    pub fn enrolment_code_for_new_desk(&self) -> Result<String, String> {
        if !self.first_code_used.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Ok(self.enrolment_code.clone());
        }
        self.hub.create_enrolment_code(&self.consultant_id).map_err(|e| e.to_string())
    }
}

/// When the demo's referrals arrived from: now, unless `DERMDESK_DEMO_SEEDED_AT` (RFC 3339)
/// says otherwise, so a test can look at the same referrals before and after a deadline.
fn seeded_at() -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    match std::env::var("DERMDESK_DEMO_SEEDED_AT") {
        Ok(text) if !text.trim().is_empty() => dermdesk_core::clock::parse_instant(&text)
            .map(Some)
            .map_err(|e| e.replace(dermdesk_core::clock::NOW_VARIABLE, "DERMDESK_DEMO_SEEDED_AT")),
        _ => Ok(None),
    }
}

/// The rendered synthetic photographs (content-addressed, so any number of demo desks can share
/// them): `DERMDESK_DEMO_PHOTO_CACHE` if set (the end-to-end tests share one across tests, each
/// with its own data folder), else beside the demo hub.
fn synthetic_photo_dir(demo_dir: &Path) -> PathBuf {
    std::env::var_os("DERMDESK_DEMO_PHOTO_CACHE").map_or_else(|| demo_dir.join("synthetic"), PathBuf::from)
}

/// Photo sizes of the demo: phone-camera sizes unless `DERMDESK_DEMO_SCALE=small` (fast tests).
fn photo_scale() -> PhotoScale {
    match std::env::var("DERMDESK_DEMO_SCALE").as_deref() {
        Ok("small") => PhotoScale::Small(1024),
        _ => PhotoScale::Full,
    }
}

/// The viewer's test referrals, off unless asked for: `DERMDESK_DEMO_ORIENTATION=1` adds the
/// orientation chart (EXIF 1–8), `DERMDESK_DEMO_LARGE_PHOTOS=1` four 24 MP photos.
fn extras() -> DemoExtras {
    let on = |name: &str| std::env::var(name).is_ok_and(|value| value == "1");
    DemoExtras {
        orientation_chart: on("DERMDESK_DEMO_ORIENTATION"),
        large_photos: on("DERMDESK_DEMO_LARGE_PHOTOS"),
    }
}

/// Starts (and seeds) the demo hub under `demo_dir`. `fresh` starts the hub's
/// referrals over (a new, unenrolled desk should not meet outcomes an earlier demo desk sent);
/// the rendered synthetic photographs are reused either way.
pub async fn start(
    demo_dir: PathBuf,
    fresh: bool,
    clock: dermdesk_core::clock::SharedClock,
) -> Result<EmbeddedHub, String> {
    let scale = photo_scale();
    let hub_dir = demo_dir.join(match scale {
        PhotoScale::Full => "hub",
        PhotoScale::Small(_) => "hub-small",
    });
    if fresh && hub_dir.exists() {
        std::fs::remove_dir_all(&hub_dir).map_err(|e| format!("resetting the demo hub: {e}"))?;
    }
    let seeded_at = seeded_at()?;
    let (hub, seed) =
        tokio::task::spawn_blocking(move || open_and_seed(&demo_dir, &hub_dir, scale, clock, seeded_at))
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
    Ok(EmbeddedHub {
        url,
        enrolment_code: seed.enrolment_code,
        hub,
        consultant_id: seed.consultant.id,
        first_code_used: Default::default(),
        _shutdown: shutdown,
    })
}

/// Opens the demo hub's database and (re)seeds it: seeding is idempotent (existing referrals
/// and rendered photos are reused) and hands out a fresh one-time enrolment code.
fn open_and_seed(
    demo_dir: &Path,
    hub_dir: &Path,
    scale: PhotoScale,
    clock: dermdesk_core::clock::SharedClock,
    seeded_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(Hub, DemoSeed), String> {
    std::fs::create_dir_all(hub_dir).map_err(|e| e.to_string())?;
    let hub_clock: dermdesk_hub::HubClock = std::sync::Arc::new(move || clock.now());
    let hub = Hub::open_with_clock(Some(&hub_dir.join("hub.sqlite3")), &hub_dir.join("photos"), hub_clock)
        .map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let seed = hub
        .seed_synthetic_demo_at(
            &synthetic_photo_dir(demo_dir),
            scale,
            extras(),
            seeded_at.unwrap_or_else(|| hub.now()),
        )
        .map_err(|e| e.to_string())?;
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "demo data ready");
    Ok((hub, seed))
}
