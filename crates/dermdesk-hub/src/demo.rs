//! Seeding the hub with a synthetic demo set: two consultants, every referral assigned to the
//! first, and a fresh enrolment code for it. Used by `serve --demo` and by the desktop app's
//! in-process demo.

use std::path::Path;

use dermdesk_protocol::Consultant;
use dermdesk_synth::{DemoExtras, DemoOptions, DemoSet, PhotoScale, DEFAULT_REFERRALS};

use crate::{Hub, HubError};

/// Fixed ids, so seeding the same database file again reuses the consultants instead of
/// creating strangers with no referrals.
const DEMO_CONSULTANT: (&str, &str) = ("demo-consultant", "Dr Morgan Ellis (demo)");
const DEMO_COLLEAGUE: (&str, &str) = ("demo-colleague", "Dr Sam Okafor (demo)");

/// What `seed_demo` set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSeed {
    /// The consultant every demo referral is assigned to.
    pub consultant: Consultant,
    /// A one-time code that enrols a device as `consultant`.
    pub enrolment_code: String,
    /// A second consultant with no referrals: somewhere to reassign referrals to.
    pub other_consultant: Consultant,
}

/// Seed of the demo set: one fixed seed, so every demo (hub CLI or the app's embedded hub)
/// shows the same synthetic patients and reuses the same rendered photos.
pub const DEMO_SEED: u64 = 20_261_123;

impl Hub {
    /// Builds the synthetic demo set (rendered once, cached under `cache_dir`) and seeds it.
    pub fn seed_synthetic_demo(
        &self,
        cache_dir: &Path,
        photo_scale: PhotoScale,
    ) -> Result<DemoSeed, HubError> {
        self.seed_synthetic_demo_with(cache_dir, photo_scale, DemoExtras::default())
    }

    /// [`Hub::seed_synthetic_demo`] plus the viewer's test referrals asked for in `extras`
    /// (an orientation chart, four 24 MP photos), assigned to the demo consultant too.
    pub fn seed_synthetic_demo_with(
        &self,
        cache_dir: &Path,
        photo_scale: PhotoScale,
        extras: DemoExtras,
    ) -> Result<DemoSeed, HubError> {
        self.seed_synthetic_demo_at(cache_dir, photo_scale, extras, self.now())
    }

    /// [`Hub::seed_synthetic_demo_with`] with the referrals' arrival dates counted back from
    /// `now` rather than the hub's clock.
    pub fn seed_synthetic_demo_at(
        &self,
        cache_dir: &Path,
        photo_scale: PhotoScale,
        extras: DemoExtras,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<DemoSeed, HubError> {
        let options = DemoOptions { seed: DEMO_SEED, referrals: DEFAULT_REFERRALS, photo_scale, now };
        let mut demo = dermdesk_synth::build_demo_set(cache_dir, &options)?;
        let added = dermdesk_synth::build_demo_extras(&cache_dir.join("extras"), extras, now)?;
        demo.referrals.extend(added.referrals);
        demo.photo_files.extend(added.photo_files);
        self.seed_demo(&demo)
    }

    /// Stores the demo set's photos and referrals and issues an enrolment code. Referrals that
    /// already exist (a database seeded before) are left exactly as they are.
    pub fn seed_demo(&self, demo: &DemoSet) -> Result<DemoSeed, HubError> {
        let consultant = self.ensure_consultant(DEMO_CONSULTANT)?;
        let other_consultant = self.ensure_consultant(DEMO_COLLEAGUE)?;
        for (content_id, path) in &demo.photo_files {
            if self.has_photo(content_id)? {
                continue;
            }
            let stored = self.add_photo_file(path)?;
            if &stored != content_id {
                return Err(HubError::BadRequest(format!(
                    "demo photo {} does not hash to its content id {content_id}; delete the demo cache",
                    path.display()
                )));
            }
        }
        for referral in &demo.referrals {
            if !self.referral_exists(&referral.id)? {
                self.create_referral(referral, &consultant.id)?;
            }
        }
        let enrolment_code = self.create_enrolment_code(&consultant.id)?;
        Ok(DemoSeed { consultant, enrolment_code, other_consultant })
    }

    fn ensure_consultant(&self, (id, display_name): (&str, &str)) -> Result<Consultant, HubError> {
        match self.consultant(id)? {
            Some(existing) => Ok(existing),
            None => self.insert_consultant(id, display_name),
        }
    }
}
