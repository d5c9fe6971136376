//! A hub seeded with a small synthetic demo set, listening on a random loopback port, and a
//! desk enrolled with it.

use std::sync::{Arc, OnceLock};

use dermdesk_core::cache::Cache;
use dermdesk_core::clock::{test_clock, test_instant};
use dermdesk_core::secrets::{MemorySecretStore, SecretStore as _, CACHE_KEY};
use dermdesk_core::{Desk, DeskConfig};
use dermdesk_hub::{DemoSeed, Hub, ServerConfig};
use dermdesk_synth::{DemoOptions, DemoSet, PhotoScale};
use tempfile::TempDir;

/// The synthetic set is rendered once per test run and shared (read-only) by all tests.
fn demo_set() -> &'static (TempDir, DemoSet) {
    static SET: OnceLock<(TempDir, DemoSet)> = OnceLock::new();
    SET.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let options =
            DemoOptions { seed: 7, referrals: 6, photo_scale: PhotoScale::Small(480), now: test_instant() };
        let set = dermdesk_synth::build_demo_set(dir.path(), &options).unwrap();
        (dir, set)
    })
}

pub struct TestHub {
    pub hub: Hub,
    pub url: String,
    pub seed: DemoSeed,
    pub set: &'static DemoSet,
    _dir: TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TestHub {
    pub async fn start() -> TestHub {
        Self::start_with(ServerConfig::default()).await
    }

    /// A hub with its own server settings (e.g. fault injection).
    pub async fn start_with(config: ServerConfig) -> TestHub {
        let (_, set) = demo_set();
        let dir = tempfile::tempdir().unwrap();
        let hub = Hub::open_with_clock(None, &dir.path().join("photos"), {
            let clock = test_clock();
            Arc::new(move || clock.now())
        })
        .unwrap();
        let seed = hub.seed_demo(set).unwrap();
        // Bind first, then serve: the port is known before any request is made.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = dermdesk_hub::app(hub.clone(), config);
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(dermdesk_hub::serve(listener, router, async {
            let _ = stopped.await;
        }));
        TestHub { hub, url, seed, set, _dir: dir, _shutdown: shutdown }
    }
}

pub struct TestDesk {
    pub desk: Arc<Desk>,
    secrets: Arc<MemorySecretStore>,
    dir: TempDir,
}

impl TestDesk {
    pub async fn enrolled(hub: &TestHub) -> TestDesk {
        Self::enrolled_at(hub, &hub.url).await
    }

    /// Enrolled with the hub's code but talking to `url` (a proxy in front of the hub).
    pub async fn enrolled_at(hub: &TestHub, url: &str) -> TestDesk {
        let dir = tempfile::tempdir().unwrap();
        let secrets = Arc::new(MemorySecretStore::default());
        let desk = Arc::new(Self::open(&dir, &secrets));
        desk.enrol(url, &hub.seed.enrolment_code).await.unwrap();
        TestDesk { desk, secrets, dir }
    }

    /// The desk on the tests' clock (`DERMDESK_NOW`, else a fixed Wednesday, running on; the
    /// same clock as the hub's), never today's date.
    fn open(dir: &TempDir, secrets: &Arc<MemorySecretStore>) -> Desk {
        Desk::open(Self::config(dir), secrets.clone()).unwrap().with_clock(test_clock())
    }

    fn config(dir: &TempDir) -> DeskConfig {
        DeskConfig { data_dir: dir.path().join("desk"), device_name: "integration test".into() }
    }

    /// Closes the desk and opens it again from its files, as after a crash or restart.
    pub fn reopen(self) -> TestDesk {
        let TestDesk { desk, secrets, dir } = self;
        drop(desk);
        let desk = Arc::new(Self::open(&dir, &secrets));
        TestDesk { desk, secrets, dir }
    }

    /// The desk's keychain as the desk sees it: its entries sealed under the cache key
    /// (`lock::SealedStore`) over a memory store.
    pub fn secrets(&self) -> dermdesk_core::lock::SealedStore {
        let key = self.secrets.get(CACHE_KEY).unwrap().expect("cache key");
        let key = dermdesk_core::lock::CacheKey::from_slice(&key).unwrap();
        dermdesk_core::lock::SealedStore::new(self.secrets.clone(), &key)
    }

    /// A second connection to the desk's encrypted cache, to arrange states the desk only
    /// reaches through a crash or an older version.
    pub fn cache(&self) -> Cache {
        let key = self.secrets.get(CACHE_KEY).unwrap().expect("cache key");
        let key: &[u8; 32] = key.as_slice().try_into().unwrap();
        Cache::open(&self.desk.data_dir().join(dermdesk_core::desk::CACHE_FILE), key).unwrap()
    }

    /// One full sync: feed, every photo, outbox.
    pub async fn sync(&self) {
        let client = self.desk.client().unwrap();
        self.desk.pull_feed(&client, |_| {}).await.unwrap();
        let missing = self.desk.missing_photos().unwrap();
        let summary = self.desk.fetch_photos(&client, missing, 3, Arc::new(|_| {}), |_, _| {}).await.unwrap();
        assert!(summary.failed.is_empty(), "photos refused: {:?}", summary.failed);
        self.desk.push_outbox(&client).await.unwrap();
    }
}
