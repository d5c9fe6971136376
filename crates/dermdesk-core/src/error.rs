//! The core's one error type. Every message says what happened, what was kept safe, and what
//! the consultant can do; `kind()` is the stable code the UI branches on.

use dermdesk_protocol::{ErrorCode, OutcomeProblem};

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(
        "The system keychain is not available ({0}). Derm Desk keeps its encryption keys only in the \
         keychain, so nothing was written to disk. Unlock or start the keychain (on Linux: a Secret \
         Service such as GNOME Keyring) and open Derm Desk again."
    )]
    KeychainUnavailable(String),
    #[error(
        "The key of the local cache is missing from the system keychain. The encrypted cache was left \
         untouched; signed outcomes inside it are safe but cannot be read on this login. Restore the \
         keychain, or sign out to start a fresh cache."
    )]
    CacheKeyMissing,
    #[error(
        "This build of Derm Desk has no database encryption (SQLCipher). It refuses to store patient data \
         unencrypted; nothing was written."
    )]
    EncryptionUnavailable,
    #[error("The local cache could not be used: {0}. Nothing was deleted.")]
    Cache(String),
    #[error("File system error: {0}. Data already in the cache is unchanged.")]
    Io(String),
    #[error("This device is not enrolled with a teledermatology service yet.")]
    NotEnrolled,
    #[error("Referral {0} is not in the local cache.")]
    UnknownReferral(String),
    #[error("The outcome cannot be signed: {0}. Nothing was signed or sent.")]
    InvalidOutcome(#[from] OutcomeProblem),
    #[error("An outcome for this referral is already signed and waiting to go or sent. It was not changed.")]
    AlreadySigned,
    #[error("This referral is no longer assigned to you ({0}). Nothing was signed.")]
    ReferralRemoved(String),
    #[error(
        "The GP practice changed this referral (you reviewed version {reviewed}, it is now version \
         {current}). Nothing was signed: review the changes and sign again."
    )]
    ReferralChanged { reviewed: u64, current: u64 },
    #[error("The service could not be reached ({0}). Everything is kept locally and will be sent later.")]
    Offline(String),
    #[error("The service refused the request: {message}")]
    Hub { code: ErrorCode, message: String },
    #[error("The service answered something unexpected ({0}). Nothing local was changed.")]
    Protocol(String),
    #[error("The signing key could not be used: {0}. Nothing was signed.")]
    Signing(String),
    #[error("The service address is not allowed: {0}")]
    BadServiceUrl(String),
}

/// Stable error codes for the UI; never parse the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    KeychainUnavailable,
    CacheKeyMissing,
    EncryptionUnavailable,
    Cache,
    Io,
    NotEnrolled,
    UnknownReferral,
    InvalidOutcome,
    AlreadySigned,
    ReferralRemoved,
    ReferralChanged,
    Offline,
    Hub,
    Protocol,
    Signing,
    BadServiceUrl,
}

impl CoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            CoreError::KeychainUnavailable(_) => ErrorKind::KeychainUnavailable,
            CoreError::CacheKeyMissing => ErrorKind::CacheKeyMissing,
            CoreError::EncryptionUnavailable => ErrorKind::EncryptionUnavailable,
            CoreError::Cache(_) => ErrorKind::Cache,
            CoreError::Io(_) => ErrorKind::Io,
            CoreError::NotEnrolled => ErrorKind::NotEnrolled,
            CoreError::UnknownReferral(_) => ErrorKind::UnknownReferral,
            CoreError::InvalidOutcome(_) => ErrorKind::InvalidOutcome,
            CoreError::AlreadySigned => ErrorKind::AlreadySigned,
            CoreError::ReferralRemoved(_) => ErrorKind::ReferralRemoved,
            CoreError::ReferralChanged { .. } => ErrorKind::ReferralChanged,
            CoreError::Offline(_) => ErrorKind::Offline,
            CoreError::Hub { .. } => ErrorKind::Hub,
            CoreError::Protocol(_) => ErrorKind::Protocol,
            CoreError::Signing(_) => ErrorKind::Signing,
            CoreError::BadServiceUrl(_) => ErrorKind::BadServiceUrl,
        }
    }
}

impl From<rusqlite::Error> for CoreError {
    fn from(error: rusqlite::Error) -> Self {
        CoreError::Cache(error.to_string())
    }
}

impl From<std::io::Error> for CoreError {
    fn from(error: std::io::Error) -> Self {
        CoreError::Io(error.to_string())
    }
}
