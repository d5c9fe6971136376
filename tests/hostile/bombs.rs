//! Photo bombs, made at test time (nothing binary is committed): decompression bombs (a few
//! hundred bytes whose header promises gigapixels), 65535x65535 headers, truncated and
//! byte-fuzzed JPEGs and PNGs, CMYK, wrong magic. Each goes through every imaging step and the
//! photo scheme (`Desk::serve_photo`) in a child process that measures its own peak memory per
//! case; and the worst of them through a real sync, where the referral must stay usable.

use std::io::Cursor;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dermdesk_core::secrets::{MemorySecretStore, SecretStore as _, CACHE_KEY};
use dermdesk_core::{Desk, DeskConfig};
use dermdesk_synth::hostile::{jpeg_claiming, png_claiming};
use rand::{Rng as _, SeedableRng as _};
use serde_json::{json, Value};

/// Most a hostile photo may take, on top of what the process held before it: a refusal must
/// come before any pixel buffer exists (a real decode of a 24 MP photo takes ~100 MB).
const MAX_GROWTH_KB: u64 = 48 * 1024;
/// Longest a hostile photo may take through all its steps.
const MAX_TIME: Duration = Duration::from_secs(2);

/// What a case is, and so what must happen to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Every pixel-producing step must refuse it, with a message.
    Refused,
    /// Decoded or refused, but never a panic, never slow, never unbounded memory.
    Survived,
    /// An honest photo that must decode, with a visible peak: proves the meter measures.
    Control,
}

struct Case {
    name: String,
    bytes: Vec<u8>,
    expect: Expect,
}

fn case(name: impl Into<String>, bytes: Vec<u8>, expect: Expect) -> Case {
    Case { name: name.into(), bytes, expect }
}

fn gradient(width: u32, height: u32) -> dermdesk_imaging::Raster {
    let pixels = (0..height)
        .flat_map(|y| (0..width).flat_map(move |x| [(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8]))
        .collect();
    dermdesk_imaging::Raster::new(width, height, pixels)
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    dermdesk_imaging::encode_jpeg(&gradient(width, height), 90)
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let raster = gradient(width, height);
    let image = image::RgbImage::from_raw(width, height, raster.pixels).unwrap();
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
    bytes
}

/// A real PNG of `side` x `side` zeros: grey pixels compress about 1000 to 1.
fn png_of_zeros(side: u32) -> Vec<u8> {
    let image = image::GrayImage::new(side, side);
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
    bytes
}

fn cmyk_jpeg() -> Vec<u8> {
    let (width, height) = (64u16, 48u16);
    let pixels: Vec<u8> =
        (0..u32::from(width) * u32::from(height)).flat_map(|i| [i as u8, 40, 200, 30]).collect();
    let mut bytes = Vec::new();
    jpeg_encoder::Encoder::new(&mut bytes, 90)
        .encode(&pixels, width, height, jpeg_encoder::ColorType::Cmyk)
        .unwrap();
    bytes
}

/// A JPEG with an EXIF block whose first IFD points at itself (a loop for a naive reader).
fn jpeg_with_looping_exif() -> Vec<u8> {
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]); // orientation 6
    tiff.extend_from_slice(&8u32.to_be_bytes()); // next IFD: itself
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut bytes = vec![0xff, 0xd8, 0xff, 0xe1];
    bytes.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    bytes.extend_from_slice(&app1);
    bytes.extend_from_slice(&jpeg(64, 48)[2..]);
    bytes
}

fn fuzzed(base: &[u8], seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut bytes = base.to_vec();
    for _ in 0..rng.gen_range(1..12) {
        // Past the magic, so the file still claims to be what it was.
        let at = rng.gen_range(8..bytes.len());
        match rng.gen_range(0..3) {
            0 => bytes[at] ^= 1 << rng.gen_range(0..8),
            1 => bytes[at] = rng.gen(),
            _ => bytes[at] = [0x00, 0xff, 0x7f, 0x80][rng.gen_range(0..4)],
        }
    }
    bytes
}

fn corpus() -> Vec<Case> {
    use Expect::*;
    let mut cases = vec![
        case("JPEG header 65535x65535", jpeg_claiming(65535, 65535), Refused),
        case(
            "JPEG header 16000x16000 (256 MP within the side limit)",
            jpeg_claiming(16_000, 16_000),
            Refused,
        ),
        case("JPEG header 16385x100 (one pixel past the side limit)", jpeg_claiming(16_385, 100), Refused),
        case("JPEG header 0x0", jpeg_claiming(0, 0), Refused),
        case("PNG bomb: header 100000x100000", png_claiming(100_000, 100_000), Refused),
        case("PNG bomb: header 16000x16000", png_claiming(16_000, 16_000), Refused),
        case("PNG bomb: header 65535x65535", png_claiming(65_535, 65_535), Refused),
        case("PNG bomb: real 9000x9000 zeros (81 MP) in a small file", png_of_zeros(9_000), Refused),
        case(
            "JPEG truncated to half",
            {
                let b = jpeg(800, 600);
                b[..b.len() / 2].to_vec()
            },
            Refused,
        ),
        case("JPEG truncated before its frame header", jpeg(800, 600)[..40].to_vec(), Refused),
        case(
            "PNG truncated to half",
            {
                let b = png(300, 200);
                b[..b.len() / 2].to_vec()
            },
            Refused,
        ),
        case("PNG truncated inside its header", png(300, 200)[..30].to_vec(), Refused),
        case("wrong magic: GIF", b"GIF89a\x01\0\x01\0\0\0\0;".to_vec(), Refused),
        case("wrong magic: BMP", b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0".to_vec(), Refused),
        case("wrong magic: WebP", b"RIFF\x1a\0\0\0WEBPVP8 ".to_vec(), Refused),
        case("wrong magic: TIFF", b"II*\0\x08\0\0\0".to_vec(), Refused),
        case("wrong magic: HEIC", b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec(), Refused),
        case(
            "wrong magic: SVG with script",
            b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>".to_vec(),
            Refused,
        ),
        case("wrong magic: PDF", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec(), Refused),
        case("empty file", Vec::new(), Refused),
        case("control: honest 2000x1500 JPEG, decoded", jpeg(2000, 1500), Control),
        case("CMYK JPEG (scanners write them)", cmyk_jpeg(), Survived),
        case("JPEG whose EXIF IFD points at itself", jpeg_with_looping_exif(), Survived),
    ];
    let (base_jpeg, base_png) = (jpeg(320, 240), png(160, 120));
    for seed in 0..40 {
        cases.push(case(format!("JPEG byte-fuzzed #{seed}"), fuzzed(&base_jpeg, seed), Survived));
        cases.push(case(format!("PNG byte-fuzzed #{seed}"), fuzzed(&base_png, 1000 + seed), Survived));
    }
    cases
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or(0)
}

/// Resets this process's peak RSS (VmHWM) to its current RSS (Linux `clear_refs` 5).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Runs one case through every step; returns (refused steps, steps, first message). Only
/// pixel-producing steps count: reading an intact header of a truncated file is fine.
fn run_case(desk: &Desk, content_id: &str, bytes: &[u8]) -> (usize, usize, String) {
    let mut messages = Vec::new();
    let mut refused = 0;
    // The header steps run too (they must not panic), and give the message when they refuse.
    if let Err(error) = dermdesk_imaging::probe(bytes) {
        messages.push(format!("probe: {error}"));
    }
    let info = desk.serve_photo(&format!("/{content_id}/info.json"));
    assert!(matches!(info.status, 200 | 422), "info.json: {}", info.status);
    let imaging: [(&str, Result<(), dermdesk_imaging::ImagingError>); 4] = [
        ("decode", dermdesk_imaging::decode(bytes).map(|_| ())),
        ("preview", dermdesk_imaging::preview(bytes).map(|_| ())),
        ("thumbnail", dermdesk_imaging::thumbnail(bytes).map(|_| ())),
        ("pyramid", dermdesk_imaging::Pyramid::from_photo(bytes).map(|_| ())),
    ];
    let steps = imaging.len() + 3;
    for (step, result) in imaging {
        if let Err(error) = result {
            refused += 1;
            messages.push(format!("{step}: {error}"));
        }
    }
    for path in ["preview.jpg", "thumb.jpg", "tiles/0/0_0.jpg"] {
        let response = desk.serve_photo(&format!("/{content_id}/{path}"));
        match response.status {
            200 => {}
            422 => {
                refused += 1;
                messages
                    .push(format!("photo scheme {path}: 422 {}", String::from_utf8_lossy(&response.body)));
            }
            other => panic!("photo scheme {path}: {other} {}", String::from_utf8_lossy(&response.body)),
        }
    }
    (refused, steps, messages.into_iter().next().unwrap_or_default())
}

/// The child: every case in this process, one after the other, with its peak memory. Prints
/// one `BOMB {json}` line per case. Run only by the test below.
#[test]
#[ignore = "run by photo_bombs_are_refused_quickly_with_bounded_memory in a child process"]
fn bomb_corpus_in_this_process() {
    if std::env::var_os("DERMDESK_BOMB_CHILD").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(MemorySecretStore::default());
    let config = DeskConfig { data_dir: dir.path().join("desk"), device_name: "bombs".into() };
    let desk = Desk::open(config, secrets.clone()).unwrap();
    let key = secrets.get(CACHE_KEY).unwrap().unwrap();
    let mut cache = dermdesk_core::cache::Cache::open(
        &desk.data_dir().join(dermdesk_core::desk::CACHE_FILE),
        key.as_slice().try_into().unwrap(),
    )
    .unwrap();
    let content_id = |bytes: &[u8]| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
    let honest = jpeg(320, 240);
    let honest_id = content_id(&honest);
    let cases = corpus();
    // One referral names them all (the cache keeps only photos some referral uses).
    let ids: Vec<String> =
        std::iter::once(honest_id.clone()).chain(cases.iter().map(|c| content_id(&c.bytes))).collect();
    cache
        .apply(
            &dermdesk_core::plan::plan_feed_page(&[], &feed_page_naming(&ids), &Default::default()),
            dermdesk_core::clock::test_instant(),
        )
        .unwrap();
    // Warm up once with the honest photo so the first case does not pay for lazy set-up.
    cache
        .store_verified_photo(&honest_id, "image/jpeg", &honest, dermdesk_core::clock::test_instant())
        .unwrap();
    run_case(&desk, &honest_id, &honest);

    println!("BOMB-COUNT {}", cases.len());
    for case in cases {
        let content_id = content_id(&case.bytes);
        let media_type = if case.bytes.starts_with(b"\x89PNG") { "image/png" } else { "image/jpeg" };
        cache
            .store_verified_photo(&content_id, media_type, &case.bytes, dermdesk_core::clock::test_instant())
            .unwrap();
        let reset = reset_peak();
        let before = status_kb("VmRSS:");
        let started = Instant::now();
        let (refused, steps, message) = run_case(&desk, &content_id, &case.bytes);
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        let growth = status_kb("VmHWM:").saturating_sub(before);
        // The referral's other photos are still served after each hostile one.
        let honest_still_served = desk.serve_photo(&format!("/{honest_id}/preview.jpg")).status == 200;
        let line = json!({
            "case": case.name, "bytes": case.bytes.len(), "expect": format!("{:?}", case.expect),
            "refused_steps": refused, "steps": steps, "message": message, "millis": millis,
            "peak_growth_kb": growth, "peak_measured": reset, "honest_still_served": honest_still_served,
        });
        println!("BOMB {line}");
    }
}

/// A feed page with one synthetic referral whose photos have these content ids.
fn feed_page_naming(content_ids: &[String]) -> dermdesk_protocol::FeedPage {
    let photos: Vec<Value> = content_ids
        .iter()
        .map(|id| {
            json!({"content_id": id, "size": 1, "width": 1, "height": 1, "media_type": "image/jpeg",
                   "captured_at": "2026-11-20T09:30:00Z", "view": "close_up", "body_site": "back",
                   "source": "gp_practice"})
        })
        .collect();
    serde_json::from_value(json!({
        "changes": [{"type": "upsert", "referral": {
            "id": "R-BOMBS", "version": 1,
            "patient": {"name": "Synthetic Patient", "nhs_number": "9990000018", "date_of_birth": "1970-01-01", "sex": "female"},
            "practice": {"ods_code": "Y00001", "name": "Synthetic Practice", "nation": "england"},
            "referrer": {"name": "Dr Synthetic", "role": "GP"},
            "received_at": "2026-11-20T09:30:00Z", "urgency": "routine",
            "clinical": {"question": "q", "history": "h", "duration": "d", "medications": "m"},
            "consent": {"given": true, "recorded_at": null, "recorded_by": null},
            "photos": photos,
        }}],
        "next_cursor": "c1", "has_more": false,
    }))
    .unwrap()
}

#[test]
fn photo_bombs_are_refused_quickly_with_bounded_memory() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "bombs::bomb_corpus_in_this_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DERMDESK_BOMB_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The test harness may print its own "test ... " before the first line on the same line.
    let results: Vec<Value> = stdout
        .lines()
        .filter_map(|line| line.split_once("BOMB {").map(|(_, rest)| format!("{{{rest}")))
        .map(|json| serde_json::from_str(&json).unwrap())
        .collect();
    let count: usize =
        stdout.lines().find_map(|l| l.split_once("BOMB-COUNT ")?.1.trim().parse().ok()).expect("count");
    assert!(count > 50 && results.len() == count, "{stdout}");

    let mut failures = Vec::new();
    let (mut bombs_total, mut bombs_rejected, mut survived_refused) = (0, 0, 0);
    let (mut max_growth, mut max_millis, mut control_growth) = (0u64, 0f64, 0u64);
    for result in &results {
        let name = result["case"].as_str().unwrap();
        let (refused, steps) = (result["refused_steps"].as_u64().unwrap(), result["steps"].as_u64().unwrap());
        let growth = result["peak_growth_kb"].as_u64().unwrap();
        let millis = result["millis"].as_f64().unwrap();
        eprintln!(
            "{name:<60} {refused}/{steps} refused {millis:>7.1} ms {growth:>7} kB  {}",
            result["message"]
        );
        if result["expect"] != "Control" {
            max_growth = max_growth.max(growth);
            max_millis = max_millis.max(millis);
        }
        if result["expect"] == "Refused" {
            bombs_total += 1;
            let all_pixel_steps =
                refused == steps && result["message"].as_str().is_some_and(|m| !m.is_empty());
            if all_pixel_steps {
                bombs_rejected += 1;
            } else {
                failures.push(format!("{name}: only {refused} of {steps} steps refused it"));
            }
        } else if result["expect"] == "Control" {
            // 3 MP as RGB is 9 MB: a meter that saw nothing would prove nothing.
            if refused > 0 || growth < 8 * 1024 {
                failures.push(format!("{name}: refused {refused} steps, peak growth {growth} kB"));
            }
            control_growth = growth;
        } else if refused > 0 {
            survived_refused += 1;
        }
        if growth > MAX_GROWTH_KB && result["expect"] != "Control" {
            failures.push(format!("{name}: peak memory grew by {growth} kB"));
        }
        if millis > MAX_TIME.as_secs_f64() * 1000.0 && result["expect"] != "Control" {
            failures.push(format!("{name}: took {millis:.0} ms"));
        }
        if result["honest_still_served"] != true {
            failures.push(format!("{name}: the honest photo was no longer served after it"));
        }
    }
    crate::write_figures(
        "bombs.json",
        &json!({
            "bombs_total": bombs_total,
            "bombs_rejected": bombs_rejected,
            "fuzzed_and_odd_total": results.len() - bombs_total - 1,
            "control_peak_growth_kb": control_growth,
            "fuzzed_and_odd_refused": survived_refused,
            "max_peak_growth_kb": max_growth,
            "max_millis": max_millis,
            "memory_measured": results.iter().all(|r| r["peak_measured"] == true),
            "cases": results,
        }),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The worst photos on a referral, through a real sync with the reference hub: the one whose
/// metadata says 65535x65535 is never downloaded; the ones whose bytes are no usable image are
/// downloaded once and refused for good; the sync is complete (nothing left to retry), and the
/// referral opens with its honest photo served.
#[tokio::test]
async fn hostile_photos_in_a_sync_are_refused_for_good_and_the_referral_stays_usable() {
    use crate::support::{TestDesk, TestHub};
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    desk.sync().await;

    let template = hub.set.referrals[0].clone();
    let honest = template.photos[0].clone();
    let store = |bytes: &[u8], media_type: &str| {
        hub.hub.add_photo_bytes_unchecked_for_tests(bytes, media_type).unwrap()
    };
    let meta = |content_id: String, bytes: &[u8], width: u32, height: u32, media_type: &str| {
        dermdesk_protocol::PhotoMeta {
            content_id,
            size: bytes.len() as u64,
            width,
            height,
            media_type: media_type.into(),
            ..honest.clone()
        }
    };
    let giant = jpeg_claiming(65535, 65535);
    // Header 65535x65535, metadata 64x48 (other bytes than `giant`, so another content id).
    let lying = [jpeg_claiming(65535, 65535), b"different bytes".to_vec()].concat();
    let gif = b"GIF89a\x01\0\x01\0\0\0\0;".to_vec();
    let truncated = {
        let b = jpeg(800, 600);
        b[..b.len() / 2].to_vec()
    };
    let photos = vec![
        honest.clone(),
        meta(store(&giant, "image/jpeg"), &giant, 65535, 65535, "image/jpeg"),
        meta(store(&lying, "image/jpeg"), &lying, 64, 48, "image/jpeg"),
        meta(store(&gif, "image/jpeg"), &gif, 1, 1, "image/jpeg"),
        meta(store(&truncated, "image/jpeg"), &truncated, 800, 600, "image/jpeg"),
    ];
    let referral =
        dermdesk_protocol::Referral { id: "R-HOSTILE-PHOTOS".into(), version: 1, photos, ..template };
    hub.hub.create_referral(&referral, &hub.seed.consultant.id).unwrap();

    let client = desk.desk.client().unwrap();
    desk.desk.pull_feed(&client, |_| {}).await.unwrap();
    let missing = desk.desk.missing_photos().unwrap();
    let ids: Vec<&str> = missing.iter().map(|m| m.content_id.as_str()).collect();
    assert!(!ids.contains(&referral.photos[1].content_id.as_str()), "the 65535² photo was to be downloaded");
    assert_eq!(missing.len(), 3, "{ids:?}");
    let started = Instant::now();
    let summary = desk.desk.fetch_photos(&client, missing, 3, Arc::new(|_| {}), |_, _| {}).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // Damaged in transit would be retried; these are refused for good: the sync is complete.
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    let mut refused: Vec<&str> = summary.refused.iter().map(|(id, _)| id.as_str()).collect();
    let mut expected = vec![referral.photos[2].content_id.as_str(), referral.photos[3].content_id.as_str()];
    refused.sort_unstable();
    expected.sort_unstable();
    assert_eq!(refused, expected, "{:?}", summary.refused);
    assert_eq!(summary.stored, 1, "the truncated JPEG's header is honest: stored, refused when decoded");
    for (_, problem) in &summary.refused {
        assert!(problem.contains("refused") && problem.contains("rest of the referral is kept"), "{problem}");
    }
    // Nothing is fetched again: the next sync has nothing to do for this referral.
    assert!(desk.desk.missing_photos().unwrap().is_empty());
    let failures = desk.cache().photo_failures().unwrap();
    for photo in &referral.photos[1..4] {
        let (_, _, problem) = failures.iter().find(|(id, _, _)| *id == photo.content_id).expect("recorded");
        assert!(problem.starts_with("refused"), "{problem}");
    }
    assert!(failures.iter().any(|(_, _, p)| p.contains("65535x65535")), "{failures:?}");

    // The referral opens and can be reviewed: the honest photo is served, the truncated one
    // answers 422 with a reason, the refused ones are simply absent.
    let view = desk.desk.open_referral(&referral.id).unwrap();
    assert_eq!(view.referral.id, referral.id);
    let preview = desk.desk.serve_photo(&format!("/{}/preview.jpg", honest.content_id));
    assert_eq!((preview.status, preview.content_type), (200, "image/jpeg"));
    let damaged = desk.desk.serve_photo(&format!("/{}/preview.jpg", referral.photos[4].content_id));
    assert_eq!(damaged.status, 422, "{}", String::from_utf8_lossy(&damaged.body));
    let missing = desk.desk.serve_photo(&format!("/{}/preview.jpg", referral.photos[1].content_id));
    assert_eq!(missing.status, 404);

    // After a restart nothing is fetched again either: the bytes refused for good stay refused
    // (kept in the cache), the metadata is judged again with the same verdict.
    let desk = desk.reopen();
    assert!(desk.desk.missing_photos().unwrap().is_empty());
    assert!(desk.desk.open_referral(&referral.id).is_ok());
}
