//! `images`: the photo viewer's pixels against libvips and libjpeg-turbo, side by side in one
//! run, on the same synthetic 24 MP JPEG (6000x4000, quality 90, 4:2:0).
//!
//! - P1 pyramid: `Pyramid::from_photo` (decode, 2x2 levels, every tile encoded into memory)
//!   against `vips dzsave` (the same grid: 254-pixel tiles, overlap 1, down to 1x1, Q75,
//!   written as files). CPU time (user + sys) of each.
//! - P2 thumbnail: `dermdesk_imaging::thumbnail` (320 px) against `vips thumbnail … 320`.
//!   CPU time.
//! - P3 first view: `Desk::serve_photo` of `info.json` then `preview.jpg` on a desk just
//!   opened on the real encrypted cache (photos fetched through the real sync, which keeps each
//!   photo's geometry, preview and thumbnail: two small reads) against `djpeg -scale 1/4` of
//!   the same file. Wall time.
//! - What that costs at sync time: `Desk::prepare_photo` (one reduced decode, preview,
//!   thumbnail, quality measures, kept in the cache) per 24 MP photo. Wall and CPU time.
//! - Colour management: `dermdesk_imaging::derive` (what the sync runs per photo) and
//!   `Pyramid::from_photo` of the same 24 MP photo tagged Display P3 (every pixel converted to
//!   sRGB by moxcms) against the untagged photo (no conversion). CPU time.
//! - P8 four photos compared: a child process opens the same cache and requests what a 4-up
//!   compare asks for (info, thumbnails, previews, every tile at full zoom-out, then the 1:1
//!   tiles of a region of each photo), 8 requests at a time; its peak RSS (VmHWM).
//!
//! Candidates and references alternate within each repetition; medians are reported.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dermdesk_core::secrets::{MemorySecretStore, SecretStore as _, CACHE_KEY};
use dermdesk_core::{Desk, DeskConfig};
use dermdesk_imaging::{Pyramid, DZI_TILE_SIZE};
use dermdesk_protocol::{PhotoMeta, Referral};
use dermdesk_synth::{DemoOptions, PhotoScale, PhotoSpec};

use crate::fixtures::{BenchDesk, BenchHub, Result};
use crate::stats::{verdict, Samples};
use crate::sync::{machine, replace_between};

#[derive(Debug, Clone)]
pub struct Settings {
    pub repetitions: usize,
    pub out_dir: PathBuf,
    pub doc: Option<PathBuf>,
}

const PYRAMID_GOAL: f64 = 0.6;
const THUMBNAIL_GOAL: f64 = 0.8;
const FIRST_VIEW_GOAL: f64 = 1.5;
const COMPARE4_GOAL_MB: f64 = 400.0;

const WIDTH: u32 = dermdesk_synth::LARGE_PHOTO_SIZE.0;
const HEIGHT: u32 = dermdesk_synth::LARGE_PHOTO_SIZE.1;

fn spec(seed: u64) -> PhotoSpec {
    dermdesk_synth::large_close_up(seed, seed, seed * 7 + 1)
}

/// Four synthetic 24 MP photos, rendered once into `dir` and reused.
fn photos(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    (1..=4u64)
        .map(|seed| {
            let path = dir.join(format!("photo-24mp-{seed}-v{}.jpg", dermdesk_synth::GENERATOR_VERSION));
            if !path.exists() {
                eprintln!("rendering {}", path.display());
                let bytes = dermdesk_synth::render_photo(&spec(seed));
                let partial = path.with_extension("partial");
                std::fs::write(&partial, bytes).map_err(|e| e.to_string())?;
                std::fs::rename(&partial, &path).map_err(|e| e.to_string())?;
            }
            Ok(path)
        })
        .collect()
}

/// CPU time of this thread so far (on-CPU time from the scheduler, nanoseconds).
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(text.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0))
}

/// User + sys CPU time of this process's waited-for children (clock ticks of 10 ms).
fn children_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = text.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis((ticks(13) + ticks(14)) * 10)
}

/// Runs a reference command; returns (wall, CPU).
fn reference(command: &mut Command) -> Result<(Duration, Duration)> {
    let cpu_before = children_cpu();
    let started = Instant::now();
    let status = command.stdout(Stdio::null()).status().map_err(|e| format!("{command:?}: {e}"))?;
    let wall = started.elapsed();
    if !status.success() {
        return Err(format!("{command:?} failed ({status})"));
    }
    Ok((wall, children_cpu() - cpu_before))
}

fn tool_exists(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

pub async fn run(settings: Settings) -> Result {
    for tool in ["vips", "djpeg"] {
        if !tool_exists(tool) {
            return Err(format!("{tool} not found: install libvips-tools and libjpeg-turbo-progs"));
        }
    }
    let work = settings.out_dir.join("work-images");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let paths = {
        let dir = settings.out_dir.join("photos-24mp");
        tokio::task::spawn_blocking(move || photos(&dir)).await.map_err(|e| e.to_string())??
    };
    let photo = std::fs::read(&paths[0]).map_err(|e| e.to_string())?;
    eprintln!("photo: {}x{}, {} bytes", WIDTH, HEIGHT, photo.len());

    // The real sync path: a hub with one referral carrying the four photos; a desk fetches it.
    let hub = BenchHub::start(&work).await?;
    let consultant = hub.consultant("Dr Images Bench (synthetic)")?;
    let template = dermdesk_synth::build_demo_set(
        &settings.out_dir.join("templates-images"),
        &DemoOptions { seed: 5, referrals: 1, photo_scale: PhotoScale::Small(320), now: chrono::Utc::now() },
    )
    .map_err(|e| e.to_string())?;
    let mut metas = Vec::new();
    for path in &paths {
        let content_id = hub.hub.add_photo_file(path).map_err(|e| e.to_string())?;
        let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
        metas.push(PhotoMeta {
            content_id,
            size,
            width: WIDTH,
            height: HEIGHT,
            media_type: "image/jpeg".into(),
            ..template.referrals[0].photos[0].clone()
        });
    }
    let referral =
        Referral { id: "BENCH-IMAGES".into(), photos: metas.clone(), ..template.referrals[0].clone() };
    hub.hub.create_referral(&referral, &consultant.id).map_err(|e| e.to_string())?;
    let desk = BenchDesk::enrolled(&hub, &consultant, work.join("desk")).await?;
    let client = desk.desk.client().map_err(|e| e.to_string())?;
    desk.desk.pull_feed(&client, |_| {}).await.map_err(|e| e.to_string())?;
    let summary = desk
        .desk
        .fetch_photos(&client, metas.clone(), 3, Arc::new(|_| {}), |_, _| {})
        .await
        .map_err(|e| e.to_string())?;
    if summary.stored != 4 {
        return Err(format!("the desk did not store the photos: {summary:?}"));
    }
    let ids: Vec<String> = metas.iter().map(|meta| meta.content_id.clone()).collect();
    // P3 measures the path the app takes after a sync: previews kept at sync time.
    let view = desk.desk.open_referral("BENCH-IMAGES").map_err(|e| e.to_string())?;
    if !view.photos.iter().all(|photo| photo.quality.is_some()) {
        return Err("the sync did not keep the photos' previews and quality measures".into());
    }

    tokio::task::spawn_blocking(move || measure(&settings, &paths, &photo, &desk, &ids, &work))
        .await
        .map_err(|e| e.to_string())??;
    drop(hub);
    Ok(())
}

#[derive(Default)]
struct Measured {
    pyramid_cpu: Samples,
    pyramid_wall: Samples,
    vips_dzsave_cpu: Samples,
    vips_dzsave_wall: Samples,
    thumbnail_cpu: Samples,
    thumbnail_wall: Samples,
    vips_thumbnail_cpu: Samples,
    vips_thumbnail_wall: Samples,
    first_view: Samples,
    djpeg: Samples,
    /// Context: the preview alone from bytes in memory (no cache read, no routing).
    preview_only: Samples,
    /// Context: first tile of a photo just opened (the whole pyramid is built for it).
    first_tile: Samples,
    /// Sync-time cost per photo: preview, thumbnail and quality measures made and kept.
    prepare_wall: Samples,
    prepare_cpu: Samples,
    /// Colour management: the same photo untagged and tagged Display P3.
    derive_untagged_cpu: Samples,
    derive_p3_cpu: Samples,
    pyramid_p3_cpu: Samples,
    pyramid_bytes: usize,
}

fn measure(
    settings: &Settings,
    paths: &[PathBuf],
    photo: &[u8],
    desk: &BenchDesk,
    ids: &[String],
    work: &Path,
) -> Result {
    let mut m = Measured::default();
    let dz_dir = work.join("dzsave");
    let thumb_out = work.join("vips-thumbnail.jpg");
    let candidates = 9;
    let display_p3 = dermdesk_synth::colour::with_icc_profile(
        photo,
        &dermdesk_synth::colour::profile(dermdesk_synth::colour::WideGamut::DisplayP3),
    );
    let cpu_of = |samples: &mut Samples, keep: bool, work: &dyn Fn() -> Result| -> Result {
        let cpu = thread_cpu();
        work()?;
        if keep {
            samples.push(thread_cpu() - cpu);
        }
        Ok(())
    };
    // One warm-up round (discarded), then the repetitions; the order rotates each round.
    for round in 0..=settings.repetitions {
        let keep = round > 0;
        for step in 0..candidates {
            match (round + step) % candidates {
                0 => {
                    let (wall, cpu) = (Instant::now(), thread_cpu());
                    let pyramid = Pyramid::from_photo(photo).map_err(|e| e.to_string())?;
                    let (wall, cpu) = (wall.elapsed(), thread_cpu() - cpu);
                    m.pyramid_bytes = pyramid.encoded_bytes();
                    drop(pyramid);
                    if keep {
                        m.pyramid_cpu.push(cpu);
                        m.pyramid_wall.push(wall);
                    }
                }
                1 => {
                    let _ = std::fs::remove_dir_all(&dz_dir);
                    std::fs::create_dir_all(&dz_dir).map_err(|e| e.to_string())?;
                    // vips' defaults: 254-pixel tiles, overlap 1, depth one pixel, Q75.
                    let (wall, cpu) = reference(
                        Command::new("vips").arg("dzsave").arg(&paths[0]).arg(dz_dir.join("photo")),
                    )?;
                    if keep {
                        m.vips_dzsave_cpu.push(cpu);
                        m.vips_dzsave_wall.push(wall);
                    }
                }
                2 => {
                    let (wall, cpu) = (Instant::now(), thread_cpu());
                    let thumbnail = dermdesk_imaging::thumbnail(photo).map_err(|e| e.to_string())?;
                    let (wall, cpu) = (wall.elapsed(), thread_cpu() - cpu);
                    std::hint::black_box(thumbnail);
                    if keep {
                        m.thumbnail_cpu.push(cpu);
                        m.thumbnail_wall.push(wall);
                    }
                }
                3 => {
                    let (wall, cpu) = reference(
                        Command::new("vips").arg("thumbnail").arg(&paths[0]).arg(&thumb_out).arg("320"),
                    )?;
                    if keep {
                        m.vips_thumbnail_cpu.push(cpu);
                        m.vips_thumbnail_wall.push(wall);
                    }
                }
                4 => {
                    // A desk just opened on the cache: nothing of this photo in memory.
                    let fresh = desk.reopen()?;
                    let started = Instant::now();
                    for path in ["info.json", "preview.jpg"] {
                        let response = fresh.serve_photo(&format!("/{}/{path}", ids[0]));
                        if response.status != 200 {
                            return Err(format!("{path}: {}", String::from_utf8_lossy(&response.body)));
                        }
                    }
                    let elapsed = started.elapsed();
                    let tile_started = Instant::now();
                    let tile = fresh.serve_photo(&format!("/{}/tiles/13/0_0.jpg", ids[0]));
                    let tile_elapsed = tile_started.elapsed();
                    if tile.status != 200 {
                        return Err("first tile failed".into());
                    }
                    let preview_started = Instant::now();
                    std::hint::black_box(dermdesk_imaging::preview(photo).map_err(|e| e.to_string())?);
                    let preview_elapsed = preview_started.elapsed();
                    // What the sync does once per photo after verifying it (rewrites its row).
                    let (prepare_started, prepare_cpu) = (Instant::now(), thread_cpu());
                    if !fresh.prepare_photo(&ids[0], photo) {
                        return Err("preparing the photo failed".into());
                    }
                    let (prepare_wall, prepare_cpu) = (prepare_started.elapsed(), thread_cpu() - prepare_cpu);
                    if keep {
                        m.first_view.push(elapsed);
                        m.first_tile.push(tile_elapsed);
                        m.preview_only.push(preview_elapsed);
                        m.prepare_wall.push(prepare_wall);
                        m.prepare_cpu.push(prepare_cpu);
                    }
                }
                6 => cpu_of(&mut m.derive_untagged_cpu, keep, &|| {
                    std::hint::black_box(dermdesk_imaging::derive(photo).map_err(|e| e.to_string())?);
                    Ok(())
                })?,
                7 => cpu_of(&mut m.derive_p3_cpu, keep, &|| {
                    std::hint::black_box(dermdesk_imaging::derive(&display_p3).map_err(|e| e.to_string())?);
                    Ok(())
                })?,
                8 => cpu_of(&mut m.pyramid_p3_cpu, keep, &|| {
                    std::hint::black_box(Pyramid::from_photo(&display_p3).map_err(|e| e.to_string())?);
                    Ok(())
                })?,
                _ => {
                    let (wall, _) = reference(
                        Command::new("djpeg").args(["-scale", "1/4", "-outfile", "/dev/null"]).arg(&paths[0]),
                    )?;
                    if keep {
                        m.djpeg.push(wall);
                    }
                }
            }
        }
        eprintln!("round {round} of {} done", settings.repetitions);
    }
    let _ = std::fs::remove_dir_all(&dz_dir);

    let compare4 = compare4_rss(desk, ids)?;
    report(settings, &m, compare4, photo.len())
}

/// Peak RSS (MB) of a child process serving a 4-up compare from the same encrypted cache.
fn compare4_rss(desk: &BenchDesk, ids: &[String]) -> Result<Compare4> {
    let key = desk.cache_key()?;
    let mut child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .arg("compare4-child")
        .arg(desk.dir())
        .args(ids)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    // The key goes through a pipe, never the command line or the environment.
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(hex::encode(&key).as_bytes())
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    child.stdout.take().ok_or("no stdout")?.read_to_string(&mut out).map_err(|e| e.to_string())?;
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("the 4-up compare child failed ({status})"));
    }
    let value: serde_json::Value = serde_json::from_str(out.trim()).map_err(|e| format!("{e}: {out}"))?;
    Ok(Compare4 {
        peak_rss_mb: value["peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
        baseline_rss_mb: value["baseline_rss_mb"].as_f64().unwrap_or(f64::NAN),
        requests: value["requests"].as_u64().unwrap_or(0),
        seconds: value["seconds"].as_f64().unwrap_or(f64::NAN),
        bytes_kept: value["bytes_kept"].as_u64().unwrap_or(0),
    })
}

struct Compare4 {
    peak_rss_mb: f64,
    baseline_rss_mb: f64,
    requests: u64,
    seconds: f64,
    bytes_kept: u64,
}

fn status_kb(field: &str) -> f64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

/// The child: `dermdesk-bench compare4-child DESK_DIR ID ID ID ID`, cache key in hex on stdin.
/// Prints one JSON line.
pub fn compare4_child(args: &[String]) -> Result {
    let (dir, ids) = args.split_first().ok_or("compare4-child DESK_DIR IDS…")?;
    let mut key = String::new();
    std::io::stdin().read_to_string(&mut key).map_err(|e| e.to_string())?;
    let secrets = Arc::new(MemorySecretStore::default());
    secrets
        .set(CACHE_KEY, &hex::decode(key.trim()).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let desk = Desk::open(DeskConfig { data_dir: dir.into(), device_name: "benchmark".into() }, secrets)
        .map_err(|e| e.to_string())?;
    let baseline = status_kb("VmRSS:") / 1024.0;
    let started = Instant::now();
    // What four viewers ask for: geometry, filmstrip thumbnails, previews; then every tile of
    // the levels up to the one that fills a quarter of a 1920x1080 screen (level 11: 1500x1000);
    // then, zoomed to 1:1, the tiles of a 1000x600 region in the middle of each photo.
    let mut paths: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    for id in ids {
        for part in ["info.json", "thumb.jpg", "preview.jpg"] {
            paths[0].push(format!("/{id}/{part}"));
        }
        let grid = dermdesk_imaging::DziGeometry::new(WIDTH, HEIGHT);
        for level in 0..=11 {
            let (columns, rows) = grid.tiles(level);
            for row in 0..rows {
                for column in 0..columns {
                    paths[0].push(format!("/{id}/tiles/{level}/{column}_{row}.jpg"));
                }
            }
        }
        let (x0, y0) = ((WIDTH - 1000) / 2 / DZI_TILE_SIZE, (HEIGHT - 600) / 2 / DZI_TILE_SIZE);
        let (x1, y1) = ((WIDTH + 1000) / 2 / DZI_TILE_SIZE, (HEIGHT + 600) / 2 / DZI_TILE_SIZE);
        for row in y0..=y1 {
            for column in x0..=x1 {
                paths[1].push(format!("/{id}/tiles/{}/{column}_{row}.jpg", grid.max_level()));
            }
        }
    }
    let mut requests = 0u64;
    for phase in &mut paths {
        // Interleave the four photos, as four viewers loading at once do.
        phase.sort_by_key(|path| path.len() % 7);
        requests += phase.len() as u64;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failures = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(path) = phase.get(index) else { break };
                    if desk.serve_photo(path).status != 200 {
                        failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
        });
        if failures.into_inner() > 0 {
            return Err("some compare requests failed".into());
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let peak = status_kb("VmHWM:") / 1024.0;
    let stats = desk.photo_server_stats();
    println!(
        "{}",
        serde_json::json!({"peak_rss_mb": peak, "baseline_rss_mb": baseline, "requests": requests,
            "seconds": seconds, "bytes_kept": stats.bytes_kept, "pyramids_built": stats.pyramids_built})
    );
    Ok(())
}

const DOC_BEGIN: &str = "<!-- bench images: begin (written by `cargo xtask bench images`) -->";
const DOC_END: &str = "<!-- bench images: end -->";

/// Milliseconds, with two decimals below 10 ms (a cached preview read is well under 1 ms).
fn ms(seconds: f64) -> String {
    format!("{} ms", number(seconds * 1000.0))
}

fn number(milliseconds: f64) -> String {
    if milliseconds < 10.0 {
        format!("{milliseconds:.2}")
    } else {
        format!("{milliseconds:.0}")
    }
}

fn range(samples: &Samples) -> String {
    format!("[{}–{} ms]", number(samples.min() * 1000.0), number(samples.max() * 1000.0))
}

fn report(settings: &Settings, m: &Measured, compare4: Compare4, photo_bytes: usize) -> Result {
    let pyramid_ratio = m.pyramid_cpu.median() / m.vips_dzsave_cpu.median();
    let thumbnail_ratio = m.thumbnail_cpu.median() / m.vips_thumbnail_cpu.median();
    let first_view_ratio = m.first_view.median() / m.djpeg.median();
    let machine = machine();
    let json = serde_json::json!({
        "pyramid_cpu_ratio_vs_vips": pyramid_ratio,
        "thumbnail_ratio_vs_vips": thumbnail_ratio,
        "first_view_ratio_vs_djpeg": first_view_ratio,
        "compare4_rss_mb": compare4.peak_rss_mb,
        "pyramid_cpu_ms": m.pyramid_cpu.median() * 1000.0,
        "pyramid_wall_ms": m.pyramid_wall.median() * 1000.0,
        "vips_dzsave_cpu_ms": m.vips_dzsave_cpu.median() * 1000.0,
        "vips_dzsave_wall_ms": m.vips_dzsave_wall.median() * 1000.0,
        "thumbnail_cpu_ms": m.thumbnail_cpu.median() * 1000.0,
        "vips_thumbnail_cpu_ms": m.vips_thumbnail_cpu.median() * 1000.0,
        "vips_thumbnail_wall_ms": m.vips_thumbnail_wall.median() * 1000.0,
        "first_view_ms": m.first_view.median() * 1000.0,
        "djpeg_scale_quarter_ms": m.djpeg.median() * 1000.0,
        "preview_only_ms": m.preview_only.median() * 1000.0,
        "first_tile_after_open_ms": m.first_tile.median() * 1000.0,
        "sync_prepare_per_photo_ms": m.prepare_wall.median() * 1000.0,
        "sync_prepare_per_photo_cpu_ms": m.prepare_cpu.median() * 1000.0,
        "derive_untagged_cpu_ms": m.derive_untagged_cpu.median() * 1000.0,
        "derive_display_p3_cpu_ms": m.derive_p3_cpu.median() * 1000.0,
        "pyramid_display_p3_cpu_ms": m.pyramid_p3_cpu.median() * 1000.0,
        "pyramid_encoded_bytes": m.pyramid_bytes,
        "photo_bytes": photo_bytes,
        "compare4_baseline_rss_mb": compare4.baseline_rss_mb,
        "compare4_requests": compare4.requests,
        "compare4_seconds": compare4.seconds,
        "compare4_bytes_kept": compare4.bytes_kept,
        "photo_memory_budget_mb": dermdesk_core::photos::PHOTO_MEMORY_BUDGET as f64 / 1048576.0,
        "decode_memory_budget_mb": dermdesk_core::photos::DECODE_MEMORY_BUDGET as f64 / 1048576.0,
        "repetitions": settings.repetitions,
        "samples": {
            "pyramid_cpu": m.pyramid_cpu.to_json(), "vips_dzsave_cpu": m.vips_dzsave_cpu.to_json(),
            "thumbnail_cpu": m.thumbnail_cpu.to_json(), "vips_thumbnail_cpu": m.vips_thumbnail_cpu.to_json(),
            "first_view": m.first_view.to_json(), "djpeg": m.djpeg.to_json(),
            "preview_only": m.preview_only.to_json(), "first_tile": m.first_tile.to_json(),
            "sync_prepare": m.prepare_wall.to_json(),
        },
        "machine": machine.summary(),
    });
    std::fs::create_dir_all(&settings.out_dir).map_err(|e| e.to_string())?;
    let out = settings.out_dir.join("images.json");
    std::fs::write(&out, serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;

    let table = format!(
        "Run of {} UTC ({}; {} repetitions after one warm-up, medians; min–max in brackets). Photo: \
         synthetic 6000x4000 JPEG, q90, 4:2:0, {:.1} MB.\n\n\
         | measurement | Derm Desk | reference | ratio | goal | result |\n\
         |---|---|---|---|---|---|\n\
         | P1 pyramid, CPU (user+sys) | {} {} (wall {}); {} tiles in memory, {:.1} MB | `vips dzsave` {} {} (wall {}), files | {:.2}× | ≤ {PYRAMID_GOAL}× | {} |\n\
         | P2 320 px thumbnail, CPU | {} {} | `vips thumbnail` {} {} (wall {}) | {:.2}× | ≤ {THUMBNAIL_GOAL}× | {} |\n\
         | P3 open → first pixels (`serve_photo` info.json + preview.jpg kept at sync in the encrypted cache, desk just opened), wall | {} {} | `djpeg -scale 1/4` {} {} | {:.3}× | ≤ {FIRST_VIEW_GOAL}× | {} |\n\
         | sync-time cost per 24 MP photo (`prepare_photo`: reduced decode, preview, thumbnail, quality measures, kept), wall | {} {} (CPU {}) | — | — | — | — |\n\
         | colour management at sync: `derive` of the photo tagged Display P3 (every pixel converted to sRGB), CPU | {} {} | the same photo untagged {} {} | {:.2}× | — | — |\n\
         | colour management in P1: the pyramid of the photo tagged Display P3, CPU | {} {} | untagged (P1) {} | {:.2}× | — | — |\n\
         | P8 4-up compare, peak RSS of a process serving it ({} requests, 8 at a time, {:.1} s) | {:.0} MB (after opening the desk: {:.0} MB) | — | — | ≤ {COMPARE4_GOAL_MB:.0} MB | {} |\n\
         | context: preview made from the photo's bytes in memory (what P3 cost before previews were kept) | {} {} | — | — | — | — |\n\
         | context: first tile after open (builds the whole pyramid) | {} {} | — | — | — | — |\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M"),
        machine.summary(),
        settings.repetitions,
        photo_bytes as f64 / 1e6,
        ms(m.pyramid_cpu.median()),
        range(&m.pyramid_cpu),
        ms(m.pyramid_wall.median()),
        dermdesk_imaging::DziGeometry::new(WIDTH, HEIGHT).tile_count(),
        m.pyramid_bytes as f64 / 1e6,
        ms(m.vips_dzsave_cpu.median()),
        range(&m.vips_dzsave_cpu),
        ms(m.vips_dzsave_wall.median()),
        pyramid_ratio,
        verdict(pyramid_ratio <= PYRAMID_GOAL),
        ms(m.thumbnail_cpu.median()),
        range(&m.thumbnail_cpu),
        ms(m.vips_thumbnail_cpu.median()),
        range(&m.vips_thumbnail_cpu),
        ms(m.vips_thumbnail_wall.median()),
        thumbnail_ratio,
        verdict(thumbnail_ratio <= THUMBNAIL_GOAL),
        ms(m.first_view.median()),
        range(&m.first_view),
        ms(m.djpeg.median()),
        range(&m.djpeg),
        first_view_ratio,
        verdict(first_view_ratio <= FIRST_VIEW_GOAL),
        ms(m.prepare_wall.median()),
        range(&m.prepare_wall),
        ms(m.prepare_cpu.median()),
        ms(m.derive_p3_cpu.median()),
        range(&m.derive_p3_cpu),
        ms(m.derive_untagged_cpu.median()),
        range(&m.derive_untagged_cpu),
        m.derive_p3_cpu.median() / m.derive_untagged_cpu.median(),
        ms(m.pyramid_p3_cpu.median()),
        range(&m.pyramid_p3_cpu),
        ms(m.pyramid_cpu.median()),
        m.pyramid_p3_cpu.median() / m.pyramid_cpu.median(),
        compare4.requests,
        compare4.seconds,
        compare4.peak_rss_mb,
        compare4.baseline_rss_mb,
        verdict(compare4.peak_rss_mb <= COMPARE4_GOAL_MB),
        ms(m.preview_only.median()),
        range(&m.preview_only),
        ms(m.first_tile.median()),
        range(&m.first_tile),
    );
    println!("\n{table}");
    eprintln!("wrote {}", out.display());
    if let Some(doc) = &settings.doc {
        replace_between(doc, DOC_BEGIN, DOC_END, &table)?;
        eprintln!("updated {}", doc.display());
    }
    Ok(())
}
