//! Fault injection, for tests only: makes the device routes that carry data (`/v1/feed`,
//! `/v1/photos/{content_id}`, `/v1/outcomes`) fail the way networks and overloaded servers do —
//! 503s, 429s, slow answers, hangs, dropped connections, cut, corrupted or mis-sized bodies — so
//! the desktop app's sync engine can be proven against them over real TCP.
//!
//! `/v1/health` and `/v1/enrol` are never touched: a test harness must always be able to start.
//! Admin routes are never touched either: the harness switches faults on and off through them.
//!
//! One [`FaultState`] is shared by the three routes' middleware. Each request takes one short
//! lock to draw its whole plan from one RNG (so a seed reproduces the sequence of decisions), and
//! never holds it across an await. With no fault configured the middleware costs two relaxed
//! atomic operations and never locks.
//!
//! How each fault looks on the wire (HTTP/1.1; over HTTP/2 the "dropped connection" faults reset
//! the stream instead):
//! - `error_5xx`: `503` with an `ApiError` body (`internal`); the handler does not run.
//! - `too_many_requests`: `429` with `Retry-After` and an `ApiError` body (`rate_limited`); the
//!   handler does not run.
//! - `latency`: the request waits `latency_ms` plus up to `latency_jitter_ms`, then proceeds (it
//!   may still get another fault).
//! - `timeout`: the request waits `timeout_ms`, then the connection is closed with no answer; the
//!   handler does not run.
//! - `reset`: the connection is closed with no answer (not even a status line), either before the
//!   handler runs or after it ran (`reset_after_handler_share`): then the hub has done the work,
//!   e.g. stored an outcome, but the client never sees the receipt.
//! - `truncate`: a successful response with a body is sent with its full `Content-Length` but
//!   only a random prefix of the body (at most; what hyper had not yet written is lost too), then
//!   the connection is closed.
//! - `flip`: a photo response (`200` or `206`) has one bit of one byte flipped; headers unchanged.
//! - `wrong_length`: a photo response declares a `Content-Length` 1 to 1024 bytes larger than its
//!   body, sends the whole body and closes the connection: the client sees an incomplete message.
//!   (Hyper cannot send more bytes than declared: it cuts the body at the declared length, which
//!   a client would see as a complete, short photo. The larger lie is the one it lets us tell.)
//!
//! Each request gets at most one fault besides latency. The kinds are tried in the order reset,
//! timeout, error_5xx, too_many_requests, truncate, wrong_length, flip, each with its own
//! probability, and the first that fires is the request's fault. A body fault (truncate,
//! wrong_length, flip) whose response turns out to have no body to spoil (an error, a `304`, a
//! `HEAD`) is not injected and not counted.

use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, RETRY_AFTER};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Json;
use dermdesk_protocol::{ApiError, ErrorCode};
use http_body::Frame;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Which faults to inject, and how often. Every probability is per request, from 0.0 (never, the
/// default) to 1.0 (always). The default injects nothing.
///
/// As JSON (`PUT /admin/faults`) every field is optional and unknown fields are refused, so a
/// typo cannot silently leave a fault off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Answer `503` with an `ApiError` body without running the handler.
    pub error_5xx: f64,
    /// Answer `429` with `Retry-After` without running the handler.
    pub too_many_requests: f64,
    /// The `Retry-After` of injected `429`s, in seconds. Default 1.
    pub retry_after_secs: u64,
    /// Delay the request by `latency_ms` plus a uniform `0..=latency_jitter_ms`.
    pub latency: f64,
    /// Default 200. Fixed, so a test can rely on every delayed request taking at least this long.
    pub latency_ms: u64,
    /// Default 0.
    pub latency_jitter_ms: u64,
    /// Hang for `timeout_ms`, then close the connection without answering.
    pub timeout: f64,
    /// Default 60,000: longer than any sane client read timeout.
    pub timeout_ms: u64,
    /// Close the connection without answering, before or after the handler runs.
    pub reset: f64,
    /// The share of resets that happen after the handler ran (the response is lost, the work is
    /// done). Default 0.5.
    pub reset_after_handler_share: f64,
    /// Send a successful response's full `Content-Length` but only a prefix of its body.
    pub truncate: f64,
    /// Flip one bit of a photo response's body.
    pub flip: f64,
    /// Declare a photo response's `Content-Length` larger than its body.
    pub wrong_length: f64,
    /// Seeds the RNG, so a run's sequence of decisions can be reproduced. `None`: from entropy.
    pub seed: Option<u64>,
}

impl Default for FaultConfig {
    fn default() -> FaultConfig {
        FaultConfig {
            error_5xx: 0.0,
            too_many_requests: 0.0,
            retry_after_secs: 1,
            latency: 0.0,
            latency_ms: 200,
            latency_jitter_ms: 0,
            timeout: 0.0,
            timeout_ms: 60_000,
            reset: 0.0,
            reset_after_handler_share: 0.5,
            truncate: 0.0,
            flip: 0.0,
            wrong_length: 0.0,
            seed: None,
        }
    }
}

impl FaultConfig {
    /// The per-request probabilities of the fault kinds, by field name.
    fn fault_probabilities(&self) -> [(&'static str, f64); 8] {
        [
            ("error_5xx", self.error_5xx),
            ("too_many_requests", self.too_many_requests),
            ("latency", self.latency),
            ("timeout", self.timeout),
            ("reset", self.reset),
            ("truncate", self.truncate),
            ("flip", self.flip),
            ("wrong_length", self.wrong_length),
        ]
    }

    /// True if any fault can fire.
    pub fn is_active(&self) -> bool {
        self.fault_probabilities().iter().any(|(_, probability)| *probability > 0.0)
    }

    /// Checks that every probability is within 0.0..=1.0 (the CLI and the admin route refuse
    /// anything else; [`FaultState`] itself treats ≤ 0 as never and ≥ 1 as always).
    pub fn validate(&self) -> Result<(), String> {
        let share = ("reset_after_handler_share", self.reset_after_handler_share);
        for (name, probability) in self.fault_probabilities().into_iter().chain(std::iter::once(share)) {
            if !(0.0..=1.0).contains(&probability) {
                return Err(format!("{name} must be a probability from 0 to 1, not {probability}"));
            }
        }
        Ok(())
    }
}

/// The CLI's names, one per field (`-` or `_` both accepted), and the short forms.
const SPEC_KEYS: &str =
    "5xx, 429, retry-after, latency, latency-ms, latency-jitter-ms, timeout, timeout-ms, \
     reset, reset-after-share, truncate, flip, wrong-length, seed";

/// Parses the CLI's `--faults` spec: comma-separated `key=value` pairs, e.g.
/// `5xx=0.05,429=0.05,latency=0.2,latency-ms=200,reset=0.02,seed=7`. Unnamed fields keep their
/// defaults; unknown or repeated keys, bad numbers and probabilities outside 0..=1 are errors.
impl FromStr for FaultConfig {
    type Err = String;

    fn from_str(spec: &str) -> Result<FaultConfig, String> {
        let mut config = FaultConfig::default();
        let mut seen: Vec<String> = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let (key, value) =
                item.split_once('=').ok_or_else(|| format!("fault \"{item}\" needs a value: key=value"))?;
            let (key, value) = (key.trim().to_ascii_lowercase().replace('_', "-"), value.trim());
            let probability = |field: &mut f64| -> Result<(), String> {
                *field = value.parse().map_err(|_| format!("{key}: \"{value}\" is not a number"))?;
                Ok(())
            };
            let whole = |field: &mut u64| -> Result<(), String> {
                *field = value.parse().map_err(|_| format!("{key}: \"{value}\" is not a whole number"))?;
                Ok(())
            };
            let canonical = match key.as_str() {
                "5xx" | "error-5xx" => probability(&mut config.error_5xx).map(|()| "5xx"),
                "429" | "too-many-requests" => probability(&mut config.too_many_requests).map(|()| "429"),
                "retry-after" | "retry-after-secs" => {
                    whole(&mut config.retry_after_secs).map(|()| "retry-after")
                }
                "latency" => probability(&mut config.latency).map(|()| "latency"),
                "latency-ms" => whole(&mut config.latency_ms).map(|()| "latency-ms"),
                "latency-jitter-ms" => whole(&mut config.latency_jitter_ms).map(|()| "latency-jitter-ms"),
                "timeout" => probability(&mut config.timeout).map(|()| "timeout"),
                "timeout-ms" => whole(&mut config.timeout_ms).map(|()| "timeout-ms"),
                "reset" => probability(&mut config.reset).map(|()| "reset"),
                "reset-after-share" | "reset-after-handler-share" => {
                    probability(&mut config.reset_after_handler_share).map(|()| "reset-after-share")
                }
                "truncate" => probability(&mut config.truncate).map(|()| "truncate"),
                "flip" => probability(&mut config.flip).map(|()| "flip"),
                "wrong-length" => probability(&mut config.wrong_length).map(|()| "wrong-length"),
                "seed" => {
                    let mut seed = 0;
                    whole(&mut seed).map(|()| {
                        config.seed = Some(seed);
                        "seed"
                    })
                }
                _ => return Err(format!("unknown fault \"{key}\"; known: {SPEC_KEYS}")),
            }?;
            if seen.iter().any(|earlier| earlier == canonical) {
                return Err(format!("fault \"{canonical}\" is given twice"));
            }
            seen.push(canonical.to_string());
        }
        config.validate()?;
        Ok(config)
    }
}

/// Requests per device route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteCounts {
    pub feed: u64,
    pub photos: u64,
    pub outcomes: u64,
}

/// What the fault layer has seen and done since the hub started. Counts are never reset, so a
/// harness compares two readings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounts {
    /// Every request that reached a faultable route, faulted or not.
    pub requests: RouteCounts,
    /// Requests passed on to the route's handler (authentication included): for outcomes, every
    /// submission the hub may have acted on. What it stored is in the outcomes table.
    pub handled: RouteCounts,
    pub error_5xx: u64,
    pub too_many_requests: u64,
    pub latency: u64,
    pub timeout: u64,
    pub reset_before_handler: u64,
    pub reset_after_handler: u64,
    pub truncate: u64,
    pub flip: u64,
    pub wrong_length: u64,
}

/// `GET /admin/faults` and `PUT /admin/faults` answer with this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultReport {
    pub config: FaultConfig,
    pub counts: FaultCounts,
}

/// The routes faults apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultRoute {
    Feed,
    Photos,
    Outcomes,
}

impl FaultRoute {
    /// The route template, the only thing about a request the fault log names.
    fn template(self) -> &'static str {
        match self {
            FaultRoute::Feed => "/v1/feed",
            FaultRoute::Photos => "/v1/photos/{content_id}",
            FaultRoute::Outcomes => "/v1/outcomes",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Error5xx,
    TooManyRequests,
    Latency,
    Timeout,
    ResetBeforeHandler,
    ResetAfterHandler,
    Truncate,
    Flip,
    WrongLength,
}

impl Fault {
    const COUNT: usize = 9;

    fn name(self) -> &'static str {
        match self {
            Fault::Error5xx => "error_5xx",
            Fault::TooManyRequests => "too_many_requests",
            Fault::Latency => "latency",
            Fault::Timeout => "timeout",
            Fault::ResetBeforeHandler => "reset_before_handler",
            Fault::ResetAfterHandler => "reset_after_handler",
            Fault::Truncate => "truncate",
            Fault::Flip => "flip",
            Fault::WrongLength => "wrong_length",
        }
    }
}

/// Atomic counters, so counting never takes the lock.
#[derive(Debug, Default)]
struct Counters {
    requests: [AtomicU64; 3],
    handled: [AtomicU64; 3],
    faults: [AtomicU64; Fault::COUNT],
}

impl Counters {
    fn snapshot(&self) -> FaultCounts {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let routes = |counters: &[AtomicU64; 3]| RouteCounts {
            feed: read(&counters[FaultRoute::Feed as usize]),
            photos: read(&counters[FaultRoute::Photos as usize]),
            outcomes: read(&counters[FaultRoute::Outcomes as usize]),
        };
        let fault = |kind: Fault| read(&self.faults[kind as usize]);
        FaultCounts {
            requests: routes(&self.requests),
            handled: routes(&self.handled),
            error_5xx: fault(Fault::Error5xx),
            too_many_requests: fault(Fault::TooManyRequests),
            latency: fault(Fault::Latency),
            timeout: fault(Fault::Timeout),
            reset_before_handler: fault(Fault::ResetBeforeHandler),
            reset_after_handler: fault(Fault::ResetAfterHandler),
            truncate: fault(Fault::Truncate),
            flip: fault(Fault::Flip),
            wrong_length: fault(Fault::WrongLength),
        }
    }
}

#[derive(Debug)]
struct Settings {
    config: FaultConfig,
    rng: StdRng,
}

/// The fault configuration a running hub applies, changeable at run time, and its counts.
/// Share it (`Arc`) between [`crate::ServerConfig::faults`] and the test that steers it.
#[derive(Debug)]
pub struct FaultState {
    /// Mirrors `settings.config.is_active()`, read without the lock on every request.
    active: AtomicBool,
    settings: Mutex<Settings>,
    counters: Counters,
}

impl Default for FaultState {
    fn default() -> FaultState {
        FaultState::new(FaultConfig::default())
    }
}

fn rng_for(config: &FaultConfig) -> StdRng {
    match config.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_entropy(),
    }
}

/// True with probability `probability`; draws nothing when it is zero or less.
fn roll(rng: &mut StdRng, probability: f64) -> bool {
    probability > 0.0 && rng.gen::<f64>() < probability
}

impl FaultState {
    pub fn new(config: FaultConfig) -> FaultState {
        FaultState {
            active: AtomicBool::new(config.is_active()),
            settings: Mutex::new(Settings { rng: rng_for(&config), config }),
            counters: Counters::default(),
        }
    }

    /// Replaces the configuration; requests already past their decision are not affected. The
    /// RNG restarts from the new seed (or from entropy). Counts carry on.
    pub fn set(&self, config: FaultConfig) {
        let mut settings = self.lock();
        self.active.store(config.is_active(), Ordering::Relaxed);
        settings.rng = rng_for(&config);
        settings.config = config;
    }

    pub fn config(&self) -> FaultConfig {
        self.lock().config.clone()
    }

    pub fn counts(&self) -> FaultCounts {
        self.counters.snapshot()
    }

    pub fn report(&self) -> FaultReport {
        FaultReport { config: self.config(), counts: self.counts() }
    }

    fn lock(&self) -> MutexGuard<'_, Settings> {
        // Nothing panics while holding the lock, and the settings are valid whatever happens.
        self.settings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, fault: Fault, route: FaultRoute) {
        self.counters.faults[fault as usize].fetch_add(1, Ordering::Relaxed);
        tracing::debug!(fault = fault.name(), route = route.template(), "injected fault");
    }

    /// Draws one request's plan, or `None` (cheaply, without locking) when no fault is on.
    fn plan(&self, route: FaultRoute) -> Option<Plan> {
        if !self.active.load(Ordering::Relaxed) {
            return None;
        }
        let mut settings = self.lock();
        let Settings { config, rng } = &mut *settings;
        let delay = roll(rng, config.latency).then(|| {
            let jitter =
                if config.latency_jitter_ms > 0 { rng.gen_range(0..=config.latency_jitter_ms) } else { 0 };
            Duration::from_millis(config.latency_ms.saturating_add(jitter))
        });
        let photos = route == FaultRoute::Photos;
        let action = if roll(rng, config.reset) {
            Action::Reset { after_handler: roll(rng, config.reset_after_handler_share) }
        } else if roll(rng, config.timeout) {
            Action::Timeout(Duration::from_millis(config.timeout_ms))
        } else if roll(rng, config.error_5xx) {
            Action::Unavailable
        } else if roll(rng, config.too_many_requests) {
            Action::TooManyRequests { retry_after_secs: config.retry_after_secs }
        } else if roll(rng, config.truncate) {
            Action::Spoil(Spoil::Truncate { cut: rng.gen() })
        } else if photos && roll(rng, config.wrong_length) {
            Action::Spoil(Spoil::WrongLength { extra: rng.gen_range(1..=1024) })
        } else if photos && roll(rng, config.flip) {
            Action::Spoil(Spoil::Flip { at: rng.gen(), bit: rng.gen_range(0..8) })
        } else {
            Action::None
        };
        Some(Plan { delay, action })
    }
}

/// One request's faults, drawn before the handler runs so the RNG is used in request order.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Plan {
    delay: Option<Duration>,
    action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    None,
    Reset { after_handler: bool },
    Timeout(Duration),
    Unavailable,
    TooManyRequests { retry_after_secs: u64 },
    Spoil(Spoil),
}

/// A fault applied to the handler's response body. `cut` (the prefix kept) and `at` (the byte
/// flipped) are taken modulo the body's length, known only after the handler.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Spoil {
    Truncate { cut: u64 },
    WrongLength { extra: u64 },
    Flip { at: u64, bit: u8 },
}

/// The middleware's state: the shared faults and which route this instance guards.
#[derive(Clone)]
struct Guarded {
    faults: Arc<FaultState>,
    route: FaultRoute,
}

/// Puts `route`'s fault middleware around `method_router`, when there are faults to inject.
pub(crate) fn guard<S>(
    method_router: MethodRouter<S>,
    faults: Option<&Arc<FaultState>>,
    route: FaultRoute,
) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    match faults {
        Some(faults) => method_router
            .layer(middleware::from_fn_with_state(Guarded { faults: faults.clone(), route }, inject)),
        None => method_router,
    }
}

async fn inject(State(guarded): State<Guarded>, request: Request, next: Next) -> Response {
    let Guarded { faults, route } = guarded;
    faults.counters.requests[route as usize].fetch_add(1, Ordering::Relaxed);
    let plan = faults.plan(route);
    let handle = |request: Request| {
        faults.counters.handled[route as usize].fetch_add(1, Ordering::Relaxed);
        next.run(request)
    };
    let Some(plan) = plan else {
        return handle(request).await;
    };

    if let Some(delay) = plan.delay {
        faults.count(Fault::Latency, route);
        tokio::time::sleep(delay).await;
    }
    match plan.action {
        Action::Reset { after_handler: false } => {
            faults.count(Fault::ResetBeforeHandler, route);
            return dropped_connection();
        }
        Action::Timeout(wait) => {
            faults.count(Fault::Timeout, route);
            tokio::time::sleep(wait).await;
            return dropped_connection();
        }
        Action::Unavailable => {
            faults.count(Fault::Error5xx, route);
            return api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Internal,
                "the hub is unavailable (injected fault); nothing was recorded, try again later",
            );
        }
        Action::TooManyRequests { retry_after_secs } => {
            faults.count(Fault::TooManyRequests, route);
            let mut response = api_error(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                "too many requests (injected fault); nothing was recorded, retry after the Retry-After delay",
            );
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return response;
        }
        Action::None | Action::Reset { after_handler: true } | Action::Spoil(_) => {}
    }

    // HEAD responses have no body to spoil (hyper sends none whatever the handler returns).
    let spoilable = request.method() != Method::HEAD;
    let response = handle(request).await;
    match plan.action {
        Action::Reset { after_handler: true } => {
            faults.count(Fault::ResetAfterHandler, route);
            dropped_connection()
        }
        Action::Spoil(spoil) if spoilable && response.status().is_success() => {
            spoil_body(&faults, route, spoil, response).await
        }
        _ => response,
    }
}

/// Applies a body fault to a successful response, unless it has no body.
async fn spoil_body(faults: &FaultState, route: FaultRoute, spoil: Spoil, response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    // The handlers' bodies are already in memory (feed pages, receipts, photo ranges), so
    // collecting them costs a copy at most.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        // The body failed on its own: the client loses the connection either way.
        return dropped_connection();
    };
    let length = bytes.len() as u64;
    if length == 0 {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let (fault, body) = match spoil {
        Spoil::Truncate { cut } => {
            parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
            let prefix = bytes.slice(..(cut % length) as usize);
            (Fault::Truncate, Body::new(FaultyBody::sending(prefix, Ending::Abort)))
        }
        Spoil::WrongLength { extra } => {
            parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(length.saturating_add(extra)));
            (Fault::WrongLength, Body::new(FaultyBody::sending(bytes, Ending::Early)))
        }
        Spoil::Flip { at, bit } => {
            let mut flipped = Vec::from(bytes);
            if let Some(byte) = flipped.get_mut((at % length) as usize) {
                *byte ^= 1 << (bit % 8);
            }
            (Fault::Flip, Body::from(flipped))
        }
    };
    faults.count(fault, route);
    Response::from_parts(parts, body)
}

fn api_error(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    (status, Json(ApiError { code, message: message.to_string(), current_version: None })).into_response()
}

/// A response that never reaches the client: its body fails before hyper has flushed anything,
/// so hyper closes the connection without even a status line.
fn dropped_connection() -> Response {
    Response::new(Body::new(FaultyBody::dropping()))
}

/// How a [`FaultyBody`] ends once its bytes are out.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// With an error: hyper aborts the connection.
    Abort,
    /// Normally, but short of the declared `Content-Length`: hyper aborts the connection.
    Early,
}

/// A body that sends some bytes, gives hyper one chance to flush them, then ends the way it is
/// told. Its size is unknown to hyper (no exact size hint), so hyper takes the `Content-Length`
/// header at its word and notices the shortfall only at the end.
struct FaultyBody {
    bytes: Option<Bytes>,
    /// Whether hyper has had its chance to write out what it holds.
    flushed: bool,
    ending: Ending,
}

impl FaultyBody {
    fn sending(bytes: Bytes, ending: Ending) -> FaultyBody {
        FaultyBody { bytes: Some(bytes), flushed: false, ending }
    }

    fn dropping() -> FaultyBody {
        FaultyBody { bytes: None, flushed: true, ending: Ending::Abort }
    }
}

impl http_body::Body for FaultyBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(bytes) = self.bytes.take().filter(|bytes| !bytes.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        if !self.flushed {
            // Hyper writes headers and data to its buffer and flushes the socket only when the
            // body is pending: without this pause the error below would discard everything.
            self.flushed = true;
            context.waker().wake_by_ref();
            return Poll::Pending;
        }
        match self.ending {
            Ending::Abort => Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "injected fault",
            )))),
            Ending::Early => Poll::Ready(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_injects_nothing_and_never_locks() {
        let config = FaultConfig::default();
        assert!(!config.is_active());
        assert_eq!(config.validate(), Ok(()));
        let state = FaultState::new(config);
        assert_eq!(state.plan(FaultRoute::Feed), None);
        assert_eq!(state.counts(), FaultCounts::default());
    }

    #[test]
    fn a_full_spec_parses() {
        let config: FaultConfig =
            "5xx=0.05,429=0.05,latency=0.2,latency-ms=200,timeout=0.01,timeout-ms=3000,\
             reset=0.02,truncate=0.05,flip=0.05,wrong-length=0.02,seed=7"
                .parse()
                .unwrap();
        assert_eq!(
            config,
            FaultConfig {
                error_5xx: 0.05,
                too_many_requests: 0.05,
                latency: 0.2,
                latency_ms: 200,
                timeout: 0.01,
                timeout_ms: 3000,
                reset: 0.02,
                truncate: 0.05,
                flip: 0.05,
                wrong_length: 0.02,
                seed: Some(7),
                ..FaultConfig::default()
            }
        );
    }

    #[test]
    fn long_names_spaces_and_empty_items_are_accepted() {
        let config: FaultConfig =
            " error_5xx = 1 , too-many-requests=0.5,retry-after=3, reset-after-share=1,latency-jitter-ms=9,"
                .parse()
                .unwrap();
        assert_eq!(config.error_5xx, 1.0);
        assert_eq!(config.too_many_requests, 0.5);
        assert_eq!(config.retry_after_secs, 3);
        assert_eq!(config.reset_after_handler_share, 1.0);
        assert_eq!(config.latency_jitter_ms, 9);
        assert_eq!("".parse::<FaultConfig>(), Ok(FaultConfig::default()));
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let error = |spec: &str| spec.parse::<FaultConfig>().unwrap_err();
        assert!(error("5xxx=0.1").contains("unknown fault \"5xxx\""), "{}", error("5xxx=0.1"));
        assert!(error("5xx").contains("needs a value"));
        assert!(error("5xx=lots").contains("\"lots\" is not a number"));
        assert!(error("5xx=1.5").contains("error_5xx must be a probability from 0 to 1"));
        assert!(error("flip=-0.1").contains("flip must be a probability"));
        assert!(error("flip=NaN").contains("flip must be a probability"));
        assert!(error("timeout-ms=1.5").contains("not a whole number"));
        assert!(error("seed=-1").contains("not a whole number"));
        assert!(error("5xx=0.1,error-5xx=0.2").contains("given twice"));
    }

    #[test]
    fn a_seed_reproduces_the_decisions() {
        let config = FaultConfig {
            error_5xx: 0.3,
            reset: 0.2,
            truncate: 0.3,
            flip: 0.5,
            latency: 0.5,
            latency_jitter_ms: 50,
            seed: Some(42),
            ..FaultConfig::default()
        };
        let plans = |state: &FaultState| (0..200).map(|_| state.plan(FaultRoute::Photos)).collect::<Vec<_>>();
        let first = plans(&FaultState::new(config.clone()));
        assert_eq!(first, plans(&FaultState::new(config.clone())));
        assert!(first.iter().any(|plan| matches!(plan, Some(Plan { action: Action::None, .. }))));
        assert!(first.iter().any(|plan| matches!(plan, Some(Plan { action: Action::Unavailable, .. }))));
        // Setting the same config again restarts the sequence.
        let state = FaultState::new(config.clone());
        let _ = plans(&state);
        state.set(config);
        assert_eq!(first, plans(&state));
    }

    #[test]
    fn body_faults_other_than_truncate_are_drawn_for_photos_only() {
        let state = FaultState::new(FaultConfig {
            flip: 1.0,
            wrong_length: 1.0,
            seed: Some(1),
            ..FaultConfig::default()
        });
        assert_eq!(state.plan(FaultRoute::Feed).map(|plan| plan.action), Some(Action::None));
        assert!(matches!(
            state.plan(FaultRoute::Photos),
            Some(Plan { action: Action::Spoil(Spoil::WrongLength { extra: 1..=1024 }), delay: None })
        ));
        state.set(FaultConfig::default());
        assert_eq!(state.plan(FaultRoute::Photos), None);
    }
}
