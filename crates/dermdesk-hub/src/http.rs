//! The hub's HTTP face: `app()` lists every route in one place; each handler is a few lines
//! that authenticate, call one `Hub` operation on the blocking pool, and shape the response.
//! `AppError` turns every failure into the protocol's `ApiError` JSON. docs/api.md is the
//! reference for what each route accepts and answers.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{
    DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Path, Query, Request, State,
};
use axum::http::header::{
    ACCEPT_RANGES, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH, IF_RANGE, RANGE, WWW_AUTHENTICATE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use dermdesk_protocol::canonical::parse_exact;
use dermdesk_protocol::{
    ApiError, Consultant, EnrolRequest, EnrolResponse, ErrorCode, FeedPage, KeyRotationRequest,
    KeyRotationResponse, OutcomeReceipt, PublicKeyInfo, Referral, SignedOutcome, MAX_PHOTO_BYTES,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::enrolment::Device;
use crate::faults::{guard, FaultConfig, FaultReport, FaultRoute, FaultState};
use crate::photos::{parse_range, read_photo_range, RangeRequest};
use crate::{Hub, HubError, StoredOutcome};

/// Largest JSON body any route accepts. An outcome is a few KiB even with 20,000-character
/// diagnosis and plan texts (the protocol's maximum, up to 4 bytes a character); a referral
/// without photo bytes is smaller still.
pub const JSON_BODY_LIMIT: usize = 256 * 1024;

/// How the HTTP server is set up.
#[derive(Clone, Default)]
pub struct ServerConfig {
    /// Enables the `/admin/...` routes for callers presenting this bearer token. `None` (or an
    /// empty string) leaves them out of the router altogether.
    pub admin_token: Option<String>,
    /// Fault injection on the data-carrying device routes, for testing clients (see
    /// `faults.rs`). With an admin token and no `faults`, the hub makes its own, injecting
    /// nothing until `PUT /admin/faults` says otherwise.
    pub faults: Option<Arc<FaultState>>,
    /// A directory of Derm Desk updates served at `/updates/{file}` (`latest.json` and the
    /// signed installers it names; `updates.rs`). `None` leaves the route out: the app then
    /// hears "no such route" and offers nothing.
    pub updates: Option<PathBuf>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let admin_token = self.admin_token.as_ref().map(|_| "<redacted>");
        f.debug_struct("ServerConfig")
            .field("admin_token", &admin_token)
            .field("faults", &self.faults.as_ref().map(|faults| faults.config()))
            .field("updates", &self.updates)
            .finish()
    }
}

#[derive(Clone)]
struct AppState {
    hub: Hub,
    /// Only a digest is kept, so comparing it never depends on the token's length.
    admin_token_sha256: Option<[u8; 32]>,
    /// Present whenever the fault middleware is installed, so the admin routes can steer it.
    faults: Option<Arc<FaultState>>,
    updates: Option<Arc<PathBuf>>,
}

/// The hub's router. Every route is listed here.
pub fn app(hub: Hub, config: ServerConfig) -> Router {
    let admin_token_sha256 = config
        .admin_token
        .filter(|token| !token.is_empty())
        .map(|token| Sha256::digest(token.as_bytes()).into());
    // With admin routes a test can switch faults on at any time, so the middleware is always
    // there; without faults configured it is a pass-through costing two relaxed atomics. Without
    // either (the app's in-process demo) it is not installed at all.
    let faults =
        config.faults.or_else(|| admin_token_sha256.is_some().then(|| Arc::new(FaultState::default())));
    let faulty = faults.as_ref();
    let updates = config.updates.map(Arc::new);
    let state = AppState { hub, admin_token_sha256, faults: faults.clone(), updates };

    // Health, enrolment and keys never get faults: a test harness must always be able to start.
    let mut router = Router::new()
        .route("/v1/health", get(health))
        .route("/v1/enrol", post(enrol))
        .route("/v1/hub-key", get(hub_key))
        .route("/v1/device/keys", post(rotate_device_key))
        .route("/v1/feed", guard(get(feed), faulty, FaultRoute::Feed))
        .route("/v1/photos/{content_id}", guard(get(photo), faulty, FaultRoute::Photos))
        .route("/v1/outcomes", guard(post(submit_outcome), faulty, FaultRoute::Outcomes))
        .route("/v1/audit", post(upload_audit));
    if state.updates.is_some() {
        // Not under /v1: a static directory any web server can host (docs/api.md, Updates).
        router = router.route("/updates/{file}", get(update_file));
    }
    if state.admin_token_sha256.is_some() {
        router = router
            .route("/admin/consultants", post(admin_create_consultant))
            .route("/admin/enrolment-codes", post(admin_create_enrolment_code))
            .route(
                "/admin/photos",
                // The one route whose body is a photo, not JSON: it may be as large as a photo.
                post(admin_add_photo).layer(DefaultBodyLimit::max(MAX_PHOTO_BYTES as usize)),
            )
            .route("/admin/referrals", post(admin_create_referral))
            .route("/admin/referrals/{referral_id}", put(admin_update_referral))
            .route("/admin/referrals/{referral_id}/withdraw", post(admin_withdraw_referral))
            .route("/admin/referrals/{referral_id}/reassign", post(admin_reassign_referral))
            .route("/admin/referrals/{referral_id}/outcomes", get(admin_outcomes))
            .route("/admin/devices/{device_id}/revoke", post(admin_revoke_device))
            .route("/admin/faults", get(admin_faults).put(admin_set_faults));
    }
    router
        .fallback(no_such_route)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// Serves `router` on an already-bound listener until `shutdown` resolves, then finishes the
/// requests in flight. Binding is the caller's job, so tests bind 127.0.0.1:0 and know the port
/// before anything connects.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Every way a request can fail, rendered as the protocol's [`ApiError`].
#[derive(Debug)]
pub enum AppError {
    /// A hub operation refused or failed.
    Hub(HubError),
    /// The body or query is not what the route expects.
    Malformed(String),
    /// The body is over the route's limit.
    TooLarge,
    /// The `Range` asked for starts past the end of the photo.
    RangeNotSatisfiable {
        size: u64,
    },
    NoSuchRoute,
    /// A worker thread panicked; nothing it was doing was committed.
    Internal,
}

impl From<HubError> for AppError {
    fn from(error: HubError) -> AppError {
        AppError::Hub(error)
    }
}

fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::EnrolmentRefused => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::ReferralWithdrawn
        | ErrorCode::ReferralReassigned
        | ErrorCode::AlreadyDecided
        | ErrorCode::ReferralChanged
        | ErrorCode::OutcomeIdReused => StatusCode::CONFLICT,
        ErrorCode::BadSignature | ErrorCode::InvalidOutcome | ErrorCode::KeyRetired => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

const INTERNAL_MESSAGE: &str = "the hub could not complete the request and recorded nothing; try again later";

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (code, message, current_version) = match &self {
            AppError::Hub(error) => {
                let current_version = match error {
                    HubError::ReferralChanged { current_version, .. } => Some(*current_version),
                    _ => None,
                };
                let code = error.code();
                if code == ErrorCode::Internal {
                    // Database, file and corruption messages name tables, paths and ids, never
                    // patient details; they go to the log, and the client gets a plain message.
                    tracing::error!(error = %error, "request failed");
                    (code, INTERNAL_MESSAGE.to_string(), None)
                } else {
                    (code, error.to_string(), current_version)
                }
            }
            AppError::Malformed(message) => (ErrorCode::BadRequest, message.clone(), None),
            AppError::TooLarge => (
                ErrorCode::TooLarge,
                format!(
                    "the request body is too large: JSON bodies may be {JSON_BODY_LIMIT} bytes, photos {MAX_PHOTO_BYTES}"
                ),
                None,
            ),
            AppError::RangeNotSatisfiable { size } => {
                (ErrorCode::BadRequest, format!("the requested range starts past the end of the {size}-byte photo"), None)
            }
            AppError::NoSuchRoute => (ErrorCode::NotFound, "no such route".to_string(), None),
            AppError::Internal => {
                tracing::error!("a request's worker thread panicked");
                (ErrorCode::Internal, INTERNAL_MESSAGE.to_string(), None)
            }
        };
        let status = match &self {
            AppError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            _ => status_of(code),
        };
        let mut response = (status, Json(ApiError { code, message, current_version })).into_response();
        match self {
            AppError::RangeNotSatisfiable { size } => {
                response.headers_mut().insert(CONTENT_RANGE, header_value(&format!("bytes */{size}")));
            }
            AppError::Hub(HubError::Unauthorized) => {
                response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("header values built here are ASCII")
}

/// `GET /updates/{file}`: a file of the updates directory as it is, or "no such route" for a
/// name it does not hold (or may not serve). `no-cache`, so a newly published `latest.json`
/// is seen at the next check.
async fn update_file(State(state): State<AppState>, Path(file): Path<String>) -> Result<Response, AppError> {
    let dir = state.updates.as_ref().ok_or(AppError::NoSuchRoute)?;
    let path = crate::updates::find(dir, &file).ok_or(AppError::NoSuchRoute)?;
    let bytes = tokio::fs::read(&path).await.map_err(|_| AppError::NoSuchRoute)?;
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static(crate::updates::content_type(&file))),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    Ok((headers, bytes).into_response())
}

async fn no_such_route() -> AppError {
    AppError::NoSuchRoute
}

// ---------------------------------------------------------------------------------------------
// Extractors

/// JSON body whose rejections are `AppError`s (axum's own would answer in plain text).
struct ApiJson<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(AppError::TooLarge),
            // The text is serde's account of what did not parse; it goes to the client only.
            Err(rejection) => Err(AppError::Malformed(rejection.body_text())),
        }
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The device whose bearer token came with the request.
struct Authenticated(Device);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = bearer_token(&parts.headers).ok_or(HubError::Unauthorized)?.to_string();
        let hub = state.hub.clone();
        Ok(Authenticated(blocking(move || hub.authenticate(&token)).await?))
    }
}

/// Proof that the request carries the admin token.
struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let expected = state.admin_token_sha256.ok_or(HubError::Unauthorized)?;
        let presented: [u8; 32] =
            Sha256::digest(bearer_token(&parts.headers).unwrap_or("").as_bytes()).into();
        // Constant time: every byte is compared whatever the first difference.
        let difference = expected.iter().zip(presented.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if difference == 0 {
            Ok(Admin)
        } else {
            Err(HubError::Unauthorized.into())
        }
    }
}

/// Runs a hub operation on the blocking pool: SQLite and file hashing must not stall the
/// runtime's few worker threads (the hub may run on two cores beside the desktop app).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, HubError> + Send + 'static,
) -> Result<T, AppError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(AppError::from),
        Err(_) => Err(AppError::Internal),
    }
}

/// Logs method, route template and status only: never the query, headers or bodies, which
/// carry tokens, keys and patient details.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        method = %method,
        route = route.as_deref().unwrap_or("(no route)"),
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

// ---------------------------------------------------------------------------------------------
// Device routes (/v1)

/// Who this is and what time it makes it: the Connect screen checks both (docs/api.md).
async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let time = state.hub.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Json(serde_json::json!({ "status": "ok", "service": "dermdesk", "protocol": 1, "time": time }))
}

async fn enrol(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<EnrolRequest>,
) -> Result<Json<EnrolResponse>, AppError> {
    let hub = state.hub;
    Ok(Json(blocking(move || hub.enrol(&request)).await?))
}

/// The hub's public receipt key. No authentication: anyone checking a receipt needs it.
async fn hub_key(State(state): State<AppState>) -> Json<PublicKeyInfo> {
    Json(state.hub.hub_key())
}

async fn rotate_device_key(
    State(state): State<AppState>,
    Authenticated(device): Authenticated,
    ApiJson(request): ApiJson<KeyRotationRequest>,
) -> Result<Json<KeyRotationResponse>, AppError> {
    let hub = state.hub;
    Ok(Json(blocking(move || hub.rotate_device_key(&device, &request)).await?))
}

#[derive(Debug, Deserialize)]
struct FeedQuery {
    cursor: Option<String>,
    // A string, so "limit=" (empty) means "the default" rather than a parse error.
    limit: Option<String>,
}

async fn feed(
    State(state): State<AppState>,
    Authenticated(device): Authenticated,
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<FeedPage>, AppError> {
    let Query(query) = query.map_err(|rejection| AppError::Malformed(rejection.body_text()))?;
    let limit = match query.limit.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<u32>()
                .map_err(|_| AppError::Malformed("limit must be a positive whole number".into()))?,
        ),
    };
    let hub = state.hub;
    Ok(Json(blocking(move || hub.feed_page(&device.consultant_id, query.cursor.as_deref(), limit)).await?))
}

/// True if an `If-None-Match` value names `etag` (or is `*`). Weak and strong forms compare
/// equal here because a content-addressed photo's bytes never change.
fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag)
}

async fn photo(
    State(state): State<AppState>,
    Authenticated(device): Authenticated,
    Path(content_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let hub = state.hub;
    let stored = {
        let content_id = content_id.clone();
        blocking(move || hub.photo_for_consultant(&device.consultant_id, &content_id)).await?
    };
    let etag = format!("\"{content_id}\"");
    let mut response_headers = HeaderMap::new();
    response_headers.insert(ETAG, header_value(&etag));
    // Photos are clinical images: no shared or on-disk HTTP cache may keep them. The app keeps
    // its own encrypted copy and revalidates with If-None-Match.
    response_headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    response_headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));

    let header_text = |name| headers.get(name).and_then(|value: &HeaderValue| value.to_str().ok());
    if header_text(IF_NONE_MATCH).is_some_and(|value| etag_matches(value, &etag)) {
        return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
    }

    let size = stored.size;
    // If-Range: honour Range only while the client's copy is this one (always, for a content id,
    // unless the client sent some other validator).
    let range_applies = header_text(IF_RANGE).is_none_or(|value| value.trim() == etag);
    let range = match header_text(RANGE) {
        Some(value) if range_applies => parse_range(value, size),
        _ => RangeRequest::Whole,
    };
    let (status, start, length) = match range {
        RangeRequest::Whole => (StatusCode::OK, 0, size),
        RangeRequest::Part { start, end } => {
            response_headers.insert(CONTENT_RANGE, header_value(&format!("bytes {start}-{end}/{size}")));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => return Err(AppError::RangeNotSatisfiable { size }),
    };
    let media_type = stored.media_type.clone();
    let bytes = blocking(move || read_photo_range(&stored, start, length)).await?;

    response_headers.insert(CONTENT_TYPE, header_value(&media_type));
    response_headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    Ok((status, response_headers, bytes).into_response())
}

async fn submit_outcome(
    State(state): State<AppState>,
    Authenticated(device): Authenticated,
    ApiJson(body): ApiJson<serde_json::Value>,
) -> Result<Json<OutcomeReceipt>, AppError> {
    // Read exactly: the signature is checked over what was parsed, so nothing parsing drops or
    // fills in (an unknown member, a missing optional one) may differ from what was sent.
    let signed: SignedOutcome = parse_exact(&body)
        .map_err(|error| AppError::Malformed(format!("the body is not a signed outcome: {error}")))?;
    let hub = state.hub;
    Ok(Json(blocking(move || hub.submit_outcome(&device, &signed)).await?))
}

/// A device's audit log entries, continuing the chain the hub holds for it (audit.rs).
async fn upload_audit(
    State(state): State<AppState>,
    Authenticated(device): Authenticated,
    ApiJson(body): ApiJson<dermdesk_protocol::audit::AuditUpload>,
) -> Result<Json<dermdesk_protocol::audit::AuditAck>, AppError> {
    let hub = state.hub;
    Ok(Json(blocking(move || hub.record_audit(&device, &body.entries)).await?))
}

// ---------------------------------------------------------------------------------------------
// Admin routes (/admin): what a GP-practice system or the service's staff would do.

#[derive(Debug, Deserialize)]
struct NewConsultant {
    display_name: String,
}

#[derive(Debug, Deserialize)]
struct NewEnrolmentCode {
    consultant_id: String,
}

#[derive(Debug, Serialize)]
struct EnrolmentCode {
    enrolment_code: String,
}

#[derive(Debug, Serialize)]
struct StoredPhotoId {
    content_id: String,
}

#[derive(Debug, Deserialize)]
struct NewReferral {
    referral: Referral,
    assign_to: String,
}

#[derive(Debug, Deserialize)]
struct ChangedReferral {
    referral: Referral,
}

#[derive(Debug, Serialize)]
struct ReferralVersion {
    referral_id: String,
    version: u64,
}

#[derive(Debug, Deserialize)]
struct Reassignment {
    consultant_id: String,
}

async fn admin_create_consultant(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<NewConsultant>,
) -> Result<(StatusCode, Json<Consultant>), AppError> {
    let hub = state.hub;
    let consultant = blocking(move || hub.create_consultant(&request.display_name)).await?;
    Ok((StatusCode::CREATED, Json(consultant)))
}

async fn admin_create_enrolment_code(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<NewEnrolmentCode>,
) -> Result<(StatusCode, Json<EnrolmentCode>), AppError> {
    let hub = state.hub;
    let enrolment_code = blocking(move || hub.create_enrolment_code(&request.consultant_id)).await?;
    Ok((StatusCode::CREATED, Json(EnrolmentCode { enrolment_code })))
}

async fn admin_add_photo(
    _: Admin,
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<StoredPhotoId>), AppError> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => AppError::TooLarge,
        _ => AppError::Malformed(rejection.body_text()),
    })?;
    let hub = state.hub;
    let content_id = blocking(move || hub.add_photo_bytes(&body)).await?;
    Ok((StatusCode::CREATED, Json(StoredPhotoId { content_id })))
}

async fn admin_create_referral(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<NewReferral>,
) -> Result<(StatusCode, Json<ReferralVersion>), AppError> {
    let hub = state.hub;
    let referral_id = request.referral.id.clone();
    let version = request.referral.version;
    blocking(move || hub.create_referral(&request.referral, &request.assign_to)).await?;
    Ok((StatusCode::CREATED, Json(ReferralVersion { referral_id, version })))
}

async fn admin_update_referral(
    _: Admin,
    State(state): State<AppState>,
    Path(referral_id): Path<String>,
    ApiJson(request): ApiJson<ChangedReferral>,
) -> Result<Json<ReferralVersion>, AppError> {
    if request.referral.id != referral_id {
        return Err(AppError::Malformed("the referral's id differs from the one in the path".into()));
    }
    let hub = state.hub;
    let version = blocking(move || hub.update_referral(&request.referral)).await?;
    Ok(Json(ReferralVersion { referral_id, version }))
}

async fn admin_withdraw_referral(
    _: Admin,
    State(state): State<AppState>,
    Path(referral_id): Path<String>,
) -> Result<StatusCode, AppError> {
    let hub = state.hub;
    blocking(move || hub.withdraw_referral(&referral_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn admin_reassign_referral(
    _: Admin,
    State(state): State<AppState>,
    Path(referral_id): Path<String>,
    ApiJson(request): ApiJson<Reassignment>,
) -> Result<StatusCode, AppError> {
    let hub = state.hub;
    blocking(move || hub.reassign_referral(&referral_id, &request.consultant_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn admin_outcomes(
    _: Admin,
    State(state): State<AppState>,
    Path(referral_id): Path<String>,
) -> Result<Json<Vec<StoredOutcome>>, AppError> {
    let hub = state.hub;
    Ok(Json(blocking(move || hub.outcomes(&referral_id)).await?))
}

async fn admin_revoke_device(
    _: Admin,
    State(state): State<AppState>,
    Path(device_id): Path<String>,
) -> Result<StatusCode, AppError> {
    let hub = state.hub;
    blocking(move || hub.revoke_device(&device_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn admin_faults(_: Admin, State(state): State<AppState>) -> Result<Json<FaultReport>, AppError> {
    let faults = state.faults.ok_or(AppError::NoSuchRoute)?;
    Ok(Json(faults.report()))
}

async fn admin_set_faults(
    _: Admin,
    State(state): State<AppState>,
    ApiJson(config): ApiJson<FaultConfig>,
) -> Result<Json<FaultReport>, AppError> {
    let faults = state.faults.ok_or(AppError::NoSuchRoute)?;
    config.validate().map_err(AppError::Malformed)?;
    tracing::info!(active = config.is_active(), "fault injection reconfigured");
    faults.set(config);
    Ok(Json(faults.report()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let etag = "\"abc\"";
        assert!(etag_matches("\"abc\"", etag));
        assert!(etag_matches("\"x\", W/\"abc\"", etag));
        assert!(etag_matches("*", etag));
        assert!(!etag_matches("\"abd\"", etag));
    }

    #[test]
    fn bearer_tokens_need_the_scheme_and_a_value() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer   abc "));
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&headers), None);
    }
}
