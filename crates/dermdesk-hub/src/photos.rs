//! Photo storage (content-addressed files in the photo directory), access control, and the
//! pure parsing of HTTP `Range` requests for `GET /v1/photos/{content_id}`.
//!
//! Upload validation: at most `MAX_PHOTO_BYTES`, JPEG or PNG by its first bytes, and a header
//! `dermdesk_imaging::probe` accepts (dimensions within what the app decodes, so a photo whose
//! header says 65535x65535, or a PNG bomb, is refused here and never offered to a consultant).
//! Files are named only by their content id (SHA-256): no uploaded name reaches the disk.

use std::fs::{self, File};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use dermdesk_protocol::{is_content_id, MAX_PHOTO_BYTES};
use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::hub::{from_sql_integer, timestamp, to_sql_integer, Hub};
use crate::HubError;

/// A stored photo a consultant may fetch.
#[derive(Debug, Clone)]
pub(crate) struct StoredPhoto {
    pub(crate) path: PathBuf,
    pub(crate) size: u64,
    pub(crate) media_type: String,
}

/// The media type from the file's first bytes. The protocol allows exactly these two, and the
/// hub decides it from the bytes rather than trusting a referral's metadata.
fn sniff_media_type(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

fn not_a_photo() -> HubError {
    HubError::BadRequest("the photo is not a JPEG or PNG file".into())
}

/// The most of a photo's start kept to probe its header: a JPEG's frame header follows its
/// EXIF and ICC segments (each at most 64 KiB), a PNG's comes first.
const PROBE_BYTES: usize = 1024 * 1024;

/// Refuses a photo whose header the app would not decode (too many pixels, no frame header).
fn check_header(head: &[u8]) -> Result<(), HubError> {
    match dermdesk_imaging::probe(head) {
        Ok(_) => Ok(()),
        Err(error @ dermdesk_imaging::ImagingError::TooLarge { .. }) => {
            Err(HubError::BadRequest(format!("{error}; it was not stored")))
        }
        Err(error) => Err(HubError::BadRequest(format!(
            "the photo's header cannot be read ({error}); it was not stored"
        ))),
    }
}

fn too_large(size: u64) -> HubError {
    HubError::BadRequest(format!(
        "the photo is {size} bytes; the most the protocol allows is {MAX_PHOTO_BYTES}"
    ))
}

impl Hub {
    /// Stores the photo at `path` (hard-linked where possible, else copied) and returns its
    /// content id. Storing the same bytes again is harmless.
    pub fn add_photo_file(&self, path: &Path) -> Result<String, HubError> {
        let size = fs::metadata(path)?.len();
        if size > MAX_PHOTO_BYTES {
            return Err(too_large(size));
        }
        let mut file = File::open(path)?;
        let mut hasher = Sha256::new();
        let mut head = Vec::with_capacity(PROBE_BYTES.min(size as usize));
        let mut buffer = vec![0u8; 256 * 1024];
        let mut read_total = 0u64;
        loop {
            let read = file.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            if head.len() < PROBE_BYTES {
                let wanted = (PROBE_BYTES - head.len()).min(read);
                head.extend_from_slice(&buffer[..wanted]);
            }
            hasher.update(&buffer[..read]);
            read_total += read as u64;
        }
        let media_type = sniff_media_type(&head).ok_or_else(not_a_photo)?;
        check_header(&head)?;
        let content_id = hex::encode(hasher.finalize());
        let destination = self.photo_dir().join(&content_id);
        if !destination.exists() {
            // A hard link costs no space or time for the demo's large photos. It shares the
            // source's bytes, which is fine because content-addressed files are never rewritten.
            match fs::hard_link(path, &destination) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
                Err(_) => self.copy_into_store(path, &destination)?,
            }
        }
        self.record_photo(&content_id, read_total, media_type)?;
        Ok(content_id)
    }

    /// Stores a photo given as bytes and returns its content id.
    pub fn add_photo_bytes(&self, bytes: &[u8]) -> Result<String, HubError> {
        let size = bytes.len() as u64;
        if size > MAX_PHOTO_BYTES {
            return Err(too_large(size));
        }
        let media_type = sniff_media_type(bytes).ok_or_else(not_a_photo)?;
        check_header(&bytes[..bytes.len().min(PROBE_BYTES)])?;
        self.store_photo_bytes(bytes, media_type)
    }

    /// Stores bytes as a photo of `media_type` WITHOUT any of the checks above: for tests of
    /// clients against a hostile or broken service. No route of the hub calls it.
    #[doc(hidden)]
    pub fn add_photo_bytes_unchecked_for_tests(
        &self,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<String, HubError> {
        self.store_photo_bytes(bytes, media_type)
    }

    fn store_photo_bytes(&self, bytes: &[u8], media_type: &str) -> Result<String, HubError> {
        let size = bytes.len() as u64;
        let content_id = hex::encode(Sha256::digest(bytes));
        let destination = self.photo_dir().join(&content_id);
        if !destination.exists() {
            let temporary = self.temporary_path();
            let written = File::create(&temporary).and_then(|mut file| {
                file.write_all(bytes)?;
                file.sync_all()
            });
            self.finish_store(written, &temporary, &destination)?;
        }
        self.record_photo(&content_id, size, media_type)?;
        Ok(content_id)
    }

    /// A reader never sees a half-written photo: bytes go to a temporary name, then are renamed.
    fn copy_into_store(&self, source: &Path, destination: &Path) -> Result<(), HubError> {
        let temporary = self.temporary_path();
        let copied = fs::copy(source, &temporary).and_then(|_| File::open(&temporary)?.sync_all());
        self.finish_store(copied, &temporary, destination)
    }

    fn finish_store(
        &self,
        written: io::Result<()>,
        temporary: &Path,
        destination: &Path,
    ) -> Result<(), HubError> {
        let result = written.and_then(|()| fs::rename(temporary, destination));
        if result.is_err() {
            let _ = fs::remove_file(temporary);
        }
        Ok(result?)
    }

    fn temporary_path(&self) -> PathBuf {
        self.photo_dir().join(format!(".incoming-{}", uuid::Uuid::new_v4()))
    }

    fn record_photo(&self, content_id: &str, size: u64, media_type: &str) -> Result<(), HubError> {
        self.write(|transaction| {
            transaction.execute(
                "INSERT OR IGNORE INTO photos (content_id, size, media_type, stored_at) VALUES (?1, ?2, ?3, ?4)",
                params![content_id, to_sql_integer(size)?, media_type, timestamp(self.now())],
            )?;
            Ok(())
        })
    }

    /// True if the photo is stored and its file is present (seeding skips re-hashing it).
    pub(crate) fn has_photo(&self, content_id: &str) -> Result<bool, HubError> {
        let known = self
            .lock()
            .query_row("SELECT 1 FROM photos WHERE content_id = ?1", [content_id], |_| Ok(()))
            .optional()?
            .is_some();
        Ok(known && self.photo_dir().join(content_id).is_file())
    }

    /// The photo, if some referral that names it is or was assigned to `consultant_id`. Any
    /// other photo is "not found", whether or not it exists.
    pub(crate) fn photo_for_consultant(
        &self,
        consultant_id: &str,
        content_id: &str,
    ) -> Result<StoredPhoto, HubError> {
        if !is_content_id(content_id) {
            return Err(HubError::not_found("photo", "(not a content id)"));
        }
        let row: Option<(i64, String)> = self
            .lock()
            .query_row(
                "SELECT p.size, p.media_type FROM photos p
                  WHERE p.content_id = ?1
                    AND EXISTS (SELECT 1 FROM referral_photos rp
                                  JOIN referral_assignments ra ON ra.referral_id = rp.referral_id
                                 WHERE rp.content_id = ?1 AND ra.consultant_id = ?2)",
                params![content_id, consultant_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let (size, media_type) = row.ok_or_else(|| HubError::not_found("photo", content_id))?;
        Ok(StoredPhoto { path: self.photo_dir().join(content_id), size: from_sql_integer(size)?, media_type })
    }
}

/// Reads `length` bytes of the photo from `start`. Read into memory rather than streamed: a
/// photo is at most MAX_PHOTO_BYTES (checked when stored), and streaming would need another
/// dependency for no gain in a reference hub.
pub(crate) fn read_photo_range(photo: &StoredPhoto, start: u64, length: u64) -> Result<Vec<u8>, HubError> {
    let mut file = File::open(&photo.path)?;
    let actual = file.metadata()?.len();
    if actual != photo.size {
        // Serving it would only fail the client's hash check later, with a vaguer message.
        return Err(HubError::Corrupt(format!(
            "photo file {} is {actual} bytes, recorded as {}",
            photo.path.display(),
            photo.size
        )));
    }
    let length = usize::try_from(length).map_err(|_| HubError::BadRequest("range too large".into()))?;
    let mut bytes = vec![0u8; length];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// What to send for a `Range` header, given the photo's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeRequest {
    /// No usable range: send the whole photo with 200.
    Whole,
    /// Send bytes `start..=end` with 206.
    Part { start: u64, end: u64 },
    /// 416: the range starts at or past the end of the photo.
    Unsatisfiable,
}

/// Interprets a `Range` header (RFC 9110 section 14). Only one range is honoured; a header the
/// hub does not understand, or one asking for several ranges, is ignored, as the RFC allows,
/// and the whole photo is sent.
pub(crate) fn parse_range(header: &str, size: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let parse = |text: &str| text.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // "bytes=-N": the last N bytes.
        (true, false) => match parse(last) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if size == 0 => RangeRequest::Unsatisfiable,
            Some(suffix) => RangeRequest::Part { start: size.saturating_sub(suffix), end: size - 1 },
            None => RangeRequest::Whole,
        },
        // "bytes=A-": from A to the end.
        (false, true) => match parse(first) {
            Some(start) if start >= size => RangeRequest::Unsatisfiable,
            Some(start) => RangeRequest::Part { start, end: size - 1 },
            None => RangeRequest::Whole,
        },
        // "bytes=A-B": clamped to the end of the photo.
        (false, false) => match (parse(first), parse(last)) {
            (Some(start), Some(end)) if start > end => RangeRequest::Whole,
            (Some(start), Some(_)) if start >= size => RangeRequest::Unsatisfiable,
            (Some(start), Some(end)) => RangeRequest::Part { start, end: end.min(size - 1) },
            _ => RangeRequest::Whole,
        },
        (true, true) => RangeRequest::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeRequest::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        let cases = [
            ("bytes=0-99", Part { start: 0, end: 99 }),
            ("bytes=100-", Part { start: 100, end: 999 }),
            ("bytes=-100", Part { start: 900, end: 999 }),
            ("bytes=-5000", Part { start: 0, end: 999 }),
            ("bytes=990-5000", Part { start: 990, end: 999 }),
            ("bytes=999-999", Part { start: 999, end: 999 }),
            ("bytes=1000-", Unsatisfiable),
            ("bytes=1000-2000", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            ("bytes=5-1", Whole),
            ("bytes=0-1,5-6", Whole),
            ("items=0-1", Whole),
            ("bytes=x-1", Whole),
            ("bytes=-", Whole),
        ];
        for (header, expected) in cases {
            assert_eq!(parse_range(header, 1000), expected, "{header}");
        }
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=-1", 0), Unsatisfiable);
    }

    #[test]
    fn sniffs_only_jpeg_and_png() {
        assert_eq!(sniff_media_type(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff_media_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff_media_type(b"GIF89a"), None);
        assert_eq!(sniff_media_type(b""), None);
    }
}
