//! Deterministic synthetic teledermatology referrals and photographs for demos and tests.
//! Nothing here is, or is derived from, real patient data: names are random pairings, NHS
//! numbers come from the range reserved for testing, ODS codes use a prefix no practice has,
//! and every photograph is drawn procedurally (and says so in its EXIF description).
//!
//! - [`build_demo_set`] plans a set of referrals from a seed and renders (or reuses) their
//!   photos in a cache folder. The same options always give the same referrals and the same
//!   photo bytes; only `now` moves the dates.
//! - [`render_photo`] turns one [`PhotoSpec`] into JPEG bytes: skin of a given Fitzpatrick type
//!   with texture, pores and hair, a lesion for the diagnosis, lighting, and a phone camera's
//!   colour, blur and noise.
//!
//! - [`build_demo_extras`] adds referrals for checking the viewer (off by default): an
//!   orientation chart per EXIF orientation, four 24 MP photos to compare.
//!
//! Modules: `plan` (pure: which referrals and photos), `cases` and `people` (the text and
//! names), `photo` (pure: pixels and JPEG), `orientation` (pure: the orientation charts),
//! `colour` (pure: wide-gamut charts and a masked PNG),
//! `extras` (the extra referrals), `cache` (the only one that touches the disk).

mod cache;
mod cases;
pub mod colour;
mod extras;
pub mod hostile;
pub mod orientation;
mod people;
mod photo;
mod plan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use dermdesk_protocol::Referral;

pub use extras::{
    build_demo_extras, large_close_up, DemoExtras, LARGE_PHOTOS_REFERRAL, LARGE_PHOTO_SIZE,
    ORIENTATION_CHART_REFERRAL, ORIENTATION_CHART_SIZE,
};
pub use people::{
    nhs_number_is_synthetic, nhs_number_is_valid, synthetic_nhs_number, synthetic_patient_name,
};
pub use photo::{exif_orientation, render_photo, BodyRegion, Finding, PhotoDefect, PhotoSpec};

/// Bump whenever rendering changes, so caches made by an older generator are rebuilt.
pub const GENERATOR_VERSION: u32 = 2;

/// The number of referrals in the standard demo: enough for every kind of case and urgency.
pub const DEFAULT_REFERRALS: usize = 12;

/// What demo set to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOptions {
    /// Decides everything: patients, cases, photos. The same seed gives the same set.
    pub seed: u64,
    /// How many referrals. The first twelve cover every kind of case; one patient appears
    /// twice (an earlier referral months before) from two referrals on.
    pub referrals: usize,
    pub photo_scale: PhotoScale,
    /// Arrival dates are set relative to this (the last few working days, some overdue).
    pub now: DateTime<Utc>,
}

/// How large the photos are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhotoScale {
    /// Phone-camera sizes, 12 to 24 megapixels.
    Full,
    /// Longest side at most this many pixels (for fast tests).
    Small(u32),
}

/// A built demo set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSet {
    pub referrals: Vec<Referral>,
    /// content_id -> path of the JPEG file in the cache dir.
    pub photo_files: BTreeMap<String, PathBuf>,
}

/// What building a demo set did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildReport {
    /// Photos rendered now (not found in the cache).
    pub photos_rendered: usize,
    /// Photos found in the cache and reused.
    pub photos_reused: usize,
}

/// Builds (or reuses from `cache_dir`) the demo set. Photos are rendered in parallel, one per
/// core, and cached as files named by content id (lower-case hex SHA-256 of the bytes) plus a
/// small JSON manifest mapping each photo spec's key to its content id, so a second call with
/// the same options renders nothing. Every file is written under a temporary name and renamed
/// into place: a killed process never leaves a partial file under a content-id name.
pub fn build_demo_set(cache_dir: &Path, options: &DemoOptions) -> std::io::Result<DemoSet> {
    build_demo_set_with_report(cache_dir, options).map(|(set, _)| set)
}

/// The demo's referrals as [`build_demo_set`] would make them, but without rendering any photo
/// (`photos` empty): what a test needs to know when each arrived and from which nation.
pub fn plan_demo_referrals(options: &DemoOptions) -> Vec<Referral> {
    plan::plan(options).into_iter().map(|planned| planned.referral).collect()
}

/// [`build_demo_set`], also saying how many photos were rendered and how many reused.
pub fn build_demo_set_with_report(
    cache_dir: &Path,
    options: &DemoOptions,
) -> std::io::Result<(DemoSet, BuildReport)> {
    cache::build(cache_dir, options)
}
