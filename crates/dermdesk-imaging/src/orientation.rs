//! EXIF orientation as a viewer applies it: a clockwise rotation followed by a left-right
//! mirror of the rotated picture (the order a viewport's flip works in: OpenSeadragon's
//! `setRotation(degrees)` plus `setFlip(true)` mirror what is on screen). Photos are served in
//! stored orientation; turning them upright is the viewer's job, because rotating a 24 MP
//! frame costs more than decoding it.

use crate::Raster;

/// How to show stored pixels upright for an EXIF orientation tag (1 to 8; anything else is
/// shown as stored, as viewers do): `(rotation_degrees, flip_horizontal)` = rotate clockwise by
/// 0, 90, 180 or 270 degrees, then, if `flip_horizontal`, mirror the rotated picture left to
/// right.
pub fn display_transform(orientation: u8) -> (u16, bool) {
    match orientation {
        2 => (0, true),
        3 => (180, false),
        4 => (180, true),
        5 => (90, true),
        6 => (90, false),
        7 => (270, true),
        8 => (270, false),
        _ => (0, false),
    }
}

/// Applies [`display_transform`] to stored pixels. Slow and simple on purpose: the app never
/// calls it on a full frame (the viewer rotates); tests use it to check the transform.
pub fn apply_display_transform(stored: &Raster, orientation: u8) -> Raster {
    let (rotation, flip) = display_transform(orientation);
    let rotated = match rotation {
        90 => remap(stored, stored.height, stored.width, |x, y| (y, stored.height - 1 - x)),
        180 => {
            remap(stored, stored.width, stored.height, |x, y| (stored.width - 1 - x, stored.height - 1 - y))
        }
        270 => remap(stored, stored.height, stored.width, |x, y| (stored.width - 1 - y, x)),
        _ => stored.clone(),
    };
    if flip {
        remap(&rotated, rotated.width, rotated.height, |x, y| (rotated.width - 1 - x, y))
    } else {
        rotated
    }
}

/// A `width` x `height` raster whose pixel (x, y) is `source`'s pixel at `from(x, y)`.
fn remap(source: &Raster, width: u32, height: u32, from: impl Fn(u32, u32) -> (u32, u32)) -> Raster {
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            let (source_x, source_y) = from(x, y);
            pixels.extend_from_slice(&source.pixel(source_x, source_y));
        }
    }
    Raster::new(width, height, pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The EXIF definition, independently: for each tag, where the stored picture's first row
    /// and first column are when the picture is upright ("0th row at top, 0th column at left
    /// side" and so on, CIPA DC-008 table).
    fn stored_from_upright(upright: &Raster, orientation: u8) -> Raster {
        let (w, h) = (upright.width, upright.height);
        // For stored pixel (x, y): which upright pixel it shows.
        match orientation {
            1 => remap(upright, w, h, |x, y| (x, y)),
            2 => remap(upright, w, h, |x, y| (w - 1 - x, y)),
            3 => remap(upright, w, h, |x, y| (w - 1 - x, h - 1 - y)),
            4 => remap(upright, w, h, |x, y| (x, h - 1 - y)),
            // Stored rows are upright columns from here on.
            5 => remap(upright, h, w, |x, y| (y, x)),
            6 => remap(upright, h, w, |x, y| (w - 1 - y, x)),
            7 => remap(upright, h, w, |x, y| (w - 1 - y, h - 1 - x)),
            8 => remap(upright, h, w, |x, y| (y, h - 1 - x)),
            _ => unreachable!(),
        }
    }

    #[test]
    fn every_orientation_turns_stored_pixels_upright() {
        // A 3x2 picture with six different pixels: any wrong turn or mirror shows.
        let upright = Raster::new(3, 2, (0..18).collect());
        for orientation in 1..=8 {
            let stored = stored_from_upright(&upright, orientation);
            assert_eq!(apply_display_transform(&stored, orientation), upright, "orientation {orientation}");
        }
    }

    #[test]
    fn unknown_tags_are_shown_as_stored() {
        assert_eq!(display_transform(0), (0, false));
        assert_eq!(display_transform(9), (0, false));
    }
}
