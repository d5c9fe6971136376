//! A whole Deep Zoom pyramid, every tile of every level encoded as JPEG, kept in memory.
//!
//! Built top down from one decode: the full-size level's tiles are encoded, the level is
//! halved (2x2 means) and dropped, and so on down to 1x1; so at most a level and its half are
//! held as pixels at once. The encoded pyramid of a 24 MP photo is a few MB where its pixels
//! are 72 MB (docs/PERFORMANCE.md).

use crate::encode::encode_rgb_into;
use crate::{decode, halve, DziGeometry, ImagingError, Raster, TILE_QUALITY};

/// Every tile of a photo, encoded.
pub struct Pyramid {
    geometry: DziGeometry,
    /// Per level (index = DZI level): the level's tiles back to back, and each tile's end
    /// offset, row by row.
    levels: Vec<Level>,
}

struct Level {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    columns: u32,
}

impl std::fmt::Debug for Pyramid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pyramid({}x{}, {} bytes)", self.geometry.width, self.geometry.height, self.encoded_bytes())
    }
}

impl Pyramid {
    /// Decodes `bytes` (bounded, see [`decode`]) and builds the pyramid.
    pub fn from_photo(bytes: &[u8]) -> Result<Pyramid, ImagingError> {
        decode(bytes).map(Pyramid::build)
    }

    /// Builds the pyramid of a full-size raster (consumed: its memory goes as soon as the
    /// next level exists).
    pub fn build(full: Raster) -> Pyramid {
        let geometry = DziGeometry::new(full.width, full.height);
        let mut levels = Vec::with_capacity(geometry.levels() as usize);
        let mut scratch = Vec::new();
        let mut current = full;
        for level in (0..geometry.levels()).rev() {
            debug_assert_eq!((current.width, current.height), geometry.level_size(level));
            levels.push(encode_level(&geometry, level, &current, &mut scratch));
            if level > 0 {
                current = halve(&current);
            }
        }
        levels.reverse();
        Pyramid { geometry, levels }
    }

    pub fn geometry(&self) -> DziGeometry {
        self.geometry
    }

    /// The JPEG bytes of one tile, or `None` when there is no such tile.
    pub fn tile(&self, level: u32, column: u32, row: u32) -> Option<&[u8]> {
        self.geometry.tile_rect(level, column, row)?;
        let level = &self.levels[level as usize];
        let index = (row * level.columns + column) as usize;
        let start = if index == 0 { 0 } else { level.ends[index - 1] };
        Some(&level.bytes[start..level.ends[index]])
    }

    /// Memory the encoded tiles take.
    pub fn encoded_bytes(&self) -> usize {
        self.levels
            .iter()
            .map(|level| level.bytes.len() + level.ends.len() * std::mem::size_of::<usize>())
            .sum()
    }
}

fn encode_level(geometry: &DziGeometry, level: u32, raster: &Raster, scratch: &mut Vec<u8>) -> Level {
    let (columns, rows) = geometry.tiles(level);
    let mut bytes = Vec::new();
    let mut ends = Vec::with_capacity((columns * rows) as usize);
    for row in 0..rows {
        for column in 0..columns {
            let rect = geometry.tile_rect(level, column, row).expect("inside the grid");
            raster.copy_rect(rect.x, rect.y, rect.width, rect.height, scratch);
            encode_rgb_into(scratch, rect.width, rect.height, TILE_QUALITY, &mut bytes);
            ends.push(bytes.len());
        }
    }
    bytes.shrink_to_fit();
    Level { bytes, ends, columns }
}

/// Every level as pixels, index = DZI level (for tests and measurements; the app keeps only
/// encoded tiles).
pub fn build_levels(full: Raster) -> Vec<Raster> {
    let levels = DziGeometry::new(full.width, full.height).levels();
    let mut all = vec![full];
    for _ in 1..levels {
        let next = halve(all.last().expect("at least one"));
        all.push(next);
    }
    all.reverse();
    all
}
