//! Checks a downloaded photo against its metadata before it may become visible: exact size,
//! SHA-256 equal to the content id, and an image header of the declared type and dimensions.
//! Pure: bytes in, verdict out.

use std::io::Cursor;

use dermdesk_protocol::PhotoMeta;
use sha2::{Digest, Sha256};

/// Why a downloaded photo was refused. The photo is not stored; the sync retries it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoProblem {
    #[error("received {got} bytes, expected {expected}")]
    WrongSize { expected: u64, got: u64 },
    #[error("contents do not match the photo's fingerprint (damaged in transit)")]
    WrongHash,
    #[error("not a readable {0} image")]
    Unreadable(String),
    #[error("image is {got_width}x{got_height}, the referral says {width}x{height}")]
    WrongDimensions { width: u32, height: u32, got_width: u32, got_height: u32 },
}

pub fn verify_photo(meta: &PhotoMeta, bytes: &[u8]) -> Result<(), PhotoProblem> {
    if bytes.len() as u64 != meta.size {
        return Err(PhotoProblem::WrongSize { expected: meta.size, got: bytes.len() as u64 });
    }
    if hex::encode(Sha256::digest(bytes)) != meta.content_id {
        return Err(PhotoProblem::WrongHash);
    }
    let format = match meta.media_type.as_str() {
        "image/jpeg" => image::ImageFormat::Jpeg,
        "image/png" => image::ImageFormat::Png,
        other => return Err(PhotoProblem::Unreadable(other.to_owned())),
    };
    // Reads the header only: cheap even for 24 MP photos.
    let (width, height) = image::ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|_| PhotoProblem::Unreadable(meta.media_type.clone()))?;
    if (width, height) != (meta.width, meta.height) {
        return Err(PhotoProblem::WrongDimensions {
            width: meta.width,
            height: meta.height,
            got_width: width,
            got_height: height,
        });
    }
    Ok(())
}
