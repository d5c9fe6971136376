//! Renders one photo of each kind to a folder, with a 1000-pixel PNG preview beside each JPEG,
//! for looking at the generator's output: `cargo run -p dermdesk-synth --example render_samples
//! -- /tmp/synth-look [small]`.

use std::path::PathBuf;
use std::time::Instant;

use dermdesk_protocol::{PhotoSource, PhotoView};
use dermdesk_synth::{render_photo, BodyRegion, Finding, PhotoSpec};

fn main() {
    let mut arguments = std::env::args().skip(1);
    let folder = PathBuf::from(arguments.next().unwrap_or_else(|| "/tmp/synth-look".to_owned()));
    let filter = arguments.next().unwrap_or_default();
    std::fs::create_dir_all(&folder).expect("cannot create the output folder");
    let samples = [
        (
            "overview-gp-melanoma-back",
            Finding::Melanoma,
            BodyRegion::Back,
            PhotoView::Overview,
            PhotoSource::GpPractice,
            1,
            2,
            4032,
            3024,
        ),
        (
            "closeup-gp-melanoma",
            Finding::Melanoma,
            BodyRegion::Back,
            PhotoView::CloseUp,
            PhotoSource::GpPractice,
            1,
            2,
            4032,
            3024,
        ),
        (
            "dermoscopic-melanoma",
            Finding::Melanoma,
            BodyRegion::Back,
            PhotoView::Dermoscopic,
            PhotoSource::GpPractice,
            1,
            2,
            4032,
            3024,
        ),
        (
            "patient-link-naevus-earlier",
            Finding::Melanoma,
            BodyRegion::Back,
            PhotoView::CloseUp,
            PhotoSource::PatientLink,
            1,
            2,
            3264,
            2448,
        ),
        (
            "overview-gp-bcc-forearm-rotated",
            Finding::BasalCellCarcinoma,
            BodyRegion::Forearm,
            PhotoView::Overview,
            PhotoSource::GpPractice,
            6,
            1,
            5712,
            4284,
        ),
        (
            "closeup-gp-bcc",
            Finding::BasalCellCarcinoma,
            BodyRegion::Face,
            PhotoView::CloseUp,
            PhotoSource::GpPractice,
            1,
            1,
            4032,
            3024,
        ),
        (
            "closeup-gp-scc-rotated",
            Finding::SquamousCellCarcinoma,
            BodyRegion::Hand,
            PhotoView::CloseUp,
            PhotoSource::GpPractice,
            6,
            2,
            4032,
            3024,
        ),
        (
            "closeup-gp-sk",
            Finding::SeborrhoeicKeratosis,
            BodyRegion::Back,
            PhotoView::CloseUp,
            PhotoSource::GpPractice,
            1,
            3,
            4032,
            3024,
        ),
        (
            "dermoscopic-sk",
            Finding::SeborrhoeicKeratosis,
            BodyRegion::Back,
            PhotoView::Dermoscopic,
            PhotoSource::GpPractice,
            1,
            3,
            4032,
            3024,
        ),
        (
            "closeup-gp-ak-scalp",
            Finding::ActinicKeratosis,
            BodyRegion::Scalp,
            PhotoView::CloseUp,
            PhotoSource::GpPractice,
            1,
            1,
            4032,
            3024,
        ),
        (
            "overview-patient-psoriasis-leg",
            Finding::Psoriasis,
            BodyRegion::Leg,
            PhotoView::Overview,
            PhotoSource::PatientLink,
            6,
            4,
            4000,
            3000,
        ),
        (
            "overview-gp-eczema-forearm",
            Finding::Eczema,
            BodyRegion::Forearm,
            PhotoView::Overview,
            PhotoSource::GpPractice,
            1,
            5,
            4032,
            3024,
        ),
        (
            "overview-patient-acne-face",
            Finding::Acne,
            BodyRegion::Face,
            PhotoView::Overview,
            PhotoSource::PatientLink,
            6,
            6,
            3264,
            2448,
        ),
        (
            "overview-patient-rosacea-face",
            Finding::Rosacea,
            BodyRegion::Face,
            PhotoView::Overview,
            PhotoSource::PatientLink,
            1,
            2,
            4000,
            3000,
        ),
        (
            "overview-gp-tinea-chest",
            Finding::Tinea,
            BodyRegion::Chest,
            PhotoView::Overview,
            PhotoSource::GpPractice,
            1,
            4,
            4032,
            3024,
        ),
    ];
    for (index, (name, finding, region, view, source, orientation, skin_type, width, height)) in
        samples.into_iter().enumerate()
    {
        if !name.contains(filter.as_str()) {
            continue;
        }
        let spec = PhotoSpec {
            seed: 1000 + index as u64,
            subject_seed: 77 + index as u64,
            width,
            height,
            view,
            source,
            exif_orientation: orientation,
            skin_type,
            finding,
            region,
            body_hair: if region == BodyRegion::Forearm || region == BodyRegion::Leg { 2 } else { 1 },
            stage: u8::from(!name.contains("earlier")),
            quality: if source == PhotoSource::PatientLink { 70 } else { 90 },
            defect: Default::default(),
        };
        let started = Instant::now();
        let jpeg = render_photo(&spec);
        let elapsed = started.elapsed();
        std::fs::write(folder.join(format!("{name}.jpg")), &jpeg).expect("cannot write the JPEG");
        let mut image = image::load_from_memory(&jpeg).expect("the JPEG decodes");
        if orientation == 6 {
            image = image.rotate90();
        }
        image
            .resize(1000, 1000, image::imageops::FilterType::Triangle)
            .save(folder.join(format!("{name}.png")))
            .expect("cannot write the preview");
        println!(
            "{name}: {width}x{height} ({:.1} MP) in {:.2} s, {:.1} MB",
            (width * height) as f64 / 1e6,
            elapsed.as_secs_f64(),
            jpeg.len() as f64 / 1e6
        );
    }
}
