//! Checks a downloaded photo against its metadata before it may become visible: exact size,
//! SHA-256 equal to the content id, and an image header of the declared type and dimensions,
//! within the sizes the viewer decodes. [`refuse_before_download`] refuses a photo from its
//! metadata alone, so a photo that says it is 65535x65535 is never fetched at all.
//! Pure: bytes in, verdict out.

use std::io::Cursor;

use dermdesk_protocol::{is_content_id, PhotoMeta, MAX_PHOTO_BYTES};
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
    #[error("{0}")]
    Imaging(dermdesk_imaging::ImagingError),
}

impl PhotoProblem {
    /// True if the bytes were damaged on the way (size or fingerprint): worth downloading
    /// again. Any other problem is in bytes that match their content id, so a new download
    /// would bring the same bytes: the photo is refused for good.
    pub fn is_transit(&self) -> bool {
        matches!(self, PhotoProblem::WrongSize { .. } | PhotoProblem::WrongHash)
    }
}

/// Why a photo is refused from its metadata alone (nothing is downloaded), if it is: a content
/// id that is not a SHA-256, a size of zero or beyond the protocol's limit, a type other than
/// JPEG or PNG, or dimensions beyond what the viewer decodes. The message names no
/// service-supplied text.
pub fn refuse_before_download(meta: &PhotoMeta) -> Option<String> {
    if !is_content_id(&meta.content_id) {
        return Some("its content id is not a SHA-256 fingerprint".into());
    }
    if meta.size == 0 || meta.size > MAX_PHOTO_BYTES {
        return Some(format!("it is {} bytes; Derm Desk accepts 1 to {MAX_PHOTO_BYTES} bytes", meta.size));
    }
    if !matches!(meta.media_type.as_str(), "image/jpeg" | "image/png") {
        return Some("its type is neither JPEG nor PNG".into());
    }
    let (width, height) = (meta.width, meta.height);
    if width == 0 || height == 0 {
        return Some("it says it has no pixels".into());
    }
    if width > dermdesk_imaging::MAX_SIDE
        || height > dermdesk_imaging::MAX_SIDE
        || u64::from(width) * u64::from(height) > dermdesk_imaging::MAX_PIXELS
    {
        return Some(dermdesk_imaging::ImagingError::TooLarge { width, height }.to_string());
    }
    None
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
    // The header's size is within the decoding limits (the metadata check says the same for
    // honest metadata; this holds whatever the metadata said).
    dermdesk_imaging::probe(bytes).map_err(PhotoProblem::Imaging)?;
    Ok(())
}
