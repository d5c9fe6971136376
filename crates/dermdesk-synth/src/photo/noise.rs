//! Cheap deterministic noise for the photo renderer: integer hashing, value noise on a
//! precomputed lattice, ridges and jittered dots, plus the few maths helpers the renderer needs.
//!
//! Only basic IEEE-754 arithmetic is used (no `floor`, `exp`, `sin` or `powf` from the platform's
//! maths library, whose last bits differ between systems), so a seed gives bit-identical pixels,
//! and therefore identical content ids, on every machine.

use std::ops::{Add, Mul, Sub};

/// A point or offset in the plane, in millimetres unless a caller says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Vec2 {
    pub x: f32,
    pub y: f32,
}

impl Vec2 {
    pub const fn new(x: f32, y: f32) -> Vec2 {
        Vec2 { x, y }
    }
    pub fn dot(self, other: Vec2) -> f32 {
        self.x * other.x + self.y * other.y
    }
    pub fn length_squared(self) -> f32 {
        self.dot(self)
    }
    pub fn length(self) -> f32 {
        self.length_squared().sqrt()
    }
    /// Rotates by the angle whose cosine and sine are given.
    pub fn rotate(self, (cosine, sine): (f32, f32)) -> Vec2 {
        Vec2::new(self.x * cosine - self.y * sine, self.x * sine + self.y * cosine)
    }
    pub fn perpendicular(self) -> Vec2 {
        Vec2::new(-self.y, self.x)
    }
}

impl Add for Vec2 {
    type Output = Vec2;
    fn add(self, other: Vec2) -> Vec2 {
        Vec2::new(self.x + other.x, self.y + other.y)
    }
}

impl Sub for Vec2 {
    type Output = Vec2;
    fn sub(self, other: Vec2) -> Vec2 {
        Vec2::new(self.x - other.x, self.y - other.y)
    }
}

impl Mul<f32> for Vec2 {
    type Output = Vec2;
    fn mul(self, factor: f32) -> Vec2 {
        Vec2::new(self.x * factor, self.y * factor)
    }
}

/// A well-mixed 32-bit hash of a lattice point (the "lowbias32" finaliser).
#[inline]
pub(crate) fn hash(x: i32, y: i32, seed: u32) -> u32 {
    let mut hashed = (x as u32).wrapping_mul(0x8DA6_B343)
        ^ (y as u32).wrapping_mul(0xD816_3841)
        ^ seed.wrapping_mul(0xCB1A_B31F);
    hashed ^= hashed >> 16;
    hashed = hashed.wrapping_mul(0x7FEB_352D);
    hashed ^= hashed >> 15;
    hashed = hashed.wrapping_mul(0x846C_A68B);
    hashed ^= hashed >> 16;
    hashed
}

/// Derives a further independent hash from one already computed.
#[inline]
pub(crate) fn rehash(hashed: u32) -> u32 {
    hash(hashed as i32, 0x5bd1_e995_u32 as i32, 0x68e3_1da4)
}

/// Maps a hash to [0, 1).
#[inline]
pub(crate) fn unit(hashed: u32) -> f32 {
    (hashed >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Floor as an integer, without the maths-library call `f32::floor` becomes on baseline x86-64.
#[inline]
pub(crate) fn floor_to_int(value: f32) -> i32 {
    let truncated = value as i32;
    if (truncated as f32) > value {
        truncated - 1
    } else {
        truncated
    }
}

#[inline]
pub(crate) fn clamp01(value: f32) -> f32 {
    value.clamp(0.0, 1.0)
}

#[inline]
pub(crate) fn lerp(from: f32, to: f32, amount: f32) -> f32 {
    from + (to - from) * amount
}

#[inline]
pub(crate) fn mix(from: [f32; 3], to: [f32; 3], amount: f32) -> [f32; 3] {
    [lerp(from[0], to[0], amount), lerp(from[1], to[1], amount), lerp(from[2], to[2], amount)]
}

#[inline]
pub(crate) fn scale(colour: [f32; 3], factor: f32) -> [f32; 3] {
    [colour[0] * factor, colour[1] * factor, colour[2] * factor]
}

/// 0 at or below `edge0`, 1 at or above `edge1`, a smooth S in between (either order).
#[inline]
pub(crate) fn smoothstep(edge0: f32, edge1: f32, value: f32) -> f32 {
    // A multiplication by the reciprocal: with constant edges the compiler folds it, where a
    // division would cost a dozen cycles per call.
    let t = clamp01((value - edge0) * (1.0 / (edge1 - edge0)));
    t * t * (3.0 - 2.0 * t)
}

/// A smooth bump: 1 at 0, falling to 0 at |t| = 1. Stands in for a Gaussian without `exp`.
#[inline]
pub(crate) fn bump(t: f32) -> f32 {
    let s = 1.0 - t * t;
    if s <= 0.0 {
        0.0
    } else {
        s * s
    }
}

/// Sine and cosine from plain arithmetic (range reduction and a Taylor polynomial; error
/// below 1e-6, far finer than any pixel).
pub(crate) fn sin_cos(angle: f32) -> (f32, f32) {
    (sine(angle), sine(angle + std::f32::consts::FRAC_PI_2))
}

fn sine(angle: f32) -> f32 {
    use std::f32::consts::{PI, TAU};
    let turns = floor_to_int(angle / TAU + 0.5) as f32;
    let mut x = angle - turns * TAU;
    if x > PI / 2.0 {
        x = PI - x;
    } else if x < -PI / 2.0 {
        x = -PI - x;
    }
    let x2 = x * x;
    x * (1.0
        + x2 * (-1.0 / 6.0
            + x2 * (1.0 / 120.0 + x2 * (-1.0 / 5040.0 + x2 * (1.0 / 362_880.0 - x2 / 39_916_800.0)))))
}

/// Cosine and sine packed the way `Vec2::rotate` takes them.
pub(crate) fn rotation(angle: f32) -> (f32, f32) {
    let (sine, cosine) = sin_cos(angle);
    (cosine, sine)
}

const LATTICE_SIZE: usize = 512;
const LATTICE_MASK: i32 = LATTICE_SIZE as i32 - 1;
/// One extra column repeats the first, so a cell's right-hand corners never need wrapping.
const LATTICE_STRIDE: usize = LATTICE_SIZE + 1;

/// Random values on a 512 x 512 wrapping lattice: value noise is four loads and a blend.
/// Each use samples it with its own offset, scale and rotation, so the period never lines up.
pub(crate) struct Lattice {
    values: Box<[f32]>,
}

impl Lattice {
    pub fn new(seed: u32) -> Lattice {
        let mut values = vec![0.0; LATTICE_STRIDE * LATTICE_SIZE];
        for row in 0..LATTICE_SIZE {
            for column in 0..LATTICE_STRIDE {
                let wrapped = column % LATTICE_SIZE;
                values[row * LATTICE_STRIDE + column] = unit(hash(wrapped as i32, row as i32, seed));
            }
        }
        Lattice { values: values.into_boxed_slice() }
    }

    /// Smoothly interpolated noise in [0, 1] with features about one unit across.
    #[inline]
    pub fn value(&self, point: Vec2) -> f32 {
        let cell_x = floor_to_int(point.x);
        let cell_y = floor_to_int(point.y);
        let fraction_x = point.x - cell_x as f32;
        let fraction_y = point.y - cell_y as f32;
        let column = (cell_x & LATTICE_MASK) as usize;
        let row0 = (cell_y & LATTICE_MASK) as usize * LATTICE_STRIDE;
        let row1 = ((cell_y + 1) & LATTICE_MASK) as usize * LATTICE_STRIDE;
        let top_left = self.values[row0 + column];
        let top_right = self.values[row0 + column + 1];
        let bottom_left = self.values[row1 + column];
        let bottom_right = self.values[row1 + column + 1];
        let blend_x = fraction_x * fraction_x * (3.0 - 2.0 * fraction_x);
        let blend_y = fraction_y * fraction_y * (3.0 - 2.0 * fraction_y);
        let top = lerp(top_left, top_right, blend_x);
        let bottom = lerp(bottom_left, bottom_right, blend_x);
        lerp(top, bottom, blend_y)
    }
}

/// How one layer of noise is laid over the body: a rotation and scale from millimetres to
/// lattice units, and an offset so that different layers read different parts of the lattice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NoiseFrame {
    x_axis: Vec2,
    y_axis: Vec2,
    offset: Vec2,
}

impl NoiseFrame {
    /// Features `feature_mm` across, stretched by `stretch` along the direction `angle`.
    pub fn new(feature_mm: f32, stretch: f32, angle: f32, offset_seed: u32) -> NoiseFrame {
        let (cosine, sine) = rotation(angle);
        let along = 1.0 / (feature_mm * stretch);
        let across = 1.0 / feature_mm;
        NoiseFrame {
            x_axis: Vec2::new(cosine * along, sine * along),
            y_axis: Vec2::new(-sine * across, cosine * across),
            offset: Vec2::new(
                (hash(offset_seed as i32, 1, 77) % 4096) as f32,
                (hash(offset_seed as i32, 2, 77) % 4096) as f32,
            ),
        }
    }

    #[inline]
    pub fn apply(&self, point: Vec2) -> Vec2 {
        Vec2::new(point.dot(self.x_axis), point.dot(self.y_axis)) + self.offset
    }
}

/// 1 on the middle contour of a noise value (|value - 0.5| = 0), falling to 0 at `width`:
/// the contours of value noise form closed, wandering loops that read as skin furrows,
/// pigment network or capillaries.
#[inline]
pub(crate) fn ridge(value: f32, width: f32) -> f32 {
    let t = (value - 0.5).abs() / width;
    if t >= 1.0 {
        0.0
    } else {
        1.0 - t * t * (3.0 - 2.0 * t)
    }
}

/// A dot placed at a random spot in each `cell_mm` square (present with `probability`),
/// with radius `radius_fraction` of the cell (varied per dot). Returns its coverage at `point`
/// (anti-aliased over `soft_mm`) and the dot's hash, for per-dot colour.
#[inline]
pub(crate) fn jittered_dot(
    point: Vec2,
    cell_mm: f32,
    radius_fraction: f32,
    probability: f32,
    soft_mm: f32,
    seed: u32,
) -> (f32, u32) {
    let scaled = point * (1.0 / cell_mm);
    let cell_x = floor_to_int(scaled.x);
    let cell_y = floor_to_int(scaled.y);
    let hashed = hash(cell_x, cell_y, seed);
    if unit(hashed) >= probability {
        return (0.0, hashed);
    }
    let second_hash = rehash(hashed);
    let radius = radius_fraction * (0.6 + 0.8 * unit(second_hash));
    // Keep the dot inside its cell so one cell is all a pixel needs to look at.
    let margin = radius.min(0.45);
    let span = 1.0 - 2.0 * margin;
    let centre_x = cell_x as f32 + margin + span * (((second_hash >> 4) & 0xff) as f32 / 255.0);
    let centre_y = cell_y as f32 + margin + span * (((second_hash >> 12) & 0xff) as f32 / 255.0);
    let distance = (scaled - Vec2::new(centre_x, centre_y)).length() * cell_mm;
    let radius_mm = radius * cell_mm;
    let coverage = smoothstep(radius_mm + soft_mm, radius_mm - soft_mm, distance);
    // A dot far smaller than the blur would otherwise vanish or sparkle; fade it instead.
    let fade = (radius_mm / soft_mm).min(1.0);
    (coverage * fade, second_hash)
}

/// Worley (cellular) noise over one random point per cell, `point` in cell units: distances to
/// the nearest and second-nearest points, and the nearest point's hash. Half of their difference
/// is roughly the distance to the cell wall, which draws polygonal nets (pigment network).
#[inline]
pub(crate) fn cellular(point: Vec2, seed: u32) -> (f32, f32, u32) {
    let cell_x = floor_to_int(point.x);
    let cell_y = floor_to_int(point.y);
    let mut nearest = f32::MAX;
    let mut second = f32::MAX;
    let mut nearest_hash = 0;
    for offset_y in -1..=1 {
        for offset_x in -1..=1 {
            let x = cell_x + offset_x;
            let y = cell_y + offset_y;
            let hashed = hash(x, y, seed);
            let site = Vec2::new(
                x as f32 + 0.1 + 0.8 * ((hashed & 0xffff) as f32 / 65_535.0),
                y as f32 + 0.1 + 0.8 * ((hashed >> 16) as f32 / 65_535.0),
            );
            let distance = (point - site).length_squared();
            if distance < nearest {
                second = nearest;
                nearest = distance;
                nearest_hash = hashed;
            } else if distance < second {
                second = distance;
            }
        }
    }
    (nearest.sqrt(), second.sqrt(), nearest_hash)
}

/// Distance from `value` to the nearest whole number (0 to 0.5).
#[inline]
pub(crate) fn distance_to_whole(value: f32) -> f32 {
    let below = floor_to_int(value) as f32;
    (value - below).min(below + 1.0 - value)
}

/// Distance from `point` to the segment from `start` to `end`.
#[inline]
pub(crate) fn distance_to_segment(point: Vec2, start: Vec2, end: Vec2) -> f32 {
    let along = end - start;
    let length_squared = along.length_squared().max(1e-12);
    let t = clamp01((point - start).dot(along) / length_squared);
    (point - (start + along * t)).length()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_and_cosine_match_the_standard_library_closely() {
        let mut angle = -20.0_f32;
        while angle < 20.0 {
            let (sine, cosine) = sin_cos(angle);
            assert!((sine - angle.sin()).abs() < 2e-6, "sin({angle})");
            assert!((cosine - angle.cos()).abs() < 2e-6, "cos({angle})");
            angle += 0.01;
        }
    }

    #[test]
    fn floor_to_int_matches_floor() {
        for value in [-2.5_f32, -2.0, -0.1, 0.0, 0.1, 1.0, 1.9, 1234.75] {
            assert_eq!(floor_to_int(value), value.floor() as i32, "{value}");
        }
    }

    #[test]
    fn value_noise_is_continuous_and_spans_the_range() {
        let lattice = Lattice::new(7);
        let mut minimum = f32::MAX;
        let mut maximum = f32::MIN;
        for step in 0..20_000 {
            let point = Vec2::new(step as f32 * 0.013 - 100.0, step as f32 * 0.007 - 50.0);
            let value = lattice.value(point);
            let nearby = lattice.value(point + Vec2::new(0.001, 0.001));
            assert!((value - nearby).abs() < 0.01, "jump at {point:?}");
            minimum = minimum.min(value);
            maximum = maximum.max(value);
        }
        assert!(minimum < 0.1 && maximum > 0.9, "range {minimum}..{maximum}");
    }
}
