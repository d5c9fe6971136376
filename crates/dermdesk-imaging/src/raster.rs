//! Decoded pixels (3 bytes a pixel, rows top to bottom) and the two ways they are made
//! smaller: exact 2x2 averages for pyramid levels, area averages for previews.

/// Three 8-bit channels a pixel, rows top to bottom, no padding. The channels are whatever the
/// decoder gave (RGB here; the averaging does not care).
#[derive(Clone, PartialEq, Eq)]
pub struct Raster {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl std::fmt::Debug for Raster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never millions of bytes in a log or a failed assertion.
        write!(f, "Raster({}x{})", self.width, self.height)
    }
}

impl Raster {
    pub fn new(width: u32, height: u32, pixels: Vec<u8>) -> Raster {
        assert_eq!(pixels.len(), width as usize * height as usize * 3, "pixel buffer size");
        Raster { width, height, pixels }
    }

    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let at = (y as usize * self.width as usize + x as usize) * 3;
        [self.pixels[at], self.pixels[at + 1], self.pixels[at + 2]]
    }

    /// Copies the rectangle into `out` (cleared first), rows packed.
    pub fn copy_rect(&self, x: u32, y: u32, width: u32, height: u32, out: &mut Vec<u8>) {
        let stride = self.width as usize * 3;
        let row_bytes = width as usize * 3;
        out.clear();
        out.reserve(row_bytes * height as usize);
        for row in y..y + height {
            let start = row as usize * stride + x as usize * 3;
            out.extend_from_slice(&self.pixels[start..start + row_bytes]);
        }
    }
}

/// The next pyramid level down: each pixel the rounded mean of a 2x2 block. An odd last
/// column or row averages the pixels it has (its block is clipped at the edge), so a level of
/// `w` x `h` gives `ceil(w/2)` x `ceil(h/2)`, as Deep Zoom's level sizes require.
pub fn halve(source: &Raster) -> Raster {
    let (width, height) = (source.width.div_ceil(2), source.height.div_ceil(2));
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    let stride = source.width as usize * 3;
    let pairs = (source.width / 2) as usize;
    let odd_width = source.width % 2 == 1;
    for (y, out_row) in pixels.chunks_exact_mut(width as usize * 3).enumerate() {
        let top_index = 2 * y;
        let top = &source.pixels[top_index * stride..][..stride];
        if top_index + 1 < source.height as usize {
            let bottom = &source.pixels[(top_index + 1) * stride..][..stride];
            // The hot loop: six bytes of two rows in, three bytes out.
            for ((out, top), bottom) in
                out_row.chunks_exact_mut(3).zip(top.chunks_exact(6)).zip(bottom.chunks_exact(6))
            {
                for channel in 0..3 {
                    let sum = u16::from(top[channel])
                        + u16::from(top[channel + 3])
                        + u16::from(bottom[channel])
                        + u16::from(bottom[channel + 3]);
                    out[channel] = ((sum + 2) >> 2) as u8;
                }
            }
            if odd_width {
                let last = &mut out_row[pairs * 3..];
                for channel in 0..3 {
                    let sum = u16::from(top[pairs * 6 + channel]) + u16::from(bottom[pairs * 6 + channel]);
                    last[channel] = ((sum + 1) >> 1) as u8;
                }
            }
        } else {
            // The last, odd row: average pairs of columns only.
            for (out, top) in out_row.chunks_exact_mut(3).zip(top.chunks_exact(6)) {
                for channel in 0..3 {
                    let sum = u16::from(top[channel]) + u16::from(top[channel + 3]);
                    out[channel] = ((sum + 1) >> 1) as u8;
                }
            }
            if odd_width {
                out_row[pairs * 3..].copy_from_slice(&top[pairs * 6..pairs * 6 + 3]);
            }
        }
    }
    Raster { width, height, pixels }
}

/// Shrinks to `width` x `height` (each no larger than the source's) by averaging every source
/// pixel that falls in each target pixel (a box filter; source pixels split between two target
/// pixels go to the first). Used after a DCT-scaled decode has done most of the shrinking, so
/// the remaining factor is below 2 and a box is as good as anything here.
pub fn area_resize(source: &Raster, width: u32, height: u32) -> Raster {
    assert!(width >= 1 && height >= 1 && width <= source.width && height <= source.height, "shrink only");
    if (width, height) == (source.width, source.height) {
        return source.clone();
    }
    let spans = |from: u32, to: u32| -> Vec<(usize, usize)> {
        (0..to as u64)
            .map(|index| {
                let start = (index * u64::from(from) / u64::from(to)) as usize;
                let end = ((index + 1) * u64::from(from) / u64::from(to)) as usize;
                (start, end.max(start + 1))
            })
            .collect()
    };
    let columns = spans(source.width, width);
    let rows = spans(source.height, height);
    // Horizontal pass into sums per target column (u32: up to 2^24 pixels of 255 per sum).
    let mut sums = vec![0u32; width as usize * 3];
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
    let stride = source.width as usize * 3;
    for &(row_start, row_end) in &rows {
        sums.iter_mut().for_each(|sum| *sum = 0);
        for row in row_start..row_end {
            let line = &source.pixels[row * stride..][..stride];
            for (sum, &(start, end)) in sums.chunks_exact_mut(3).zip(&columns) {
                for pixel in line[start * 3..end * 3].chunks_exact(3) {
                    sum[0] += u32::from(pixel[0]);
                    sum[1] += u32::from(pixel[1]);
                    sum[2] += u32::from(pixel[2]);
                }
            }
        }
        let row_count = (row_end - row_start) as u32;
        for (sum, &(start, end)) in sums.chunks_exact(3).zip(&columns) {
            let count = row_count * (end - start) as u32;
            for &channel in sum {
                pixels.push(((channel + count / 2) / count) as u8);
            }
        }
    }
    Raster { width, height, pixels }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32) -> Raster {
        let pixels = (0..height)
            .flat_map(|y| (0..width).flat_map(move |x| [(x * 7 + y) as u8, (y * 5) as u8, (x ^ y) as u8]))
            .collect();
        Raster::new(width, height, pixels)
    }

    /// The 2x2 mean, written the slow, obvious way.
    fn mean_of_block(source: &Raster, x: u32, y: u32) -> [u8; 3] {
        let mut sum = [0u32; 3];
        let mut count = 0;
        for yy in 2 * y..(2 * y + 2).min(source.height) {
            for xx in 2 * x..(2 * x + 2).min(source.width) {
                let pixel = source.pixel(xx, yy);
                for channel in 0..3 {
                    sum[channel] += u32::from(pixel[channel]);
                }
                count += 1;
            }
        }
        sum.map(|s| ((s + count / 2) / count) as u8)
    }

    #[test]
    fn halving_is_the_2x2_mean_including_odd_edges() {
        for (width, height) in [(8, 6), (7, 5), (1, 1), (1, 4), (5, 1), (255, 3)] {
            let source = gradient(width, height);
            let half = halve(&source);
            assert_eq!((half.width, half.height), (width.div_ceil(2), height.div_ceil(2)));
            for y in 0..half.height {
                for x in 0..half.width {
                    assert_eq!(half.pixel(x, y), mean_of_block(&source, x, y), "{width}x{height} at {x},{y}");
                }
            }
        }
    }

    #[test]
    fn area_resize_averages_whole_blocks_and_keeps_flat_colour() {
        let source = gradient(12, 9);
        let third = area_resize(&source, 4, 3);
        let mut sum = [0u32; 3];
        for y in 0..3 {
            for x in 0..3 {
                let pixel = source.pixel(x, y);
                (0..3).for_each(|c| sum[c] += u32::from(pixel[c]));
            }
        }
        assert_eq!(third.pixel(0, 0), sum.map(|s| ((s + 4) / 9) as u8));
        let flat = Raster::new(10, 7, [10u8, 200, 90].repeat(70));
        let small = area_resize(&flat, 3, 2);
        assert!(small.pixels.chunks(3).all(|p| p == [10, 200, 90]));
    }

    #[test]
    fn copying_a_rectangle() {
        let source = gradient(5, 4);
        let mut out = Vec::new();
        source.copy_rect(1, 2, 3, 2, &mut out);
        assert_eq!(&out[..3], &source.pixel(1, 2));
        assert_eq!(&out[out.len() - 3..], &source.pixel(3, 3));
        assert_eq!(out.len(), 3 * 2 * 3);
    }
}
