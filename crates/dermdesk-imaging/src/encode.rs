//! JPEG encoding of tiles, previews and thumbnails with `jpeg-encoder` (several times faster
//! than `image`'s encoder), at vips' default settings so the comparison is like for like.

use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use crate::Raster;

/// JPEG quality of tiles: `vips dzsave`'s default (Q75).
pub const TILE_QUALITY: u8 = 75;

/// Encodes RGB pixels as a baseline JPEG, 4:2:0 (what libjpeg and vips do below Q90).
pub fn encode_jpeg(raster: &Raster, quality: u8) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(raster.pixels.len() / 16 + 1024);
    encode_rgb_into(&raster.pixels, raster.width, raster.height, quality, &mut bytes);
    bytes
}

/// Encodes `width` x `height` packed RGB pixels into `out` (appending).
pub(crate) fn encode_rgb_into(pixels: &[u8], width: u32, height: u32, quality: u8, out: &mut Vec<u8>) {
    let mut encoder = Encoder::new(out, quality);
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    // Sizes come from a checked decode (at most MAX_SIDE a side) and the buffer is in memory,
    // so the encoder has nothing left to fail on.
    encoder
        .encode(pixels, width as u16, height as u16, ColorType::Rgb)
        .expect("encoding checked dimensions into memory cannot fail");
}
