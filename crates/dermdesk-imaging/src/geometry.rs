//! The Deep Zoom (DZI) tile grid: level sizes, tile columns and rows, and each tile's
//! rectangle with its overlap. Pure arithmetic, the same as `vips dzsave` with its defaults
//! (254-pixel tiles, 1 pixel of overlap, levels down to 1x1), so OpenSeadragon's DZI tile
//! source reads it as it reads vips' output.

/// Tile size without overlap (vips dzsave's default).
pub const DZI_TILE_SIZE: u32 = 254;
/// Pixels each tile shares with its neighbours on every inner side (vips dzsave's default).
pub const DZI_OVERLAP: u32 = 1;

/// The tile grid of one photo, in stored orientation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DziGeometry {
    pub width: u32,
    pub height: u32,
    pub tile_size: u32,
    pub overlap: u32,
}

/// One tile's place in its level, overlap included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl DziGeometry {
    /// The grid vips dzsave makes by default.
    pub fn new(width: u32, height: u32) -> DziGeometry {
        assert!(width >= 1 && height >= 1, "an image has at least one pixel");
        DziGeometry { width, height, tile_size: DZI_TILE_SIZE, overlap: DZI_OVERLAP }
    }

    /// The number of levels: level 0 is 1x1, the last (`levels() - 1`) is full resolution,
    /// each level half the next (rounded up).
    pub fn levels(&self) -> u32 {
        let longest = self.width.max(self.height);
        // ceil(log2(longest)) + 1
        (u32::BITS - (longest - 1).leading_zeros()) + 1
    }

    /// The highest level: full resolution.
    pub fn max_level(&self) -> u32 {
        self.levels() - 1
    }

    /// Width and height of `level`: `ceil(size / 2^(max_level - level))`.
    pub fn level_size(&self, level: u32) -> (u32, u32) {
        let shift = self.max_level() - level.min(self.max_level());
        let scaled = |size: u32| ((u64::from(size) + (1u64 << shift) - 1) >> shift) as u32;
        (scaled(self.width), scaled(self.height))
    }

    /// Tile columns and rows of `level`.
    pub fn tiles(&self, level: u32) -> (u32, u32) {
        let (width, height) = self.level_size(level);
        (width.div_ceil(self.tile_size), height.div_ceil(self.tile_size))
    }

    /// The rectangle of tile (`column`, `row`) of `level`, or `None` when there is no such
    /// tile. Inner edges carry `overlap` extra pixels; the image's own edges none.
    pub fn tile_rect(&self, level: u32, column: u32, row: u32) -> Option<TileRect> {
        if level > self.max_level() {
            return None;
        }
        let (columns, rows) = self.tiles(level);
        if column >= columns || row >= rows {
            return None;
        }
        let (width, height) = self.level_size(level);
        let span = |index: u32, size: u32| {
            let start = (index * self.tile_size).saturating_sub(if index > 0 { self.overlap } else { 0 });
            let end = ((index + 1) * self.tile_size + self.overlap).min(size);
            (start, end - start)
        };
        let (x, tile_width) = span(column, width);
        let (y, tile_height) = span(row, height);
        Some(TileRect { x, y, width: tile_width, height: tile_height })
    }

    /// Every tile of every level, lowest level first.
    pub fn tile_count(&self) -> u64 {
        (0..self.levels())
            .map(|level| {
                let (columns, rows) = self.tiles(level);
                u64::from(columns) * u64::from(rows)
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_24_megapixel_photo_has_14_levels_and_vips_edges() {
        let grid = DziGeometry::new(6000, 4000);
        assert_eq!(grid.levels(), 14);
        assert_eq!(grid.level_size(13), (6000, 4000));
        assert_eq!(grid.level_size(12), (3000, 2000));
        assert_eq!(grid.level_size(2), (3, 2));
        assert_eq!(grid.level_size(1), (2, 1));
        assert_eq!(grid.level_size(0), (1, 1));
        assert_eq!(grid.tiles(13), (24, 16));
        assert_eq!(grid.tiles(0), (1, 1));
        // First tile: no overlap on the image's edges; inner tiles: one pixel each side.
        assert_eq!(grid.tile_rect(13, 0, 0), Some(TileRect { x: 0, y: 0, width: 255, height: 255 }));
        assert_eq!(grid.tile_rect(13, 1, 1), Some(TileRect { x: 253, y: 253, width: 256, height: 256 }));
        // Last column: 6000 - 23 * 254 = 158 pixels, plus the overlap on its left.
        assert_eq!(grid.tile_rect(13, 23, 15), Some(TileRect { x: 5841, y: 3809, width: 159, height: 191 }));
        assert_eq!(grid.tile_rect(13, 24, 0), None);
        assert_eq!(grid.tile_rect(14, 0, 0), None);
    }

    #[test]
    fn powers_of_two_and_single_pixels() {
        assert_eq!(DziGeometry::new(1, 1).levels(), 1);
        assert_eq!(DziGeometry::new(2, 1).levels(), 2);
        assert_eq!(DziGeometry::new(256, 256).levels(), 9);
        assert_eq!(DziGeometry::new(257, 3).levels(), 10);
        assert_eq!(DziGeometry::new(257, 3).level_size(8), (129, 2));
    }
}
