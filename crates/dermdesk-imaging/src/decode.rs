//! Reading photos into pixels, with bounds a hostile file cannot get past: the header is read
//! first and a photo beyond [`MAX_SIDE`] or [`MAX_PIXELS`] is refused before any pixel buffer
//! exists; PNG decoding also runs under `image`'s allocation limit; a JPEG whose data ends
//! early or breaks the format is an error, not a grey picture.

use std::io::Cursor;

use image::ImageDecoder as _;
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use crate::colour::{jpeg_markers, to_srgb, Managed, Samples};
use crate::{ImagingError, Raster};

/// Longest side decoded. Phone sensors top out near 16,000 pixels (200 MP); JPEG allows 65,535.
pub const MAX_SIDE: u32 = 16_384;
/// Most pixels decoded: a 64 MP photo is ~190 MB as pixels, the most one decode may take.
/// Larger photos are refused (the original stays in the cache, untouched).
pub const MAX_PIXELS: u64 = 64_000_000;
/// `image`'s allocation limit for PNG decoding (pixels plus the decoder's own buffers).
pub const MAX_ALLOC_BYTES: u64 = 3 * MAX_PIXELS + 64 * 1024 * 1024;

/// The formats the service accepts for photos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoFormat {
    Jpeg,
    Png,
}

/// What the header says: stored size (before orientation) and the EXIF orientation (1 to 8;
/// 1 when absent or unreadable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhotoInfo {
    pub format: PhotoFormat,
    pub width: u32,
    pub height: u32,
    pub orientation: u8,
}

/// Reads the header only (cheap for any size) and applies the size limits.
pub fn probe(bytes: &[u8]) -> Result<PhotoInfo, ImagingError> {
    let info = match sniff(bytes)? {
        PhotoFormat::Jpeg => {
            // The header's own numbers, whatever they are: the limit below says which are too big.
            let options = DecoderOptions::default().set_max_width(usize::MAX).set_max_height(usize::MAX);
            let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
            decoder.decode_headers().map_err(|error| ImagingError::Damaged(error.to_string()))?;
            let (width, height) =
                decoder.dimensions().ok_or(ImagingError::Damaged("no frame header".into()))?;
            let orientation = decoder
                .exif()
                .and_then(|exif| image::metadata::Orientation::from_exif_chunk(exif))
                .map_or(1, image::metadata::Orientation::to_exif);
            PhotoInfo { format: PhotoFormat::Jpeg, width: width as u32, height: height as u32, orientation }
        }
        PhotoFormat::Png => {
            // Dimensions unchecked here so a too-large photo is reported as such, below.
            let mut limits = png_limits();
            (limits.max_image_width, limits.max_image_height) = (None, None);
            let mut decoder = image::codecs::png::PngDecoder::with_limits(Cursor::new(bytes), limits)
                .map_err(image_error)?;
            let (width, height) = decoder.dimensions();
            let orientation = decoder.orientation().map_or(1, image::metadata::Orientation::to_exif);
            PhotoInfo { format: PhotoFormat::Png, width, height, orientation }
        }
    };
    check_size(info.width, info.height)?;
    Ok(info)
}

/// Decodes the whole photo at full size, stored orientation, sRGB (from its embedded profile;
/// transparency composited over [`crate::BACKGROUND`]).
pub fn decode(bytes: &[u8]) -> Result<Raster, ImagingError> {
    decode_managed(bytes).map(|managed| managed.raster)
}

/// [`decode`], with what colour management and compositing found.
pub fn decode_managed(bytes: &[u8]) -> Result<Managed, ImagingError> {
    let info = probe(bytes)?;
    match info.format {
        PhotoFormat::Jpeg => {
            let markers = jpeg_markers(bytes);
            if markers.components != 3 {
                // Grey and CMYK photos go through the decoder that gives their own channels
                // (so the profile can convert them); at full scale.
                return decode_reduced_managed(bytes, info.width, info.height);
            }
            let options = DecoderOptions::default()
                .set_strict_mode(true)
                .set_max_width(MAX_SIDE as usize)
                .set_max_height(MAX_SIDE as usize)
                .jpeg_set_out_colorspace(ColorSpace::RGB);
            let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
            let pixels = decoder.decode().map_err(|error| ImagingError::Damaged(error.to_string()))?;
            let (width, height) =
                decoder.dimensions().ok_or(ImagingError::Damaged("no frame header".into()))?;
            if pixels.len() != width * height * 3 {
                return Err(ImagingError::Damaged(
                    "the decoder returned an unexpected number of pixels".into(),
                ));
            }
            let (width, height) = (width as u32, height as u32);
            Ok(to_srgb(width, height, Samples::Rgb8(pixels), markers.icc_profile.as_deref()))
        }
        PhotoFormat::Png => decode_png(bytes),
    }
}

/// Decodes at least `width` x `height` pixels (a JPEG at the smallest of 1/8, 1/4, 1/2 or full
/// scale that gives that many, by dropping DCT coefficients; a PNG at full size), stored
/// orientation, sRGB as [`decode`]. The result is at most the photo's own size.
pub fn decode_reduced(bytes: &[u8], width: u32, height: u32) -> Result<Raster, ImagingError> {
    decode_reduced_managed(bytes, width, height).map(|managed| managed.raster)
}

/// [`decode_reduced`], with what colour management and compositing found.
pub fn decode_reduced_managed(bytes: &[u8], width: u32, height: u32) -> Result<Managed, ImagingError> {
    let info = probe(bytes)?;
    if info.format == PhotoFormat::Png {
        return decode_png(bytes);
    }
    let markers = jpeg_markers(bytes);
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    // `probe` passed, so a full-size decode would fit; the scaled one needs far less.
    decoder.set_max_decoding_buffer_size(MAX_ALLOC_BYTES as usize);
    let clamp = |value: u32| value.clamp(1, u32::from(u16::MAX)) as u16;
    decoder.scale(clamp(width), clamp(height)).map_err(damaged)?;
    let pixels = decoder.decode().map_err(damaged)?;
    let frame = decoder.info().ok_or(ImagingError::Damaged("no frame header".into()))?;
    let (width, height) = (u32::from(frame.width), u32::from(frame.height));
    let count = width as usize * height as usize;
    let samples = match frame.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 if pixels.len() == count * 3 => Samples::Rgb8(pixels),
        jpeg_decoder::PixelFormat::L8 if pixels.len() == count => Samples::Gray8(pixels),
        jpeg_decoder::PixelFormat::CMYK32 if pixels.len() == count * 4 => {
            // jpeg-decoder gives 255 minus what is stored: ink amounts when the file was
            // stored inverted (Adobe), which its APP14 Adobe segment says; else invert back.
            let mut pixels = pixels;
            if !markers.adobe {
                pixels.iter_mut().for_each(|value| *value = 255 - *value);
            }
            Samples::Cmyk8(pixels)
        }
        other => return Err(ImagingError::Damaged(format!("unsupported pixel format {other:?}"))),
    };
    Ok(to_srgb(width, height, samples, markers.icc_profile.as_deref()))
}

fn damaged(error: jpeg_decoder::Error) -> ImagingError {
    ImagingError::Damaged(error.to_string())
}

fn sniff(bytes: &[u8]) -> Result<PhotoFormat, ImagingError> {
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Ok(PhotoFormat::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok(PhotoFormat::Png)
    } else {
        Err(ImagingError::UnsupportedFormat)
    }
}

fn check_size(width: u32, height: u32) -> Result<(), ImagingError> {
    if width == 0 || height == 0 {
        return Err(ImagingError::Damaged("the header says the photo has no pixels".into()));
    }
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImagingError::TooLarge { width, height });
    }
    Ok(())
}

fn png_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC_BYTES);
    limits
}

fn decode_png(bytes: &[u8]) -> Result<Managed, ImagingError> {
    let mut decoder =
        image::codecs::png::PngDecoder::with_limits(Cursor::new(bytes), png_limits()).map_err(image_error)?;
    // An unreadable iCCP chunk is no profile (the pixels are still shown, as sRGB).
    let profile = decoder.icc_profile().ok().flatten();
    let decoded = image::DynamicImage::from_decoder(decoder).map_err(image_error)?;
    let (width, height) = (decoded.width(), decoded.height());
    let samples = match decoded {
        image::DynamicImage::ImageLuma8(buffer) => Samples::Gray8(buffer.into_raw()),
        image::DynamicImage::ImageLumaA8(buffer) => Samples::GrayAlpha8(buffer.into_raw()),
        image::DynamicImage::ImageRgb8(buffer) => Samples::Rgb8(buffer.into_raw()),
        image::DynamicImage::ImageRgba8(buffer) => Samples::Rgba8(buffer.into_raw()),
        image::DynamicImage::ImageLuma16(buffer) => Samples::Gray16(buffer.into_raw()),
        image::DynamicImage::ImageLumaA16(buffer) => Samples::GrayAlpha16(buffer.into_raw()),
        image::DynamicImage::ImageRgb16(buffer) => Samples::Rgb16(buffer.into_raw()),
        other => Samples::Rgba16(other.into_rgba16().into_raw()),
    };
    Ok(to_srgb(width, height, samples, profile.as_deref()))
}

fn image_error(error: image::ImageError) -> ImagingError {
    match error {
        image::ImageError::Limits(_) => {
            ImagingError::Damaged(format!("refused by the decoding limits: {error}"))
        }
        other => ImagingError::Damaged(other.to_string()),
    }
}
