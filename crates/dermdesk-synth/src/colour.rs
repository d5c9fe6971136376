//! Synthetic colour test photos: a chart of known patches with an embedded ICC profile (the
//! profile written by moxcms), and a PNG whose masked-out area hides a vivid colour under full
//! transparency. For tests of colour management end to end (cache, photo scheme, window); the
//! imaging crate's own tests compare every profile kind with Little CMS.

use image::ImageEncoder as _;

/// The chart's size: 4 x 2 patches of 192 x 256.
pub const CHART_SIZE: (u32, u32) = (768, 512);

/// Patch values in the chart's own colour space (mid red, red-brown lesion, light and dark
/// skin, green, blue, grey, near white), left to right, top row first.
pub const CHART_PATCHES: [[u8; 3]; 8] = [
    [200, 50, 51],
    [150, 80, 60],
    [220, 170, 150],
    [110, 70, 50],
    [60, 160, 70],
    [50, 70, 180],
    [128, 128, 128],
    [240, 235, 230],
];

/// The wide-gamut RGB spaces a chart can be tagged with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WideGamut {
    DisplayP3,
    AdobeRgb,
    ProPhoto,
}

/// The ICC profile of `space`, as moxcms writes it.
pub fn profile(space: WideGamut) -> Vec<u8> {
    let profile = match space {
        WideGamut::DisplayP3 => moxcms::ColorProfile::new_display_p3(),
        WideGamut::AdobeRgb => moxcms::ColorProfile::new_adobe_rgb(),
        WideGamut::ProPhoto => moxcms::ColorProfile::new_pro_photo_rgb(),
    };
    profile.encode().expect("a built-in profile encodes")
}

/// The patch under pixel (x, y) of the chart.
pub fn chart_patch(x: u32, y: u32) -> usize {
    ((y * 2 / CHART_SIZE.1) * 4 + x * 4 / CHART_SIZE.0) as usize
}

fn chart_pixels() -> Vec<u8> {
    let (width, height) = CHART_SIZE;
    (0..height).flat_map(|y| (0..width).flat_map(move |x| CHART_PATCHES[chart_patch(x, y)])).collect()
}

/// The chart as a JPEG (quality 95) tagged with `space`'s profile: its numbers are the patch
/// values, so shown without colour management it looks duller than it is.
pub fn chart_jpeg(space: WideGamut) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, 95);
    encoder.add_icc_profile(&profile(space)).expect("a profile of a few hundred bytes");
    let (width, height) = CHART_SIZE;
    encoder
        .encode(&chart_pixels(), width as u16, height as u16, jpeg_encoder::ColorType::Rgb)
        .expect("encoding into memory");
    out
}

/// A chart PNG whose top row is fully transparent over pure green (what a sender masked out):
/// a viewer must show neutral grey there, never green.
pub fn masked_png() -> Vec<u8> {
    let (width, height) = CHART_SIZE;
    let pixels: Vec<u8> = (0..height)
        .flat_map(|y| {
            (0..width).flat_map(move |x| {
                let patch = chart_patch(x, y);
                if patch < 4 {
                    [0, 255, 0, 0]
                } else {
                    let [r, g, b] = CHART_PATCHES[patch];
                    [r, g, b, 255]
                }
            })
        })
        .collect();
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&pixels, width, height, image::ExtendedColorType::Rgba8)
        .expect("encoding into memory");
    out
}

/// `jpeg` with `profile` embedded as `APP2 ICC_PROFILE` chunks right after its start (any
/// profile it had is left in place after them: give an untagged JPEG). The pixels are the same
/// numbers, now meant in the profile's colour space.
pub fn with_icc_profile(jpeg: &[u8], profile: &[u8]) -> Vec<u8> {
    const CHUNK: usize = 65_519;
    let chunks: Vec<&[u8]> = profile.chunks(CHUNK).collect();
    let mut out = jpeg[..2].to_vec();
    for (index, chunk) in chunks.iter().enumerate() {
        out.extend_from_slice(&[0xff, 0xe2]);
        out.extend_from_slice(&((chunk.len() + 16) as u16).to_be_bytes());
        out.extend_from_slice(b"ICC_PROFILE\0");
        out.extend_from_slice(&[index as u8 + 1, chunks.len() as u8]);
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}
