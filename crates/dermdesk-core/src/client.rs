//! The hub's HTTP API, from the consultant's side. The only module that talks to the network.
//!
//! Safety rules: https only (plain http only to a loopback address, for the embedded demo and
//! tests); redirects are never followed (a redirect to another host must not receive the device
//! token); bodies are size-capped while they stream, never trusted by Content-Length alone;
//! no compressed body is accepted (reqwest is built without decompression, and an answer that
//! says it is compressed anyway is refused unread, so a gzip bomb is never unpacked). Every JSON
//! answer is decoded by [`decode_answer`]: size cap, serde_json's recursion limit, then the
//! protocol's bounds (`dermdesk_protocol::limits`), before anything is kept.

use std::time::Duration;

use dermdesk_protocol::limits::WireBounds;
use dermdesk_protocol::{
    ApiError, EnrolRequest, EnrolResponse, FeedPage, KeyRotationRequest, KeyRotationResponse, PublicKeyInfo,
    SignedOutcome, API_PREFIX, FEED_PAGE_MAX, MAX_PHOTO_BYTES,
};
use reqwest::{StatusCode, Url};

use crate::plan::PushResult;
use crate::secrets::Sensitive;
use crate::CoreError;

/// Largest JSON body accepted from the hub (a feed page of 200 referrals is well under this).
pub const MAX_JSON_BYTES: u64 = 8 * 1024 * 1024;
/// Largest error body read from the hub.
const MAX_ERROR_BYTES: u64 = 64 * 1024;

#[derive(Clone)]
pub struct HubClient {
    http: reqwest::Client,
    base: Url,
    token: Option<Sensitive<String>>,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient").field("base", &self.base.as_str()).field("token", &self.token).finish()
    }
}

/// Checks a service address: https, or http to a loopback address only.
pub fn check_service_url(url: &str) -> Result<Url, CoreError> {
    let parsed = Url::parse(url).map_err(|e| CoreError::BadServiceUrl(format!("{url}: {e}")))?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        "http" => Err(CoreError::BadServiceUrl(format!(
            "{url} is not encrypted; only https addresses are allowed (plain http only to this computer)"
        ))),
        other => Err(CoreError::BadServiceUrl(format!("{other}: is not a web address"))),
    }
}

impl HubClient {
    pub fn new(base_url: &str, token: Option<String>) -> Result<HubClient, CoreError> {
        let base = check_service_url(base_url)?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(30))
            .user_agent(concat!("DermDesk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CoreError::Protocol(e.to_string()))?;
        Ok(HubClient { http, base, token: token.map(Sensitive) })
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{prefix}{API_PREFIX}{path}"));
        url
    }

    fn authorised(&self, request: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, CoreError> {
        let token = self.token.as_ref().ok_or(CoreError::NotEnrolled)?;
        Ok(request.bearer_auth(&token.0))
    }

    pub async fn health(&self) -> bool {
        matches!(self.http.get(self.url("/health")).send().await, Ok(r) if r.status().is_success())
    }

    /// `GET /v1/health`, read as the Connect screen needs it: unreachable, a TLS failure, or an
    /// answer that is not a Derm Desk service's each get their own error.
    pub async fn service_info(&self) -> Result<crate::connect::ServiceInfo, CoreError> {
        let address = self.base.as_str().trim_end_matches('/').to_owned();
        let response = self.http.get(self.url("/health")).send().await.map_err(|error| {
            if is_tls_failure(&error) {
                CoreError::TlsFailed(tls_reason(&error))
            } else {
                CoreError::ServiceUnreachable(format!("{address}: {}", describe(&error)))
            }
        })?;
        let not_ours = || {
            CoreError::NotADermDeskService(format!(
                "{address} answered, but not as a teledermatology service Derm Desk can use"
            ))
        };
        if !response.status().is_success() {
            return Err(not_ours());
        }
        let body = read_capped(response, 16 * 1024).await.map_err(|_| not_ours())?;
        serde_json::from_slice(&body).map_err(|_| not_ours())
    }

    /// The service's update manifest (`GET {service}/updates/latest.json`, outside the
    /// versioned API: a static file any web server can host). No device token is sent: it is
    /// public. `None` when the service publishes none (404, 204). Capped at
    /// [`crate::updates::MAX_MANIFEST_BYTES`]; its meaning is the updater's to judge.
    pub async fn update_manifest(&self) -> Result<Option<serde_json::Value>, CoreError> {
        let url = crate::updates::manifest_url(&self.base);
        let response = self.http.get(url).send().await.map_err(offline)?;
        if matches!(response.status(), StatusCode::NOT_FOUND | StatusCode::NO_CONTENT) {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(error_body(response).await);
        }
        let body = read_capped(response, crate::updates::MAX_MANIFEST_BYTES).await?;
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| CoreError::Protocol(format!("the update manifest is not JSON: {e}")))
    }

    /// An update's installer, whole, from an address that meets the service rule (https, or
    /// http to this computer), with no token, no redirect and at most
    /// [`crate::updates::MAX_PACKAGE_BYTES`]. Its signature is checked by the caller before
    /// anything is installed.
    pub async fn update_package(&self, url: &str) -> Result<Vec<u8>, CoreError> {
        let url = check_service_url(url)?;
        let response = self.http.get(url).send().await.map_err(offline)?;
        if !response.status().is_success() {
            return Err(error_body(response).await);
        }
        read_capped(response, crate::updates::MAX_PACKAGE_BYTES).await
    }

    pub async fn enrol(&self, request: &EnrolRequest) -> Result<EnrolResponse, CoreError> {
        let response = self.http.post(self.url("/enrol")).json(request).send().await.map_err(offline)?;
        json_body(response).await
    }

    /// The service's published receipt key (`GET /v1/hub-key`).
    pub async fn hub_key(&self) -> Result<PublicKeyInfo, CoreError> {
        let response = self.http.get(self.url("/hub-key")).send().await.map_err(offline)?;
        json_body(response).await
    }

    /// Replaces this device's signing key (`POST /v1/device/keys`); a repeat of the same request
    /// gets the same answer.
    pub async fn rotate_key(&self, request: &KeyRotationRequest) -> Result<KeyRotationResponse, CoreError> {
        let request = self.authorised(self.http.post(self.url("/device/keys")).json(request))?;
        json_body(request.send().await.map_err(offline)?).await
    }

    /// One page of the change feed after `cursor`, as large as the protocol allows: a first
    /// sync of thousands of referrals then takes a quarter of the round trips and commits.
    pub async fn feed(&self, cursor: Option<&str>) -> Result<FeedPage, CoreError> {
        let mut url = self.url("/feed");
        if let Some(cursor) = cursor {
            url.query_pairs_mut().append_pair("cursor", cursor);
        }
        url.query_pairs_mut().append_pair("limit", &FEED_PAGE_MAX.to_string());
        let response = self.authorised(self.http.get(url))?.send().await.map_err(offline)?;
        json_body(response).await
    }

    /// Starts downloading a photo, from byte `offset` when part of it is already kept
    /// (`Range`, guarded by `If-Range` on the ETag so a changed resource restarts from zero).
    /// The caller reads the body with [`PhotoDownload::next_chunk`] and verifies the hash
    /// before the photo becomes visible.
    pub async fn photo(
        &self,
        content_id: &str,
        expected_size: u64,
        offset: u64,
        etag: Option<&str>,
    ) -> Result<PhotoDownload, CoreError> {
        if !dermdesk_protocol::is_content_id(content_id) {
            return Err(CoreError::Protocol("malformed photo content id".into()));
        }
        let limit = expected_size.min(MAX_PHOTO_BYTES);
        let mut request = self.authorised(self.http.get(self.url(&format!("/photos/{content_id}"))))?;
        let resuming = offset > 0 && offset < limit;
        if resuming {
            request = request.header(reqwest::header::RANGE, format!("bytes={offset}-"));
            if let Some(etag) = etag {
                request = request.header(reqwest::header::IF_RANGE, etag);
            }
        }
        let response = request.send().await.map_err(offline)?;
        refuse_encoded(&response)?;
        let status = response.status();
        let start = match status {
            StatusCode::OK => 0,
            StatusCode::PARTIAL_CONTENT if resuming => {
                let range = response
                    .headers()
                    .get(reqwest::header::CONTENT_RANGE)
                    .and_then(|value| value.to_str().ok())
                    .and_then(parse_content_range);
                match range {
                    Some((start, _end, total)) if start == offset && total == expected_size => start,
                    _ => {
                        return Err(CoreError::Protocol(
                            "the service sent a different part of the photo".into(),
                        ))
                    }
                }
            }
            StatusCode::RANGE_NOT_SATISFIABLE => return Err(CoreError::RangeRefused),
            _ => return Err(error_body(response).await),
        };
        let remaining = limit.saturating_sub(start);
        if response.content_length().is_some_and(|length| length > remaining) {
            return Err(CoreError::Protocol(format!(
                "the service offered more than the expected {remaining} bytes"
            )));
        }
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Ok(PhotoDownload { response, start, remaining, etag })
    }

    /// Uploads audit entries (`POST /v1/audit`); the service checks they continue its chain.
    pub async fn upload_audit(
        &self,
        entries: Vec<dermdesk_protocol::audit::AuditEntry>,
    ) -> Result<dermdesk_protocol::audit::AuditAck, CoreError> {
        let body = dermdesk_protocol::audit::AuditUpload { entries };
        let request = self.authorised(self.http.post(self.url("/audit")).json(&body))?;
        json_body(request.send().await.map_err(offline)?).await
    }

    /// Submits a signed outcome; the outcome id makes a repeat harmless.
    pub async fn submit(&self, signed: &SignedOutcome) -> PushResult {
        let request = match self.authorised(self.http.post(self.url("/outcomes")).json(signed)) {
            Ok(request) => request,
            Err(error) => return PushResult::Unreachable(error.to_string()),
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return PushResult::Unreachable(describe(&error)),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if status.is_success() {
            return match json_body(response).await {
                Ok(receipt) => PushResult::Accepted(receipt),
                // A cut-off acknowledgement: we cannot know if it arrived, so push again; the
                // outcome id makes the repeat harmless.
                Err(error) => PushResult::Unreachable(error.to_string()),
            };
        }
        match error_body(response).await {
            CoreError::Hub { code, message } => {
                PushResult::Refused { status: status.as_u16(), code: Some(code), message, retry_after }
            }
            CoreError::Offline(problem) => PushResult::Unreachable(problem),
            other => PushResult::Refused {
                status: status.as_u16(),
                code: None,
                message: other.to_string(),
                retry_after,
            },
        }
    }
}

/// A photo body being received.
pub struct PhotoDownload {
    response: reqwest::Response,
    /// Offset of the first byte of this body within the photo (0 unless resumed).
    pub start: u64,
    remaining: u64,
    /// The validator to send with `If-Range` when resuming later.
    pub etag: Option<String>,
}

impl PhotoDownload {
    /// The next piece of the body; `Ok(None)` at its end. More bytes than the photo's size is
    /// a protocol error, whatever the headers said; a broken connection is `Offline`.
    pub async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, CoreError> {
        let Some(chunk) = self.response.chunk().await.map_err(offline)? else {
            return Ok(None);
        };
        if chunk.len() as u64 > self.remaining {
            return Err(CoreError::Protocol("the service sent more bytes than the photo has".into()));
        }
        self.remaining -= chunk.len() as u64;
        Ok(Some(chunk))
    }
}

/// Parses `bytes START-END/TOTAL`.
fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let (range, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end, total) = (start.parse().ok()?, end.parse().ok()?, total.parse().ok()?);
    (start <= end && end < total).then_some((start, end, total))
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "could not connect".into()
    } else {
        "connection failed".into()
    }
}

/// Whether a failed request failed on the TLS handshake (certificate, protocol), not the network.
fn is_tls_failure(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        let text = cause.to_string().to_ascii_lowercase();
        if text.contains("certificate") || text.contains("tls") || text.contains("handshake") {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The innermost cause of a TLS failure, in a few words ("invalid peer certificate: UnknownIssuer").
fn tls_reason(error: &reqwest::Error) -> String {
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason = cause.to_string();
        source = cause.source();
    }
    reason.chars().take(160).collect()
}

fn offline(error: reqwest::Error) -> CoreError {
    CoreError::Offline(describe(&error))
}

/// Refuses a body the service says is compressed: we never ask for compression, and unpacking
/// one would let a few kilobytes become gigabytes.
fn refuse_encoded(response: &reqwest::Response) -> Result<(), CoreError> {
    match response.headers().get(reqwest::header::CONTENT_ENCODING) {
        None => Ok(()),
        Some(value) if value.as_bytes().eq_ignore_ascii_case(b"identity") => Ok(()),
        Some(_) => Err(CoreError::Protocol(
            "the service sent a compressed answer Derm Desk did not ask for; it was neither unpacked nor read"
                .into(),
        )),
    }
}

/// Reads a whole body, at most `limit` bytes whatever Content-Length says (a lying length that
/// is too long ends as a broken connection, one that is too short as a cut-off body).
async fn read_capped(mut response: reqwest::Response, limit: u64) -> Result<Vec<u8>, CoreError> {
    refuse_encoded(&response)?;
    let offered = response.content_length();
    if offered.is_some_and(|length| length > limit) {
        return Err(CoreError::Protocol(format!("the service offered more than the expected {limit} bytes")));
    }
    // Grows as bytes arrive: a small answer never reserves the whole cap.
    let mut body = Vec::with_capacity(offered.unwrap_or(0).min(limit).min(1024 * 1024) as usize);
    while let Some(chunk) = response.chunk().await.map_err(offline)? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(CoreError::Protocol(format!(
                "the service sent more than the expected {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Decodes one JSON answer of the service: at most [`MAX_JSON_BYTES`], serde_json's recursion
/// limit (128 levels), the typed struct (unknown shapes refused), then the protocol's bounds.
/// Pure, so the fuzz tests run exactly what the client runs.
pub fn decode_answer<T: serde::de::DeserializeOwned + WireBounds>(body: &[u8]) -> Result<T, CoreError> {
    if body.len() as u64 > MAX_JSON_BYTES {
        return Err(CoreError::Protocol(format!("the answer is larger than {MAX_JSON_BYTES} bytes")));
    }
    let value: T =
        serde_json::from_slice(body).map_err(|e| CoreError::Protocol(format!("unreadable answer: {e}")))?;
    value.check_bounds().map_err(|problem| {
        CoreError::Protocol(format!(
            "the answer breaks the protocol's limits ({problem}); none of it was kept"
        ))
    })?;
    Ok(value)
}

async fn json_body<T: serde::de::DeserializeOwned + WireBounds>(
    response: reqwest::Response,
) -> Result<T, CoreError> {
    if !response.status().is_success() {
        return Err(error_body(response).await);
    }
    let body = read_capped(response, MAX_JSON_BYTES).await?;
    decode_answer(&body)
}

async fn error_body(response: reqwest::Response) -> CoreError {
    let status = response.status();
    if status.is_redirection() {
        // Never followed (the client's policy is `none`): the device token stays with us.
        return CoreError::Protocol(format!(
            "the service answered {status}, a redirect elsewhere; Derm Desk does not follow redirects, \
             so nothing was sent there"
        ));
    }
    let body = match read_capped(response, MAX_ERROR_BYTES).await {
        Ok(body) => body,
        Err(error) => return error,
    };
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        // Busy or failing for a while: nothing is wrong with the request, so try again later.
        return CoreError::Busy(format!("service answered {status}"));
    }
    match decode_answer::<ApiError>(&body) {
        Ok(error) => CoreError::Hub { code: error.code, message: error.message },
        Err(_) => CoreError::Protocol(format!("service answered {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_accepted() {
        assert!(check_service_url("https://hub.example.nhs.uk").is_ok());
        assert!(check_service_url("http://127.0.0.1:8787").is_ok());
        assert!(check_service_url("http://[::1]:8787").is_ok());
        assert!(check_service_url("http://localhost:8787").is_ok());
        assert!(matches!(check_service_url("http://hub.example.nhs.uk"), Err(CoreError::BadServiceUrl(_))));
        assert!(matches!(check_service_url("ftp://127.0.0.1"), Err(CoreError::BadServiceUrl(_))));
    }

    #[test]
    fn content_ranges_are_parsed_strictly() {
        assert_eq!(parse_content_range("bytes 100-199/200"), Some((100, 199, 200)));
        assert_eq!(parse_content_range("bytes 0-0/1"), Some((0, 0, 1)));
        assert_eq!(parse_content_range("bytes 100-199/150"), None);
        assert_eq!(parse_content_range("bytes 200-100/300"), None);
        assert_eq!(parse_content_range("bytes */200"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let client = HubClient::new("http://127.0.0.1:1", Some("very-secret-token".into())).unwrap();
        let printed = format!("{client:?}");
        assert!(!printed.contains("very-secret-token"), "{printed}");
        assert!(printed.contains("<redacted>"));
    }
}
