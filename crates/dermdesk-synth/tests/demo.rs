//! The demo set as its users see it: files that hash to their content ids, metadata that tells
//! the truth about the bytes, determinism, the cache, and photos that look like photographs.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use dermdesk_protocol::{PhotoMeta, PhotoSource, PhotoView, Referral};
use dermdesk_synth::{
    build_demo_set, build_demo_set_with_report, exif_orientation, nhs_number_is_synthetic, render_photo,
    BodyRegion, DemoOptions, DemoSet, Finding, PhotoScale, PhotoSpec, DEFAULT_REFERRALS,
};
use image::codecs::jpeg::JpegDecoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, RgbImage};
use sha2::{Digest, Sha256};

fn now() -> DateTime<Utc> {
    // A Wednesday morning.
    Utc.with_ymd_and_hms(2026, 3, 11, 10, 30, 0).unwrap()
}

fn small_options(seed: u64) -> DemoOptions {
    DemoOptions { seed, referrals: DEFAULT_REFERRALS, photo_scale: PhotoScale::Small(640), now: now() }
}

/// The small demo for seed 7, built once per test run for the tests that only read it, in a
/// folder under Cargo's scratch space that is emptied first (so it is never stale).
fn shared_demo() -> &'static DemoSet {
    static SHARED: OnceLock<DemoSet> = OnceLock::new();
    SHARED.get_or_init(|| {
        let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dermdesk-synth-shared-demo");
        let _ = std::fs::remove_dir_all(&folder);
        build_demo_set(&folder, &small_options(7)).unwrap()
    })
}

fn all_photos(set: &DemoSet) -> impl Iterator<Item = (&Referral, &PhotoMeta)> {
    set.referrals.iter().flat_map(|referral| referral.photos.iter().map(move |photo| (referral, photo)))
}

/// Decodes JPEG bytes, returning the stored raster and the EXIF orientation the decoder saw.
fn decode(bytes: &[u8]) -> (RgbImage, Orientation) {
    let mut decoder = JpegDecoder::new(Cursor::new(bytes)).expect("a JPEG header");
    let orientation = decoder.orientation().expect("readable EXIF");
    let image = DynamicImage::from_decoder(decoder).expect("a decodable JPEG").to_rgb8();
    (image, orientation)
}

/// Standard deviation of the luminance: a flat colour scores near 0, a photograph tens.
fn luminance_deviation(image: &RgbImage) -> f64 {
    let values: Vec<f64> = image
        .pixels()
        .map(|pixel| 0.299 * f64::from(pixel[0]) + 0.587 * f64::from(pixel[1]) + 0.114 * f64::from(pixel[2]))
        .collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    (values.iter().map(|value| (value - mean).powi(2)).sum::<f64>() / values.len() as f64).sqrt()
}

#[test]
fn photo_metadata_tells_the_truth_about_the_files() {
    let set = shared_demo();
    assert_eq!(set.referrals.len(), DEFAULT_REFERRALS);
    let mut seen = BTreeSet::new();
    for (referral, photo) in all_photos(set) {
        let path = &set.photo_files[&photo.content_id];
        assert!(path.ends_with(format!("{}.jpg", photo.content_id)), "{}", path.display());
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), photo.content_id, "{}", path.display());
        assert!(dermdesk_protocol::is_content_id(&photo.content_id));
        assert_eq!(photo.size, bytes.len() as u64);
        assert_eq!(photo.media_type, "image/jpeg");
        let (image, _) = decode(&bytes);
        assert_eq!((image.width(), image.height()), (photo.width, photo.height), "stored dimensions");
        assert!(photo.width.max(photo.height) <= 640);
        assert!(photo.captured_at < referral.received_at, "{}", referral.id);
        assert!(photo.captured_at > referral.received_at - Duration::days(3), "{}", referral.id);
        assert!(!photo.body_site.is_empty());
        seen.insert(photo.content_id.clone());
    }
    // Every file the set names is a photo of the set, and the other way round.
    assert_eq!(seen, set.photo_files.keys().cloned().collect());
    assert!(set.referrals.iter().all(|referral| (1..=4).contains(&referral.photos.len())));
}

#[test]
fn the_same_options_give_the_same_set() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let one = build_demo_set(first.path(), &small_options(11)).unwrap();
    let two = build_demo_set(second.path(), &small_options(11)).unwrap();
    assert_eq!(one.referrals, two.referrals);
    assert_eq!(one.photo_files.keys().collect::<Vec<_>>(), two.photo_files.keys().collect::<Vec<_>>());
    let other = build_demo_set(first.path(), &small_options(12)).unwrap();
    assert_ne!(one.referrals, other.referrals, "another seed gives another demo");
    // A later `now` moves the dates but not the photos.
    let later = DemoOptions { now: now() + Duration::days(30), ..small_options(11) };
    let (moved, report) = build_demo_set_with_report(first.path(), &later).unwrap();
    assert_eq!(report.photos_rendered, 0);
    assert_eq!(moved.photo_files, one.photo_files);
    assert_ne!(moved.referrals[0].received_at, one.referrals[0].received_at);
}

#[test]
fn a_second_build_renders_nothing_and_touches_no_file() {
    let cache = tempfile::tempdir().unwrap();
    let options = small_options(3);
    let (first, report) = build_demo_set_with_report(cache.path(), &options).unwrap();
    assert_eq!(report.photos_reused, 0);
    assert_eq!(report.photos_rendered, first.photo_files.len());
    let modified = |set: &DemoSet| -> BTreeMap<String, std::time::SystemTime> {
        set.photo_files
            .iter()
            .map(|(id, path)| (id.clone(), std::fs::metadata(path).unwrap().modified().unwrap()))
            .collect()
    };
    let before = modified(&first);
    let (second, report) = build_demo_set_with_report(cache.path(), &options).unwrap();
    assert_eq!(report.photos_rendered, 0);
    assert_eq!(report.photos_reused, first.photo_files.len());
    assert_eq!(second, first);
    assert_eq!(modified(&second), before);
    // Nothing but photos and the manifest is left behind.
    let names: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|name| name == "manifest.json" || name.ends_with(".jpg")), "{names:?}");
}

#[test]
fn a_damaged_cache_file_is_rendered_again() {
    let cache = tempfile::tempdir().unwrap();
    let options = small_options(4);
    let set = build_demo_set(cache.path(), &options).unwrap();
    let (content_id, path) = set.photo_files.iter().next().unwrap();
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
    let (rebuilt, report) = build_demo_set_with_report(cache.path(), &options).unwrap();
    assert_eq!(report.photos_rendered, 1);
    assert_eq!(std::fs::read(&rebuilt.photo_files[content_id]).unwrap(), bytes);
}

#[test]
fn a_cache_from_another_generator_version_is_replaced() {
    let cache = tempfile::tempdir().unwrap();
    let options = small_options(5);
    let set = build_demo_set(cache.path(), &options).unwrap();
    let manifest_path = cache.path().join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["generator_version"] = serde_json::json!(0);
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let (rebuilt, report) = build_demo_set_with_report(cache.path(), &options).unwrap();
    assert_eq!(report.photos_rendered, set.photo_files.len());
    assert_eq!(rebuilt, set);
}

#[test]
fn nhs_numbers_are_valid_test_numbers() {
    let set = shared_demo();
    for referral in &set.referrals {
        let number = &referral.patient.nhs_number;
        assert!(nhs_number_is_synthetic(number), "{number} in {}", referral.id);
        let digits: Vec<u32> = number.chars().map(|character| character.to_digit(10).unwrap()).collect();
        let total: u32 = digits[..9].iter().zip((2..=10).rev()).map(|(digit, weight)| digit * weight).sum();
        assert_eq!((11 - total % 11) % 11, digits[9], "{number}");
        assert!(number.as_str() >= "9990000000");
    }
}

#[test]
fn one_patient_was_referred_before() {
    let set = shared_demo();
    let mut by_patient: BTreeMap<&str, Vec<&Referral>> = BTreeMap::new();
    for referral in &set.referrals {
        by_patient.entry(referral.patient.nhs_number.as_str()).or_default().push(referral);
    }
    let repeated: Vec<&Vec<&Referral>> =
        by_patient.values().filter(|referrals| referrals.len() > 1).collect();
    assert_eq!(repeated.len(), 1, "exactly one patient referred twice in the default demo");
    let mut pair = repeated[0].clone();
    pair.sort_by_key(|referral| referral.received_at);
    assert_eq!(pair[0].patient, pair[1].patient);
    assert!(pair[1].received_at - pair[0].received_at > Duration::days(90), "months apart");
    assert!(pair[0]
        .photos
        .iter()
        .zip(&pair[1].photos)
        .all(|(earlier, later)| earlier.body_site == later.body_site));
    assert!(pair[0].id < pair[1].id, "ids follow arrival order");
}

#[test]
fn referrals_read_like_a_real_teledermatology_queue() {
    let set = shared_demo();
    let refused: Vec<&Referral> = set.referrals.iter().filter(|referral| !referral.consent.given).collect();
    assert_eq!(refused.len(), 1);
    assert!(refused[0].consent.recorded_at.is_none() && refused[0].consent.recorded_by.is_none());
    for referral in set.referrals.iter().filter(|referral| referral.consent.given) {
        let recorded_at = referral.consent.recorded_at.unwrap();
        assert!(referral.photos.iter().all(|photo| recorded_at < photo.captured_at), "{}", referral.id);
        assert!(referral.consent.recorded_by.as_deref().is_some_and(|by| !by.is_empty()));
    }
    for referral in &set.referrals {
        assert_eq!(referral.version, 1);
        assert!(
            referral.id.starts_with("DD-2026-") || referral.id.starts_with("DD-2025-"),
            "{}",
            referral.id
        );
        assert!(referral.practice.ods_code.starts_with("Y0") && referral.practice.ods_code.len() == 6);
        assert!(!referral.clinical.question.is_empty() && !referral.clinical.history.contains('{'));
        assert!(referral.received_at < now());
    }
    let sources: BTreeSet<String> =
        all_photos(set).map(|(_, photo)| format!("{:?}/{:?}", photo.view, photo.source)).collect();
    for expected in
        ["Overview/GpPractice", "CloseUp/GpPractice", "Dermoscopic/GpPractice", "Overview/PatientLink"]
    {
        assert!(sources.contains(expected), "{expected} missing from {sources:?}");
    }
    // Some referrals are days old (overdue), most arrived in the last few working days.
    let oldest_recent = set
        .referrals
        .iter()
        .filter(|referral| now() - referral.received_at < Duration::days(30))
        .map(|referral| now() - referral.received_at)
        .max()
        .unwrap();
    assert!(oldest_recent > Duration::days(7));
}

#[test]
fn every_kind_of_photo_decodes_and_is_not_flat() {
    let set = shared_demo();
    for (referral, photo) in all_photos(set) {
        let (image, _) = decode(&std::fs::read(&set.photo_files[&photo.content_id]).unwrap());
        let deviation = luminance_deviation(&image);
        assert!(
            deviation > 6.0,
            "{} {:?} is nearly flat (deviation {deviation:.1})",
            referral.id,
            photo.view
        );
    }
}

fn spec(orientation: u8, width: u32, height: u32) -> PhotoSpec {
    PhotoSpec {
        seed: 5,
        subject_seed: 6,
        width,
        height,
        view: PhotoView::Overview,
        source: PhotoSource::GpPractice,
        exif_orientation: orientation,
        skin_type: 2,
        finding: Finding::BasalCellCarcinoma,
        region: BodyRegion::Forearm,
        body_hair: 2,
        stage: 1,
        quality: 90,
        defect: Default::default(),
    }
}

fn mean_difference(one: &RgbImage, other: &RgbImage) -> f64 {
    assert_eq!(one.dimensions(), other.dimensions());
    let total: u64 = one.as_raw().iter().zip(other.as_raw()).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
    total as f64 / one.as_raw().len() as f64
}

#[test]
fn orientation_6_photos_carry_the_tag_and_show_the_scene_upright() {
    // The same scene stored on its side (orientation 6) and stored upright (orientation 1).
    let sideways = render_photo(&spec(6, 640, 480));
    let upright = render_photo(&spec(1, 480, 640));
    assert_eq!(exif_orientation(&sideways), Some(6));
    assert_eq!(exif_orientation(&upright), Some(1));
    let (stored, orientation) = decode(&sideways);
    assert_eq!(orientation, Orientation::Rotate90, "a decoder reads the tag");
    assert_eq!(stored.dimensions(), (640, 480), "stored dimensions are before orientation");
    assert!(luminance_deviation(&stored) > 6.0);
    let (reference, _) = decode(&upright);
    let mut shown = DynamicImage::ImageRgb8(stored.clone());
    shown.apply_orientation(orientation);
    let shown = shown.to_rgb8();
    let wrong_way = DynamicImage::ImageRgb8(stored).rotate270().to_rgb8();
    let right = mean_difference(&shown, &reference);
    let wrong = mean_difference(&wrong_way, &reference);
    // Only sensor noise and JPEG blocks differ when the viewer turns the photo as told.
    assert!(right < 4.0, "upright view differs by {right:.2} on average");
    assert!(wrong > 3.0 * right, "turned the wrong way differs by only {wrong:.2}");
}

#[test]
fn the_demo_has_orientation_6_photos_that_decode() {
    let set = shared_demo();
    let sideways: Vec<&PhotoMeta> = all_photos(set)
        .map(|(_, photo)| photo)
        .filter(|photo| {
            exif_orientation(&std::fs::read(&set.photo_files[&photo.content_id]).unwrap()) == Some(6)
        })
        .collect();
    assert!(!sideways.is_empty());
    for photo in sideways {
        let (image, orientation) = decode(&std::fs::read(&set.photo_files[&photo.content_id]).unwrap());
        assert_eq!(orientation, Orientation::Rotate90);
        assert_eq!((image.width(), image.height()), (photo.width, photo.height));
        assert!(photo.width > photo.height, "stored on its side, landscape raster");
    }
}

fn report_time(label: &str, started: Instant) {
    println!("{label}: {:.3} s", started.elapsed().as_secs_f64());
}

/// `cargo test -p dermdesk-synth --test demo -- --ignored --nocapture timing`
#[test]
#[ignore = "timing: run with --ignored --nocapture"]
fn timing_of_one_24_megapixel_photo() {
    let spec = PhotoSpec { view: PhotoView::CloseUp, finding: Finding::Melanoma, ..spec(1, 5712, 4284) };
    let started = Instant::now();
    let jpeg = render_photo(&spec);
    report_time(
        &format!("one 24 MP photo ({} threads)", std::thread::available_parallelism().unwrap()),
        started,
    );
    println!("  {:.1} MB", jpeg.len() as f64 / 1e6);
}

/// `cargo test -p dermdesk-synth --test demo -- --ignored --nocapture timing`
#[test]
#[ignore = "timing: run with --ignored --nocapture"]
fn timing_of_the_full_default_demo() {
    let cache = tempfile::tempdir().unwrap();
    let options = DemoOptions { photo_scale: PhotoScale::Full, ..small_options(1) };
    let started = Instant::now();
    let (set, report) = build_demo_set_with_report(cache.path(), &options).unwrap();
    report_time(&format!("full demo, first build ({} photos rendered)", report.photos_rendered), started);
    let megapixels: f64 =
        all_photos(&set).map(|(_, photo)| f64::from(photo.width * photo.height) / 1e6).sum();
    let bytes: u64 = all_photos(&set).map(|(_, photo)| photo.size).sum();
    println!("  {megapixels:.0} MP in {} photos, {:.0} MB", set.photo_files.len(), bytes as f64 / 1e6);
    let started = Instant::now();
    let (_, report) = build_demo_set_with_report(cache.path(), &options).unwrap();
    assert_eq!(report.photos_rendered, 0);
    report_time("full demo, cached", started);
    copy_previews(&set, Path::new("/tmp/synth-demo"));
}

/// Leaves the demo's JPEGs where a person can look at them, if asked to.
fn copy_previews(set: &DemoSet, folder: &Path) {
    if std::env::var_os("DERMDESK_SYNTH_KEEP").is_none() {
        return;
    }
    std::fs::create_dir_all(folder).unwrap();
    for (referral, photo) in all_photos(set) {
        let name =
            format!("{}-{:?}-{:?}-{}.jpg", referral.id, photo.view, photo.source, &photo.content_id[..8]);
        std::fs::copy(&set.photo_files[&photo.content_id], folder.join(name)).unwrap();
    }
}
