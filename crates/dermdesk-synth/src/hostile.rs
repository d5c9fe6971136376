//! Synthetic hostile photos for tests: small, valid files whose headers claim huge sizes (the
//! shape of a decompression bomb — a few hundred bytes promising gigabytes of pixels).

use std::io::Cursor;

fn encoded(format: image::ImageFormat) -> Vec<u8> {
    let image = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 4) as u8, (y * 5) as u8, 128]));
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), format).expect("encoding into memory");
    bytes
}

/// A valid baseline JPEG whose frame header (SOF0) claims `width` x `height`.
pub fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut bytes = encoded(image::ImageFormat::Jpeg);
    let sof = bytes.windows(2).position(|w| w == [0xff, 0xc0]).expect("a baseline frame header");
    bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    bytes
}

/// A valid PNG whose IHDR (its CRC fixed) claims `width` x `height`.
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = encoded(image::ImageFormat::Png);
    bytes[16..20].copy_from_slice(&width.to_be_bytes());
    bytes[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// CRC-32 (IEEE) as PNG chunks use it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_headers_claim_what_was_asked() {
        assert_eq!(
            image::ImageReader::new(std::io::Cursor::new(super::jpeg_claiming(65535, 40)))
                .with_guessed_format()
                .unwrap()
                .into_dimensions()
                .unwrap(),
            (65535, 40)
        );
        assert_eq!(
            image::ImageReader::new(std::io::Cursor::new(super::png_claiming(100_000, 7)))
                .with_guessed_format()
                .unwrap()
                .into_dimensions()
                .unwrap(),
            (100_000, 7)
        );
    }
}
