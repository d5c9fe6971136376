//! True colour, proven against a reference: synthetic test charts (known patches) with embedded
//! ICC profiles of every kind a practice sends — sRGB, Display P3, Adobe RGB, ProPhoto, CMYK
//! with and without Adobe's inversion, grey, 16-bit PNG, PNG with transparency — go through the
//! preview, the thumbnail and the Deep Zoom tiles, and each patch must be within ΔE2000 2 of
//! the same chart converted to sRGB by ImageMagick with Little CMS (`/usr/bin/convert`).
//!
//! Needs `/usr/bin/convert` (imagemagick) and Ghostscript's ICC profiles
//! (`/usr/share/color/icc/ghostscript`, Debian's libgs-common); `cargo xtask test` installs
//! both. A missing tool fails the test with what to install: these tests never skip.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use dermdesk_imaging::*;
use image::ImageEncoder as _;

const WIDTH: u32 = 768;
const HEIGHT: u32 = 512;
/// Patches in a 4 x 2 grid, each 192 x 256.
const COLUMNS: u32 = 4;
const ROWS: u32 = 2;

/// Source values (in the chart's own colour space): the synthetic charts' patches.
const RGB_PATCHES: [[u8; 3]; 8] = dermdesk_synth::colour::CHART_PATCHES;
/// Ink amounts in percent (C, M, Y, K) for the CMYK charts: the same kinds of colours.
const CMYK_PATCHES: [[u8; 4]; 8] = [
    [10, 85, 75, 0],
    [20, 55, 65, 25],
    [5, 25, 30, 0],
    [30, 55, 70, 40],
    [70, 10, 80, 5],
    [85, 65, 0, 5],
    [0, 0, 0, 50],
    [3, 3, 5, 0],
];
const GREY_PATCHES: [u8; 8] = [30, 60, 90, 120, 150, 180, 210, 240];

fn ghostscript_profile(name: &str) -> Vec<u8> {
    let path = Path::new("/usr/share/color/icc/ghostscript").join(name);
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!("{}: {error}; install Debian's libgs-common (cargo xtask test does)", path.display())
    })
}

fn patch_of(x: u32, y: u32) -> usize {
    ((y * ROWS / HEIGHT) * COLUMNS + x * COLUMNS / WIDTH) as usize
}

fn patch_centre(patch: usize) -> (u32, u32) {
    let (column, row) = (patch as u32 % COLUMNS, patch as u32 / COLUMNS);
    ((2 * column + 1) * WIDTH / (2 * COLUMNS), (2 * row + 1) * HEIGHT / (2 * ROWS))
}

/// A chart with `channels` samples a pixel, patch by patch.
fn chart<T: Copy>(patches: &[Vec<T>]) -> Vec<T> {
    (0..HEIGHT).flat_map(|y| (0..WIDTH).flat_map(move |x| patches[patch_of(x, y)].clone())).collect()
}

fn jpeg(pixels: &[u8], colour_type: jpeg_encoder::ColorType, profile: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 95);
    if let Some(profile) = profile {
        encoder.add_icc_profile(profile).unwrap();
    }
    encoder.encode(pixels, WIDTH as u16, HEIGHT as u16, colour_type).unwrap();
    out
}

/// Removes every `APP14 Adobe` segment (what a file written by other than Adobe's software
/// looks like).
fn without_adobe_segment(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    let mut at = 2;
    loop {
        let marker = jpeg[at + 1];
        if marker == 0xda {
            out.extend_from_slice(&jpeg[at..]);
            return out;
        }
        let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        if marker != 0xee {
            out.extend_from_slice(&jpeg[at..at + 2 + length]);
        }
        at += 2 + length;
    }
}

fn png(bytes: &[u8], colour_type: image::ExtendedColorType, profile: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = image::codecs::png::PngEncoder::new(&mut out);
    if let Some(profile) = profile {
        encoder.set_icc_profile(profile.to_vec()).unwrap();
    }
    encoder.write_image(bytes, WIDTH, HEIGHT, colour_type).unwrap();
    out
}

fn cmyk_ink() -> Vec<u8> {
    let patches: Vec<Vec<u8>> = CMYK_PATCHES
        .iter()
        .map(|inks| inks.iter().map(|&percent| (u32::from(percent) * 255 / 100) as u8).collect())
        .collect();
    chart(&patches)
}

/// Runs ImageMagick's `convert` with `arguments`, gives its raw 8-bit RGB output.
fn convert(arguments: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    let convert = Path::new("/usr/bin/convert");
    assert!(convert.exists(), "/usr/bin/convert is missing: install imagemagick (cargo xtask test does)");
    let mut child = Command::new(convert)
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin.write_all(input).unwrap();
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "convert {arguments:?}: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.stdout.len(), (WIDTH * HEIGHT * 3) as usize, "convert {arguments:?}");
    output.stdout
}

struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        Workspace { dir: tempfile::tempdir().unwrap() }
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn srgb(&self) -> String {
        self.file("srgb.icc", &ghostscript_profile("srgb.icc")).display().to_string()
    }

    /// The reference: the photo file converted from its embedded profile (none: left as is) to
    /// sRGB, transparency over the same grey.
    fn reference_of_file(&self, name: &str, photo: &[u8]) -> Vec<u8> {
        let path = self.file(name, photo).display().to_string();
        let srgb = self.srgb();
        convert(
            &[
                &path,
                "-intent",
                "Perceptual",
                "-profile",
                &srgb,
                "-background",
                "rgb(128,128,128)",
                "-alpha",
                "remove",
                "-alpha",
                "off",
                "-colorspace",
                "sRGB",
                "-type",
                "TrueColor",
                "-depth",
                "8",
                "rgb:-",
            ],
            None,
        )
    }

    /// The reference for CMYK: the ink amounts themselves (raw, so no reader's idea of Adobe's
    /// inversion comes into it) from the CMYK profile to sRGB.
    fn reference_of_ink(&self, ink: &[u8], profile: &[u8]) -> Vec<u8> {
        let cmyk = self.file("cmyk.icc", profile).display().to_string();
        let srgb = self.srgb();
        let size = format!("{WIDTH}x{HEIGHT}");
        convert(
            &[
                "-size",
                &size,
                "-depth",
                "8",
                "cmyk:-",
                "-profile",
                &cmyk,
                "-intent",
                "Perceptual",
                "-profile",
                &srgb,
                "-depth",
                "8",
                "rgb:-",
            ],
            Some(ink),
        )
    }
}

/// sRGB (8-bit) to CIE L*a*b* (D65).
fn lab(rgb: [f64; 3]) -> [f64; 3] {
    let linear = rgb.map(|value| {
        let v = value / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    });
    let [r, g, b] = linear;
    let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
    let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
    let f = |t: f64| if t > 216.0 / 24389.0 { t.cbrt() } else { (24389.0 / 27.0 * t + 16.0) / 116.0 };
    [116.0 * f(y) - 16.0, 500.0 * (f(x) - f(y)), 200.0 * (f(y) - f(z))]
}

/// CIEDE2000 colour difference (Sharma, Wu and Dalal, 2005).
fn delta_e_2000(first: [f64; 3], second: [f64; 3]) -> f64 {
    let ([l1, a1, b1], [l2, a2, b2]) = (first, second);
    let c_bar = ((a1 * a1 + b1 * b1).sqrt() + (a2 * a2 + b2 * b2).sqrt()) / 2.0;
    let g = 0.5 * (1.0 - (c_bar.powi(7) / (c_bar.powi(7) + 25f64.powi(7))).sqrt());
    let (a1p, a2p) = ((1.0 + g) * a1, (1.0 + g) * a2);
    let (c1p, c2p) = ((a1p * a1p + b1 * b1).sqrt(), (a2p * a2p + b2 * b2).sqrt());
    let hue = |b: f64, a: f64| {
        if a == 0.0 && b == 0.0 {
            0.0
        } else {
            let h = b.atan2(a).to_degrees();
            if h < 0.0 {
                h + 360.0
            } else {
                h
            }
        }
    };
    let (h1p, h2p) = (hue(b1, a1p), hue(b2, a2p));
    let delta_l = l2 - l1;
    let delta_c = c2p - c1p;
    let delta_h_angle = if c1p * c2p == 0.0 {
        0.0
    } else if (h2p - h1p).abs() <= 180.0 {
        h2p - h1p
    } else if h2p - h1p > 180.0 {
        h2p - h1p - 360.0
    } else {
        h2p - h1p + 360.0
    };
    let delta_h = 2.0 * (c1p * c2p).sqrt() * (delta_h_angle.to_radians() / 2.0).sin();
    let l_bar = (l1 + l2) / 2.0;
    let c_bar_p = (c1p + c2p) / 2.0;
    let h_bar = if c1p * c2p == 0.0 {
        h1p + h2p
    } else if (h1p - h2p).abs() <= 180.0 {
        (h1p + h2p) / 2.0
    } else if h1p + h2p < 360.0 {
        (h1p + h2p + 360.0) / 2.0
    } else {
        (h1p + h2p - 360.0) / 2.0
    };
    let t = 1.0 - 0.17 * (h_bar - 30.0).to_radians().cos()
        + 0.24 * (2.0 * h_bar).to_radians().cos()
        + 0.32 * (3.0 * h_bar + 6.0).to_radians().cos()
        - 0.20 * (4.0 * h_bar - 63.0).to_radians().cos();
    let delta_theta = 30.0 * (-((h_bar - 275.0) / 25.0).powi(2)).exp();
    let r_c = 2.0 * (c_bar_p.powi(7) / (c_bar_p.powi(7) + 25f64.powi(7))).sqrt();
    let s_l = 1.0 + 0.015 * (l_bar - 50.0).powi(2) / (20.0 + (l_bar - 50.0).powi(2)).sqrt();
    let s_c = 1.0 + 0.045 * c_bar_p;
    let s_h = 1.0 + 0.015 * c_bar_p * t;
    let r_t = -(2.0 * delta_theta).to_radians().sin() * r_c;
    ((delta_l / s_l).powi(2)
        + (delta_c / s_c).powi(2)
        + (delta_h / s_h).powi(2)
        + r_t * (delta_c / s_c) * (delta_h / s_h))
        .sqrt()
}

#[test]
fn delta_e_2000_matches_sharmas_published_pairs() {
    // Pairs 1, 7 and 17 of Sharma, Wu and Dalal's test data.
    let pairs = [
        ([50.0, 2.6772, -79.7751], [50.0, 0.0, -82.7485], 2.0425),
        ([50.0, 0.0, 0.0], [50.0, -1.0, 2.0], 2.3669),
        ([50.0, 2.5, 0.0], [73.0, 25.0, -18.0], 27.1492),
    ];
    for (first, second, expected) in pairs {
        assert!((delta_e_2000(first, second) - expected).abs() < 1e-3, "{first:?} {second:?}");
    }
}

/// Mean of a square of `half * 2` pixels a side around (x, y) of 8-bit RGB rows.
fn mean(pixels: &[u8], width: u32, x: u32, y: u32, half: u32) -> [f64; 3] {
    let mut sum = [0.0; 3];
    let mut count = 0.0;
    for yy in y - half..y + half {
        for xx in x - half..x + half {
            let at = ((yy * width + xx) * 3) as usize;
            (0..3).for_each(|c| sum[c] += f64::from(pixels[at + c]));
            count += 1.0;
        }
    }
    sum.map(|s| s / count)
}

fn decode_jpeg(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoded = image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg).unwrap().into_rgb8();
    (decoded.width(), decoded.height(), decoded.into_raw())
}

/// Every patch of `photo`'s preview, thumbnail and full-size tile within ΔE2000 2 of the
/// reference's; returns the largest difference seen.
fn check_against_reference(kind: &str, photo: &[u8], reference: &[u8]) -> f64 {
    let derived = derive(photo).unwrap();
    let (preview_width, preview_height, preview) = decode_jpeg(&derived.preview);
    assert_eq!((preview_width, preview_height), (WIDTH, HEIGHT), "{kind}");
    let (thumb_width, thumb_height, thumb) = decode_jpeg(&derived.thumbnail);
    assert_eq!(thumb_width, THUMBNAIL_LONGEST_SIDE, "{kind}");
    let pyramid = Pyramid::from_photo(photo).unwrap();
    let geometry = pyramid.geometry();
    let top = geometry.levels() - 1;
    let mut worst: f64 = 0.0;
    for patch in 0..8 {
        let (x, y) = patch_centre(patch);
        let expected = lab(mean(reference, WIDTH, x, y, 12));
        let (thumb_x, thumb_y) = (x * thumb_width / WIDTH, y * thumb_height / HEIGHT);
        let (column, row) = (x / DZI_TILE_SIZE, y / DZI_TILE_SIZE);
        let rect = geometry.tile_rect(top, column, row).unwrap();
        let (tile_width, _, tile) = decode_jpeg(pyramid.tile(top, column, row).unwrap());
        let seen = [
            ("preview", mean(&preview, WIDTH, x, y, 12)),
            ("thumbnail", mean(&thumb, thumb_width, thumb_x, thumb_y, 4)),
            ("tile", mean(&tile, tile_width, x - rect.x, y - rect.y, 12)),
        ];
        for (what, rgb) in seen {
            let difference = delta_e_2000(expected, lab(rgb));
            assert!(
                difference < 2.0,
                "{kind}: patch {patch} in the {what} is {rgb:.0?}, the reference {:.0?} (ΔE2000 {difference:.2})",
                mean(reference, WIDTH, x, y, 12)
            );
            worst = worst.max(difference);
        }
    }
    worst
}

fn rgb_chart() -> Vec<u8> {
    chart(&RGB_PATCHES.map(|p| p.to_vec()))
}

#[test]
fn rgb_photos_with_every_common_profile_match_little_cms() {
    let workspace = Workspace::new();
    let pixels = rgb_chart();
    let display_p3 = moxcms::ColorProfile::new_display_p3().encode().unwrap();
    let kinds: [(&str, Option<Vec<u8>>, bool); 5] = [
        ("untagged (sRGB)", None, false),
        ("sRGB", Some(ghostscript_profile("srgb.icc")), false),
        // Written by moxcms: no Debian package ships a Display P3 profile.
        ("Display P3", Some(display_p3), true),
        // Adobe RGB (1998) and ProPhoto (ROMM RGB) as Ghostscript ships them, not written by
        // the library under test.
        ("Adobe RGB", Some(ghostscript_profile("a98.icc")), true),
        ("ProPhoto", Some(ghostscript_profile("rommrgb.icc")), true),
    ];
    for (kind, profile, wide) in kinds {
        let photo = jpeg(&pixels, jpeg_encoder::ColorType::Rgb, profile.as_deref());
        let reference = workspace.reference_of_file("chart.jpg", &photo);
        let worst = check_against_reference(kind, &photo, &reference);
        let derived = derive(&photo).unwrap();
        let expected = if profile.is_some() { ColourSource::Profile } else { ColourSource::Untagged };
        assert_eq!(derived.colour, expected, "{kind}");
        if wide {
            // Shown as if sRGB (the old behaviour), the mid red would be far off: the test can
            // tell a converted photo from one that is not.
            let (x, y) = patch_centre(0);
            let raw = lab(RGB_PATCHES[0].map(f64::from));
            let converted = lab(mean(&workspace.reference_of_file("chart.jpg", &photo), WIDTH, x, y, 12));
            assert!(delta_e_2000(raw, converted) > 3.0, "{kind}: the chart's red is not wide-gamut");
        }
        eprintln!("{kind}: worst ΔE2000 {worst:.2}");
    }
}

#[test]
fn the_issue_s_adobe_rgb_red_is_shown_as_the_srgb_red_it_is() {
    // The issue's example: a patch stored as (200, 50, 51) in Adobe RGB was shown as those
    // numbers; converted it is a different, more saturated red.
    let workspace = Workspace::new();
    let photo = jpeg(&rgb_chart(), jpeg_encoder::ColorType::Rgb, Some(&ghostscript_profile("a98.icc")));
    let preview = decode_jpeg(&derive(&photo).unwrap().preview).2;
    let (x, y) = patch_centre(0);
    let shown = mean(&preview, WIDTH, x, y, 12);
    let reference = mean(&workspace.reference_of_file("chart.jpg", &photo), WIDTH, x, y, 12);
    assert!(delta_e_2000(lab(shown), lab(reference)) < 2.0, "{shown:.0?} vs {reference:.0?}");
    assert!(delta_e_2000(lab(shown), lab([200.0, 50.0, 51.0])) > 3.0, "{shown:.0?}");
}

#[test]
fn cmyk_photos_with_and_without_adobe_inversion_match_little_cms_and_are_not_too_dark() {
    let workspace = Workspace::new();
    let profile = ghostscript_profile("default_cmyk.icc");
    assert!(profile.len() > 65_519, "a profile that needs more than one APP2 chunk");
    let ink = cmyk_ink();
    let reference = workspace.reference_of_ink(&ink, &profile);
    // jpeg-encoder stores CMYK inverted with an Adobe segment, as Adobe's software does.
    let adobe = jpeg(&ink, jpeg_encoder::ColorType::Cmyk, Some(&profile));
    assert!(colour::jpeg_markers(&adobe).adobe);
    // Without the segment the values stored are the ink amounts: give the encoder their
    // inverse (it inverts once more), then take the segment out.
    let inverse: Vec<u8> = ink.iter().map(|&value| 255 - value).collect();
    let plain = without_adobe_segment(&jpeg(&inverse, jpeg_encoder::ColorType::Cmyk, Some(&profile)));
    let markers = colour::jpeg_markers(&plain);
    assert!(
        !markers.adobe && markers.components == 4 && markers.icc_profile.as_deref() == Some(&profile[..])
    );
    for (kind, photo) in [("CMYK (Adobe, inverted)", &adobe), ("CMYK (not inverted)", &plain)] {
        let worst = check_against_reference(kind, photo, &reference);
        let derived = derive(photo).unwrap();
        assert_eq!(derived.colour, ColourSource::Profile, "{kind}");
        assert!(
            !derived.flags.underexposed,
            "{kind}: a good CMYK photo flagged too dark: {:?}",
            derived.metrics
        );
        eprintln!("{kind}: worst ΔE2000 {worst:.2}");
    }
}

#[test]
fn grey_photos_match_little_cms() {
    let workspace = Workspace::new();
    let pixels = chart(&GREY_PATCHES.map(|level| vec![level]));
    for (kind, profile) in
        [("grey, untagged", None), ("grey with a profile", Some(ghostscript_profile("default_gray.icc")))]
    {
        let photo = jpeg(&pixels, jpeg_encoder::ColorType::Luma, profile.as_deref());
        let reference = workspace.reference_of_file("grey.jpg", &photo);
        let worst = check_against_reference(kind, &photo, &reference);
        eprintln!("{kind}: worst ΔE2000 {worst:.2}");
    }
}

#[test]
fn sixteen_bit_prophoto_png_matches_little_cms() {
    let workspace = Workspace::new();
    let patches: Vec<Vec<u16>> =
        RGB_PATCHES.iter().map(|p| p.iter().map(|&v| u16::from(v) * 257 + 100).collect()).collect();
    let bytes: Vec<u8> = chart(&patches).into_iter().flat_map(u16::to_ne_bytes).collect();
    let photo = png(&bytes, image::ExtendedColorType::Rgb16, Some(&ghostscript_profile("rommrgb.icc")));
    let reference = workspace.reference_of_file("chart.png", &photo);
    let worst = check_against_reference("16-bit ProPhoto PNG", &photo, &reference);
    assert_eq!(derive(&photo).unwrap().colour, ColourSource::Profile);
    eprintln!("16-bit ProPhoto PNG: worst ΔE2000 {worst:.2}");
}

#[test]
fn transparent_areas_show_grey_never_what_the_sender_hid() {
    let workspace = Workspace::new();
    // Adobe RGB: libpng (under ImageMagick) refuses the Display P3 profile moxcms writes inside a
    // PNG ("iCCP: invalid length"), though it reads it inside a JPEG.
    let adobe_rgb = ghostscript_profile("a98.icc");
    // The top row fully transparent over a vivid green "face" the sender masked out; the
    // bottom row opaque patches.
    let patches: Vec<Vec<u8>> =
        (0..8)
            .map(|patch| {
                if patch < 4 {
                    vec![0, 255, 0, 0]
                } else {
                    [RGB_PATCHES[patch].to_vec(), vec![255]].concat()
                }
            })
            .collect();
    let photo = png(&chart(&patches), image::ExtendedColorType::Rgba8, Some(&adobe_rgb));
    let reference = workspace.reference_of_file("masked.png", &photo);
    check_against_reference("Adobe RGB PNG with transparency", &photo, &reference);
    let derived = derive(&photo).unwrap();
    assert!((derived.metrics.transparent_fraction - 0.5).abs() < 1e-9, "{:?}", derived.metrics);
    // Hidden pixels are exactly the neutral background, in every output.
    let (_, _, preview) = decode_jpeg(&derived.preview);
    let (x, y) = patch_centre(1);
    let shown = mean(&preview, WIDTH, x, y, 40);
    assert!(shown.iter().all(|&c| (c - 128.0).abs() < 1.5), "{shown:?}");
    let full = decode(&photo).unwrap();
    assert_eq!(full.pixel(10, 10), BACKGROUND);
}
