//! What the benchmarks run against: the reference hub in-process on 127.0.0.1:0 (counting the
//! requests it receives), real desks (SQLCipher cache, in-memory keychain) enrolled with it, and
//! the synthetic data: full-size photographs (rendered once, kept under `target/bench`) and
//! thousands of referrals made from a few synthetic templates. Never real patient data.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{Duration, Utc};
use dermdesk_core::secrets::{MemorySecretStore, SecretStore as _, DEVICE_TOKEN};
use dermdesk_core::{Desk, DeskConfig};
use dermdesk_hub::{Hub, ServerConfig};
use dermdesk_protocol::{Consultant, PhotoMeta, Referral};
use dermdesk_synth::{DemoOptions, DemoSet, PhotoScale};

pub type Result<T = ()> = std::result::Result<T, String>;

/// Seeds of the synthetic sets: fixed, so every run measures the same bytes.
const PHOTO_SEED: u64 = 31_415;
const TEMPLATE_SEED: u64 = 27_182;

/// The hub, served on loopback, with a count of the HTTP requests it has received.
pub struct BenchHub {
    pub hub: Hub,
    pub url: String,
    requests: Arc<AtomicU64>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl BenchHub {
    /// An in-memory hub database with its photo directory under `dir`, listening on a random
    /// loopback port. Binding happens before serving, so the port is known before any request.
    pub async fn start(dir: &Path) -> Result<BenchHub> {
        let hub = Hub::open(None, &dir.join("hub-photos")).map_err(|e| format!("opening the hub: {e}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
        let requests = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&requests);
        // Outermost layer: every request that reaches the server is counted, whatever route or
        // error it meets.
        let router =
            dermdesk_hub::app(hub.clone(), ServerConfig::default()).layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    counter.fetch_add(1, Ordering::Relaxed);
                    next.run(request)
                },
            ));
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(dermdesk_hub::serve(listener, router, async {
            let _ = stopped.await;
        }));
        Ok(BenchHub { hub, url, requests, _shutdown: shutdown })
    }

    /// HTTP requests received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn consultant(&self, display_name: &str) -> Result<Consultant> {
        self.hub.create_consultant(display_name).map_err(|e| e.to_string())
    }
}

/// A desk enrolled as one consultant, in its own data directory (removed when dropped).
pub struct BenchDesk {
    pub desk: Arc<Desk>,
    secrets: Arc<MemorySecretStore>,
    dir: PathBuf,
}

impl BenchDesk {
    /// Opens a new, empty encrypted cache in `dir` and enrols it with a fresh one-time code.
    pub async fn enrolled(hub: &BenchHub, consultant: &Consultant, dir: PathBuf) -> Result<BenchDesk> {
        let _ = std::fs::remove_dir_all(&dir);
        let secrets = Arc::new(MemorySecretStore::default());
        let config = DeskConfig { data_dir: dir.clone(), device_name: "benchmark".into() };
        let desk = Arc::new(Desk::open(config, secrets.clone()).map_err(|e| e.to_string())?);
        let code = hub.hub.create_enrolment_code(&consultant.id).map_err(|e| e.to_string())?;
        desk.enrol(&hub.url, &code).await.map_err(|e| format!("enrolling: {e}"))?;
        Ok(BenchDesk { desk, secrets, dir })
    }

    /// The device token, for the plain-HTTP reference (it asks the same hub for the same photos).
    pub fn token(&self) -> Result<String> {
        // The desk keeps its token sealed under the cache key (lock.rs): read it the way the desk
        // does, not as the raw keychain entry (which is ciphertext).
        let key = dermdesk_core::lock::CacheKey::from_slice(&self.cache_key()?).map_err(|e| e.to_string())?;
        let sealed = dermdesk_core::lock::SealedStore::new(self.secrets.clone(), &key);
        let token = sealed.get(DEVICE_TOKEN).map_err(|e| e.to_string())?.ok_or("not enrolled")?;
        String::from_utf8(token.to_vec()).map_err(|e| e.to_string())
    }
}

impl BenchDesk {
    /// The same encrypted cache opened again as a separate desk: what the app has after a
    /// restart (empty memory caches).
    pub fn reopen(&self) -> Result<Desk> {
        let config = DeskConfig { data_dir: self.dir.clone(), device_name: "benchmark".into() };
        Desk::open(config, self.secrets.clone()).map_err(|e| e.to_string())
    }

    /// The cache key, for a child process that opens the same cache (benchmarks only; the
    /// photos are synthetic).
    pub fn cache_key(&self) -> Result<Vec<u8>> {
        let key = self.secrets.get(dermdesk_core::secrets::CACHE_KEY).map_err(|e| e.to_string())?;
        Ok(key.ok_or("no cache key")?.to_vec())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for BenchDesk {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A synthetic demo set with full-size (12 to 24 megapixel) photographs and at least
/// `photos` of them, rendered into `cache_dir` on first use and reused afterwards. Returns the
/// set and the metadata of the first `photos` photographs.
pub fn full_size_photos(cache_dir: &Path, photos: usize) -> Result<(DemoSet, Vec<PhotoMeta>)> {
    let mut referrals = 4;
    loop {
        let options =
            DemoOptions { seed: PHOTO_SEED, referrals, photo_scale: PhotoScale::Full, now: Utc::now() };
        let (set, report) = dermdesk_synth::build_demo_set_with_report(cache_dir, &options)
            .map_err(|e| format!("rendering the benchmark photos: {e}"))?;
        if report.photos_rendered > 0 {
            eprintln!("rendered {} full-size photos into {}", report.photos_rendered, cache_dir.display());
        }
        let metas: Vec<PhotoMeta> = set.referrals.iter().flat_map(|r| r.photos.clone()).collect();
        let mut unique = Vec::new();
        for meta in metas {
            if !unique.iter().any(|m: &PhotoMeta| m.content_id == meta.content_id) {
                unique.push(meta);
            }
        }
        if unique.len() >= photos {
            unique.truncate(photos);
            return Ok((set, unique));
        }
        referrals += 2;
    }
}

/// `count` synthetic referrals for the metadata benchmark: copies of a few templates (small
/// photos, whose metadata the referrals carry; their bytes are never fetched there) with their
/// own ids and arrival times. Returns the template set (its photos go on the hub) and the
/// referrals.
pub fn many_referrals(cache_dir: &Path, count: usize) -> Result<(DemoSet, Vec<Referral>)> {
    let options = DemoOptions {
        seed: TEMPLATE_SEED,
        referrals: 12,
        photo_scale: PhotoScale::Small(640),
        now: Utc::now(),
    };
    let templates = dermdesk_synth::build_demo_set(cache_dir, &options)
        .map_err(|e| format!("rendering the template photos: {e}"))?;
    let referrals = (0..count)
        .map(|index| {
            let template = &templates.referrals[index % templates.referrals.len()];
            Referral {
                id: format!("BENCH-{index:06}"),
                version: 1,
                received_at: template.received_at - Duration::minutes(index as i64 % 5000),
                ..template.clone()
            }
        })
        .collect();
    Ok((templates, referrals))
}
