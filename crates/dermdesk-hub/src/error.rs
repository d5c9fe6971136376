//! `HubError`: everything a hub operation can refuse or fail with, in the protocol's own terms.
//!
//! The HTTP layer (`http.rs`) maps each variant to a status and a protocol [`ErrorCode`]; the
//! messages are shown to clients, so they never contain patient details, tokens or keys.

use dermdesk_protocol::{ErrorCode, OutcomeProblem};

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The thing does not exist, or exists but is not this consultant's to see (deliberately
    /// indistinguishable, so a device cannot probe for other consultants' referrals).
    #[error("no such {what}: {id}")]
    NotFound { what: &'static str, id: String },
    #[error("the request is malformed: {0}")]
    BadRequest(String),
    #[error("the enrolment code is unknown or has already been used; ask the service for a new one")]
    EnrolmentRefused,
    #[error("the device token is missing, unknown or revoked; enrol this device again")]
    Unauthorized,
    #[error("referral {0} was withdrawn by the GP practice")]
    ReferralWithdrawn(String),
    #[error("referral {0} has been reassigned to another consultant")]
    ReferralReassigned(String),
    #[error("referral {0} already has an accepted outcome")]
    AlreadyDecided(String),
    #[error("referral {referral_id} changed after it was reviewed: it is now version {current_version}")]
    ReferralChanged { referral_id: String, current_version: u64 },
    #[error("outcome id {0} was already used for a different outcome; nothing was recorded")]
    OutcomeIdReused(String),
    #[error("the signature was refused: {0}")]
    BadSignature(String),
    #[error(
        "the outcome was signed with key {key_id} after the device replaced it ({retired_at}); \
         nothing was recorded: sign it again with the device's current key"
    )]
    KeyRetired { key_id: String, retired_at: String },
    #[error("the outcome is not well-formed: {0}")]
    InvalidOutcome(#[from] OutcomeProblem),
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    /// Stored data the hub wrote itself no longer parses: a bug or a hand-edited database.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl HubError {
    pub(crate) fn not_found(what: &'static str, id: impl Into<String>) -> HubError {
        HubError::NotFound { what, id: id.into() }
    }

    /// The protocol code clients branch on.
    pub fn code(&self) -> ErrorCode {
        match self {
            HubError::NotFound { .. } => ErrorCode::NotFound,
            HubError::BadRequest(_) => ErrorCode::BadRequest,
            HubError::EnrolmentRefused => ErrorCode::EnrolmentRefused,
            HubError::Unauthorized => ErrorCode::Unauthorized,
            HubError::ReferralWithdrawn(_) => ErrorCode::ReferralWithdrawn,
            HubError::ReferralReassigned(_) => ErrorCode::ReferralReassigned,
            HubError::AlreadyDecided(_) => ErrorCode::AlreadyDecided,
            HubError::ReferralChanged { .. } => ErrorCode::ReferralChanged,
            HubError::OutcomeIdReused(_) => ErrorCode::OutcomeIdReused,
            HubError::BadSignature(_) => ErrorCode::BadSignature,
            HubError::KeyRetired { .. } => ErrorCode::KeyRetired,
            HubError::InvalidOutcome(_) => ErrorCode::InvalidOutcome,
            HubError::Database(_) | HubError::Io(_) | HubError::Corrupt(_) => ErrorCode::Internal,
        }
    }
}
