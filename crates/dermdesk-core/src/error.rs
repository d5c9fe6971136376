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
    #[error(
        "The disk is full, so {0} could not be saved. Nothing was lost: everything saved before is \
         intact and the step that failed left no trace. Free some disk space; Derm Desk carries on \
         by itself."
    )]
    DiskFull(String),
    #[error("This device is not enrolled with a teledermatology service yet.")]
    NotEnrolled,
    #[error("Referral {0} is not in the local cache.")]
    UnknownReferral(String),
    #[error("There is no signed outcome for referral {0} on this device.")]
    NoSignedOutcome(String),
    #[error("The outcome cannot be signed: {0}. Nothing was signed or sent.")]
    InvalidOutcome(#[from] OutcomeProblem),
    #[error("This outcome cannot be signed: {0} Nothing was signed.")]
    Governance(#[from] crate::governance::GovernanceProblem),
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
    #[error("The service is busy or failing for now ({0}). Everything is kept locally; Derm Desk tries again shortly.")]
    Busy(String),
    #[error("The service no longer offers the part of the photo that was missing; it is downloaded again from the start.")]
    RangeRefused,
    #[error("The sync was stopped. Everything received so far is kept.")]
    Cancelled,
    #[error("A photo arrived damaged ({0}); it was not kept and is downloaded again.")]
    PhotoDamaged(String),
    #[error(
        "A photo was refused ({0}). It is not shown and was not kept; the rest of the referral is \
         kept and can be reviewed. Ask the GP practice to send the photo again."
    )]
    PhotoRefused(String),
    #[error("The service refused the request: {message}")]
    Hub { code: ErrorCode, message: String },
    #[error("The service answered something unexpected ({0}). Nothing local was changed.")]
    Protocol(String),
    #[error("The signing key could not be used: {0}. Nothing was signed.")]
    Signing(String),
    #[error("The service address is not allowed: {0}. Nothing was sent to it.")]
    BadServiceUrl(String),
    #[error(
        "That passphrase is not right. {} before Derm Desk erases this \
         computer's encrypted cache (you would then sign in again). Wait {wait_seconds} s before trying again.",
        attempts_left_phrase(.attempts_left)
    )]
    WrongPassphrase { attempts_left: u32, wait_seconds: u64 },
    #[error("Too many wrong passphrases in a row: wait {wait_seconds} s before the next attempt. Nothing was tried.")]
    UnlockDelayed { wait_seconds: u64 },
    #[error(
        "Too many wrong passphrases in a row. To keep patient data safe, Derm Desk erased its encrypted \
         cache and keys on this computer. Sign in again with a new enrolment code."
    )]
    TooManyAttempts,
    #[error("The passphrase is too weak: {0}. Nothing was stored; choose a longer one.")]
    WeakPassphrase(String),
    #[error("A passphrase is already set on this computer; unlock with it.")]
    PassphraseAlreadySet,
    #[error("No passphrase has been chosen on this computer yet.")]
    NoPassphrase,
    #[error("Derm Desk is locked. Enter your passphrase to continue; nothing was changed.")]
    Locked,
    #[error(
        "Signing needs your passphrase again (last entered more than a few minutes ago). Nothing was signed."
    )]
    ReauthRequired,
    #[error(
        "{0} signed outcome(s) have not reached the service yet. Signing out now would erase them from \
         this computer. Connect and sync first, or confirm that they may be lost."
    )]
    UnsentOutcomes(u32),
    #[error(
        "The service no longer accepts this computer (the device was revoked or signed out elsewhere). \
         To keep patient data safe, Derm Desk erased its encrypted cache and keys here. Sign in again \
         with a new enrolment code."
    )]
    DeviceRevoked,
    #[error(
        "Due dates cannot be counted: {0}. Nothing was changed. Replace the file with a valid \
         calendar, or remove it to use the calendar built into Derm Desk, and open Derm Desk again."
    )]
    Calendar(#[from] crate::deadline::CalendarError),
    #[error(
        "That is not an enrolment code: {0}. Check it against the one your service sent; nothing was sent."
    )]
    BadEnrolmentCode(String),
    #[error(
        "The service could not be reached ({0}). Nothing was set up on this computer. Check the address \
         and this computer's network, then Connect again."
    )]
    ServiceUnreachable(String),
    #[error(
        "The service's identity could not be checked ({0}), so nothing was sent to it. The address may be \
         wrong, or a network device is intercepting the connection: ask your service's IT team."
    )]
    TlsFailed(String),
    #[error("{0}. Check the address your service gave you; nothing was sent to it.")]
    NotADermDeskService(String),
    #[error(
        "This computer's clock is {} minutes {} the service's. Signatures and due dates depend on it: \
         set the clock right (automatic time), then Connect again. Nothing was set up.",
        minutes.abs(), if *minutes > 0 { "ahead of" } else { "behind" }
    )]
    ClockSkew { minutes: i64 },
    #[error(
        "The machine-wide Derm Desk settings could not be used: {0}. Nothing was changed; ask your IT team."
    )]
    Config(String),
    #[error("{0}")]
    NotNow(String),
    /// An update of Derm Desk itself that was not installed; the message is
    /// `updates::refusal_message`'s (what failed, that nothing was changed, what to do).
    #[error("{0}")]
    UpdateRefused(String),
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
    DiskFull,
    NotEnrolled,
    UnknownReferral,
    NoSignedOutcome,
    InvalidOutcome,
    Governance,
    AlreadySigned,
    ReferralRemoved,
    ReferralChanged,
    Offline,
    Busy,
    RangeRefused,
    PhotoDamaged,
    PhotoRefused,
    Cancelled,
    Hub,
    Protocol,
    Signing,
    BadServiceUrl,
    Calendar,
    WrongPassphrase,
    UnlockDelayed,
    TooManyAttempts,
    WeakPassphrase,
    PassphraseAlreadySet,
    NoPassphrase,
    Locked,
    ReauthRequired,
    UnsentOutcomes,
    DeviceRevoked,
    BadEnrolmentCode,
    ServiceUnreachable,
    TlsFailed,
    NotADermDeskService,
    ClockSkew,
    Config,
    NotNow,
    UpdateRefused,
}

impl CoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            CoreError::KeychainUnavailable(_) => ErrorKind::KeychainUnavailable,
            CoreError::CacheKeyMissing => ErrorKind::CacheKeyMissing,
            CoreError::EncryptionUnavailable => ErrorKind::EncryptionUnavailable,
            CoreError::Cache(_) => ErrorKind::Cache,
            CoreError::Io(_) => ErrorKind::Io,
            CoreError::DiskFull(_) => ErrorKind::DiskFull,
            CoreError::NotEnrolled => ErrorKind::NotEnrolled,
            CoreError::UnknownReferral(_) => ErrorKind::UnknownReferral,
            CoreError::NoSignedOutcome(_) => ErrorKind::NoSignedOutcome,
            CoreError::InvalidOutcome(_) => ErrorKind::InvalidOutcome,
            CoreError::Governance(_) => ErrorKind::Governance,
            CoreError::AlreadySigned => ErrorKind::AlreadySigned,
            CoreError::ReferralRemoved(_) => ErrorKind::ReferralRemoved,
            CoreError::ReferralChanged { .. } => ErrorKind::ReferralChanged,
            CoreError::Offline(_) => ErrorKind::Offline,
            CoreError::Busy(_) => ErrorKind::Busy,
            CoreError::RangeRefused => ErrorKind::RangeRefused,
            CoreError::PhotoDamaged(_) => ErrorKind::PhotoDamaged,
            CoreError::PhotoRefused(_) => ErrorKind::PhotoRefused,
            CoreError::Cancelled => ErrorKind::Cancelled,
            CoreError::Hub { .. } => ErrorKind::Hub,
            CoreError::Protocol(_) => ErrorKind::Protocol,
            CoreError::Signing(_) => ErrorKind::Signing,
            CoreError::BadServiceUrl(_) => ErrorKind::BadServiceUrl,
            CoreError::Calendar(_) => ErrorKind::Calendar,
            CoreError::WrongPassphrase { .. } => ErrorKind::WrongPassphrase,
            CoreError::UnlockDelayed { .. } => ErrorKind::UnlockDelayed,
            CoreError::TooManyAttempts => ErrorKind::TooManyAttempts,
            CoreError::WeakPassphrase(_) => ErrorKind::WeakPassphrase,
            CoreError::PassphraseAlreadySet => ErrorKind::PassphraseAlreadySet,
            CoreError::NoPassphrase => ErrorKind::NoPassphrase,
            CoreError::Locked => ErrorKind::Locked,
            CoreError::ReauthRequired => ErrorKind::ReauthRequired,
            CoreError::UnsentOutcomes(_) => ErrorKind::UnsentOutcomes,
            CoreError::DeviceRevoked => ErrorKind::DeviceRevoked,
            CoreError::BadEnrolmentCode(_) => ErrorKind::BadEnrolmentCode,
            CoreError::ServiceUnreachable(_) => ErrorKind::ServiceUnreachable,
            CoreError::TlsFailed(_) => ErrorKind::TlsFailed,
            CoreError::NotADermDeskService(_) => ErrorKind::NotADermDeskService,
            CoreError::ClockSkew { .. } => ErrorKind::ClockSkew,
            CoreError::Config(_) => ErrorKind::Config,
            CoreError::NotNow(_) => ErrorKind::NotNow,
            CoreError::UpdateRefused(_) => ErrorKind::UpdateRefused,
        }
    }
}

impl From<rusqlite::Error> for CoreError {
    fn from(error: rusqlite::Error) -> Self {
        if error.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            return CoreError::DiskFull("the change".into());
        }
        CoreError::Cache(error.to_string())
    }
}

impl From<std::io::Error> for CoreError {
    fn from(error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::StorageFull {
            return CoreError::DiskFull("the file".into());
        }
        CoreError::Io(error.to_string())
    }
}

impl CoreError {
    /// A failure that says nothing about the request itself: the same request may well succeed
    /// if tried again a little later.
    pub fn is_transient(&self) -> bool {
        matches!(self, CoreError::Offline(_) | CoreError::Busy(_))
    }

    /// Names what could not be saved when the disk was full (for a clearer message).
    pub fn while_saving(self, what: &str) -> CoreError {
        match self {
            CoreError::DiskFull(_) => CoreError::DiskFull(what.to_owned()),
            other => other,
        }
    }
}

/// "1 attempt is left", "9 attempts are left".
fn attempts_left_phrase(attempts_left: &u32) -> String {
    match attempts_left {
        1 => "1 attempt is left".to_owned(),
        n => format!("{n} attempts are left"),
    }
}

#[cfg(test)]
mod tests {
    use super::CoreError;

    #[test]
    fn the_attempts_left_agree_with_their_number() {
        let said = |attempts_left| CoreError::WrongPassphrase { attempts_left, wait_seconds: 4 }.to_string();
        assert!(said(1).contains(" 1 attempt is left before "), "{}", said(1));
        assert!(said(2).contains(" 2 attempts are left before "), "{}", said(2));
        assert!(said(9).contains(" 9 attempts are left before "), "{}", said(9));
    }
}
