//! Synthetic clinical photographs: what one photo shows (`PhotoSpec`) and rendering it to JPEG
//! bytes, rows in parallel, with a minimal EXIF block carrying the orientation.

mod lesion;
mod noise;
mod scene;

use std::num::NonZeroUsize;
use std::sync::Mutex;

use dermdesk_protocol::{PhotoSource, PhotoView};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use serde::{Deserialize, Serialize};

use scene::Scene;

/// The diagnosis a photo's lesion is drawn to look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    BenignNaevus,
    Melanoma,
    BasalCellCarcinoma,
    SquamousCellCarcinoma,
    SeborrhoeicKeratosis,
    ActinicKeratosis,
    Psoriasis,
    Eczema,
    Acne,
    Rosacea,
    Tinea,
}

/// Where on the body the photo was taken: decides the body's shape, framing, hair and sheen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyRegion {
    Forearm,
    UpperArm,
    Hand,
    Leg,
    Back,
    Chest,
    Face,
    Scalp,
}

/// A deliberate fault of the photographer's, drawn with known ground truth so photo-quality
/// checks can be tuned and tested (docs/PHOTO-QUALITY.md). Ordinary photos have none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhotoDefect {
    #[default]
    None,
    /// Out of focus: the whole scene blurred (about 0.6% of the shorter side), the sensor's
    /// noise on top still sharp, as a lens that missed focus gives.
    OutOfFocus,
    /// Too little light: the skin near black, whatever its type (scene.rs says how).
    Underexposed,
    /// Too much light: the skin at the edge of clipping, whatever its type.
    Overexposed,
}

impl PhotoDefect {
    pub fn is_none(&self) -> bool {
        *self == PhotoDefect::None
    }
}

/// Everything that decides one synthetic photograph. Two equal specs render identical bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PhotoSpec {
    /// This shot: framing, lighting, colour cast, sensor noise.
    pub seed: u64,
    /// The subject: skin, body shape, lesions and hairs. Photos of one lesion share it, so the
    /// overview, close-up and dermoscopic view show the same lesion.
    pub subject_seed: u64,
    /// Stored pixel dimensions (before EXIF orientation).
    pub width: u32,
    pub height: u32,
    pub view: PhotoView,
    pub source: PhotoSource,
    /// EXIF orientation, 1 to 8 (CIPA DC-008): 1 stored upright; 6 stored on its side (viewers
    /// turn it 90 degrees clockwise), the usual phone case; 2–5, 7, 8 the mirrored and other
    /// turned cases. From 5 on, the displayed photo is `height` wide and `width` tall. Only
    /// the tag is written: the pixels are drawn as they are stored.
    pub exif_orientation: u8,
    /// Fitzpatrick skin type, 1 to 6.
    pub skin_type: u8,
    pub finding: Finding,
    pub region: BodyRegion,
    /// Body hair density, 0 (none) to 3 (heavy).
    pub body_hair: u8,
    /// 0: an earlier, smaller and tidier state of a changing lesion; 1: as it is now.
    pub stage: u8,
    /// JPEG quality, 1 to 100.
    pub quality: u8,
    /// Left out of the spec's description when `None`, so ordinary photos keep their cache
    /// keys and content ids.
    #[serde(default, skip_serializing_if = "PhotoDefect::is_none")]
    pub defect: PhotoDefect,
}

impl PhotoSpec {
    /// Pixel dimensions as a viewer shows the photo (after EXIF orientation).
    pub fn displayed_size(&self) -> (u32, u32) {
        if (5..=8).contains(&self.exif_orientation) {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// Renders the photo to JPEG bytes, using every available core for the pixels.
pub fn render_photo(spec: &PhotoSpec) -> Vec<u8> {
    let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let mut workspace = Workspace::default();
    render_photo_into(spec, threads, &mut workspace);
    workspace.jpeg
}

/// Buffers kept from one photo to the next: fresh 70 MB allocations cost more in page faults
/// than the kernel's zeroing is worth.
#[derive(Debug, Default)]
pub(crate) struct Workspace {
    shaded: Vec<u8>,
    pixels: Vec<u8>,
    jpeg: Vec<u8>,
}

/// Renders with at most `threads` threads into `workspace`, returning the JPEG bytes. The
/// bytes do not depend on the thread count.
pub(crate) fn render_photo_into<'a>(
    spec: &PhotoSpec,
    threads: usize,
    workspace: &'a mut Workspace,
) -> &'a [u8] {
    let Workspace { shaded, pixels, jpeg } = workspace;
    render_pixels_into(spec, threads, shaded, pixels);
    jpeg.clear();
    encode_jpeg(spec, pixels, jpeg);
    jpeg
}

/// The photo's stored raster as 8-bit RGB rows.
///
/// Large photos are shaded on a smaller raster and upsampled, with the sensor's noise added at
/// full resolution: a phone's 12 or 24 megapixels carry less detail than their count (lens,
/// demosaicing, noise reduction), and shading every stored pixel would triple the time.
#[cfg(test)]
pub(crate) fn render_pixels(spec: &PhotoSpec, threads: usize) -> Vec<u8> {
    let mut pixels = Vec::new();
    render_pixels_into(spec, threads, &mut Vec::new(), &mut pixels);
    pixels
}

fn render_pixels_into(spec: &PhotoSpec, threads: usize, shaded: &mut Vec<u8>, pixels: &mut Vec<u8>) {
    assert!(
        (1..=u16::MAX as u32).contains(&spec.width) && (1..=u16::MAX as u32).contains(&spec.height),
        "photo dimensions {}x{} are outside what JPEG can store",
        spec.width,
        spec.height
    );
    let raster = shading_raster(spec);
    let scene = Scene::new(spec, raster);
    in_bands(raster.0, raster.1, threads, shaded, |row, out| scene.render_row(row, out));
    if spec.defect == PhotoDefect::OutOfFocus {
        // Relative to the picture, so a small and a full-size render look equally soft.
        let radius = (raster.0.min(raster.1) * 6).div_ceil(1000).max(1);
        defocus(shaded, raster.0, raster.1, radius);
    }
    let noise = scene.sensor_noise();
    let upsampler = Upsampler::new(raster, (spec.width, spec.height));
    in_bands(spec.width, spec.height, threads, pixels, |row, out| {
        upsampler.row(shaded, row, out);
        noise.apply_to_row(row, out);
    });
}

/// Size of the raster the scene is shaded on: the stored size for small photos; two thirds of
/// it for GP photos (sharp, but still a phone); half for patient photos (blurred anyway).
fn shading_raster(spec: &PhotoSpec) -> (u32, u32) {
    let (numerator, denominator) = if u64::from(spec.width) * u64::from(spec.height) <= 4_000_000 {
        (1, 1)
    } else if spec.source == PhotoSource::PatientLink {
        (1, 2)
    } else {
        (2, 3)
    };
    let scaled = |size: u32| (size * numerator).div_ceil(denominator).max(1);
    (scaled(spec.width), scaled(spec.height))
}

/// Fills a `width` x `height` RGB raster row by row, in bands of rows handed out to `threads`
/// threads one at a time, so a slow band (the lesion) does not leave the others idle.
fn in_bands(
    width: u32,
    height: u32,
    threads: usize,
    pixels: &mut Vec<u8>,
    fill_row: impl Fn(u32, &mut [u8]) + Sync,
) {
    let row_bytes = width as usize * 3;
    pixels.clear();
    pixels.resize(row_bytes * height as usize, 0);
    let band_rows = 32;
    let bands = Mutex::new(pixels.chunks_mut(row_bytes * band_rows).enumerate());
    let fill_bands = || loop {
        let next = bands.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).next();
        let Some((band, rows)) = next else { break };
        for (offset, row) in rows.chunks_mut(row_bytes).enumerate() {
            fill_row((band * band_rows + offset) as u32, row);
        }
    };
    let threads = threads.clamp(1, height.div_ceil(band_rows as u32) as usize);
    if threads == 1 {
        fill_bands();
    } else {
        std::thread::scope(|scope| {
            for _ in 1..threads {
                scope.spawn(fill_bands);
            }
            fill_bands();
        });
    }
}

/// Defocus: three box blurs of `radius` across and then down (close to a Gaussian of sigma
/// about `radius`), in integer arithmetic so the bytes are the same everywhere.
fn defocus(pixels: &mut [u8], width: u32, height: u32, radius: u32) {
    let (width, height, radius) = (width as usize, height as usize, radius as usize);
    let mut line = Vec::new();
    let blur_line = |values: &mut Vec<[u32; 3]>| {
        // One box pass over a line, edges extended.
        let count = values.len();
        let window = (2 * radius + 1) as u32;
        let at = |index: isize| values[index.clamp(0, count as isize - 1) as usize];
        let mut sum = [0u32; 3];
        for offset in -(radius as isize)..=radius as isize {
            let pixel = at(offset);
            (0..3).for_each(|c| sum[c] += pixel[c]);
        }
        let mut out = Vec::with_capacity(count);
        for index in 0..count as isize {
            out.push(sum.map(|s| (s + window / 2) / window));
            let (leaving, entering) = (at(index - radius as isize), at(index + radius as isize + 1));
            (0..3).for_each(|c| sum[c] = sum[c] + entering[c] - leaving[c]);
        }
        *values = out;
    };
    for row in 0..height {
        line.clear();
        line.extend(
            pixels[row * width * 3..][..width * 3].chunks_exact(3).map(|p| [p[0], p[1], p[2]].map(u32::from)),
        );
        (0..3).for_each(|_| blur_line(&mut line));
        for (out, value) in pixels[row * width * 3..][..width * 3].chunks_exact_mut(3).zip(&line) {
            (0..3).for_each(|c| out[c] = value[c] as u8);
        }
    }
    for column in 0..width {
        line.clear();
        line.extend((0..height).map(|row| {
            let at = (row * width + column) * 3;
            [pixels[at], pixels[at + 1], pixels[at + 2]].map(u32::from)
        }));
        (0..3).for_each(|_| blur_line(&mut line));
        for (row, value) in line.iter().enumerate() {
            let at = (row * width + column) * 3;
            (0..3).for_each(|c| pixels[at + c] = value[c] as u8);
        }
    }
}

/// Bilinear upsampling in 8-bit fixed point (integer arithmetic: the same bytes everywhere).
struct Upsampler {
    source: (u32, u32),
    /// For each output column: the two source columns' byte offsets and the second's weight
    /// out of 256.
    columns: Vec<(usize, usize, u32)>,
    /// The same for each output row, as source row numbers.
    rows: Vec<(usize, usize, u32)>,
}

impl Upsampler {
    fn new(source: (u32, u32), target: (u32, u32)) -> Upsampler {
        let axis = |source_size: u32, target_size: u32, stride: usize| -> Vec<(usize, usize, u32)> {
            (0..target_size)
                .map(|index| {
                    // Pixel centres line up: (i + 0.5) * source / target - 0.5.
                    let position = ((2 * index + 1) as u64 * u64::from(source_size) * 256
                        / u64::from(target_size))
                    .saturating_sub(256)
                        / 2;
                    let first = ((position / 256) as u32).min(source_size - 1);
                    let second = (first + 1).min(source_size - 1);
                    (first as usize * stride, second as usize * stride, (position % 256) as u32)
                })
                .collect()
        };
        Upsampler { source, columns: axis(source.0, target.0, 3), rows: axis(source.1, target.1, 1) }
    }

    fn row(&self, source: &[u8], row: u32, out: &mut [u8]) {
        let source_row_bytes = self.source.0 as usize * 3;
        let (first_row, second_row, row_weight) = self.rows[row as usize];
        let top = &source[first_row * source_row_bytes..][..source_row_bytes];
        let bottom = &source[second_row * source_row_bytes..][..source_row_bytes];
        for (pixel, &(left, right, column_weight)) in out.chunks_exact_mut(3).zip(&self.columns) {
            for channel in 0..3 {
                let blend = |line: &[u8]| {
                    u32::from(line[left + channel]) * (256 - column_weight)
                        + u32::from(line[right + channel]) * column_weight
                };
                let value = blend(top) * (256 - row_weight) + blend(bottom) * row_weight;
                pixel[channel] = ((value + 32_768) >> 16) as u8;
            }
        }
    }
}

fn encode_jpeg(spec: &PhotoSpec, pixels: &[u8], bytes: &mut Vec<u8>) {
    let mut encoder = Encoder::new(bytes, spec.quality.clamp(1, 100));
    // Phones store 4:2:0 at every quality; the encoder's default is 4:4:4 from quality 90.
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    encoder
        .add_exif_metadata(&exif_tiff(spec.exif_orientation))
        .expect("the EXIF block is a few dozen bytes, far below the segment limit");
    encoder
        .encode(pixels, spec.width as u16, spec.height as u16, ColorType::Rgb)
        .expect("encoding checked dimensions into memory cannot fail");
}

/// Marks every file as synthetic, for anyone who finds one outside the demo.
const IMAGE_DESCRIPTION: &str = "Derm Desk synthetic demo photograph. Not a real patient.";
const SOFTWARE: &str = "dermdesk-synth";

/// A minimal little-endian TIFF structure for the EXIF APP1 segment (the encoder adds the
/// "Exif\0\0" header): IFD0 with ImageDescription, Orientation and Software.
pub(crate) fn exif_tiff(orientation: u8) -> Vec<u8> {
    const ASCII: u16 = 2;
    const SHORT: u16 = 3;
    let description = [IMAGE_DESCRIPTION.as_bytes(), b"\0"].concat();
    let software = [SOFTWARE.as_bytes(), b"\0"].concat();
    let entries: u16 = 3;
    // Header (8) + entry count (2) + entries (12 each) + next-IFD offset (4), then the strings.
    let strings_start = 8 + 2 + 12 * entries as u32 + 4;
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II");
    tiff.extend_from_slice(&42u16.to_le_bytes());
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&entries.to_le_bytes());
    // Entries in ascending tag order, as TIFF requires.
    let mut entry = |tag: u16, kind: u16, count: u32, value: [u8; 4]| {
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&kind.to_le_bytes());
        tiff.extend_from_slice(&count.to_le_bytes());
        tiff.extend_from_slice(&value);
    };
    entry(0x010e, ASCII, description.len() as u32, strings_start.to_le_bytes());
    let orientation = u16::from(orientation);
    let [low, high] = orientation.to_le_bytes();
    entry(0x0112, SHORT, 1, [low, high, 0, 0]);
    entry(0x0131, ASCII, software.len() as u32, (strings_start + description.len() as u32).to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff.extend_from_slice(&description);
    tiff.extend_from_slice(&software);
    tiff
}

/// Reads the EXIF orientation from JPEG bytes, if there is one. Used by tests and by anyone
/// checking a generated file.
pub fn exif_orientation(jpeg: &[u8]) -> Option<u16> {
    let mut position = 2;
    while position + 4 <= jpeg.len() && jpeg[position] == 0xff {
        let marker = jpeg[position + 1];
        let length = u16::from_be_bytes([jpeg[position + 2], jpeg[position + 3]]) as usize;
        let segment = jpeg.get(position + 4..position + 2 + length)?;
        if marker == 0xe1 && segment.starts_with(b"Exif\0\0") {
            return tiff_orientation(&segment[6..]);
        }
        if marker == 0xda {
            return None;
        }
        position += 2 + length;
    }
    None
}

fn tiff_orientation(tiff: &[u8]) -> Option<u16> {
    let little_endian = match tiff.get(0..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let read16 = |at: usize| -> Option<u16> {
        let bytes = [*tiff.get(at)?, *tiff.get(at + 1)?];
        Some(if little_endian { u16::from_le_bytes(bytes) } else { u16::from_be_bytes(bytes) })
    };
    let read32 = |at: usize| -> Option<u32> {
        let bytes = [*tiff.get(at)?, *tiff.get(at + 1)?, *tiff.get(at + 2)?, *tiff.get(at + 3)?];
        Some(if little_endian { u32::from_le_bytes(bytes) } else { u32::from_be_bytes(bytes) })
    };
    if read16(2)? != 42 {
        return None;
    }
    let directory = read32(4)? as usize;
    let count = read16(directory)? as usize;
    (0..count).find_map(|index| {
        let entry = directory + 2 + 12 * index;
        (read16(entry)? == 0x0112 && read16(entry + 2)? == 3).then(|| read16(entry + 8)).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(view: PhotoView, source: PhotoSource, orientation: u8) -> PhotoSpec {
        PhotoSpec {
            seed: 11,
            subject_seed: 22,
            width: 320,
            height: 240,
            view,
            source,
            exif_orientation: orientation,
            skin_type: 3,
            finding: Finding::Melanoma,
            region: BodyRegion::Back,
            body_hair: 1,
            stage: 1,
            quality: 90,
            defect: Default::default(),
        }
    }

    #[test]
    fn exif_block_round_trips_the_orientation() {
        for orientation in 1..=8 {
            let jpeg = render_photo(&spec(PhotoView::CloseUp, PhotoSource::GpPractice, orientation));
            assert_eq!(exif_orientation(&jpeg), Some(u16::from(orientation)));
        }
    }

    #[test]
    fn thread_count_does_not_change_the_bytes() {
        for view in [PhotoView::Overview, PhotoView::CloseUp, PhotoView::Dermoscopic] {
            let spec = spec(view, PhotoSource::PatientLink, 6);
            assert_eq!(render_pixels(&spec, 1), render_pixels(&spec, 3), "{view:?}");
        }
        // Large enough to be shaded small and upsampled.
        let large =
            PhotoSpec { width: 2448, height: 1836, ..spec(PhotoView::CloseUp, PhotoSource::PatientLink, 1) };
        assert_eq!(shading_raster(&large), (1224, 918));
        assert_eq!(render_pixels(&large, 1), render_pixels(&large, 2));
    }

    #[test]
    fn shading_raster_shrinks_only_large_photos() {
        let gp = spec(PhotoView::Overview, PhotoSource::GpPractice, 1);
        assert_eq!(shading_raster(&gp), (320, 240));
        assert_eq!(shading_raster(&PhotoSpec { width: 4032, height: 3024, ..gp.clone() }), (2688, 2016));
        let patient =
            PhotoSpec { width: 4000, height: 3000, ..spec(PhotoView::Overview, PhotoSource::PatientLink, 1) };
        assert_eq!(shading_raster(&patient), (2000, 1500));
    }

    #[test]
    fn upsampling_keeps_flat_areas_and_blends_edges() {
        // Two source pixels, black then white, stretched to eight.
        let source = [0, 0, 0, 255, 255, 255];
        let upsampler = Upsampler::new((2, 1), (8, 1));
        let mut out = [0u8; 24];
        upsampler.row(&source, 0, &mut out);
        let reds: Vec<u8> = out.chunks(3).map(|pixel| pixel[0]).collect();
        assert_eq!(reds[0], 0);
        assert_eq!(reds[7], 255);
        assert!(reds.windows(2).all(|pair| pair[0] <= pair[1]), "{reds:?}");
        assert!(reds[3] > 64 && reds[4] < 192, "{reds:?}");
        // The same size is a copy.
        let copy = Upsampler::new((2, 1), (2, 1));
        let mut same = [0u8; 6];
        copy.row(&source, 0, &mut same);
        assert_eq!(same, source);
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    #[test]
    #[ignore = "timing only"]
    fn time_the_stages() {
        let spec = PhotoSpec {
            seed: 1,
            subject_seed: 2,
            width: 4032,
            height: 3024,
            view: PhotoView::CloseUp,
            source: PhotoSource::GpPractice,
            exif_orientation: 1,
            skin_type: 2,
            finding: Finding::Melanoma,
            region: BodyRegion::Back,
            body_hair: 1,
            stage: 1,
            quality: 90,
            defect: Default::default(),
        };
        for view in [PhotoView::Overview, PhotoView::CloseUp, PhotoView::Dermoscopic] {
            let spec = PhotoSpec { view, ..spec.clone() };
            let started = std::time::Instant::now();
            let pixels = render_pixels(&spec, 1);
            let rendered = started.elapsed();
            let mut jpeg = Vec::new();
            encode_jpeg(&spec, &pixels, &mut jpeg);
            let encoded = started.elapsed() - rendered;
            println!("{view:?}: render {rendered:?}, encode {encoded:?}, {} bytes", jpeg.len());
        }
    }
}
