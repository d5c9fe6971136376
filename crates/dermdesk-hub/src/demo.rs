//! Seeding the hub with a synthetic demo set: two consultants, every referral assigned to the
//! first, and a fresh enrolment code for it. Used by `serve --demo` and by the desktop app's
//! in-process demo.

use dermdesk_protocol::Consultant;
use dermdesk_synth::DemoSet;

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

impl Hub {
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
