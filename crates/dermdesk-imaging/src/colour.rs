//! Colour management: every pixel Derm Desk shows or measures is sRGB, converted from the
//! photo's embedded ICC profile with moxcms (a pure-Rust colour-management engine; why this one:
//! ARCHITECTURE.md), and never shows what a sender made transparent.
//!
//! - A photo's profile comes from its JPEG `APP2 ICC_PROFILE` chunks or its PNG `iCCP` chunk
//!   ([`jpeg_markers`], `decode.rs`). No profile means sRGB (what browsers and phones assume).
//! - RGB (matrix/TRC or LUT), grey and CMYK (LUT) profiles are converted to sRGB, perceptual
//!   intent (the intent photographs are made for; for matrix profiles it is the same as
//!   relative colorimetric). 16-bit PNGs are converted at 16 bits, then rounded to 8.
//! - CMYK JPEGs: `jpeg-decoder` hands back 255 minus the stored value. Adobe's software (and
//!   scanners after it) stores CMYK inverted and says so with an `APP14 Adobe` segment; without
//!   that segment the values are ink amounts as stored. [`Samples::Cmyk8`] always holds ink
//!   amounts (0 = no ink).
//! - A profile that cannot be read, or that is for other channels than the photo has, is not
//!   guessed at: the pixels are shown as sRGB (CMYK by the plain ink formula) and
//!   [`ColourSource`] says so, for the photo's information.
//! - Transparency: every pixel is composited over [`BACKGROUND`] (a neutral mid grey) after
//!   conversion, so a fully transparent area shows as plain grey, never the colours stored
//!   under it; the share of pixels that were not opaque is counted for the photo's information.

use moxcms::{ColorProfile, DataColorSpace, Layout, RenderingIntent, TransformOptions};
use serde::{Deserialize, Serialize};

use crate::Raster;

/// What transparent areas are shown as (sRGB): a neutral mid grey, neither skin-coloured nor
/// mistaken for a photo's black or white surround.
pub const BACKGROUND: [u8; 3] = [128, 128, 128];

/// Decoded samples, before colour management.
pub(crate) enum Samples {
    Gray8(Vec<u8>),
    GrayAlpha8(Vec<u8>),
    Rgb8(Vec<u8>),
    Rgba8(Vec<u8>),
    /// Ink amounts, 0 = none, 255 = full (see the module doc for Adobe's inversion).
    Cmyk8(Vec<u8>),
    Gray16(Vec<u16>),
    GrayAlpha16(Vec<u16>),
    Rgb16(Vec<u16>),
    Rgba16(Vec<u16>),
}

/// Where a photo's colours came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColourSource {
    /// No embedded profile: taken as sRGB.
    #[default]
    Untagged,
    /// Converted from the photo's embedded ICC profile to sRGB.
    Profile,
    /// A CMYK photo without a profile: converted by the plain ink formula (approximate).
    UntaggedCmyk,
    /// The embedded profile could not be read or does not fit the photo's channels: shown as
    /// if sRGB (or by the plain ink formula), so its colours may be off.
    UnusableProfile,
}

/// Pixels ready to show and measure, and what was done to get them.
pub struct Managed {
    pub raster: Raster,
    pub colour: ColourSource,
    /// Share of pixels that were not fully opaque (0 for a photo without alpha).
    pub transparent_fraction: f64,
}

/// What a JPEG's segments before the image data say about its colour.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JpegMarkers {
    /// The ICC profile, reassembled from its `APP2` chunks; `None` if absent or incomplete.
    pub icc_profile: Option<Vec<u8>>,
    /// An `APP14 Adobe` segment was present (CMYK is then stored inverted).
    pub adobe: bool,
    /// The frame's number of components (1 grey, 3 colour, 4 CMYK/YCCK); 0 if no frame header.
    pub components: u8,
}

/// Walks a JPEG's segments from the start to the image data (`SOS`), bounds-checked: a
/// damaged file gives what was found before the damage.
pub fn jpeg_markers(bytes: &[u8]) -> JpegMarkers {
    let mut found = JpegMarkers::default();
    let mut chunks: Vec<(u8, u8, &[u8])> = Vec::new();
    let mut at = 2; // after SOI
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xff {
            break;
        }
        let marker = bytes[at + 1];
        if marker == 0xff {
            at += 1; // fill byte
            continue;
        }
        if marker == 0xd8 || (0xd0..=0xd7).contains(&marker) || marker == 0x01 {
            at += 2; // no length
            continue;
        }
        if marker == 0xda || marker == 0xd9 {
            break; // SOS or EOI: the headers are over
        }
        let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        if length < 2 || at + 2 + length > bytes.len() {
            break;
        }
        let body = &bytes[at + 4..at + 2 + length];
        match marker {
            0xe2 if body.len() > 14 && body.starts_with(b"ICC_PROFILE\0") => {
                chunks.push((body[12], body[13], &body[14..]));
            }
            0xee if body.starts_with(b"Adobe") => found.adobe = true,
            // SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC).
            0xc0..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) && body.len() >= 6 => {
                found.components = body[5];
            }
            _ => {}
        }
        at += 2 + length;
    }
    found.icc_profile = reassemble(chunks);
    found
}

/// Chunks are numbered 1..=count; all must be there, once each, with the same count.
fn reassemble(mut chunks: Vec<(u8, u8, &[u8])>) -> Option<Vec<u8>> {
    let count = chunks.first()?.1;
    if count == 0 || chunks.len() != usize::from(count) || chunks.iter().any(|chunk| chunk.1 != count) {
        return None;
    }
    chunks.sort_by_key(|chunk| chunk.0);
    if chunks.iter().enumerate().any(|(index, chunk)| usize::from(chunk.0) != index + 1) {
        return None;
    }
    Some(chunks.into_iter().flat_map(|chunk| chunk.2.iter().copied()).collect())
}

/// Converts decoded samples to sRGB (from `profile` if it is usable), composites any alpha over
/// [`BACKGROUND`], and gives 8-bit RGB.
pub(crate) fn to_srgb(width: u32, height: u32, samples: Samples, profile: Option<&[u8]>) -> Managed {
    let wanted = match &samples {
        Samples::Gray8(_) | Samples::GrayAlpha8(_) | Samples::Gray16(_) | Samples::GrayAlpha16(_) => {
            DataColorSpace::Gray
        }
        Samples::Cmyk8(_) => DataColorSpace::Cmyk,
        _ => DataColorSpace::Rgb,
    };
    let parsed =
        profile.map(|bytes| ColorProfile::new_from_slice(bytes).ok().filter(|p| p.color_space == wanted));
    let source = match (&parsed, wanted) {
        (None, DataColorSpace::Cmyk) => ColourSource::UntaggedCmyk,
        (None, _) => ColourSource::Untagged,
        (Some(Some(_)), _) => ColourSource::Profile,
        (Some(None), _) => ColourSource::UnusableProfile,
    };
    let profile = parsed.flatten();
    let converted = profile.as_ref().and_then(|profile| convert(profile, &samples));
    // A transform moxcms refuses to build (a profile it parses but cannot use) is shown as
    // untagged and said so, rather than not shown.
    let (colour, rgba) = match converted {
        Some(rgba) => (source, rgba),
        None => {
            let colour = if source == ColourSource::Profile { ColourSource::UnusableProfile } else { source };
            (colour, untagged(samples))
        }
    };
    let (raster, transparent_fraction) = composite(width, height, rgba);
    Managed { raster, colour, transparent_fraction }
}

/// 8-bit pixels with or without alpha, after conversion.
enum Converted {
    Rgb(Vec<u8>),
    Rgba(Vec<u8>),
}

fn options() -> TransformOptions {
    TransformOptions { rendering_intent: RenderingIntent::Perceptual, ..TransformOptions::default() }
}

/// Pixels converted in slices of this many, so a full-size photo never needs a second
/// full-size buffer of the same depth (RGB to RGB is converted in place, slice by slice).
const SLICE_PIXELS: usize = 64 * 1024;

fn convert(profile: &ColorProfile, samples: &Samples) -> Option<Converted> {
    let srgb = ColorProfile::new_srgb();
    let eight = |layout: Layout, data: &[u8], channels: usize, alpha: bool| -> Option<Converted> {
        let out_layout = if alpha { Layout::Rgba } else { Layout::Rgb };
        let out_channels = if alpha { 4 } else { 3 };
        let transform = profile.create_transform_8bit(layout, &srgb, out_layout, options()).ok()?;
        let mut out = vec![0u8; data.len() / channels * out_channels];
        for (src, dst) in
            data.chunks(SLICE_PIXELS * channels).zip(out.chunks_mut(SLICE_PIXELS * out_channels))
        {
            transform.transform(src, dst).ok()?;
        }
        Some(if alpha { Converted::Rgba(out) } else { Converted::Rgb(out) })
    };
    let sixteen = |layout: Layout, data: &[u16], channels: usize, alpha: bool| -> Option<Converted> {
        let out_layout = if alpha { Layout::Rgba } else { Layout::Rgb };
        let out_channels = if alpha { 4 } else { 3 };
        let transform = profile.create_transform_16bit(layout, &srgb, out_layout, options()).ok()?;
        let mut out = vec![0u8; data.len() / channels * out_channels];
        let mut scratch = vec![0u16; SLICE_PIXELS * out_channels];
        for (src, dst) in
            data.chunks(SLICE_PIXELS * channels).zip(out.chunks_mut(SLICE_PIXELS * out_channels))
        {
            let scratch = &mut scratch[..dst.len()];
            transform.transform(src, scratch).ok()?;
            dst.iter_mut().zip(scratch.iter()).for_each(|(d, &s)| *d = to_eight(s));
        }
        Some(if alpha { Converted::Rgba(out) } else { Converted::Rgb(out) })
    };
    match samples {
        Samples::Gray8(data) => eight(Layout::Gray, data, 1, false),
        Samples::GrayAlpha8(data) => eight(Layout::GrayAlpha, data, 2, true),
        Samples::Rgb8(data) => eight(Layout::Rgb, data, 3, false),
        Samples::Rgba8(data) => eight(Layout::Rgba, data, 4, true),
        // moxcms takes four-channel CMYK as its 4-channel layout.
        Samples::Cmyk8(data) => eight(Layout::Rgba, data, 4, false),
        Samples::Gray16(data) => sixteen(Layout::Gray, data, 1, false),
        Samples::GrayAlpha16(data) => sixteen(Layout::GrayAlpha, data, 2, true),
        Samples::Rgb16(data) => sixteen(Layout::Rgb, data, 3, false),
        Samples::Rgba16(data) => sixteen(Layout::Rgba, data, 4, true),
    }
}

fn to_eight(value: u16) -> u8 {
    ((u32::from(value) * 255 + 32_767) / 65_535) as u8
}

/// No usable profile: the samples are sRGB already (grey expanded), CMYK by the plain formula.
fn untagged(samples: Samples) -> Converted {
    let grey = |level: u8| [level, level, level];
    match samples {
        Samples::Rgb8(data) => Converted::Rgb(data),
        Samples::Rgba8(data) => Converted::Rgba(data),
        Samples::Gray8(data) => Converted::Rgb(data.into_iter().flat_map(grey).collect()),
        Samples::GrayAlpha8(data) => {
            Converted::Rgba(data.chunks_exact(2).flat_map(|p| [p[0], p[0], p[0], p[1]]).collect())
        }
        Samples::Cmyk8(data) => Converted::Rgb(
            data.chunks_exact(4)
                .flat_map(|p| {
                    let white = 255 - u16::from(p[3]);
                    [0, 1, 2].map(|c| ((255 - u16::from(p[c])) * white / 255) as u8)
                })
                .collect(),
        ),
        Samples::Rgb16(data) => Converted::Rgb(data.into_iter().map(to_eight).collect()),
        Samples::Rgba16(data) => Converted::Rgba(data.into_iter().map(to_eight).collect()),
        Samples::Gray16(data) => Converted::Rgb(data.into_iter().flat_map(|v| grey(to_eight(v))).collect()),
        Samples::GrayAlpha16(data) => Converted::Rgba(
            data.chunks_exact(2)
                .flat_map(|p| {
                    let level = to_eight(p[0]);
                    [level, level, level, to_eight(p[1])]
                })
                .collect(),
        ),
    }
}

/// RGB as is; RGBA over [`BACKGROUND`] (in sRGB values, as a browser composites), with the
/// share of pixels that were not fully opaque.
fn composite(width: u32, height: u32, pixels: Converted) -> (Raster, f64) {
    match pixels {
        Converted::Rgb(rgb) => (Raster::new(width, height, rgb), 0.0),
        Converted::Rgba(rgba) => {
            let mut see_through = 0u64;
            let rgb: Vec<u8> = rgba
                .chunks_exact(4)
                .flat_map(|p| {
                    let alpha = u32::from(p[3]);
                    if alpha < 255 {
                        see_through += 1;
                    }
                    [0, 1, 2].map(|c| {
                        ((u32::from(p[c]) * alpha + u32::from(BACKGROUND[c]) * (255 - alpha) + 127) / 255)
                            as u8
                    })
                })
                .collect();
            let total = (u64::from(width) * u64::from(height)).max(1);
            (Raster::new(width, height, rgb), see_through as f64 / total as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![0xff, marker];
        out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn icc_chunk(sequence: u8, count: u8, data: &[u8]) -> Vec<u8> {
        let mut body = b"ICC_PROFILE\0".to_vec();
        body.extend_from_slice(&[sequence, count]);
        body.extend_from_slice(data);
        segment(0xe2, &body)
    }

    fn jpeg(segments: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![0xff, 0xd8];
        segments.iter().for_each(|s| out.extend_from_slice(s));
        out.extend_from_slice(&[0xff, 0xda, 0, 2, 0xff, 0xd9]);
        out
    }

    #[test]
    fn icc_chunks_are_reassembled_in_their_numbered_order() {
        let frame = segment(0xc0, &[8, 0, 10, 0, 10, 4, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0, 4, 0x11, 0]);
        let bytes = jpeg(&[
            icc_chunk(2, 2, b"world"),
            segment(0xee, b"Adobe\0d\0\0\0\0\0"),
            icc_chunk(1, 2, b"hello "),
            frame,
        ]);
        let markers = jpeg_markers(&bytes);
        assert_eq!(markers.icc_profile.as_deref(), Some(&b"hello world"[..]));
        assert!(markers.adobe);
        assert_eq!(markers.components, 4);
    }

    #[test]
    fn an_incomplete_or_inconsistent_profile_is_no_profile() {
        assert_eq!(jpeg_markers(&jpeg(&[icc_chunk(1, 2, b"half")])).icc_profile, None);
        assert_eq!(jpeg_markers(&jpeg(&[icc_chunk(1, 2, b"a"), icc_chunk(1, 2, b"b")])).icc_profile, None);
        assert_eq!(jpeg_markers(&jpeg(&[icc_chunk(1, 1, b"a"), icc_chunk(2, 2, b"b")])).icc_profile, None);
        // A segment whose length runs past the end stops the walk, without a panic.
        let mut cut = jpeg(&[icc_chunk(1, 1, b"whole")]);
        cut.truncate(10);
        assert_eq!(jpeg_markers(&cut), JpegMarkers::default());
        assert!(!jpeg_markers(&jpeg(&[])).adobe);
    }

    #[test]
    fn transparent_pixels_show_the_background_never_what_is_under_them() {
        // A vivid red "hidden" under alpha 0, a half-transparent white, an opaque blue.
        let rgba = vec![255, 0, 0, 0, 255, 255, 255, 128, 0, 0, 255, 255];
        let managed = to_srgb(3, 1, Samples::Rgba8(rgba), None);
        assert_eq!(managed.raster.pixel(0, 0), BACKGROUND);
        assert_eq!(managed.raster.pixel(1, 0), [192, 192, 192]);
        assert_eq!(managed.raster.pixel(2, 0), [0, 0, 255]);
        assert!((managed.transparent_fraction - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(managed.colour, ColourSource::Untagged);
    }

    #[test]
    fn an_unreadable_or_mismatched_profile_is_said_so_and_the_pixels_still_shown() {
        let unreadable = to_srgb(1, 1, Samples::Rgb8(vec![10, 20, 30]), Some(b"not a profile"));
        assert_eq!(unreadable.colour, ColourSource::UnusableProfile);
        assert_eq!(unreadable.raster.pixel(0, 0), [10, 20, 30]);
        let grey_profile = ColorProfile::new_gray_with_gamma(2.2).encode().unwrap();
        let mismatched = to_srgb(1, 1, Samples::Rgb8(vec![10, 20, 30]), Some(&grey_profile));
        assert_eq!(mismatched.colour, ColourSource::UnusableProfile);
        let cmyk = to_srgb(1, 1, Samples::Cmyk8(vec![0, 255, 255, 0]), None);
        assert_eq!((cmyk.colour, cmyk.raster.pixel(0, 0)), (ColourSource::UntaggedCmyk, [255, 0, 0]));
    }

    #[test]
    fn an_adobe_rgb_red_becomes_the_srgb_red_it_is() {
        // Adobe RGB (200, 50, 51) is about sRGB (232, 46, 47): the mid-red patch.
        let adobe = ColorProfile::new_adobe_rgb().encode().unwrap();
        let managed = to_srgb(1, 1, Samples::Rgb8(vec![200, 50, 51]), Some(&adobe));
        assert_eq!(managed.colour, ColourSource::Profile);
        let [r, g, b] = managed.raster.pixel(0, 0);
        assert!(r > 225 && g < 60 && b < 60, "{r},{g},{b}");
    }
}
