//! Referrals a demo can add for checking the viewer, off by default: an orientation chart (one
//! photo per EXIF orientation, all upright when shown right) and four 24-megapixel photos to
//! compare (the viewer's memory goal is about exactly that). Synthetic like the rest: a test
//! patient from the reserved NHS number range, a practice of the demo's own.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use dermdesk_protocol::{
    ClinicalDetails, Consent, Patient, PhotoMeta, PhotoSource, PhotoView, Referral, Sex, Urgency,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::cache::{cached_photos, photo_path, spec_key, store_bytes};
use crate::orientation::orientation_chart;
use crate::people::{practices, synthetic_nhs_number};
use crate::photo::{BodyRegion, Finding, PhotoSpec};
use crate::DemoSet;

/// Which extra referrals to add to a demo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemoExtras {
    /// [`ORIENTATION_CHART_REFERRAL`]: eight charts, EXIF orientation 1 to 8.
    pub orientation_chart: bool,
    /// [`LARGE_PHOTOS_REFERRAL`]: four 6000 x 4000 photos (rendered once, some seconds each).
    pub large_photos: bool,
}

pub const ORIENTATION_CHART_REFERRAL: &str = "DD-TEST-ORIENTATION-CHART";
pub const LARGE_PHOTOS_REFERRAL: &str = "DD-TEST-FOUR-24MP-PHOTOS";

/// Displayed size of each orientation chart: landscape, so a quarter turn shows as portrait.
pub const ORIENTATION_CHART_SIZE: (u32, u32) = (1536, 1024);
/// Stored size of each large photo: 24 megapixels.
pub const LARGE_PHOTO_SIZE: (u32, u32) = (6000, 4000);

/// Builds (or reuses from `cache_dir`) the extra referrals asked for, as a demo set to add to
/// the main one.
pub fn build_demo_extras(cache_dir: &Path, extras: DemoExtras, now: DateTime<Utc>) -> io::Result<DemoSet> {
    let mut set = DemoSet { referrals: Vec::new(), photo_files: BTreeMap::new() };
    if extras.orientation_chart {
        let mut photos = Vec::new();
        for orientation in 1..=8u8 {
            let bytes = orientation_chart(orientation, ORIENTATION_CHART_SIZE);
            let (content_id, path) = store_bytes(cache_dir, &bytes)?;
            let (width, height) = crate::orientation::stored_size(orientation, ORIENTATION_CHART_SIZE);
            photos.push(PhotoMeta {
                content_id: content_id.clone(),
                size: bytes.len() as u64,
                width,
                height,
                media_type: "image/jpeg".to_owned(),
                captured_at: now - Duration::minutes(60 - i64::from(orientation)),
                view: PhotoView::Overview,
                body_site: format!("Test chart, EXIF orientation {orientation}"),
                source: PhotoSource::GpPractice,
            });
            set.photo_files.insert(content_id, path);
        }
        set.referrals.push(test_referral(
            ORIENTATION_CHART_REFERRAL,
            1,
            now,
            "Viewer check: do all eight charts show the arrow pointing up, red top left, green top \
             right, blue bottom left and yellow bottom right?",
            "Synthetic test chart, not a patient. Each photo stores the same chart turned or \
             mirrored and says so in its EXIF orientation tag (1 to 8, the number on the chart).",
            photos,
        ));
    }
    if extras.large_photos {
        let specs: Vec<PhotoSpec> = (1..=4u64).map(large_photo_spec).collect();
        let (known, _) = cached_photos(cache_dir, &specs.iter().collect::<Vec<_>>())?;
        let photos = specs
            .iter()
            .enumerate()
            .map(|(index, spec)| {
                let cached = &known[&spec_key(spec)];
                set.photo_files.insert(cached.content_id.clone(), photo_path(cache_dir, &cached.content_id));
                PhotoMeta {
                    content_id: cached.content_id.clone(),
                    size: cached.size,
                    width: cached.width,
                    height: cached.height,
                    media_type: "image/jpeg".to_owned(),
                    captured_at: now - Duration::minutes(50 - index as i64),
                    view: spec.view,
                    body_site: format!("Back, lesion {}", index + 1),
                    source: spec.source,
                }
            })
            .collect();
        set.referrals.push(test_referral(
            LARGE_PHOTOS_REFERRAL,
            2,
            now,
            "Viewer check: four 24-megapixel photos side by side.",
            "Synthetic test referral, not a patient: four full-size phone photos of four lesions, \
             for comparing in the four-pane layout.",
            photos,
        ));
    }
    Ok(set)
}

/// The demo's large-photo referral: four of the benchmark's kind of photo.
fn large_photo_spec(seed: u64) -> PhotoSpec {
    large_close_up(seed, 9_000 + seed, 9_100 + seed * 7)
}

/// A photographic 24 MP close-up ([`LARGE_PHOTO_SIZE`], q90) on the back: the kind of photo
/// `bench images` and the real-window P8 measurement work on. `variant` picks the skin type
/// and the finding; `seed` and `subject_seed` as in [`PhotoSpec`].
pub fn large_close_up(variant: u64, seed: u64, subject_seed: u64) -> PhotoSpec {
    PhotoSpec {
        seed,
        subject_seed,
        width: LARGE_PHOTO_SIZE.0,
        height: LARGE_PHOTO_SIZE.1,
        view: PhotoView::CloseUp,
        source: PhotoSource::GpPractice,
        exif_orientation: 1,
        skin_type: 1 + (variant % 6) as u8,
        finding: [
            Finding::Melanoma,
            Finding::BenignNaevus,
            Finding::SeborrhoeicKeratosis,
            Finding::Psoriasis,
        ][(variant % 4) as usize],
        region: BodyRegion::Back,
        body_hair: 2,
        stage: 1,
        quality: 90,
        defect: Default::default(),
    }
}

fn test_referral(
    id: &str,
    stream: u64,
    now: DateTime<Utc>,
    question: &str,
    history: &str,
    photos: Vec<PhotoMeta>,
) -> Referral {
    let mut rng = ChaCha8Rng::seed_from_u64(0x7e57);
    rng.set_stream(stream);
    let practice = practices(&mut rng).swap_remove(0);
    let referrer = practice.referrers[0].clone();
    let earliest = photos.iter().map(|photo| photo.captured_at).min().unwrap_or(now);
    Referral {
        id: id.to_owned(),
        version: 1,
        patient: Patient {
            name: format!("Test Chart {stream} (synthetic)"),
            nhs_number: synthetic_nhs_number(&mut rng),
            date_of_birth: chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default(),
            sex: Sex::Female,
        },
        practice: practice.practice,
        referrer: referrer.clone(),
        received_at: now - Duration::minutes(30),
        urgency: Urgency::Routine,
        clinical: ClinicalDetails {
            question: question.to_owned(),
            history: history.to_owned(),
            duration: "Not applicable (test chart)".to_owned(),
            medications: "None".to_owned(),
        },
        consent: Consent {
            given: true,
            recorded_at: Some(earliest - Duration::minutes(5)),
            recorded_by: Some(format!("{} ({})", referrer.name, referrer.role)),
        },
        photos,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orientation_chart_referral_holds_eight_tagged_photos_from_a_test_patient() {
        let dir = tempfile::tempdir().unwrap();
        let now = "2026-12-02T10:30:00Z".parse().unwrap();
        let extras = DemoExtras { orientation_chart: true, large_photos: false };
        let set = build_demo_extras(dir.path(), extras, now).unwrap();
        assert_eq!(set.referrals.len(), 1);
        let referral = &set.referrals[0];
        assert_eq!(referral.id, ORIENTATION_CHART_REFERRAL);
        assert!(crate::nhs_number_is_synthetic(&referral.patient.nhs_number));
        assert!(referral.consent.given, "photos without consent would be hidden");
        assert_eq!(referral.photos.len(), 8);
        for (index, photo) in referral.photos.iter().enumerate() {
            let bytes = std::fs::read(&set.photo_files[&photo.content_id]).unwrap();
            assert_eq!(bytes.len() as u64, photo.size);
            assert_eq!(crate::exif_orientation(&bytes), Some(index as u16 + 1));
            let image = image::load_from_memory(&bytes).unwrap();
            assert_eq!((image.width(), image.height()), (photo.width, photo.height));
        }
        // Again: the same photos, nothing new on disk.
        let again = build_demo_extras(dir.path(), extras, now).unwrap();
        assert_eq!(again.photo_files, set.photo_files);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 8);
        assert!(build_demo_extras(dir.path(), DemoExtras::default(), now).unwrap().referrals.is_empty());
    }
}
