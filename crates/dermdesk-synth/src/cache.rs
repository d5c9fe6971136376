//! The demo's photo cache on disk: JPEG files named by their content id, and a small JSON
//! manifest mapping each photo spec's key to the content id it rendered to. This module is the
//! only one that touches the file system.
//!
//! Every file is written under a temporary name and renamed into place, so a killed process
//! never leaves a partial file under a content-id name; the manifest is written the same way,
//! after the photos it names.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use dermdesk_protocol::{PhotoMeta, Referral};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::photo::{render_photo_into, PhotoSpec, Workspace};
use crate::plan::{plan, PlannedReferral};
use crate::{BuildReport, DemoOptions, DemoSet, GENERATOR_VERSION};

const MANIFEST_FILE: &str = "manifest.json";
const TEMPORARY_PREFIX: &str = ".tmp-";
/// Temporary files older than this were left by a process that died; younger ones may belong
/// to a process still writing.
const STALE_AFTER: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    generator_version: u32,
    /// Spec key -> the photo it rendered to.
    photos: BTreeMap<String, CachedPhoto>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CachedPhoto {
    pub content_id: String,
    pub size: u64,
    pub width: u32,
    pub height: u32,
}

/// The cache key of a spec: everything that decides its pixels, and the generator version.
pub(crate) fn spec_key(spec: &PhotoSpec) -> String {
    let description = serde_json::to_string(spec).expect("a photo spec always serialises");
    let mut hasher = Sha256::new();
    hasher.update(format!("dermdesk-synth/{GENERATOR_VERSION}/").as_bytes());
    hasher.update(description.as_bytes());
    hex::encode(hasher.finalize())
}

/// Lower-case hex SHA-256 of `bytes`: the protocol's content id.
pub(crate) fn content_id(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub(crate) fn photo_path(cache_dir: &Path, content_id: &str) -> PathBuf {
    cache_dir.join(format!("{content_id}.jpg"))
}

pub(crate) fn build(cache_dir: &Path, options: &DemoOptions) -> io::Result<(DemoSet, BuildReport)> {
    let planned = plan(options);
    let specs: Vec<&PhotoSpec> =
        planned.iter().flat_map(|referral| &referral.photos).map(|photo| &photo.spec).collect();
    let (known, report) = cached_photos(cache_dir, &specs)?;
    Ok((assemble(cache_dir, planned, &known), report))
}

/// The cached photo of every spec (by spec key), rendering the ones not in the cache yet.
pub(crate) fn cached_photos(
    cache_dir: &Path,
    specs: &[&PhotoSpec],
) -> io::Result<(BTreeMap<String, CachedPhoto>, BuildReport)> {
    fs::create_dir_all(cache_dir)?;
    remove_stale_temporaries(cache_dir);
    let manifest = load_manifest(cache_dir);

    let mut wanted: BTreeMap<String, &PhotoSpec> = BTreeMap::new();
    for spec in specs {
        wanted.insert(spec_key(spec), spec);
    }
    let mut known: BTreeMap<String, CachedPhoto> = BTreeMap::new();
    let mut to_render: Vec<(String, &PhotoSpec)> = Vec::new();
    for (key, spec) in &wanted {
        match manifest.photos.get(key) {
            Some(cached) if is_intact(cache_dir, cached) => {
                known.insert(key.clone(), cached.clone());
            }
            _ => to_render.push((key.clone(), spec)),
        }
    }
    let report = BuildReport { photos_rendered: to_render.len(), photos_reused: known.len() };
    if !to_render.is_empty() {
        let rendered = render_all(cache_dir, &to_render)?;
        // Another process may have added entries since we read the manifest: merge into the
        // current one rather than overwrite it.
        let mut current = load_manifest(cache_dir);
        current.generator_version = GENERATOR_VERSION;
        for (key, photo) in rendered {
            current.photos.insert(key.clone(), photo.clone());
            known.insert(key, photo);
        }
        let json = serde_json::to_vec_pretty(&current).map_err(io::Error::other)?;
        write_atomically(&cache_dir.join(MANIFEST_FILE), &json)?;
    }
    Ok((known, report))
}

/// Stores `bytes` (not rendered from a spec) under their content id unless already there;
/// returns the content id and the file.
pub(crate) fn store_bytes(cache_dir: &Path, bytes: &[u8]) -> io::Result<(String, PathBuf)> {
    fs::create_dir_all(cache_dir)?;
    let content_id = content_id(bytes);
    let path = photo_path(cache_dir, &content_id);
    if fs::metadata(&path).map_or(true, |metadata| metadata.len() != bytes.len() as u64) {
        write_atomically(&path, bytes)?;
    }
    Ok((content_id, path))
}

/// A cached file is used only if it is there with the size it was written with. Its bytes are
/// not re-hashed: files only ever appear complete (rename), and readers verify content ids.
fn is_intact(cache_dir: &Path, cached: &CachedPhoto) -> bool {
    dermdesk_protocol::is_content_id(&cached.content_id)
        && fs::metadata(photo_path(cache_dir, &cached.content_id))
            .is_ok_and(|metadata| metadata.len() == cached.size)
}

/// The manifest, or an empty one if it is missing or unreadable (everything is then rendered
/// again). A manifest from another generator version is discarded with the files it names.
fn load_manifest(cache_dir: &Path) -> Manifest {
    let Ok(bytes) = fs::read(cache_dir.join(MANIFEST_FILE)) else {
        return Manifest { generator_version: GENERATOR_VERSION, photos: BTreeMap::new() };
    };
    match serde_json::from_slice::<Manifest>(&bytes) {
        Ok(manifest) if manifest.generator_version == GENERATOR_VERSION => manifest,
        Ok(outdated) => {
            for photo in outdated.photos.values() {
                if dermdesk_protocol::is_content_id(&photo.content_id) {
                    let _ = fs::remove_file(photo_path(cache_dir, &photo.content_id));
                }
            }
            Manifest { generator_version: GENERATOR_VERSION, photos: BTreeMap::new() }
        }
        Err(_) => Manifest { generator_version: GENERATOR_VERSION, photos: BTreeMap::new() },
    }
}

fn remove_stale_temporaries(cache_dir: &Path) {
    let Ok(entries) = fs::read_dir(cache_dir) else { return };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let is_temporary = entry.file_name().to_str().is_some_and(|name| name.starts_with(TEMPORARY_PREFIX));
        let age = entry
            .metadata()
            .and_then(|metadata| metadata.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok());
        if is_temporary && age.is_some_and(|age| age > STALE_AFTER) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk, then renames it over
/// `path`: readers see the old file or the whole new one, never part of it.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let directory = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("file");
    let temporary = directory.join(format!(
        "{TEMPORARY_PREFIX}{name}.{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

/// Renders and stores every photo in `jobs`, one photo per core at a time (largest first, so
/// the last one to finish is a small one).
fn render_all(cache_dir: &Path, jobs: &[(String, &PhotoSpec)]) -> io::Result<Vec<(String, CachedPhoto)>> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&index| {
        std::cmp::Reverse(u64::from(jobs[index].1.width) * u64::from(jobs[index].1.height))
    });
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let workers = cores.min(jobs.len()).max(1);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<(String, CachedPhoto)>> = Mutex::new(Vec::with_capacity(jobs.len()));
    let first_error: Mutex<Option<io::Error>> = Mutex::new(None);
    let work = || {
        let mut workspace = Workspace::default();
        while !failed.load(Ordering::Relaxed) {
            let position = next.fetch_add(1, Ordering::Relaxed);
            let Some(&index) = order.get(position) else { break };
            let (key, spec) = &jobs[index];
            // With more photos than cores, one thread per photo keeps every core busy without
            // the overhead of splitting each photo's rows.
            let threads = if jobs.len() >= cores { 1 } else { cores / workers };
            match store_photo(cache_dir, spec, threads, &mut workspace) {
                Ok(photo) => {
                    results.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push((key.clone(), photo))
                }
                Err(error) => {
                    failed.store(true, Ordering::Relaxed);
                    first_error.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get_or_insert(error);
                }
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..workers {
            scope.spawn(work);
        }
        work();
    });
    if let Some(error) = first_error.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()) {
        return Err(error);
    }
    Ok(results.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

fn store_photo(
    cache_dir: &Path,
    spec: &PhotoSpec,
    threads: usize,
    workspace: &mut Workspace,
) -> io::Result<CachedPhoto> {
    let bytes = render_photo_into(spec, threads, workspace);
    let content_id = content_id(bytes);
    write_atomically(&photo_path(cache_dir, &content_id), bytes)?;
    Ok(CachedPhoto { content_id, size: bytes.len() as u64, width: spec.width, height: spec.height })
}

fn assemble(
    cache_dir: &Path,
    planned: Vec<PlannedReferral>,
    known: &BTreeMap<String, CachedPhoto>,
) -> DemoSet {
    let mut photo_files = BTreeMap::new();
    let referrals: Vec<Referral> = planned
        .into_iter()
        .map(|PlannedReferral { mut referral, photos }| {
            referral.photos = photos
                .into_iter()
                .map(|photo| {
                    let cached = &known[&spec_key(&photo.spec)];
                    photo_files.insert(cached.content_id.clone(), photo_path(cache_dir, &cached.content_id));
                    PhotoMeta {
                        content_id: cached.content_id.clone(),
                        size: cached.size,
                        width: cached.width,
                        height: cached.height,
                        media_type: "image/jpeg".to_owned(),
                        captured_at: photo.captured_at,
                        view: photo.spec.view,
                        body_site: photo.body_site,
                        source: photo.spec.source,
                    }
                })
                .collect();
            referral
        })
        .collect();
    DemoSet { referrals, photo_files }
}
