//! Photo-quality measures from a photo's preview pixels: sharpness (the variance of the
//! Laplacian of the grey image) and exposure (the grey-level histogram). Pure arithmetic on a
//! [`Raster`]; the thresholds and why they are what they are: docs/PHOTO-QUALITY.md.
//!
//! Everything is measured on the photo shrunk to [`ANALYSIS_LONGEST_SIDE`] (area averages), so
//! the numbers mean the same for a 1 MP and a 24 MP photo, and a sensor's fine grain (which a
//! defocused photo still has) is averaged away rather than read as detail.

use serde::{Deserialize, Serialize};

use crate::{area_resize, fit_within, Raster};

/// The longest side the measures are taken at.
pub const ANALYSIS_LONGEST_SIDE: u32 = 512;
/// Below this variance of the Laplacian (grey levels squared, at the analysis size) a photo
/// "looks out of focus". On the synthetic set defocused photos measure 1.5–3.4 (what is left is
/// sensor grain and JPEG blocks) and sharp ones 3.7 and up (median 24): docs/PHOTO-QUALITY.md.
pub const BLUR_LAPLACIAN_VARIANCE: f64 = 3.55;
/// A grey level at or below this is "very dark" (a dermoscope's black surround, deep shadow).
pub const DARK_LEVEL: u8 = 40;
/// A grey level at or above this is "very bright" (clipped or about to be).
pub const BRIGHT_LEVEL: u8 = 245;
/// Below this median grey level a photo is "too dark": half of it is near black. The median,
/// not a fraction of dark pixels: a dermoscopic photo's black surround is 40% of it.
pub const UNDEREXPOSED_MEDIAN: u8 = 58;
/// At or above this median grey level of the lit pixels (those above [`DARK_LEVEL`]) a photo
/// is "too bright": the skin itself is at the edge of clipping. Lit pixels only, so a
/// dermoscope's surround does not hide an over-exposed field.
pub const OVEREXPOSED_LIT_MEDIAN: u8 = 194;

/// A photo whose shorter side (stored pixels) is below this is "too small to judge": at fit
/// size the viewer enlarges it, and a lesion's border and surface are not there to see.
/// Why 400: docs/PHOTO-QUALITY.md.
pub const MIN_SHORTER_SIDE: u32 = 400;

/// What was measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QualityMetrics {
    /// The photo's shorter side in stored pixels (0 in measures kept before it was recorded:
    /// those are made again, see the cache's migrations).
    #[serde(default)]
    pub shorter_side: u32,
    /// Share of the photo's pixels that were not fully opaque (shown over a neutral grey).
    #[serde(default)]
    pub transparent_fraction: f64,
    /// Where the measured (and shown) colours came from: the photo's embedded profile or none.
    #[serde(default)]
    pub colour: crate::ColourSource,
    /// Variance of the 4-neighbour Laplacian of the grey image, at the analysis size.
    pub laplacian_variance: f64,
    /// Mean grey level, 0 to 255.
    pub mean_luma: f64,
    /// Grey levels below which 5%, 50% and 95% of the pixels lie.
    pub luma_p05: u8,
    pub luma_p50: u8,
    pub luma_p95: u8,
    /// Median grey level of the pixels brighter than [`DARK_LEVEL`] (leaves out a
    /// dermoscope's black surround and deep shadows); 0 if there are none.
    pub lit_p50: u8,
    /// Fractions of pixels at or below [`DARK_LEVEL`] and at or above [`BRIGHT_LEVEL`].
    pub dark_fraction: f64,
    pub bright_fraction: f64,
}

/// What the measures say about the photo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualityFlags {
    pub blurred: bool,
    pub underexposed: bool,
    pub overexposed: bool,
    /// Shorter side below [`MIN_SHORTER_SIDE`].
    #[serde(default)]
    pub too_small: bool,
}

impl QualityFlags {
    pub fn any(&self) -> bool {
        self.blurred || self.underexposed || self.overexposed || self.too_small
    }

    /// The problems in plain English, e.g. "looks out of focus and too dark"; `None` if none.
    pub fn problem(&self) -> Option<String> {
        let parts: Vec<&str> = [
            (self.too_small, "too small to judge"),
            (self.blurred, "looks out of focus"),
            (self.underexposed, "too dark"),
            (self.overexposed, "too bright"),
        ]
        .into_iter()
        .filter_map(|(flagged, text)| flagged.then_some(text))
        .collect();
        match parts.as_slice() {
            [] => None,
            [one] => Some((*one).to_owned()),
            [first @ .., last] => Some(format!("{} and {last}", first.join(", "))),
        }
    }
}

/// Grey levels (BT.601 luma, integer) of `raster` shrunk to the analysis size.
fn analysis_luma(raster: &Raster) -> (u32, u32, Vec<u8>) {
    let (width, height) = fit_within(raster.width, raster.height, ANALYSIS_LONGEST_SIDE);
    let small = area_resize(raster, width, height);
    let luma = small
        .pixels
        .chunks_exact(3)
        .map(|p| ((77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2]) + 128) >> 8) as u8)
        .collect();
    (width, height, luma)
}

/// Measures sharpness and exposure of a photo's pixels (any size; the preview in the app). The
/// shorter side is the raster's: [`crate::derive`] sets it to the stored photo's.
pub fn measure(raster: &Raster) -> QualityMetrics {
    let (width, height, luma) = analysis_luma(raster);
    QualityMetrics {
        laplacian_variance: laplacian_variance(&luma, width, height),
        shorter_side: raster.width.min(raster.height),
        ..exposure(&luma)
    }
}

/// The variance of the Laplacian (4-neighbour kernel: 4 at the centre, -1 left, right, above and
/// below) over the inner pixels of a grey image; 0 for an image with no inner pixels.
pub fn laplacian_variance(luma: &[u8], width: u32, height: u32) -> f64 {
    let (width, height) = (width as usize, height as usize);
    assert_eq!(luma.len(), width * height, "grey buffer size");
    if width < 3 || height < 3 {
        return 0.0;
    }
    let (mut sum, mut sum_of_squares, mut count) = (0i64, 0i64, 0i64);
    for y in 1..height - 1 {
        let (above, row, below) = (&luma[(y - 1) * width..], &luma[y * width..], &luma[(y + 1) * width..]);
        for x in 1..width - 1 {
            let value = 4 * i64::from(row[x])
                - i64::from(row[x - 1])
                - i64::from(row[x + 1])
                - i64::from(above[x])
                - i64::from(below[x]);
            sum += value;
            sum_of_squares += value * value;
            count += 1;
        }
    }
    let mean = sum as f64 / count as f64;
    sum_of_squares as f64 / count as f64 - mean * mean
}

/// Mean, percentiles and dark / bright fractions of grey levels (sharpness left at 0).
pub fn exposure(luma: &[u8]) -> QualityMetrics {
    let mut histogram = [0u64; 256];
    luma.iter().for_each(|&level| histogram[usize::from(level)] += 1);
    let total = luma.len().max(1) as f64;
    let percentile = |fraction: f64| -> u8 {
        let wanted = (fraction * luma.len() as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (level, &count) in histogram.iter().enumerate() {
            seen += count;
            if seen >= wanted {
                return level as u8;
            }
        }
        255
    };
    let mean =
        histogram.iter().enumerate().map(|(level, &count)| level as f64 * count as f64).sum::<f64>() / total;
    let fraction =
        |levels: std::ops::RangeInclusive<usize>| histogram[levels].iter().sum::<u64>() as f64 / total;
    QualityMetrics {
        shorter_side: 0,
        transparent_fraction: 0.0,
        colour: crate::ColourSource::Untagged,
        laplacian_variance: 0.0,
        mean_luma: mean,
        luma_p05: percentile(0.05),
        luma_p50: percentile(0.5),
        luma_p95: percentile(0.95),
        lit_p50: {
            let lit: u64 = histogram[usize::from(DARK_LEVEL) + 1..].iter().sum();
            let mut seen = 0;
            let mut median = 0;
            for (level, &count) in histogram.iter().enumerate().skip(usize::from(DARK_LEVEL) + 1) {
                seen += count;
                if lit > 0 && seen * 2 >= lit {
                    median = level as u8;
                    break;
                }
            }
            median
        },
        dark_fraction: fraction(0..=usize::from(DARK_LEVEL)),
        bright_fraction: fraction(usize::from(BRIGHT_LEVEL)..=255),
    }
}

/// The flags the documented thresholds give for `metrics`.
pub fn assess(metrics: &QualityMetrics) -> QualityFlags {
    let underexposed = metrics.luma_p50 < UNDEREXPOSED_MEDIAN;
    QualityFlags {
        // Too little light takes contrast, and the Laplacian with it: a dark photo cannot be
        // judged for focus, and "too dark" is the problem to fix first.
        blurred: !underexposed && metrics.laplacian_variance < BLUR_LAPLACIAN_VARIANCE,
        underexposed,
        overexposed: metrics.lit_p50 >= OVEREXPOSED_LIT_MEDIAN,
        too_small: metrics.shorter_side < MIN_SHORTER_SIDE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(width: u32, height: u32, level: impl Fn(u32, u32) -> u8) -> Raster {
        let pixels =
            (0..height).flat_map(|y| (0..width).map(move |x| (x, y))).flat_map(|(x, y)| [level(x, y); 3]);
        Raster::new(width, height, pixels.collect())
    }

    #[test]
    fn the_laplacian_of_a_flat_or_linear_image_is_zero_and_of_a_checkerboard_large() {
        assert_eq!(laplacian_variance(&[100; 25], 5, 5), 0.0);
        // A ramp has a zero second derivative.
        let ramp: Vec<u8> = (0..5).flat_map(|_| (0..5).map(|x| 10 * x as u8)).collect();
        assert_eq!(laplacian_variance(&ramp, 5, 5), 0.0);
        // Alternating 0 / 10: the Laplacian is +40 or -40 at the 16 inner pixels, half each:
        // mean 0, variance 1600.
        let checker: Vec<u8> = (0..36).map(|i| if (i % 6 + i / 6) % 2 == 0 { 10 } else { 0 }).collect();
        assert_eq!(laplacian_variance(&checker, 6, 6), 1600.0);
        assert_eq!(laplacian_variance(&[1, 2, 3, 4], 2, 2), 0.0);
    }

    #[test]
    fn a_sharp_pattern_is_not_blurred_and_its_smoothed_copy_is() {
        let sharp = grey(600, 400, |x, y| if (x / 3 + y / 3) % 2 == 0 { 200 } else { 60 });
        let soft = grey(600, 400, |x, _| (128.0 + 60.0 * (x as f64 / 40.0).sin()) as u8);
        assert!(!assess(&measure(&sharp)).blurred, "{:?}", measure(&sharp));
        assert!(assess(&measure(&soft)).blurred, "{:?}", measure(&soft));
    }

    #[test]
    fn exposure_percentiles_and_fractions() {
        // 100 levels 0..=99 twice over: p05 is 4, p95 is 94, 41 of 100 are at or below 40; the
        // 59 lit levels 41..=99 have their median at 70.
        let luma: Vec<u8> = (0..200).map(|i| (i % 100) as u8).collect();
        let metrics = exposure(&luma);
        assert_eq!((metrics.luma_p05, metrics.luma_p50, metrics.luma_p95, metrics.lit_p50), (4, 49, 94, 70));
        assert!((metrics.dark_fraction - 0.41).abs() < 1e-9);
        assert_eq!(metrics.bright_fraction, 0.0);
        assert!((metrics.mean_luma - 49.5).abs() < 1e-9);
    }

    #[test]
    fn dark_and_bright_photos_are_flagged_and_mid_grey_is_not() {
        let textured =
            |base: u8| grey(600, 400, move |x, y| base.saturating_add(((x * 7 + y * 13) % 30) as u8));
        let flags = |base| assess(&measure(&textured(base)));
        assert_eq!(flags(100), QualityFlags::default());
        assert!(flags(10).underexposed && !flags(10).overexposed);
        assert!(flags(240).overexposed && !flags(240).underexposed);
    }

    #[test]
    fn problems_read_as_plain_english() {
        let flags = |blurred, underexposed, overexposed| QualityFlags {
            blurred,
            underexposed,
            overexposed,
            too_small: false,
        };
        assert_eq!(flags(false, false, false).problem(), None);
        assert_eq!(flags(true, false, false).problem().as_deref(), Some("looks out of focus"));
        assert_eq!(flags(false, true, false).problem().as_deref(), Some("too dark"));
        assert_eq!(flags(true, false, true).problem().as_deref(), Some("looks out of focus and too bright"));
        let small = QualityFlags { too_small: true, ..flags(false, true, false) };
        assert_eq!(small.problem().as_deref(), Some("too small to judge and too dark"));
    }

    #[test]
    fn a_photo_shorter_than_the_minimum_is_too_small_to_judge() {
        let textured = |width, height| grey(width, height, |x, y| 90 + ((x * 7 + y * 13) % 40) as u8);
        assert!(assess(&measure(&textured(64, 64))).too_small);
        assert!(assess(&measure(&textured(1000, MIN_SHORTER_SIDE - 1))).too_small);
        assert!(!assess(&measure(&textured(MIN_SHORTER_SIDE, 1000))).too_small);
        // Measures kept before the size was recorded read as 0: too small, so they are made again
        // rather than trusted (the cache drops them, see its migrations).
        let old: QualityMetrics = serde_json::from_str(
            r#"{"laplacian_variance":9.0,"mean_luma":100.0,"luma_p05":10,"luma_p50":100,"luma_p95":200,
                "lit_p50":100,"dark_fraction":0.0,"bright_fraction":0.0}"#,
        )
        .unwrap();
        assert_eq!((old.shorter_side, old.transparent_fraction), (0, 0.0));
    }
}
