//! Serving photos to the viewer (the shell's `photo:` scheme): routing a request path to the
//! original, its geometry, a preview, a thumbnail or one Deep Zoom tile, with the pixels made
//! by `dermdesk-imaging` from the verified photo in the encrypted cache.
//!
//! Previews, thumbnails and photo-quality measures are made once per photo, when the sync has
//! verified and stored it ([`Desk::prepare_photo`]), and kept in the encrypted cache
//! (`photo_derived`), so opening a photo is one small read (docs/PERFORMANCE.md, P3). A photo
//! without them (a cache from before, a build that failed) gets them on its first request.
//! Nothing decrypted is written anywhere else: previews, thumbnails and encoded pyramids live
//! in a memory cache bounded by [`PHOTO_MEMORY_BUDGET`] (least recently used first out). A
//! photo's pyramid is built on the first request for any of its tiles: one decode, every tile of
//! every level encoded (~0.25 s of one core for 24 MP; docs/PERFORMANCE.md says why not at
//! sync time or tile by tile). Concurrent requests for one photo wait for that one build; at
//! most [`DECODE_MEMORY_BUDGET`] bytes of pixels are being decoded at any time, so four photos
//! opened at once cannot take 4 x 96 MB.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use dermdesk_imaging::{
    display_transform, probe, Derived, ImagingError, PhotoInfo, Pyramid, DZI_OVERLAP, DZI_TILE_SIZE,
};

use crate::cache::PhotoDerived;
use crate::{CoreError, Desk};

/// Memory kept for encoded pyramids, previews and thumbnails of recently viewed photos. A
/// 24 MP phone photo's pyramid is 2–6 MB encoded, so this holds a referral's photos and more.
pub const PHOTO_MEMORY_BUDGET: usize = 96 * 1024 * 1024;

/// Pixels being decoded at once, in bytes (a 24 MP build takes ~100 MB: the frame, its half
/// and encoding buffers). Two 24 MP builds run together (one per core here); a larger photo
/// waits for the whole budget. This, not the number of photos compared, bounds peak memory.
pub const DECODE_MEMORY_BUDGET: u64 = 200 * 1024 * 1024;

/// The URI scheme the shell registers for photos.
pub const PHOTO_SCHEME: &str = "photo";

/// The URL the webview loads photo `content_id` from, on the platform this is built for: every
/// photo URL handed to the UI is made here, and the CSP in tauri.conf.json allows both forms
/// (`img-src`, `connect-src`; `tests/hostile/config_lint.rs`).
pub fn photo_url(content_id: &str) -> String {
    photo_url_for(cfg!(windows), content_id)
}

/// [`photo_url`] for either kind of webview. WebView2 (Windows) serves a custom scheme `S` at
/// `http://S.localhost/` (Tauri 2 with `useHttpsScheme` off, its default); WebKitGTK (Linux) and
/// WKWebView (macOS) at `S://localhost/`. The path is the same in both, so [`Desk::serve_photo`]
/// routes both alike.
pub fn photo_url_for(windows_webview: bool, content_id: &str) -> String {
    if windows_webview {
        format!("http://{PHOTO_SCHEME}.localhost/{content_id}")
    } else {
        format!("{PHOTO_SCHEME}://localhost/{content_id}")
    }
}

/// One response of the photo scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl PhotoResponse {
    fn plain(status: u16, text: &str) -> PhotoResponse {
        PhotoResponse { status, content_type: "text/plain; charset=utf-8", body: text.as_bytes().to_vec() }
    }

    fn jpeg(body: Vec<u8>) -> PhotoResponse {
        PhotoResponse { status: 200, content_type: "image/jpeg", body }
    }
}

/// What a request path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoRequest<'a> {
    Original(&'a str),
    Info(&'a str),
    Preview(&'a str),
    Thumbnail(&'a str),
    Tile { content_id: &'a str, level: u32, column: u32, row: u32 },
}

impl<'a> PhotoRequest<'a> {
    /// Parses `/{content_id}`, `/{content_id}/info.json`, `/{content_id}/preview.jpg`,
    /// `/{content_id}/thumb.jpg` or `/{content_id}/tiles/{level}/{column}_{row}.jpg`.
    pub fn parse(path: &'a str) -> Option<PhotoRequest<'a>> {
        let mut parts = path.strip_prefix('/').unwrap_or(path).split('/');
        let content_id = parts.next().filter(|id| dermdesk_protocol::is_content_id(id))?;
        let number = |text: &str| -> Option<u32> {
            // Digits only: no signs, no spaces, at most a sane length.
            (!text.is_empty() && text.len() <= 6 && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse().ok())
                .flatten()
        };
        let request = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (None, ..) => PhotoRequest::Original(content_id),
            (Some("info.json"), None, ..) => PhotoRequest::Info(content_id),
            (Some("preview.jpg"), None, ..) => PhotoRequest::Preview(content_id),
            (Some("thumb.jpg"), None, ..) => PhotoRequest::Thumbnail(content_id),
            (Some("tiles"), Some(level), Some(name), None) => {
                let (column, row) = name.strip_suffix(".jpg")?.split_once('_')?;
                PhotoRequest::Tile {
                    content_id,
                    level: number(level)?,
                    column: number(column)?,
                    row: number(row)?,
                }
            }
            _ => return None,
        };
        Some(request)
    }
}

/// Why a derived image could not be served.
#[derive(Debug, Clone)]
enum Failure {
    /// Not (yet) in the cache.
    NotFound,
    /// The photo's bytes are refused by the imaging bounds (kept: it will not change).
    Rejected(ImagingError),
    /// The cache could not be read (not kept: the next request tries again).
    Cache(String),
}

type Made<T> = Result<Arc<T>, Failure>;

/// Everything made from one photo, each part made at most once.
#[derive(Default)]
struct PhotoEntry {
    info: OnceLock<Result<PhotoInfo, Failure>>,
    preview: OnceLock<Made<Vec<u8>>>,
    thumbnail: OnceLock<Made<Vec<u8>>>,
    pyramid: OnceLock<Made<Pyramid>>,
}

impl PhotoEntry {
    fn memory(&self) -> usize {
        let bytes = |cell: &OnceLock<Made<Vec<u8>>>| {
            cell.get().and_then(|made| made.as_ref().ok()).map_or(0, |b| b.len())
        };
        let pyramid = self.pyramid.get().and_then(|made| made.as_ref().ok()).map_or(0, |p| p.encoded_bytes());
        // Plus a little for the entry and its key.
        bytes(&self.preview) + bytes(&self.thumbnail) + pyramid + 256
    }
}

/// The memory cache of derived images and the decode budget. One per [`Desk`].
#[derive(Default)]
pub(crate) struct PhotoServer {
    entries: Mutex<Entries>,
    pyramids_built: AtomicU64,
    decoding: Mutex<u64>,
    decode_done: Condvar,
}

#[derive(Default)]
struct Entries {
    by_id: HashMap<String, (Arc<PhotoEntry>, u64)>,
    /// Increases with every use; the entry with the smallest is the least recently used.
    clock: u64,
}

impl PhotoServer {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn entry(&self, content_id: &str) -> Arc<PhotoEntry> {
        let mut entries = self.lock();
        entries.clock += 1;
        let now = entries.clock;
        let (entry, used) = entries.by_id.entry(content_id.to_owned()).or_default();
        *used = now;
        Arc::clone(entry)
    }

    /// Drops an entry whose failure should not be remembered (cache errors, not yet downloaded).
    fn forget(&self, content_id: &str) {
        self.lock().by_id.remove(content_id);
    }

    /// Evicts least recently used entries until the kept memory fits the budget, never the
    /// entry just used (it is being served).
    fn evict(&self, keep: &str) {
        let mut entries = self.lock();
        let mut total: usize = entries.by_id.values().map(|(entry, _)| entry.memory()).sum();
        while total > PHOTO_MEMORY_BUDGET {
            let oldest = entries
                .by_id
                .iter()
                .filter(|(id, _)| id.as_str() != keep)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(id, _)| id.clone());
            let Some(oldest) = oldest else { break };
            if let Some((entry, _)) = entries.by_id.remove(&oldest) {
                total -= entry.memory();
            }
        }
    }

    /// Runs `decode` once `bytes` of the decode budget are free (a photo larger than the whole
    /// budget waits until nothing else is decoding).
    fn within_decode_budget<T>(&self, bytes: u64, decode: impl FnOnce() -> T) -> T {
        let bytes = bytes.min(DECODE_MEMORY_BUDGET);
        let mut in_use = self.decoding.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while *in_use + bytes > DECODE_MEMORY_BUDGET {
            in_use = self.decode_done.wait(in_use).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        *in_use += bytes;
        drop(in_use);
        // Released even if `decode` panics, so one bad photo cannot stall every other.
        struct Release<'a>(&'a PhotoServer, u64);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                *self.0.decoding.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) -= self.1;
                self.0.decode_done.notify_all();
            }
        }
        let _release = Release(self, bytes);
        decode()
    }
}

/// What the photo server holds and has done since the desk was opened (for benchmarks and
/// diagnostics; never patient data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhotoServerStats {
    /// Pyramids built (each is one full decode).
    pub pyramids_built: u64,
    /// Photos with something in the memory cache, and the bytes kept for them.
    pub photos_kept: usize,
    pub bytes_kept: usize,
}

impl Desk {
    pub fn photo_server_stats(&self) -> PhotoServerStats {
        let entries = self.photo_server.lock();
        PhotoServerStats {
            pyramids_built: self.photo_server.pyramids_built.load(Ordering::Relaxed),
            photos_kept: entries.by_id.len(),
            bytes_kept: entries.by_id.values().map(|(entry, _)| entry.memory()).sum(),
        }
    }

    /// Serves one request path of the photo scheme (see [`PhotoRequest::parse`]): the original
    /// bytes, `info.json` (stored width and height, EXIF orientation and how to show it
    /// upright, the tile grid), `preview.jpg` (longest side 1500), `thumb.jpg` (320) or one
    /// tile. Bad paths → 400, a photo not in the cache → 404, a photo the imaging bounds refuse
    /// → 422 with a plain-text reason, a cache that cannot be read → 500. Never panics on any
    /// path or photo; safe to call from many threads at once.
    pub fn serve_photo(&self, path: &str) -> PhotoResponse {
        let Some(request) = PhotoRequest::parse(path) else {
            return PhotoResponse::plain(400, "not a photo address");
        };
        let content_id = match request {
            PhotoRequest::Original(content_id) => {
                return match self.photo(content_id) {
                    Ok(Some((media_type, bytes))) => PhotoResponse {
                        status: 200,
                        content_type: static_media_type(&media_type),
                        body: bytes,
                    },
                    Ok(None) => not_found(),
                    Err(error) => cache_error(&error.to_string()),
                };
            }
            PhotoRequest::Info(id)
            | PhotoRequest::Preview(id)
            | PhotoRequest::Thumbnail(id)
            | PhotoRequest::Tile { content_id: id, .. } => id,
        };
        let entry = self.photo_server.entry(content_id);
        let response = match request {
            PhotoRequest::Info(_) => self.photo_info(content_id, &entry).map(|info| info_json(&info)),
            PhotoRequest::Preview(_) => self
                .kept_image(content_id, &entry.preview, false)
                .map(|preview| PhotoResponse::jpeg(preview.as_ref().clone())),
            PhotoRequest::Thumbnail(_) => self
                .kept_image(content_id, &entry.thumbnail, true)
                .map(|thumbnail| PhotoResponse::jpeg(thumbnail.as_ref().clone())),
            PhotoRequest::Tile { level, column, row, .. } => {
                // The geometry comes from the header: a tile outside the grid is refused before
                // anything is decoded.
                match self.photo_info(content_id, &entry) {
                    Err(failure) => Err(failure),
                    Ok(info) => {
                        let budget = u64::from(info.width) * u64::from(info.height) * 4;
                        let exists = dermdesk_imaging::DziGeometry::new(info.width, info.height)
                            .tile_rect(level, column, row)
                            .is_some();
                        if !exists {
                            return PhotoResponse::plain(400, "no such tile");
                        }
                        self.derived(content_id, &entry.pyramid, |bytes| {
                            self.photo_server.pyramids_built.fetch_add(1, Ordering::Relaxed);
                            self.photo_server
                                .within_decode_budget(budget, || Pyramid::from_photo(bytes).map(Arc::new))
                        })
                        .map(|pyramid| {
                            PhotoResponse::jpeg(pyramid.tile(level, column, row).unwrap_or_default().to_vec())
                        })
                    }
                }
            }
            PhotoRequest::Original(_) => unreachable!("served above"),
        };
        match response {
            Ok(response) => {
                self.photo_server.evict(content_id);
                response
            }
            Err(failure) => {
                if !matches!(failure, Failure::Rejected(_)) {
                    self.photo_server.forget(content_id);
                }
                failure_response(&failure)
            }
        }
    }

    /// Makes a stored photo's preview, thumbnail and quality measures and keeps them in the
    /// cache (the sync calls this once per photo, after verifying and storing it). Decodes
    /// within the decode budget and without holding the cache lock. Never fails its caller: a
    /// photo the imaging bounds refuse keeps nothing (opening it says why), and a cache that
    /// cannot be written is logged (the viewer makes them on first open). True if kept.
    pub fn prepare_photo(&self, content_id: &str, bytes: &[u8]) -> bool {
        match self.build_photo_derived(bytes) {
            Ok(derived) => self.keep_photo_derived(content_id, &derived),
            Err(error) => {
                tracing::warn!("no preview or quality measures for a photo: {error}");
                false
            }
        }
    }

    /// [`Desk::prepare_photo`] for stored photos that have nothing made from them yet (a
    /// cache from before they were kept, or a build that failed), at most `limit`; returns
    /// how many were made.
    pub fn prepare_unprepared_photos(&self, limit: usize) -> Result<usize, CoreError> {
        let ids = self.cache().photos_without_derived(limit)?;
        let mut prepared = 0;
        for id in ids {
            if let Some((_, bytes)) = self.photo(&id)? {
                prepared += usize::from(self.prepare_photo(&id, &bytes));
            }
        }
        Ok(prepared)
    }

    /// One reduced decode (`dermdesk_imaging::derive`), within the decode budget.
    fn build_photo_derived(&self, bytes: &[u8]) -> Result<Derived, ImagingError> {
        let info = probe(bytes)?;
        // At most the whole photo as pixels (a PNG, or a JPEG too small for DCT scaling).
        let budget = u64::from(info.width) * u64::from(info.height) * 3;
        self.photo_server.within_decode_budget(budget, || dermdesk_imaging::derive(bytes))
    }

    fn keep_photo_derived(&self, content_id: &str, derived: &Derived) -> bool {
        let quality_json = match serde_json::to_string(&derived.metrics) {
            Ok(json) => json,
            Err(error) => {
                tracing::warn!("photo quality measures not kept: {error}");
                return false;
            }
        };
        let kept = PhotoDerived {
            width: derived.info.width,
            height: derived.info.height,
            orientation: derived.info.orientation,
            preview: derived.preview.clone(),
            thumbnail: derived.thumbnail.clone(),
            quality_json,
        };
        match self.cache().store_photo_derived(content_id, &kept, self.now()) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!("a photo's preview could not be kept in the cache: {error}");
                false
            }
        }
    }

    /// The kept preview or thumbnail (one small read); made, kept and served if missing.
    fn kept_image(&self, content_id: &str, cell: &OnceLock<Made<Vec<u8>>>, thumbnail: bool) -> Made<Vec<u8>> {
        cell.get_or_init(|| {
            let kept = self.cache().photo_derived_image(content_id, thumbnail);
            match kept {
                Ok(Some(image)) => return Ok(Arc::new(image)),
                Ok(None) => {}
                Err(error) => return Err(Failure::Cache(error.to_string())),
            }
            let bytes = self.photo_bytes(content_id)?;
            let derived = self.build_photo_derived(&bytes).map_err(Failure::Rejected)?;
            self.keep_photo_derived(content_id, &derived);
            Ok(Arc::new(if thumbnail { derived.thumbnail } else { derived.preview }))
        })
        .clone()
    }

    fn photo_info(&self, content_id: &str, entry: &PhotoEntry) -> Result<PhotoInfo, Failure> {
        entry
            .info
            .get_or_init(|| {
                // Kept at sync time: no need to read the whole photo for its header.
                let kept = self.cache().photo_derived_geometry(content_id);
                match kept {
                    Ok(Some((width, height, orientation, media_type))) => {
                        // Only photos the imaging bounds accepted have kept geometry.
                        let format = if media_type == "image/png" {
                            dermdesk_imaging::PhotoFormat::Png
                        } else {
                            dermdesk_imaging::PhotoFormat::Jpeg
                        };
                        return Ok(PhotoInfo { format, width, height, orientation });
                    }
                    Ok(None) => {}
                    Err(error) => return Err(Failure::Cache(error.to_string())),
                }
                let bytes = self.photo_bytes(content_id)?;
                probe(&bytes).map_err(Failure::Rejected)
            })
            .clone()
    }

    /// Makes (once, whoever asks first; the others wait for it) something from the photo's bytes.
    fn derived<T>(
        &self,
        content_id: &str,
        cell: &OnceLock<Made<T>>,
        make: impl FnOnce(&[u8]) -> Result<Arc<T>, ImagingError>,
    ) -> Made<T> {
        cell.get_or_init(|| {
            let bytes = self.photo_bytes(content_id)?;
            make(&bytes).map_err(Failure::Rejected)
        })
        .clone()
    }

    fn photo_bytes(&self, content_id: &str) -> Result<Vec<u8>, Failure> {
        match self.photo(content_id) {
            Ok(Some((_, bytes))) => Ok(bytes),
            Ok(None) => Err(Failure::NotFound),
            Err(error) => Err(Failure::Cache(error.to_string())),
        }
    }
}

fn info_json(info: &PhotoInfo) -> PhotoResponse {
    let geometry = dermdesk_imaging::DziGeometry::new(info.width, info.height);
    let (rotation_degrees, flip_horizontal) = display_transform(info.orientation);
    let body = serde_json::json!({
        "width": info.width,
        "height": info.height,
        "orientation": info.orientation,
        "rotation_degrees": rotation_degrees,
        "flip_horizontal": flip_horizontal,
        "tile_size": DZI_TILE_SIZE,
        "overlap": DZI_OVERLAP,
        "levels": geometry.levels(),
        "format": "jpeg",
    });
    PhotoResponse { status: 200, content_type: "application/json", body: body.to_string().into_bytes() }
}

fn failure_response(failure: &Failure) -> PhotoResponse {
    match failure {
        Failure::NotFound => not_found(),
        Failure::Cache(error) => cache_error(error),
        Failure::Rejected(error) => PhotoResponse::plain(
            422,
            &format!(
                "This photo cannot be shown: {error}. Nothing was decoded beyond the safe limits and \
                 the original is kept unchanged in the encrypted cache; ask the GP practice to send \
                 the photo again if it is needed."
            ),
        ),
    }
}

fn not_found() -> PhotoResponse {
    PhotoResponse::plain(404, "photo not downloaded yet")
}

fn cache_error(error: &str) -> PhotoResponse {
    PhotoResponse::plain(500, &format!("the photo could not be read from the cache ({error})"))
}

fn static_media_type(media_type: &str) -> &'static str {
    match media_type {
        "image/jpeg" => "image/jpeg",
        "image/png" => "image/png",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use dermdesk_protocol::{PhotoMeta, PhotoSource, PhotoView};
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::plan::CacheOp;
    use crate::secrets::MemorySecretStore;
    use crate::DeskConfig;

    /// A desk whose cache holds one referral with these photos, stored as verified.
    fn desk_with_photos(dir: &Path, photos: &[&[u8]]) -> (Desk, Vec<String>) {
        let config = DeskConfig { data_dir: dir.join("desk"), device_name: "test".into() };
        let desk = Desk::open(config, Arc::new(MemorySecretStore::default())).unwrap();
        let metas: Vec<PhotoMeta> = photos
            .iter()
            .map(|bytes| PhotoMeta {
                content_id: hex::encode(Sha256::digest(bytes)),
                size: bytes.len() as u64,
                width: 1,
                height: 1,
                media_type: "image/jpeg".into(),
                captured_at: crate::clock::test_instant(),
                view: PhotoView::Overview,
                body_site: "left forearm".into(),
                source: PhotoSource::GpPractice,
            })
            .collect();
        let referral = dermdesk_protocol::Referral {
            photos: metas.clone(),
            ..crate::plan::tests::referral("R-PHOTOS", 1)
        };
        let mut cache = desk.cache();
        cache
            .apply(
                &[CacheOp::Upsert { referral: Box::new(referral), due_at: crate::clock::test_instant() }],
                crate::clock::test_instant(),
            )
            .unwrap();
        for (meta, bytes) in metas.iter().zip(photos) {
            cache
                .store_verified_photo(&meta.content_id, "image/jpeg", bytes, crate::clock::test_instant())
                .unwrap();
        }
        drop(cache);
        (desk, metas.into_iter().map(|meta| meta.content_id).collect())
    }

    fn synthetic_jpeg(width: u32, height: u32, orientation: u8) -> Vec<u8> {
        synthetic_jpeg_with(width, height, orientation, dermdesk_synth::PhotoDefect::None)
    }

    fn synthetic_jpeg_with(
        width: u32,
        height: u32,
        orientation: u8,
        defect: dermdesk_synth::PhotoDefect,
    ) -> Vec<u8> {
        dermdesk_synth::render_photo(&dermdesk_synth::PhotoSpec {
            seed: 5,
            subject_seed: 6,
            width,
            height,
            view: PhotoView::CloseUp,
            source: PhotoSource::GpPractice,
            exif_orientation: orientation,
            skin_type: 3,
            finding: dermdesk_synth::Finding::BenignNaevus,
            region: dermdesk_synth::BodyRegion::Forearm,
            body_hair: 1,
            stage: 1,
            quality: 90,
            defect,
        })
    }

    /// A JPEG whose frame header claims 65535x65535 pixels (the data is a 16x16 photo's).
    fn giant_header_jpeg() -> Vec<u8> {
        let mut bytes = synthetic_jpeg(16, 16, 1);
        let sof = bytes.windows(2).position(|w| w == [0xff, 0xc0]).expect("baseline frame header");
        bytes[sof + 5..sof + 9].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        bytes
    }

    #[test]
    fn serves_geometry_previews_and_tiles_from_the_encrypted_cache() {
        let dir = tempfile::tempdir().unwrap();
        let photo = synthetic_jpeg(600, 400, 6);
        let (desk, ids) = desk_with_photos(dir.path(), &[&photo]);
        let id = &ids[0];

        let info = desk.serve_photo(&format!("/{id}/info.json"));
        assert_eq!((info.status, info.content_type), (200, "application/json"));
        let info: serde_json::Value = serde_json::from_slice(&info.body).unwrap();
        assert_eq!(
            info,
            serde_json::json!({"width": 600, "height": 400, "orientation": 6, "rotation_degrees": 90,
                "flip_horizontal": false, "tile_size": 254, "overlap": 1, "levels": 11, "format": "jpeg"})
        );

        let original = desk.serve_photo(&format!("/{id}"));
        assert_eq!((original.status, original.content_type), (200, "image/jpeg"));
        assert_eq!(original.body, photo);

        // The preview and tiles keep the stored orientation (the viewer turns them); the
        // filmstrip's thumbnail is turned upright (orientation 6: portrait).
        for (path, size) in
            [("preview.jpg", (600, 400)), ("thumb.jpg", (213, 320)), ("tiles/10/2_1.jpg", (93, 147))]
        {
            let response = desk.serve_photo(&format!("/{id}/{path}"));
            assert_eq!((response.status, response.content_type), (200, "image/jpeg"), "{path}");
            let image = image::load_from_memory(&response.body).unwrap();
            assert_eq!((image.width(), image.height()), size, "{path}");
        }
        assert_eq!(desk.serve_photo(&format!("/{id}/tiles/10/3_0.jpg")).status, 400);
        assert_eq!(desk.serve_photo(&format!("/{id}/tiles/11/0_0.jpg")).status, 400);
        assert_eq!(desk.serve_photo("/not-a-photo").status, 400);
        assert_eq!(desk.serve_photo(&format!("/{}/info.json", "ab".repeat(32))).status, 404);
        assert_eq!(desk.serve_photo(&format!("/{}", "ab".repeat(32))).status, 404);
        let stats = desk.photo_server_stats();
        assert_eq!(stats.pyramids_built, 1);
        assert!(stats.bytes_kept > 0 && stats.bytes_kept < PHOTO_MEMORY_BUDGET);
    }

    #[test]
    fn concurrent_tile_requests_for_one_photo_share_one_decode() {
        let dir = tempfile::tempdir().unwrap();
        let photos = [synthetic_jpeg(1200, 900, 1), synthetic_jpeg(900, 1200, 8)];
        let (desk, ids) = desk_with_photos(dir.path(), &[&photos[0], &photos[1]]);
        std::thread::scope(|scope| {
            for thread in 0..8 {
                let (desk, id) = (&desk, &ids[thread % 2]);
                scope.spawn(move || {
                    for column in 0..3 {
                        let response =
                            desk.serve_photo(&format!("/{id}/tiles/11/{column}_{}.jpg", thread / 2));
                        assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
                    }
                });
            }
        });
        assert_eq!(desk.photo_server_stats().pyramids_built, 2);
    }

    #[test]
    fn hostile_photos_are_refused_with_a_reason_and_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let giant = giant_header_jpeg();
        let mut truncated = synthetic_jpeg(800, 600, 1);
        truncated.truncate(truncated.len() / 2);
        let (desk, ids) = desk_with_photos(dir.path(), &[&giant, &truncated]);
        let started = std::time::Instant::now();
        for path in ["info.json", "preview.jpg", "thumb.jpg", "tiles/0/0_0.jpg"] {
            let response = desk.serve_photo(&format!("/{}/{path}", ids[0]));
            assert_eq!(response.status, 422, "{path}");
            let text = String::from_utf8(response.body).unwrap();
            assert!(text.contains("65535x65535") && text.contains("kept unchanged"), "{text}");
        }
        for path in ["preview.jpg", "thumb.jpg", "tiles/0/0_0.jpg"] {
            let response = desk.serve_photo(&format!("/{}/{path}", ids[1]));
            assert_eq!(response.status, 422, "{path}: {}", String::from_utf8_lossy(&response.body));
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
        // The original is still there, as it was.
        assert_eq!(desk.serve_photo(&format!("/{}", ids[0])).body, giant);
    }

    #[test]
    fn previews_made_at_sync_are_served_from_the_cache_and_missing_ones_are_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let photos = [synthetic_jpeg(900, 600, 1), synthetic_jpeg(600, 900, 6)];
        let (desk, ids) = desk_with_photos(dir.path(), &[&photos[0], &photos[1]]);
        // As the sync does for the first; the second is as in a cache from before schema 7.
        assert!(desk.prepare_photo(&ids[0], &photos[0]));
        assert_eq!(desk.cache().photos_without_derived(10).unwrap(), vec![ids[1].clone()]);

        let kept_preview = desk.cache().photo_derived_image(&ids[0], false).unwrap().unwrap();
        let kept_thumbnail = desk.cache().photo_derived_image(&ids[0], true).unwrap().unwrap();
        assert_eq!(desk.serve_photo(&format!("/{}/preview.jpg", ids[0])).body, kept_preview);
        assert_eq!(desk.serve_photo(&format!("/{}/thumb.jpg", ids[0])).body, kept_thumbnail);
        let size = |jpeg: &[u8]| {
            let image = image::load_from_memory(jpeg).unwrap();
            (image.width(), image.height())
        };
        assert_eq!((size(&kept_preview), size(&kept_thumbnail)), ((900, 600), (320, 213)));

        // Not made at sync: made on the first request, kept, and the same bytes next time
        // (600 x 900 stored with orientation 6: its thumbnail upright is landscape).
        let served = desk.serve_photo(&format!("/{}/thumb.jpg", ids[1]));
        assert_eq!((served.status, size(&served.body)), (200, (320, 213)));
        assert!(desk.cache().photos_without_derived(10).unwrap().is_empty());
        assert_eq!(desk.cache().photo_derived_image(&ids[1], true).unwrap().unwrap(), served.body);
        assert_eq!(desk.prepare_unprepared_photos(10).unwrap(), 0);
        // The geometry is kept too (opening a photo reads no photo bytes), the same as probed.
        assert_eq!(
            desk.cache().photo_derived_geometry(&ids[1]).unwrap().unwrap(),
            (600, 900, 6, "image/jpeg".into())
        );
        let info: serde_json::Value =
            serde_json::from_slice(&desk.serve_photo(&format!("/{}/info.json", ids[1])).body).unwrap();
        assert_eq!(
            (info["width"].as_u64(), info["height"].as_u64(), info["rotation_degrees"].as_u64()),
            (Some(600), Some(900), Some(90))
        );
        assert_eq!(desk.photo_server_stats().pyramids_built, 0);
    }

    #[test]
    fn hostile_photos_keep_nothing_derived_and_are_still_refused() {
        let dir = tempfile::tempdir().unwrap();
        let giant = giant_header_jpeg();
        let mut truncated = synthetic_jpeg(800, 600, 1);
        truncated.truncate(truncated.len() / 2);
        let (desk, ids) = desk_with_photos(dir.path(), &[&giant, &truncated]);
        assert!(!desk.prepare_photo(&ids[0], &giant));
        assert!(!desk.prepare_photo(&ids[1], &truncated));
        assert_eq!(desk.prepare_unprepared_photos(10).unwrap(), 0);
        for id in &ids {
            for path in ["preview.jpg", "thumb.jpg"] {
                assert_eq!(desk.serve_photo(&format!("/{id}/{path}")).status, 422, "{path}");
            }
            assert_eq!(desk.cache().photo_derived_image(id, false).unwrap(), None);
            assert_eq!(desk.cache().photo_quality(id).unwrap(), None);
        }
        assert_eq!(desk.cache().photos_without_derived(10).unwrap().len(), 2);
    }

    /// Mean colour of a square around (x, y) of a served JPEG.
    fn served_colour(jpeg: &[u8], x: u32, y: u32) -> [i32; 3] {
        let image = image::load_from_memory(jpeg).unwrap().into_rgb8();
        let mut sum = [0u32; 3];
        for yy in y - 8..y + 8 {
            for xx in x - 8..x + 8 {
                let pixel = image.get_pixel(xx, yy);
                (0..3).for_each(|c| sum[c] += u32::from(pixel[c]));
            }
        }
        sum.map(|s| (s / 256) as i32)
    }

    #[test]
    fn wide_gamut_and_masked_photos_are_shown_converted_and_their_originals_served_as_received() {
        use dermdesk_synth::colour::{chart_jpeg, masked_png, WideGamut};
        let dir = tempfile::tempdir().unwrap();
        let (chart, masked) = (chart_jpeg(WideGamut::AdobeRgb), masked_png());
        let (desk, ids) = desk_with_photos(dir.path(), &[&chart, &masked]);
        assert!(desk.prepare_photo(&ids[0], &chart) && desk.prepare_photo(&ids[1], &masked));
        // The originals, byte for byte as received: their hashes are still their content ids.
        for (id, bytes) in ids.iter().zip([&chart, &masked]) {
            let original = desk.serve_photo(&format!("/{id}"));
            assert_eq!(&original.body, bytes);
            assert_eq!(&hex::encode(Sha256::digest(&original.body)), id);
        }
        // The red patch: Adobe RGB (200, 50, 51) is sRGB (232, 46, 47) (Little CMS),
        // in the preview, the thumbnail and a full-size tile.
        let near =
            |seen: [i32; 3], wanted: [i32; 3]| seen.iter().zip(wanted).all(|(s, w)| (s - w).abs() <= 4);
        let preview = desk.serve_photo(&format!("/{}/preview.jpg", ids[0])).body;
        assert!(
            near(served_colour(&preview, 96, 128), [232, 46, 47]),
            "{:?}",
            served_colour(&preview, 96, 128)
        );
        let thumbnail = desk.serve_photo(&format!("/{}/thumb.jpg", ids[0])).body;
        assert!(
            near(served_colour(&thumbnail, 40, 53), [232, 46, 47]),
            "{:?}",
            served_colour(&thumbnail, 40, 53)
        );
        let tile = desk.serve_photo(&format!("/{}/tiles/10/0_0.jpg", ids[0]));
        assert_eq!(tile.status, 200, "{}", String::from_utf8_lossy(&tile.body));
        assert!(
            near(served_colour(&tile.body, 96, 128), [232, 46, 47]),
            "{:?}",
            served_colour(&tile.body, 96, 128)
        );
        // The masked-out top row is neutral grey everywhere, never the green under it.
        let grey = [128, 128, 128];
        let preview = desk.serve_photo(&format!("/{}/preview.jpg", ids[1])).body;
        assert!(near(served_colour(&preview, 300, 128), grey), "{:?}", served_colour(&preview, 300, 128));
        let thumbnail = desk.serve_photo(&format!("/{}/thumb.jpg", ids[1])).body;
        assert!(near(served_colour(&thumbnail, 120, 40), grey), "{:?}", served_colour(&thumbnail, 120, 40));
        let tile = desk.serve_photo(&format!("/{}/tiles/10/1_0.jpg", ids[1])).body;
        assert!(near(served_colour(&tile, 100, 100), grey), "{:?}", served_colour(&tile, 100, 100));
        // And the photo's view says it had transparent areas (the chart does not).
        let view = serde_json::to_value(desk.open_referral("R-PHOTOS").unwrap()).unwrap();
        assert_eq!(view["photos"][0]["quality"]["transparent"], false);
        assert_eq!(view["photos"][1]["quality"]["transparent"], true);
        assert_eq!(view["photos"][1]["quality"]["metrics"]["transparent_fraction"], 0.5);
        assert_eq!(view["photos"][0]["quality"]["metrics"]["colour"], "profile");
        assert_eq!(view["photos"][0]["quality"]["colour_note"], serde_json::Value::Null);
    }

    #[test]
    fn a_photo_too_small_to_judge_is_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let small = synthetic_jpeg(64, 64, 1);
        let (desk, ids) = desk_with_photos(dir.path(), &[&small]);
        assert!(desk.prepare_photo(&ids[0], &small));
        let view = serde_json::to_value(desk.open_referral("R-PHOTOS").unwrap()).unwrap();
        let quality = &view["photos"][0]["quality"];
        assert_eq!(quality["flags"]["too_small"], true);
        assert!(quality["problem"].as_str().unwrap().starts_with("too small to judge"), "{quality}");
    }

    #[test]
    fn the_referral_view_carries_each_photos_quality() {
        use dermdesk_synth::PhotoDefect;
        let dir = tempfile::tempdir().unwrap();
        let photos = [
            synthetic_jpeg_with(1024, 768, 1, PhotoDefect::None),
            synthetic_jpeg_with(1024, 768, 1, PhotoDefect::OutOfFocus),
            synthetic_jpeg_with(1024, 768, 1, PhotoDefect::Underexposed),
            synthetic_jpeg_with(1024, 768, 1, PhotoDefect::Overexposed),
        ];
        let (desk, ids) = desk_with_photos(dir.path(), &photos.each_ref().map(Vec::as_slice));
        // The first three as the sync makes them; the last not yet measured.
        for (id, bytes) in ids.iter().zip(&photos).take(3) {
            assert!(desk.prepare_photo(id, bytes));
        }
        let view = serde_json::to_value(desk.open_referral("R-PHOTOS").unwrap()).unwrap();
        let problems: Vec<&serde_json::Value> =
            view["photos"].as_array().unwrap().iter().map(|photo| &photo["quality"]["problem"]).collect();
        assert_eq!(
            problems,
            [
                &serde_json::Value::Null,
                &"looks out of focus".into(),
                &"too dark".into(),
                &serde_json::Value::Null
            ]
        );
        let blurred = &view["photos"][1]["quality"];
        assert_eq!(
            blurred["flags"],
            serde_json::json!({"blurred": true, "underexposed": false, "overexposed": false, "too_small": false})
        );
        assert!(blurred["metrics"]["laplacian_variance"].as_f64().unwrap() < 3.55);
        assert!(view["photos"][0]["quality"].is_object());
        assert!(view["photos"][3]["quality"].is_null());
    }

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn request_paths() {
        let at = |suffix: &str| format!("/{ID}{suffix}");
        assert_eq!(PhotoRequest::parse(&at("")), Some(PhotoRequest::Original(ID)));
        assert_eq!(PhotoRequest::parse(&at("/info.json")), Some(PhotoRequest::Info(ID)));
        assert_eq!(PhotoRequest::parse(&at("/preview.jpg")), Some(PhotoRequest::Preview(ID)));
        assert_eq!(PhotoRequest::parse(&at("/thumb.jpg")), Some(PhotoRequest::Thumbnail(ID)));
        assert_eq!(
            PhotoRequest::parse(&at("/tiles/13/2_15.jpg")),
            Some(PhotoRequest::Tile { content_id: ID, level: 13, column: 2, row: 15 })
        );
        for bad in [
            "/".to_owned(),
            "/abc".to_owned(),
            at("/"),
            at("/tiles/13/2_15.png"),
            at("/tiles/13/2-15.jpg"),
            at("/tiles/-1/2_15.jpg"),
            at("/tiles/+1/2_15.jpg"),
            at("/tiles/1/2_99999999999.jpg"),
            at("/tiles/13/2_15.jpg/x"),
            at("/tiles/../info.json"),
            at("/preview.jpg/"),
            ID.to_uppercase(),
        ] {
            assert_eq!(PhotoRequest::parse(&bad), None, "{bad}");
        }
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn each_webview_gets_its_own_form_of_the_photo_url() {
        assert_eq!(photo_url_for(true, ID), format!("http://photo.localhost/{ID}"));
        assert_eq!(photo_url_for(false, ID), format!("photo://localhost/{ID}"));
    }

    #[cfg(windows)]
    #[test]
    fn on_windows_photos_are_served_from_http_photo_localhost() {
        assert_eq!(photo_url(ID), format!("http://photo.localhost/{ID}"));
    }

    #[cfg(not(windows))]
    #[test]
    fn on_linux_and_macos_photos_are_served_from_the_photo_scheme() {
        assert_eq!(photo_url(ID), format!("photo://localhost/{ID}"));
    }

    /// The viewer asks for `{url}/info.json`, `{url}/tiles/...`: both forms reach the same route.
    #[test]
    fn both_forms_route_to_the_same_request() {
        for windows in [true, false] {
            let url = format!("{}/tiles/3/1_2.jpg", photo_url_for(windows, ID));
            let path = url::Url::parse(&url).unwrap().path().to_owned();
            assert_eq!(
                PhotoRequest::parse(&path),
                Some(PhotoRequest::Tile { content_id: ID, level: 3, column: 1, row: 2 }),
                "{url}"
            );
        }
    }
}
