//! Fault injection: each fault forced to probability 1 on a real TCP connection with reqwest, so
//! what is asserted is what a client really sees. Each test fails if its fault is not injected.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dermdesk_hub::{FaultConfig, FaultCounts, FaultReport, FaultState, ServerConfig};
use dermdesk_protocol::{ApiError, ErrorCode, FeedPage, OutcomeReceipt, Referral};
use ed25519_dalek::SigningKey;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{enrol_request, Served, TestDevice, TestHub, ADMIN_TOKEN};

/// A hub with one referral (one photo) and an enrolled device, served with `config`'s faults.
struct Faulty {
    test: TestHub,
    served: Served,
    faults: Arc<FaultState>,
    device: TestDevice,
    referral: Referral,
    photo: Vec<u8>,
    client: reqwest::Client,
}

async fn faulty(config: FaultConfig) -> Faulty {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    let (referral, photo) = test.referral_for("R-1", &consultant.id);
    let device = test.enrol(&consultant.id).await;
    let faults = Arc::new(FaultState::new(config));
    let served = test.serve(ServerConfig { faults: Some(faults.clone()), ..ServerConfig::default() }).await;
    Faulty { test, served, faults, device, referral, photo, client: client() }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

impl Faulty {
    fn photo_url(&self) -> String {
        self.served.url(&format!("/v1/photos/{}", self.referral.photos[0].content_id))
    }

    async fn get(&self, url: &str) -> reqwest::Result<reqwest::Response> {
        self.client.get(url).bearer_auth(&self.device.token).send().await
    }

    async fn feed(&self) -> reqwest::Result<reqwest::Response> {
        self.get(&self.served.url("/v1/feed")).await
    }

    async fn submit(&self, signed: &dermdesk_protocol::SignedOutcome) -> reqwest::Result<reqwest::Response> {
        self.client
            .post(self.served.url("/v1/outcomes"))
            .bearer_auth(&self.device.token)
            .json(signed)
            .send()
            .await
    }

    fn stored_outcome_ids(&self) -> Vec<String> {
        self.test
            .hub
            .outcomes(&self.referral.id)
            .unwrap()
            .into_iter()
            .map(|stored| stored.outcome_id)
            .collect()
    }
}

fn always(config: FaultConfig) -> FaultConfig {
    FaultConfig { seed: Some(7), ..config }
}

#[tokio::test]
async fn health_and_enrolment_never_get_faults() {
    let every_fault = always(FaultConfig {
        error_5xx: 1.0,
        too_many_requests: 1.0,
        latency: 1.0,
        latency_ms: 0,
        timeout: 1.0,
        timeout_ms: 0,
        reset: 1.0,
        truncate: 1.0,
        flip: 1.0,
        wrong_length: 1.0,
        ..FaultConfig::default()
    });
    let fixture = faulty(every_fault).await;
    let health = fixture.client.get(fixture.served.url("/v1/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let code = fixture.test.hub.create_enrolment_code(&fixture.device.consultant_id).unwrap();
    let key = SigningKey::from_bytes(&[6; 32]);
    let enrolled =
        fixture.client.post(fixture.served.url("/v1/enrol")).json(&enrol_request(&code, &key)).send().await;
    assert_eq!(enrolled.unwrap().status(), StatusCode::OK);

    // The data routes, by contrast, fail.
    assert!(fixture.feed().await.is_err());
    let counts = fixture.faults.counts();
    assert_eq!(counts.reset_before_handler + counts.reset_after_handler, 1);
}

#[tokio::test]
async fn injected_503s_carry_an_api_error_and_skip_the_handler() {
    let fixture = faulty(always(FaultConfig { error_5xx: 1.0, ..FaultConfig::default() })).await;
    for _ in 0..5 {
        let response = fixture.feed().await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.json::<ApiError>().await.unwrap().code, ErrorCode::Internal);
    }
    let response = fixture.submit(&fixture.device.sign("R-1", 1)).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(fixture.stored_outcome_ids().is_empty());

    let counts = fixture.faults.counts();
    assert_eq!(counts.error_5xx, 6);
    assert_eq!((counts.requests.feed, counts.handled.feed), (5, 0));
    assert_eq!((counts.requests.outcomes, counts.handled.outcomes), (1, 0));
}

#[tokio::test]
async fn injected_429s_carry_retry_after() {
    let config = FaultConfig { too_many_requests: 1.0, retry_after_secs: 7, ..FaultConfig::default() };
    let fixture = faulty(always(config)).await;
    let response = fixture.get(&fixture.photo_url()).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(response.json::<ApiError>().await.unwrap().code, ErrorCode::RateLimited);

    let response = fixture.submit(&fixture.device.sign("R-1", 1)).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(fixture.stored_outcome_ids().is_empty());
    assert_eq!(fixture.faults.counts().too_many_requests, 2);
}

fn differing_bits(a: &[u8], b: &[u8]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

#[tokio::test]
async fn a_flipped_photo_differs_by_exactly_one_bit() {
    let fixture = faulty(always(FaultConfig { flip: 1.0, ..FaultConfig::default() })).await;
    for _ in 0..3 {
        let response = fixture.get(&fixture.photo_url()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.content_length(), Some(fixture.photo.len() as u64));
        let body = response.bytes().await.unwrap();
        assert_eq!(body.len(), fixture.photo.len());
        assert_eq!(differing_bits(&body, &fixture.photo), 1);
    }

    let range = fixture
        .client
        .get(fixture.photo_url())
        .bearer_auth(&fixture.device.token)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), StatusCode::PARTIAL_CONTENT);
    let body = range.bytes().await.unwrap();
    assert_eq!(body.len(), 10);
    assert_eq!(differing_bits(&body, &fixture.photo[10..20]), 1);

    // Only photos are flipped.
    let feed = fixture.feed().await.unwrap();
    assert_eq!(feed.status(), StatusCode::OK);
    feed.json::<FeedPage>().await.unwrap();
    assert_eq!(fixture.faults.counts().flip, 4);
}

#[tokio::test]
async fn a_truncated_body_stops_short_of_its_content_length() {
    let fixture = faulty(always(FaultConfig { truncate: 1.0, ..FaultConfig::default() })).await;
    for _ in 0..5 {
        // The headers arrive, promising the whole photo...
        let response = fixture.get(&fixture.photo_url()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.content_length(), Some(fixture.photo.len() as u64));
        // ...and the body never completes.
        match response.bytes().await {
            Err(_) => {}
            Ok(body) => assert!(body.len() < fixture.photo.len(), "the whole photo arrived"),
        }
    }
    let feed = fixture.feed().await.unwrap();
    assert_eq!(feed.status(), StatusCode::OK);
    assert!(feed.json::<FeedPage>().await.is_err(), "a truncated feed page parsed");
    assert_eq!(fixture.faults.counts().truncate, 6);
}

#[tokio::test]
async fn a_wrong_content_length_leaves_the_photo_incomplete() {
    let fixture = faulty(always(FaultConfig { wrong_length: 1.0, ..FaultConfig::default() })).await;
    let size = fixture.photo.len() as u64;
    for _ in 0..3 {
        let response = fixture.get(&fixture.photo_url()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let declared = response.content_length().unwrap();
        assert!(declared > size && declared <= size + 1024, "declared {declared} for {size} bytes");
        assert!(response.bytes().await.is_err(), "the client saw a complete message");
    }
    assert_eq!(fixture.faults.counts().wrong_length, 3);
}

#[tokio::test]
async fn a_reset_before_the_handler_stores_nothing() {
    let config = FaultConfig { reset: 1.0, reset_after_handler_share: 0.0, ..FaultConfig::default() };
    let fixture = faulty(always(config)).await;
    let error = fixture.submit(&fixture.device.sign("R-1", 1)).await.unwrap_err();
    assert!(!error.is_timeout(), "{error}");
    assert!(fixture.stored_outcome_ids().is_empty());
    let counts = fixture.faults.counts();
    assert_eq!((counts.reset_before_handler, counts.reset_after_handler), (1, 0));
    assert_eq!((counts.requests.outcomes, counts.handled.outcomes), (1, 0));
}

#[tokio::test]
async fn a_reset_after_the_handler_stores_the_outcome_but_loses_the_receipt() {
    let config = FaultConfig { reset: 1.0, reset_after_handler_share: 1.0, ..FaultConfig::default() };
    let fixture = faulty(always(config)).await;
    let signed = fixture.device.sign("R-1", 1);
    let error = fixture.submit(&signed).await.unwrap_err();
    assert!(!error.is_timeout(), "{error}");
    assert_eq!(fixture.stored_outcome_ids(), vec![signed.payload.outcome_id.clone()]);
    let counts = fixture.faults.counts();
    assert_eq!((counts.reset_before_handler, counts.reset_after_handler), (0, 1));
    // One POST, handled once: the client did not quietly retry it.
    assert_eq!((counts.requests.outcomes, counts.handled.outcomes), (1, 1));

    // The client's retry, once the network behaves, gets the original receipt.
    fixture.faults.set(FaultConfig::default());
    let receipt: OutcomeReceipt = fixture.submit(&signed).await.unwrap().json().await.unwrap();
    assert_eq!(receipt.outcome_id, signed.payload.outcome_id);
    assert!(!receipt.first_receipt);
    assert_eq!(fixture.stored_outcome_ids().len(), 1);
}

#[tokio::test]
async fn a_timeout_hangs_then_drops_the_connection_without_an_answer() {
    let config = FaultConfig { timeout: 1.0, timeout_ms: 300, ..FaultConfig::default() };
    let fixture = faulty(always(config)).await;
    let impatient =
        reqwest::Client::builder().no_proxy().timeout(Duration::from_millis(100)).build().unwrap();
    let error = impatient.get(fixture.served.url("/v1/feed")).bearer_auth(&fixture.device.token).send().await;
    assert!(error.unwrap_err().is_timeout());

    // A patient client waits the whole time and then gets no answer at all.
    let started = Instant::now();
    let error = fixture.feed().await.unwrap_err();
    assert!(!error.is_timeout(), "{error}");
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    let counts = fixture.faults.counts();
    assert_eq!(counts.timeout, 2);
    assert_eq!(counts.handled.feed, 0);
}

#[tokio::test]
async fn latency_delays_every_request_by_at_least_latency_ms() {
    let config =
        FaultConfig { latency: 1.0, latency_ms: 200, latency_jitter_ms: 50, ..FaultConfig::default() };
    let fixture = faulty(always(config)).await;
    for _ in 0..2 {
        let started = Instant::now();
        let response = fixture.feed().await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(fixture.faults.counts().latency, 2);
}

#[tokio::test]
async fn faults_can_be_switched_on_and_off_over_admin_http() {
    // Started with an admin token and no faults: the routes are there, injecting nothing.
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    let device = test.enrol(&consultant.id).await;
    let served =
        test.serve(ServerConfig { admin_token: Some(ADMIN_TOKEN.into()), ..ServerConfig::default() }).await;
    let client = client();
    let admin_faults = served.url("/admin/faults");
    let feed_status = || async {
        client.get(served.url("/v1/feed")).bearer_auth(&device.token).send().await.unwrap().status()
    };
    let put = |body: serde_json::Value| client.put(&admin_faults).bearer_auth(ADMIN_TOKEN).json(&body).send();

    let report: FaultReport =
        client.get(&admin_faults).bearer_auth(ADMIN_TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(report, FaultReport { config: FaultConfig::default(), counts: FaultCounts::default() });
    assert_eq!(feed_status().await, StatusCode::OK);

    let response = put(json!({ "error_5xx": 1.0, "seed": 3 })).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let report: FaultReport = response.json().await.unwrap();
    assert_eq!(report.config, FaultConfig { error_5xx: 1.0, seed: Some(3), ..FaultConfig::default() });
    assert_eq!(feed_status().await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(feed_status().await, StatusCode::SERVICE_UNAVAILABLE);

    assert_eq!(put(json!({})).await.unwrap().status(), StatusCode::OK);
    assert_eq!(feed_status().await, StatusCode::OK);

    let report: FaultReport =
        client.get(&admin_faults).bearer_auth(ADMIN_TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(report.config, FaultConfig::default());
    assert_eq!(report.counts.error_5xx, 2);
    assert_eq!((report.counts.requests.feed, report.counts.handled.feed), (4, 2));

    // Bad configurations are refused whole, and the admin token is required.
    for bad in [json!({ "error_5xx": 2.0 }), json!({ "eror_5xx": 1.0 }), json!({ "flip": "often" })] {
        let response = put(bad).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.json::<ApiError>().await.unwrap().code, ErrorCode::BadRequest);
    }
    let response = client.get(&admin_faults).bearer_auth(&device.token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = client.put(&admin_faults).json(&json!({ "error_5xx": 1.0 })).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(feed_status().await, StatusCode::OK);
}

#[tokio::test]
async fn without_admin_routes_faults_are_steered_through_the_library() {
    let fixture = faulty(FaultConfig::default()).await;
    assert_eq!(fixture.feed().await.unwrap().status(), StatusCode::OK);
    let response = fixture.client.get(fixture.served.url("/admin/faults")).bearer_auth(ADMIN_TOKEN).send();
    assert_eq!(response.await.unwrap().status(), StatusCode::NOT_FOUND);

    fixture.faults.set(FaultConfig { too_many_requests: 1.0, ..FaultConfig::default() });
    assert_eq!(fixture.feed().await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    fixture.faults.set(FaultConfig::default());
    assert_eq!(fixture.feed().await.unwrap().status(), StatusCode::OK);
    let counts = fixture.faults.counts();
    assert_eq!(counts.too_many_requests, 1);
    assert_eq!((counts.requests.feed, counts.handled.feed), (3, 2));
}
