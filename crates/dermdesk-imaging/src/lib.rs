//! Derm Desk's photo viewer pixels: bounded decoding, EXIF orientation, Deep Zoom (DZI) tile
//! pyramids, previews and thumbnails. Pure: photo bytes in, JPEG bytes out. No disk, no
//! database, no async, no threads of its own; callers decide where bytes come from and go.
//!
//! - [`probe`] reads a photo's header only: format, stored size, EXIF orientation; refuses
//!   sizes beyond [`MAX_SIDE`] / [`MAX_PIXELS`] before any pixel is decoded.
//! - [`display_transform`] says how a viewer turns the stored pixels upright (rotation, then
//!   mirror). Nothing here rotates a full frame: that costs more than decoding it.
//! - [`DziGeometry`] is the tile grid (the same as `vips dzsave`'s defaults).
//! - [`Pyramid::build`] decodes once and encodes every tile of every level into memory
//!   (levels are 2x2 averages of the level above).
//! - [`preview`] and [`thumbnail`] decode at 1/2, 1/4 or 1/8 scale in the DCT domain, then
//!   area-average to the size asked for.
//! - [`derive`] makes, from one reduced decode, what the app keeps per photo at sync time:
//!   preview, thumbnail and the photo-quality measures ([`quality`]).
//!
//! Everything is in stored orientation (before EXIF orientation), except thumbnails, which are
//! turned upright; and everything decoded is sRGB, converted from the photo's embedded ICC
//! profile, with transparent areas composited over a neutral grey ([`colour`]).

pub mod colour;
mod decode;
mod encode;
mod geometry;
mod orientation;
mod pyramid;
pub mod quality;
mod raster;

pub use colour::{ColourSource, Managed, BACKGROUND};
pub use decode::{
    decode, decode_managed, decode_reduced, decode_reduced_managed, probe, PhotoFormat, PhotoInfo,
    MAX_ALLOC_BYTES, MAX_PIXELS, MAX_SIDE,
};
pub use encode::{encode_jpeg, TILE_QUALITY};
pub use geometry::{DziGeometry, TileRect, DZI_OVERLAP, DZI_TILE_SIZE};
pub use orientation::{apply_display_transform, display_transform};
pub use pyramid::{build_levels, Pyramid};
pub use quality::{QualityFlags, QualityMetrics};
pub use raster::{area_resize, halve, Raster};

/// The longest side of a preview ("first pixels"): a quarter of a 24 MP phone photo's.
pub const PREVIEW_LONGEST_SIDE: u32 = 1500;
/// The longest side of a filmstrip thumbnail.
pub const THUMBNAIL_LONGEST_SIDE: u32 = 320;
/// JPEG quality of previews and thumbnails (the same as tiles: vips' default).
pub const PREVIEW_QUALITY: u8 = 75;

/// Why a photo could not be turned into pixels. The photo's bytes are never changed by this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImagingError {
    #[error(
        "the photo says it is {width}x{height} pixels, more than Derm Desk will decode \
         ({MAX_SIDE} pixels a side, {} megapixels in all)",
        MAX_PIXELS / 1_000_000
    )]
    TooLarge { width: u32, height: u32 },
    #[error("the photo's image data is damaged or incomplete ({0})")]
    Damaged(String),
    #[error("the photo is neither a JPEG nor a PNG")]
    UnsupportedFormat,
}

/// A quick preview for first pixels: longest side about [`PREVIEW_LONGEST_SIDE`] (never
/// larger than the photo), JPEG, stored orientation.
pub fn preview(bytes: &[u8]) -> Result<Vec<u8>, ImagingError> {
    scaled_jpeg(bytes, PREVIEW_LONGEST_SIDE)
}

/// A filmstrip thumbnail: longest side [`THUMBNAIL_LONGEST_SIDE`] (never larger than the
/// photo), JPEG, turned upright. The filmstrip shows it as a plain image, with nothing to
/// apply the EXIF orientation (which the JPEG no longer carries); at 320 pixels turning it
/// costs next to nothing, unlike turning a full frame.
pub fn thumbnail(bytes: &[u8]) -> Result<Vec<u8>, ImagingError> {
    let info = probe(bytes)?;
    let (width, height) = fit_within(info.width, info.height, THUMBNAIL_LONGEST_SIDE);
    let reduced = decode_reduced(bytes, width, height)?;
    let sized = area_resize(&reduced, width, height);
    Ok(encode_jpeg(&apply_display_transform(&sized, info.orientation), PREVIEW_QUALITY))
}

/// Everything kept per photo once it is verified: what the viewer shows first, the filmstrip's
/// thumbnail, and how good the photo looks.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    /// What the header says (the viewer's geometry).
    pub info: PhotoInfo,
    /// JPEG, longest side [`PREVIEW_LONGEST_SIDE`] (or the photo's own), stored orientation.
    pub preview: Vec<u8>,
    /// JPEG, longest side [`THUMBNAIL_LONGEST_SIDE`] (or the photo's own), turned upright
    /// (as [`thumbnail`]: the filmstrip shows it as a plain image).
    pub thumbnail: Vec<u8>,
    pub metrics: QualityMetrics,
    pub flags: QualityFlags,
    /// Where the colours came from (the embedded profile, or none).
    pub colour: ColourSource,
}

/// One reduced decode (as [`preview`]) gives the preview; the thumbnail is area-averaged from
/// the preview's pixels and the quality measured on them (colour-managed, composited: what the
/// consultant sees). Bounded like every decode here.
pub fn derive(bytes: &[u8]) -> Result<Derived, ImagingError> {
    let info = probe(bytes)?;
    let (width, height) = fit_within(info.width, info.height, PREVIEW_LONGEST_SIDE);
    let reduced = decode_reduced_managed(bytes, width, height)?;
    let preview = area_resize(&reduced.raster, width, height);
    let (colour, transparent_fraction) = (reduced.colour, reduced.transparent_fraction);
    drop(reduced);
    let (thumb_width, thumb_height) = fit_within(width, height, THUMBNAIL_LONGEST_SIDE);
    let thumbnail = area_resize(&preview, thumb_width, thumb_height);
    let metrics = QualityMetrics {
        shorter_side: info.width.min(info.height),
        transparent_fraction,
        colour,
        ..quality::measure(&preview)
    };
    Ok(Derived {
        colour,
        info,
        preview: encode_jpeg(&preview, PREVIEW_QUALITY),
        thumbnail: encode_jpeg(&apply_display_transform(&thumbnail, info.orientation), PREVIEW_QUALITY),
        flags: quality::assess(&metrics),
        metrics,
    })
}

/// Decodes at the smallest DCT scale that is still at least `longest_side` long, then
/// area-averages down to exactly `longest_side` (keeping the aspect ratio).
pub fn scaled_jpeg(bytes: &[u8], longest_side: u32) -> Result<Vec<u8>, ImagingError> {
    let info = probe(bytes)?;
    let (width, height) = fit_within(info.width, info.height, longest_side);
    let reduced = decode_reduced(bytes, width, height)?;
    let sized = area_resize(&reduced, width, height);
    Ok(encode_jpeg(&sized, PREVIEW_QUALITY))
}

/// The size of a `width` x `height` photo whose longest side is at most `longest_side`,
/// rounded, at least 1x1.
pub fn fit_within(width: u32, height: u32, longest_side: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= longest_side {
        return (width, height);
    }
    let scale = |side: u32| {
        ((u64::from(side) * u64::from(longest_side) + u64::from(longest) / 2) / u64::from(longest)).max(1)
            as u32
    };
    (scale(width), scale(height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_keeps_the_aspect_ratio_and_never_enlarges() {
        assert_eq!(fit_within(6000, 4000, 320), (320, 213));
        assert_eq!(fit_within(4000, 6000, 1500), (1000, 1500));
        assert_eq!(fit_within(200, 100, 320), (200, 100));
        assert_eq!(fit_within(10_000, 1, 320), (320, 1));
    }
}
