//! The world the client lives in: a real hub served over HTTP on 127.0.0.1, and a factory of
//! new synthetic referrals so every restart of the client finds work to do.
//!
//! Photos are rendered once (cached under `target/faults/photos` across runs) and reused as
//! templates. Because photos are content-addressed, reusing a file as-is would give the client
//! nothing to download (it already has those bytes), so every new referral gets *variants*: the
//! template's bytes with a short marker appended after the JPEG's end-of-image marker. Decoders
//! ignore bytes after EOI, so a variant is still a valid JPEG of the same dimensions, with a new
//! SHA-256. Some referrals carry a large photo (over the core's download piece), so kills
//! and cut connections exercise resumable downloads too.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use dermdesk_core::desk::CHUNK_BYTES;
use dermdesk_hub::{FaultState, Hub, ServerConfig};
use dermdesk_protocol::{Consultant, PhotoMeta, Referral};
use dermdesk_synth::{DemoOptions, PhotoScale};
use rand::rngs::StdRng;
use rand::Rng as _;

/// Fixed seed of the synthetic templates, so the rendered photos are reused across runs; the
/// run's own seed decides everything else.
const TEMPLATE_SEED: u64 = 7;
/// Long edge of the ordinary photos: small and quick, like a phone photo after resizing.
const SMALL_EDGE: u32 = 640;
/// Long edge of the large photos (a few hundred KB as rendered; padded below).
const LARGE_EDGE: u32 = 2600;
/// Large photos are padded (after EOI) to at least this size, one and a half of the core's
/// resumable download pieces: a kill or a cut connection after the first piece leaves it kept,
/// and the next run resumes from it.
const LARGE_MIN_BYTES: usize = CHUNK_BYTES * 3 / 2 + 12_345;

pub type Result<T> = std::result::Result<T, String>;

/// A template photo: its bytes and metadata as rendered.
struct Template {
    meta: PhotoMeta,
    bytes: Vec<u8>,
}

pub struct World {
    pub hub: Hub,
    pub url: String,
    pub faults: Arc<FaultState>,
    referral_templates: Vec<Referral>,
    small: Vec<Template>,
    large: Vec<Template>,
    variants: u64,
    referrals: u64,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl World {
    /// Renders (or reuses) the templates, opens an in-memory hub with its photos under
    /// `work_dir`, and serves it on a fresh loopback port.
    pub async fn start(work_dir: &Path, photo_cache: &Path) -> Result<World> {
        let options = |referrals, edge| DemoOptions {
            seed: TEMPLATE_SEED,
            referrals,
            photo_scale: PhotoScale::Small(edge),
            now: Utc::now(),
        };
        let small_set = dermdesk_synth::build_demo_set(&photo_cache.join("small"), &options(12, SMALL_EDGE))
            .map_err(|e| format!("rendering synthetic photos: {e}"))?;
        let large_set = dermdesk_synth::build_demo_set(&photo_cache.join("large"), &options(2, LARGE_EDGE))
            .map_err(|e| format!("rendering large synthetic photos: {e}"))?;
        let load = |set: &dermdesk_synth::DemoSet| -> Result<Vec<Template>> {
            let mut templates = Vec::new();
            for meta in set.referrals.iter().flat_map(|r| &r.photos) {
                if templates.iter().any(|t: &Template| t.meta.content_id == meta.content_id) {
                    continue;
                }
                let path = &set.photo_files[&meta.content_id];
                let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
                if !bytes.ends_with(&[0xFF, 0xD9]) {
                    return Err(format!("{} does not end with a JPEG end-of-image marker", path.display()));
                }
                templates.push(Template { meta: meta.clone(), bytes });
            }
            Ok(templates)
        };
        let (small, large) = (load(&small_set)?, load(&large_set)?);

        let hub = Hub::open(None, &work_dir.join("hub-photos")).map_err(|e| e.to_string())?;
        let faults = Arc::new(FaultState::default());
        // Bind first, then serve: the port is known before the client starts.
        let listener =
            tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("binding: {e}"))?;
        let url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
        let config = ServerConfig { faults: Some(Arc::clone(&faults)), ..ServerConfig::default() };
        let router = dermdesk_hub::app(hub.clone(), config);
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(dermdesk_hub::serve(listener, router, async {
            let _ = stopped.await;
        }));
        Ok(World {
            hub,
            url,
            faults,
            referral_templates: small_set.referrals,
            small,
            large,
            variants: 0,
            referrals: 0,
            _shutdown: shutdown,
        })
    }

    pub fn new_consultant(&self, display_name: &str) -> Result<Consultant> {
        self.hub.create_consultant(display_name).map_err(|e| e.to_string())
    }

    pub fn enrolment_code(&self, consultant_id: &str) -> Result<String> {
        self.hub.create_enrolment_code(consultant_id).map_err(|e| e.to_string())
    }

    /// A new variant of `template` stored on the hub: same picture, new bytes, new content id.
    fn store_variant(&mut self, template_index: usize, large: bool) -> Result<PhotoMeta> {
        self.variants += 1;
        let template = if large { &self.large[template_index] } else { &self.small[template_index] };
        let mut bytes = template.bytes.clone();
        bytes.extend_from_slice(format!("\ndermdesk-faults variant {}\n", self.variants).as_bytes());
        if large && bytes.len() < LARGE_MIN_BYTES {
            // Deterministic filler after EOI; only its length matters.
            let filler = (0..LARGE_MIN_BYTES - bytes.len()).map(|i| (i * 131 % 251) as u8);
            bytes.extend(filler);
        }
        let content_id = self.hub.add_photo_bytes(&bytes).map_err(|e| e.to_string())?;
        Ok(PhotoMeta { content_id, size: bytes.len() as u64, ..template.meta.clone() })
    }

    /// Creates a new referral for `consultant_id` on the hub, with fresh photos, and returns it.
    /// `large` gives its first photo a large variant.
    pub fn add_referral(&mut self, rng: &mut StdRng, consultant_id: &str, large: bool) -> Result<Referral> {
        self.referrals += 1;
        let template = &self.referral_templates[rng.gen_range(0..self.referral_templates.len())];
        let mut referral = template.clone();
        referral.id = format!("FH-{:05}", self.referrals);
        referral.version = 1;
        let photo_count = rng.gen_range(1..=3);
        referral.photos.clear();
        for position in 0..photo_count {
            let meta = if large && position == 0 {
                let index = rng.gen_range(0..self.large.len());
                self.store_variant(index, true)?
            } else {
                let index = rng.gen_range(0..self.small.len());
                self.store_variant(index, false)?
            };
            referral.photos.push(meta);
        }
        self.hub.create_referral(&referral, consultant_id).map_err(|e| e.to_string())?;
        Ok(referral)
    }

    /// Sizes of the templates, for the report: (small min..max, large min..max) in bytes.
    pub fn template_sizes(&self) -> BTreeMap<&'static str, (usize, usize)> {
        let range = |templates: &[Template]| {
            let sizes = templates.iter().map(|t| t.bytes.len());
            (sizes.clone().min().unwrap_or(0), sizes.max().unwrap_or(0))
        };
        BTreeMap::from([("small", range(&self.small)), ("large", range(&self.large))])
    }
}
