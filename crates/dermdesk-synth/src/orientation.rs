//! Orientation test charts: eight JPEGs, one per EXIF orientation (1–8), that all show the same
//! upright chart once a viewer applies their tag. The stored pixels are the chart turned and
//! mirrored the other way, and the tag sits in a real APP1 Exif segment, so a viewer that gets
//! one orientation wrong shows that chart on its side, upside down or mirrored.
//!
//! The chart: a light background, a big dark arrow pointing up, solid blocks in the corners (top
//! left red, top right green, bottom left blue, bottom right yellow: a rotation moves them
//! round, a mirror swaps neighbours) and the orientation number as a seven-segment digit left
//! of the arrow, for a person reading a screenshot. Pure: pixels and JPEG bytes, no files.

use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use crate::photo::exif_tiff;

/// Colours of the chart, as the tests and the end-to-end check expect them.
pub const CHART_BACKGROUND: [u8; 3] = [226, 226, 226];
pub const CHART_ARROW: [u8; 3] = [28, 28, 28];
pub const CHART_TOP_LEFT: [u8; 3] = [220, 30, 30];
pub const CHART_TOP_RIGHT: [u8; 3] = [30, 170, 60];
pub const CHART_BOTTOM_LEFT: [u8; 3] = [30, 70, 220];
pub const CHART_BOTTOM_RIGHT: [u8; 3] = [240, 210, 30];
const DIGIT: [u8; 3] = [90, 40, 140];

/// Corner blocks reach this fraction of the chart's width and height in from each corner.
pub const CHART_CORNER_FRACTION: f64 = 0.22;

/// The arrow, in fractions of the chart's width (x) and height (y): the head's tip, the line of
/// its base and its half-width there, and the shaft's half-width and foot.
const ARROW_TIP_Y: f64 = 0.08;
const ARROW_BASE_Y: f64 = 0.48;
const ARROW_HEAD_HALF_WIDTH: f64 = 0.16;
const ARROW_SHAFT_HALF_WIDTH: f64 = 0.05;
const ARROW_FOOT_Y: f64 = 0.90;

/// Where a chart point (fractions of the upright chart) is dark because of the arrow. The
/// end-to-end check samples the arrow with this too.
pub fn chart_arrow_contains(x: f64, y: f64) -> bool {
    let head = (ARROW_TIP_Y..=ARROW_BASE_Y).contains(&y)
        && (x - 0.5).abs() <= ARROW_HEAD_HALF_WIDTH * (y - ARROW_TIP_Y) / (ARROW_BASE_Y - ARROW_TIP_Y);
    let shaft = (ARROW_BASE_Y..=ARROW_FOOT_Y).contains(&y) && (x - 0.5).abs() <= ARROW_SHAFT_HALF_WIDTH;
    head || shaft
}

/// The upright chart's colour at (`x`, `y`), fractions of its width and height.
fn chart_colour(x: f64, y: f64, orientation: u8) -> [u8; 3] {
    let corner = CHART_CORNER_FRACTION;
    match (x < corner, x > 1.0 - corner, y < corner, y > 1.0 - corner) {
        (true, _, true, _) => return CHART_TOP_LEFT,
        (_, true, true, _) => return CHART_TOP_RIGHT,
        (true, _, _, true) => return CHART_BOTTOM_LEFT,
        (_, true, _, true) => return CHART_BOTTOM_RIGHT,
        _ => {}
    }
    if chart_arrow_contains(x, y) {
        return CHART_ARROW;
    }
    // The digit: a 0.12 x 0.24 box centred at (0.16, 0.5).
    let (left, top, width, height) = (0.10, 0.38, 0.12, 0.24);
    if (left..left + width).contains(&x) && (top..top + height).contains(&y) {
        let (u, v) = ((x - left) / width, (y - top) / height);
        if seven_segment(orientation, u, v) {
            return DIGIT;
        }
    }
    CHART_BACKGROUND
}

/// Whether (`u`, `v`), fractions of a digit's box, is on a lit segment of `digit`.
fn seven_segment(digit: u8, u: f64, v: f64) -> bool {
    // Segments a (top), b (top right), c (bottom right), d (bottom), e (bottom left),
    // f (top left), g (middle), as bits 0..6.
    const SEGMENTS: [u8; 10] = [
        0b011_1111, 0b000_0110, 0b101_1011, 0b100_1111, 0b110_0110, 0b110_1101, 0b111_1101, 0b000_0111,
        0b111_1111, 0b110_1111,
    ];
    let lit = SEGMENTS[usize::from(digit % 10)];
    let bar = 0.16;
    let horizontal = |centre: f64| (v - centre).abs() <= bar / 2.0 && (0.0..=1.0).contains(&u);
    let vertical =
        |column: f64, upper: bool| (u - column).abs() <= bar && if upper { v <= 0.5 } else { v >= 0.5 };
    let on = [
        horizontal(bar / 2.0),
        vertical(1.0 - bar, true),
        vertical(1.0 - bar, false),
        horizontal(1.0 - bar / 2.0),
        vertical(bar, false),
        vertical(bar, true),
        horizontal(0.5),
    ];
    on.iter().enumerate().any(|(segment, &inside)| inside && lit & (1 << segment) != 0)
}

/// Where stored pixel (`x`, `y`) of a `stored_width` x `stored_height` photo appears once a
/// viewer applies EXIF `orientation` (CIPA DC-008 / TIFF 6.0: 2 mirrors, 3 turns half round,
/// 4 flips top to bottom, 5 transposes, 6 turns a quarter clockwise, 7 transposes across the
/// other diagonal, 8 turns a quarter anticlockwise).
pub fn displayed_position(
    orientation: u8,
    (x, y): (u32, u32),
    (stored_width, stored_height): (u32, u32),
) -> (u32, u32) {
    let (right, bottom) = (stored_width - 1, stored_height - 1);
    match orientation {
        2 => (right - x, y),
        3 => (right - x, bottom - y),
        4 => (x, bottom - y),
        5 => (y, x),
        6 => (bottom - y, x),
        7 => (bottom - y, right - x),
        8 => (y, right - x),
        _ => (x, y),
    }
}

/// The stored size of a chart shown `display` wide and high with `orientation`.
pub fn stored_size(orientation: u8, (width, height): (u32, u32)) -> (u32, u32) {
    if (5..=8).contains(&orientation) {
        (height, width)
    } else {
        (width, height)
    }
}

/// One chart as JPEG bytes (quality 90, 4:2:0) whose EXIF orientation is `orientation` and
/// which shows upright, `display` wide and high, when that orientation is applied.
pub fn orientation_chart(orientation: u8, display: (u32, u32)) -> Vec<u8> {
    assert!((1..=8).contains(&orientation), "EXIF orientation {orientation} is not 1 to 8");
    let (width, height) = display;
    assert!(
        (8..=u32::from(u16::MAX)).contains(&width) && (8..=u32::from(u16::MAX)).contains(&height),
        "chart size {width}x{height} is outside what JPEG can store"
    );
    let stored = stored_size(orientation, display);
    let mut pixels = Vec::with_capacity(stored.0 as usize * stored.1 as usize * 3);
    for y in 0..stored.1 {
        for x in 0..stored.0 {
            let (display_x, display_y) = displayed_position(orientation, (x, y), stored);
            // Pixel centres, so the chart is symmetric however it is turned.
            let colour = chart_colour(
                (f64::from(display_x) + 0.5) / f64::from(width),
                (f64::from(display_y) + 0.5) / f64::from(height),
                orientation,
            );
            pixels.extend_from_slice(&colour);
        }
    }
    let mut jpeg = Vec::new();
    let mut encoder = Encoder::new(&mut jpeg, 90);
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    encoder
        .add_exif_metadata(&exif_tiff(orientation))
        .expect("the EXIF block is a few dozen bytes, far below the segment limit");
    encoder
        .encode(&pixels, stored.0 as u16, stored.1 as u16, ColorType::Rgb)
        .expect("encoding checked dimensions into memory cannot fail");
    jpeg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exif_orientation;

    const DISPLAY: (u32, u32) = (300, 200);

    fn close(a: [u8; 3], b: [u8; 3]) -> bool {
        a.iter().zip(b).all(|(&a, b)| a.abs_diff(b) <= 24)
    }

    /// Stored pixel at fractions of the stored raster.
    fn stored_pixel(image: &image::RgbImage, fx: f64, fy: f64) -> [u8; 3] {
        let x = (fx * f64::from(image.width())) as u32;
        let y = (fy * f64::from(image.height())) as u32;
        image.get_pixel(x.min(image.width() - 1), y.min(image.height() - 1)).0
    }

    /// Written from the tag's wording (TIFF 6.0: "the 0th row represents the visual …, the 0th
    /// column the visual …"), not from `displayed_position`: which stored corner holds the
    /// displayed top-left and top-right, as (right?, bottom?) of the stored raster.
    fn stored_corners(orientation: u8) -> ((bool, bool), (bool, bool)) {
        match orientation {
            1 => ((false, false), (true, false)),
            2 => ((true, false), (false, false)),
            3 => ((true, true), (false, true)),
            4 => ((false, true), (true, true)),
            5 => ((false, false), (false, true)),
            6 => ((false, true), (false, false)),
            7 => ((true, true), (true, false)),
            8 => ((true, false), (true, true)),
            _ => unreachable!(),
        }
    }

    #[test]
    fn every_orientation_stores_the_chart_turned_back_and_tags_it() {
        for orientation in 1..=8 {
            let jpeg = orientation_chart(orientation, DISPLAY);
            assert_eq!(exif_orientation(&jpeg), Some(u16::from(orientation)));
            // A real APP1 segment right after SOI's neighbours: marker 0xffe1 with "Exif\0\0".
            let app1 =
                jpeg.windows(10).position(|w| w[0] == 0xff && w[1] == 0xe1 && &w[4..10] == b"Exif\0\0");
            assert!(app1.is_some_and(|at| at < 64), "orientation {orientation}: no APP1 Exif segment");
            let image = image::load_from_memory(&jpeg).unwrap().to_rgb8();
            assert_eq!((image.width(), image.height()), stored_size(orientation, DISPLAY));
            let (top_left, top_right) = stored_corners(orientation);
            let at = |(right, bottom): (bool, bool)| {
                stored_pixel(&image, if right { 0.95 } else { 0.05 }, if bottom { 0.95 } else { 0.05 })
            };
            assert!(close(at(top_left), CHART_TOP_LEFT), "orientation {orientation}: {:?}", at(top_left));
            assert!(close(at(top_right), CHART_TOP_RIGHT), "orientation {orientation}: {:?}", at(top_right));
            let opposite = |(right, bottom): (bool, bool)| (!right, !bottom);
            assert!(close(at(opposite(top_left)), CHART_BOTTOM_RIGHT), "orientation {orientation}");
            assert!(close(at(opposite(top_right)), CHART_BOTTOM_LEFT), "orientation {orientation}");
        }
    }

    #[test]
    fn turned_upright_every_chart_is_the_same_picture() {
        let upright = image::load_from_memory(&orientation_chart(1, DISPLAY)).unwrap().to_rgb8();
        for orientation in 2..=8 {
            let stored = image::load_from_memory(&orientation_chart(orientation, DISPLAY)).unwrap().to_rgb8();
            let size = (stored.width(), stored.height());
            let mut differing = 0;
            let mut compared = 0;
            for y in (0..size.1).step_by(3) {
                for x in (0..size.0).step_by(3) {
                    let (display_x, display_y) = displayed_position(orientation, (x, y), size);
                    // The digit differs on purpose.
                    let fx = f64::from(display_x) / f64::from(DISPLAY.0);
                    let fy = f64::from(display_y) / f64::from(DISPLAY.1);
                    if (0.08..0.24).contains(&fx) && (0.36..0.64).contains(&fy) {
                        continue;
                    }
                    compared += 1;
                    if !close(stored.get_pixel(x, y).0, upright.get_pixel(display_x, display_y).0) {
                        differing += 1;
                    }
                }
            }
            // JPEG blurs a pixel or two along edges; a wrong turn would differ on a third.
            assert!(differing * 50 < compared, "orientation {orientation}: {differing} of {compared} differ");
        }
    }

    #[test]
    fn the_arrow_points_up() {
        assert!(chart_arrow_contains(0.5, 0.12));
        assert!(chart_arrow_contains(0.40, 0.44), "the head is wide at its base");
        assert!(!chart_arrow_contains(0.40, 0.56), "the shaft below is narrow");
        assert!(!chart_arrow_contains(0.5, 0.95));
        assert_eq!(chart_colour(0.5, 0.3, 1), CHART_ARROW);
        assert_eq!(chart_colour(0.05, 0.95, 1), CHART_BOTTOM_LEFT);
    }

    #[test]
    fn displayed_positions_stay_inside_the_displayed_chart() {
        for orientation in 1..=8 {
            let stored = stored_size(orientation, DISPLAY);
            for corner in [(0, 0), (stored.0 - 1, 0), (0, stored.1 - 1), (stored.0 - 1, stored.1 - 1)] {
                let (x, y) = displayed_position(orientation, corner, stored);
                assert!(x < DISPLAY.0 && y < DISPLAY.1, "orientation {orientation}: {corner:?} -> {x},{y}");
            }
        }
    }
}
