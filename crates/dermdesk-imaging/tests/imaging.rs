//! The imaging crate's specification: the tile grid matches `vips dzsave`, levels are 2x2
//! means, every EXIF orientation is read and turned upright, hostile photos are refused
//! quickly without large allocations.

use std::time::{Duration, Instant};

use dermdesk_imaging::*;
use dermdesk_protocol::{PhotoSource, PhotoView};
use dermdesk_synth::hostile::png_claiming;
use dermdesk_synth::{BodyRegion, Finding, PhotoSpec};

fn spec(width: u32, height: u32, orientation: u8) -> PhotoSpec {
    PhotoSpec {
        seed: 9,
        subject_seed: 10,
        width,
        height,
        view: PhotoView::CloseUp,
        source: PhotoSource::GpPractice,
        exif_orientation: orientation,
        skin_type: 4,
        finding: Finding::SeborrhoeicKeratosis,
        region: BodyRegion::Back,
        body_hair: 0,
        stage: 1,
        quality: 90,
        defect: Default::default(),
    }
}

#[test]
fn every_exif_orientation_is_read_from_synthetic_photos() {
    for orientation in 1..=8 {
        let jpeg = dermdesk_synth::render_photo(&spec(320, 240, orientation));
        let info = probe(&jpeg).unwrap();
        assert_eq!((info.width, info.height, info.orientation), (320, 240, orientation));
    }
}

/// Minimal little-endian EXIF (TIFF) with only the orientation tag.
fn exif_with_orientation(orientation: u8) -> Vec<u8> {
    let mut tiff = b"II\x2a\x00\x08\x00\x00\x00\x01\x00".to_vec();
    tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, orientation, 0, 0, 0]);
    tiff.extend_from_slice(&[0, 0, 0, 0]);
    tiff
}

/// Stored pixels for an upright picture, from the EXIF definition of each tag (where the
/// stored first row and column are in the upright picture), independent of the crate's code.
fn stored_from_upright(upright: &Raster, orientation: u8) -> Raster {
    let (w, h) = (upright.width, upright.height);
    let (sw, sh) = if orientation >= 5 { (h, w) } else { (w, h) };
    let mut pixels = Vec::new();
    for y in 0..sh {
        for x in 0..sw {
            let (ux, uy) = match orientation {
                1 => (x, y),
                2 => (w - 1 - x, y),
                3 => (w - 1 - x, h - 1 - y),
                4 => (x, h - 1 - y),
                5 => (y, x),
                6 => (w - 1 - y, x),
                7 => (w - 1 - y, h - 1 - x),
                _ => (y, h - 1 - x),
            };
            pixels.extend_from_slice(&upright.pixel(ux, uy));
        }
    }
    Raster::new(sw, sh, pixels)
}

fn close(a: [u8; 3], b: [u8; 3]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) < 40)
}

#[test]
fn display_transform_turns_a_marked_photo_upright_for_every_orientation() {
    // A synthetic photo, upright, with an asymmetric mark: red block top left, blue block
    // top right, green block bottom left (an arrow would do; three colours say more).
    let photo = decode(&dermdesk_synth::render_photo(&spec(320, 240, 1))).unwrap();
    let mut upright = photo.clone();
    let mut paint = |x0: u32, y0: u32, colour: [u8; 3]| {
        for y in y0..y0 + 48 {
            for x in x0..x0 + 48 {
                let at = ((y * upright.width + x) * 3) as usize;
                upright.pixels[at..at + 3].copy_from_slice(&colour);
            }
        }
    };
    paint(0, 0, [255, 0, 0]);
    paint(320 - 48, 0, [0, 0, 255]);
    paint(0, 240 - 48, [0, 255, 0]);
    for orientation in 1..=8 {
        let stored = stored_from_upright(&upright, orientation);
        let mut jpeg = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 95);
        encoder.add_exif_metadata(&exif_with_orientation(orientation)).unwrap();
        encoder
            .encode(&stored.pixels, stored.width as u16, stored.height as u16, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let info = probe(&jpeg).unwrap();
        assert_eq!(info.orientation, orientation);
        assert_eq!((info.width, info.height), (stored.width, stored.height), "stored size is reported");
        let shown = apply_display_transform(&decode(&jpeg).unwrap(), info.orientation);
        assert_eq!((shown.width, shown.height), (320, 240), "orientation {orientation}");
        for (x, y, colour) in [(20, 20, [255, 0, 0]), (300, 20, [0, 0, 255]), (20, 220, [0, 255, 0])] {
            assert!(
                close(shown.pixel(x, y), colour),
                "orientation {orientation} at {x},{y}: {:?}",
                shown.pixel(x, y)
            );
        }
        // The unmarked corner is skin, not a mark.
        assert!(!close(shown.pixel(300, 220), [0, 0, 255]) && !close(shown.pixel(300, 220), [255, 0, 0]));
    }
}

#[test]
fn tiles_are_the_levels_2x2_means_encoded() {
    let full = decode(&dermdesk_synth::render_photo(&spec(700, 450, 1))).unwrap();
    let levels = build_levels(full.clone());
    let pyramid = Pyramid::build(full);
    let grid = pyramid.geometry();
    assert_eq!(levels.len() as u32, grid.levels());
    for level in 0..grid.levels() {
        assert_eq!((levels[level as usize].width, levels[level as usize].height), grid.level_size(level));
        if level > 0 {
            assert_eq!(levels[level as usize - 1], halve(&levels[level as usize]));
        }
        let (columns, rows) = grid.tiles(level);
        for row in 0..rows {
            for column in 0..columns {
                let rect = grid.tile_rect(level, column, row).unwrap();
                let tile =
                    image::load_from_memory(pyramid.tile(level, column, row).unwrap()).unwrap().into_rgb8();
                assert_eq!(tile.dimensions(), (rect.width, rect.height));
                let mut expected = Vec::new();
                levels[level as usize].copy_rect(rect.x, rect.y, rect.width, rect.height, &mut expected);
                let error: u64 =
                    tile.as_raw().iter().zip(&expected).map(|(a, b)| u64::from(a.abs_diff(*b))).sum::<u64>()
                        / expected.len() as u64;
                assert!(error <= 4, "level {level} tile {column}_{row}: mean error {error}");
            }
        }
    }
    assert!(pyramid.tile(grid.levels(), 0, 0).is_none());
}

/// Compares the grid with what `vips dzsave` writes for the same sizes (skipped without vips).
#[test]
fn the_grid_matches_vips_dzsave() {
    if std::process::Command::new("vips").arg("--version").output().is_err() {
        eprintln!("vips not installed (libvips-tools): skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (width, height) in [(700, 450), (513, 257), (254, 255)] {
        let path = dir.path().join(format!("{width}x{height}.jpg"));
        std::fs::write(&path, dermdesk_synth::render_photo(&spec(width, height, 1))).unwrap();
        let out = dir.path().join(format!("{width}x{height}"));
        let status = std::process::Command::new("vips").arg("dzsave").arg(&path).arg(&out).status().unwrap();
        assert!(status.success());
        let files = dir.path().join(format!("{width}x{height}_files"));
        let grid = DziGeometry::new(width, height);
        // Level folders only (vips also writes vips-properties.xml there).
        let vips_levels = std::fs::read_dir(&files)
            .unwrap()
            .filter(|entry| entry.as_ref().unwrap().path().is_dir())
            .count() as u32;
        assert_eq!(vips_levels, grid.levels(), "{width}x{height}");
        for level in 0..grid.levels() {
            let (columns, rows) = grid.tiles(level);
            let count = std::fs::read_dir(files.join(level.to_string())).unwrap().count() as u32;
            assert_eq!(count, columns * rows, "{width}x{height} level {level}");
            for row in 0..rows {
                for column in 0..columns {
                    let tile = files.join(format!("{level}/{column}_{row}.jpeg"));
                    let size = image::image_dimensions(&tile).unwrap();
                    let rect = grid.tile_rect(level, column, row).unwrap();
                    assert_eq!(
                        size,
                        (rect.width, rect.height),
                        "{width}x{height} level {level} {column}_{row}"
                    );
                }
            }
        }
    }
}

fn assert_refused_quickly(bytes: &[u8], what: &str, check: impl Fn(&ImagingError) -> bool) {
    let started = Instant::now();
    for (step, result) in [
        ("probe", probe(bytes).map(|_| ())),
        ("decode", decode(bytes).map(|_| ())),
        ("preview", preview(bytes).map(|_| ())),
        ("thumbnail", thumbnail(bytes).map(|_| ())),
        ("pyramid", Pyramid::from_photo(bytes).map(|_| ())),
    ] {
        let error = result.expect_err(what);
        assert!(check(&error), "{what} {step}: {error}");
        assert!(!error.to_string().is_empty());
    }
    assert!(started.elapsed() < Duration::from_secs(2), "{what}: {:?}", started.elapsed());
}

#[test]
fn hostile_photos_are_refused_quickly_with_a_clear_error() {
    let mut giant = dermdesk_synth::render_photo(&spec(64, 48, 1));
    let sof = giant.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
    giant[sof + 5..sof + 9].copy_from_slice(&[0xff; 4]);
    assert_refused_quickly(&giant, "65535x65535 JPEG", |e| {
        matches!(e, ImagingError::TooLarge { width: 65535, height: 65535 })
            && e.to_string().contains("65535x65535")
    });

    let mut truncated = dermdesk_synth::render_photo(&spec(800, 600, 1));
    truncated.truncate(truncated.len() / 2);
    assert!(probe(&truncated).is_ok(), "the header is intact");
    let started = Instant::now();
    for result in [
        decode(&truncated).map(|_| ()),
        preview(&truncated).map(|_| ()),
        Pyramid::from_photo(&truncated).map(|_| ()),
    ] {
        assert!(matches!(result, Err(ImagingError::Damaged(_))), "{result:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(2));

    assert_refused_quickly(&png_claiming(100_000, 100_000), "PNG bomb beyond the side limit", |e| {
        matches!(e, ImagingError::TooLarge { .. })
    });
    assert_refused_quickly(&png_claiming(16_000, 16_000), "PNG bomb within the side limit", |e| {
        matches!(e, ImagingError::TooLarge { .. })
    });
    assert_refused_quickly(b"GIF89a not a photo", "not a photo", |e| {
        matches!(e, ImagingError::UnsupportedFormat)
    });
}

/// The filmstrip shows thumbnails as plain images: each orientation chart's thumbnail is the
/// upright chart (landscape, red top left, green top right, blue bottom left).
#[test]
fn thumbnails_are_turned_upright_for_every_orientation() {
    use dermdesk_synth::orientation::{
        orientation_chart, CHART_BOTTOM_LEFT, CHART_TOP_LEFT, CHART_TOP_RIGHT,
    };
    let close = |a: [u8; 3], b: [u8; 3]| a.iter().zip(b).all(|(&a, b)| a.abs_diff(b) <= 30);
    for orientation in 1..=8 {
        let chart = orientation_chart(orientation, (960, 640));
        // The thumbnail made on demand and the one sync keeps (`derive`) alike.
        for (which, jpeg) in
            [("thumbnail", thumbnail(&chart).unwrap()), ("derive", derive(&chart).unwrap().thumbnail)]
        {
            let thumb = decode(&jpeg).unwrap();
            assert_eq!((thumb.width, thumb.height), (320, 213), "{which}, orientation {orientation}");
            let at = |x: u32, y: u32| thumb.pixel(x, y);
            assert!(close(at(10, 10), CHART_TOP_LEFT), "{which} {orientation}: {:?}", at(10, 10));
            assert!(close(at(309, 10), CHART_TOP_RIGHT), "{which} {orientation}: {:?}", at(309, 10));
            assert!(close(at(10, 202), CHART_BOTTOM_LEFT), "{which} {orientation}: {:?}", at(10, 202));
        }
    }
}
