//! The wire types of protocol v1. See docs/api.md for the routes that carry them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// A referral from a GP practice, as assigned to one consultant.
///
/// `version` increases whenever the GP practice or the service changes the referral; an outcome
/// is signed against one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    pub id: String,
    pub version: u64,
    pub patient: Patient,
    pub practice: GpPractice,
    pub referrer: Referrer,
    pub received_at: DateTime<Utc>,
    pub urgency: Urgency,
    pub clinical: ClinicalDetails,
    pub consent: Consent,
    pub photos: Vec<PhotoMeta>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    pub name: String,
    /// Ten digits, kept as a string (never a number: leading zeros and JSON precision).
    pub nhs_number: String,
    pub date_of_birth: NaiveDate,
    pub sex: Sex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
    Other,
    NotKnown,
}

/// The referring GP practice. `nation` decides which bank holidays count as non-working days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpPractice {
    /// ODS code of the practice, e.g. "Y00001" (synthetic in the demo).
    pub ods_code: String,
    pub name: String,
    pub nation: Nation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Nation {
    England,
    Wales,
    Scotland,
    NorthernIreland,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referrer {
    pub name: String,
    /// e.g. "GP", "Advanced Nurse Practitioner".
    pub role: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Routine,
    Urgent,
    /// Suspected cancer: the two-week-wait pathway.
    TwoWeekWait,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Routine => "routine",
            Urgency::Urgent => "urgent",
            Urgency::TwoWeekWait => "two_week_wait",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClinicalDetails {
    /// The GP's question to the consultant.
    pub question: String,
    pub history: String,
    /// How long the problem has been present, in the GP's words ("3 months").
    pub duration: String,
    pub medications: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub given: bool,
    pub recorded_at: Option<DateTime<Utc>>,
    /// Who recorded consent (name and role at the practice).
    pub recorded_by: Option<String>,
}

/// Metadata of one photograph. The bytes are fetched separately by `content_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoMeta {
    /// Lower-case hex SHA-256 of the photo's bytes. The client verifies it before use.
    pub content_id: String,
    /// Size in bytes.
    pub size: u64,
    /// Pixel dimensions as stored (before any EXIF orientation is applied).
    pub width: u32,
    pub height: u32,
    /// "image/jpeg" or "image/png".
    pub media_type: String,
    pub captured_at: DateTime<Utc>,
    pub view: PhotoView,
    /// Free text, e.g. "left forearm, extensor surface".
    pub body_site: String,
    pub source: PhotoSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhotoView {
    Overview,
    CloseUp,
    Dermoscopic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhotoSource {
    GpPractice,
    /// Uploaded by the patient through the secure link from home.
    PatientLink,
}

/// Largest photo a client must accept; anything larger is refused before it is read.
pub const MAX_PHOTO_BYTES: u64 = 64 * 1024 * 1024;

/// Returns true if `content_id` has the shape of a content id (64 lower-case hex digits).
/// Only such strings ever become part of a URL or a cache key.
pub fn is_content_id(content_id: &str) -> bool {
    content_id.len() == 64 && content_id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

// ---------------------------------------------------------------------------------------------
// Change feed: GET /v1/feed?cursor=..&limit=..

/// One page of the consultant's change feed, oldest change first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedPage {
    pub changes: Vec<Change>,
    /// Pass back as `cursor` to get the changes after this page. Opaque to clients.
    pub next_cursor: String,
    /// True if more changes are waiting after `next_cursor`.
    pub has_more: bool,
}

// Nearly every change is an upsert, so boxing the referral would only add an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// The referral is (still) assigned to this consultant; this is its latest version.
    Upsert { referral: Referral },
    /// The referral is no longer this consultant's to answer.
    Removed { referral_id: String, reason: RemovalReason },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovalReason {
    Withdrawn,
    Reassigned,
}

/// Default and maximum page size of the change feed.
pub const FEED_PAGE_DEFAULT: u32 = 50;
pub const FEED_PAGE_MAX: u32 = 200;

// ---------------------------------------------------------------------------------------------
// Enrolment: POST /v1/enrol

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolRequest {
    /// One-time code issued by the service to the consultant.
    pub enrolment_code: String,
    /// Human-readable device name ("Derm Desk on laptop").
    pub device_name: String,
    /// The device's Ed25519 public key, base64url without padding (32 bytes).
    pub public_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolResponse {
    pub device_id: String,
    /// Bearer token for every later request. A secret: clients keep it in the OS keychain.
    pub device_token: String,
    /// JWK thumbprint of the registered key; outcomes name it as `kid`.
    pub key_id: String,
    pub consultant: Consultant,
    /// The hub's own public key, which signs every receipt (also `GET /v1/hub-key`). Absent
    /// only from hubs older than receipts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub_key: Option<PublicKeyInfo>,
}

/// A published Ed25519 public key: its RFC 7638 thumbprint and the raw key, base64url.
/// `signature::PublicKeyInfo::decode` checks that the two agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyInfo {
    pub key_id: String,
    /// The raw 32-byte Ed25519 public key, base64url without padding.
    pub public_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consultant {
    pub id: String,
    pub display_name: String,
}

// ---------------------------------------------------------------------------------------------
// Outcomes: POST /v1/outcomes

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// A treatment plan the GP manages in the practice.
    GpTreatmentPlan,
    /// A face-to-face appointment with the specialist dermatology service.
    FaceToFace,
    /// Ask the referrer for more information or better photographs.
    RequestMoreInformation,
    /// Advice to the GP and discharge: nothing more is needed from the service.
    AdviceAndDischarge,
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::GpTreatmentPlan => "gp_treatment_plan",
            OutcomeKind::FaceToFace => "face_to_face",
            OutcomeKind::RequestMoreInformation => "request_more_information",
            OutcomeKind::AdviceAndDischarge => "advice_and_discharge",
        }
    }
}

/// How sure the consultant is of the diagnosis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Certainty {
    Provisional,
    Differential,
    Confirmed,
}

/// A photograph the consultant needs and does not have (with `request_more_information`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingView {
    Overview,
    CloseUp,
    Dermoscopic,
    OtherAngle,
}

/// What the consultant decided, as written on the form.
///
/// Fields added after the first version are left out of the JSON when empty, so an outcome
/// that does not use them has the same canonical bytes (and signature) as before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub kind: OutcomeKind,
    /// Required for, and only for, `face_to_face`.
    pub appointment_urgency: Option<Urgency>,
    /// The diagnosis as the GP will read it: the picklist term, or free text.
    pub diagnosis: String,
    /// SNOMED CT concept id (a string: ids can exceed 2^53) when picked from the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certainty: Option<Certainty>,
    pub plan: String,
    /// With `request_more_information`: the photographs that are missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_views: Vec<MissingView>,
    /// A patient information leaflet for the GP to pass on (https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_information_url: Option<String>,
    /// Content ids of the photographs that support the outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_photos: Vec<String>,
    /// Why a referral the rules say needs another outcome was answered this way (e.g. a
    /// two-week-wait referral not seen face to face); signed with the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governance_reason: Option<String>,
}

/// Why an outcome cannot be signed as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutcomeProblem {
    #[error("a face-to-face outcome needs an appointment urgency")]
    MissingAppointmentUrgency,
    #[error("only a face-to-face outcome has an appointment urgency")]
    UnexpectedAppointmentUrgency,
    #[error("the plan is empty: write what the GP practice should do")]
    EmptyPlan,
    #[error("{field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("only a request for more information lists missing photographs")]
    UnexpectedMissingViews,
    #[error("the diagnosis code is not a SNOMED CT concept id")]
    BadDiagnosisCode,
    #[error("a coded diagnosis needs its term")]
    CodeWithoutTerm,
    #[error("the patient information link must be an https address")]
    BadPatientInformationUrl,
    #[error("a key photo is not a photo content id")]
    BadKeyPhoto,
}

/// Longest diagnosis or plan text accepted (characters).
pub const MAX_OUTCOME_TEXT: usize = 20_000;

impl Outcome {
    /// The optional fields, empty: for building an outcome with `..Outcome::default_extras()`.
    /// (Kind, urgency, diagnosis and plan have no sensible default.)
    pub fn default_extras() -> Outcome {
        Outcome {
            kind: OutcomeKind::GpTreatmentPlan,
            appointment_urgency: None,
            diagnosis: String::new(),
            diagnosis_code: None,
            certainty: None,
            plan: String::new(),
            missing_views: Vec::new(),
            patient_information_url: None,
            key_photos: Vec::new(),
            governance_reason: None,
        }
    }

    /// Checks the outcome's own shape. Clinical governance rules live in the app's core.
    pub fn check(&self) -> Result<(), OutcomeProblem> {
        match (self.kind, self.appointment_urgency) {
            (OutcomeKind::FaceToFace, None) => return Err(OutcomeProblem::MissingAppointmentUrgency),
            (kind, Some(_)) if kind != OutcomeKind::FaceToFace => {
                return Err(OutcomeProblem::UnexpectedAppointmentUrgency)
            }
            _ => {}
        }
        if self.plan.trim().is_empty() {
            return Err(OutcomeProblem::EmptyPlan);
        }
        let reason = self.governance_reason.as_deref().unwrap_or("");
        for (field, text) in
            [("diagnosis", self.diagnosis.as_str()), ("plan", &self.plan), ("reason", reason)]
        {
            if text.chars().count() > MAX_OUTCOME_TEXT {
                return Err(OutcomeProblem::TooLong { field, max: MAX_OUTCOME_TEXT });
            }
        }
        if !self.missing_views.is_empty() && self.kind != OutcomeKind::RequestMoreInformation {
            return Err(OutcomeProblem::UnexpectedMissingViews);
        }
        if let Some(code) = &self.diagnosis_code {
            // SCTID: 6 to 18 digits, no leading zero (the check digit is not verified here).
            let digits = code.len() >= 6 && code.len() <= 18 && code.bytes().all(|b| b.is_ascii_digit());
            if !digits || code.starts_with('0') {
                return Err(OutcomeProblem::BadDiagnosisCode);
            }
            if self.diagnosis.trim().is_empty() {
                return Err(OutcomeProblem::CodeWithoutTerm);
            }
        }
        if let Some(url) = &self.patient_information_url {
            if !url.starts_with("https://") || url.len() > 2048 || url.chars().any(char::is_whitespace) {
                return Err(OutcomeProblem::BadPatientInformationUrl);
            }
        }
        if self.key_photos.iter().any(|id| !is_content_id(id)) {
            return Err(OutcomeProblem::BadKeyPhoto);
        }
        Ok(())
    }
}

/// Everything the consultant's signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomePayload {
    /// Chosen by the client (UUID v4); the idempotency key of submission.
    pub outcome_id: String,
    pub referral_id: String,
    /// The referral version the consultant reviewed.
    pub referral_version: u64,
    pub consultant_id: String,
    pub device_id: String,
    /// JWK thumbprint of the signing key; equals the JWS header's `kid`.
    pub key_id: String,
    pub signed_at: DateTime<Utc>,
    pub outcome: Outcome,
}

/// The outcome as submitted: the payload and a detached compact JWS over its canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOutcome {
    pub payload: OutcomePayload,
    /// `BASE64URL(header)..BASE64URL(signature)` (RFC 7515 appendix F: payload detached).
    pub jws: String,
}

/// The hub's answer to an accepted outcome (first time or a repeat of the same outcome id).
///
/// `receipt_jws` is the hub's signature over the receipt's other fields (all but
/// `first_receipt`: see [`ReceiptPayload`]), so the receipt proves delivery to anyone holding
/// the hub's public key. A repeat returns the original receipt, signature included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeReceipt {
    pub outcome_id: String,
    /// Empty only in receipts from hubs older than signed receipts.
    #[serde(default)]
    pub referral_id: String,
    /// Lower-case hex SHA-256 of the canonical payload the hub verified.
    pub payload_sha256: String,
    pub received_at: DateTime<Utc>,
    /// Id (RFC 7638 thumbprint) of the hub key that signed `receipt_jws`.
    #[serde(default)]
    pub hub_key_id: String,
    /// False when this outcome id had already been received: nothing new was recorded.
    pub first_receipt: bool,
    /// Detached compact JWS (EdDSA, typ `dermdesk-receipt+jws`, kid `hub_key_id`) over the RFC
    /// 8785 canonical JSON of [`OutcomeReceipt::signed_payload`]. Empty from older hubs.
    #[serde(default)]
    pub receipt_jws: String,
}

impl OutcomeReceipt {
    /// What the hub signed: every field but `first_receipt` and the signature itself.
    pub fn signed_payload(&self) -> ReceiptPayload {
        ReceiptPayload {
            outcome_id: self.outcome_id.clone(),
            payload_sha256: self.payload_sha256.clone(),
            received_at: self.received_at,
            referral_id: self.referral_id.clone(),
            hub_key_id: self.hub_key_id.clone(),
        }
    }
}

/// What a receipt's signature covers: which outcome (by id and by the hash of its canonical
/// payload), for which referral, when the hub received it, and which hub key signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptPayload {
    pub outcome_id: String,
    pub payload_sha256: String,
    pub received_at: DateTime<Utc>,
    pub referral_id: String,
    pub hub_key_id: String,
}

// ---------------------------------------------------------------------------------------------
// Key rotation: POST /v1/device/keys

/// Replaces the device's signing key. `proof` shows the current key consents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotationRequest {
    /// The new Ed25519 public key, base64url without padding (32 bytes).
    pub new_public_key: String,
    /// Detached compact JWS (EdDSA, typ `dermdesk-key-rotation+jws`) by the device's CURRENT
    /// key over the canonical JSON of [`KeyRotationPayload`].
    pub proof: String,
}

/// What a key rotation proof signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotationPayload {
    pub device_id: String,
    pub new_key_id: String,
    pub new_public_key: String,
}

/// The hub's answer to a key rotation (the same again for a repeat of the same rotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotationResponse {
    pub device_id: String,
    /// The device's key from now on.
    pub key_id: String,
    /// The key it replaced: outcomes it signed before `rotated_at` still verify; outcomes it
    /// signs after are refused (`key_retired`).
    pub retired_key_id: String,
    pub rotated_at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------------
// Export: a signed outcome as a standalone file (docs/VERIFY.md)

/// `format` of a [`SignedOutcomeExport`].
pub const EXPORT_FORMAT: &str = "dermdesk-signed-outcome/1";

/// A signed outcome as a file the GP practice can keep and verify without Derm Desk: the payload,
/// the consultant's detached JWS, the consultant's public key and, once delivered, the hub's
/// signed receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOutcomeExport {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    pub payload: OutcomePayload,
    pub jws: String,
    pub consultant_public_key: PublicKeyInfo,
    /// The hub's receipt, if the outcome was delivered.
    #[serde(default)]
    pub receipt: Option<OutcomeReceipt>,
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Body of every non-2xx response. Clients branch on `code`, never on `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// For `referral_changed`: the referral's current version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the request is malformed.
    BadRequest,
    /// 401: missing, unknown or revoked device token.
    Unauthorized,
    /// 403: the enrolment code is unknown or already used.
    EnrolmentRefused,
    /// 404
    NotFound,
    /// 409: the referral was withdrawn.
    ReferralWithdrawn,
    /// 409: the referral was reassigned to another consultant.
    ReferralReassigned,
    /// 409: another outcome was already accepted for this referral.
    AlreadyDecided,
    /// 409: the referral changed after the consultant signed; see `current_version`.
    ReferralChanged,
    /// 409: the same outcome id was used for a different payload.
    OutcomeIdReused,
    /// 422: the signature does not verify against the device's enrolled key.
    BadSignature,
    /// 422: the outcome is not well-formed.
    InvalidOutcome,
    /// 422: the outcome was signed with a key its device had already replaced (`signed_at` is
    /// after the rotation).
    KeyRetired,
    /// 413
    TooLarge,
    /// 429
    RateLimited,
    /// 5xx
    Internal,
}
