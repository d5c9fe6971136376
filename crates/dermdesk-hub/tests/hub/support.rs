//! Shared fixtures: an in-memory hub behind its router, referrals with stored photos, enrolled
//! devices that sign outcomes, and one-line request helpers over `tower::ServiceExt::oneshot`.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use chrono::{NaiveDate, TimeZone, Utc};
use dermdesk_hub::{app, serve, Hub, ServerConfig};
use dermdesk_protocol::signature::{encode_public_key, key_id, sign_outcome};
use dermdesk_protocol::{
    ApiError, ClinicalDetails, Consent, Consultant, EnrolRequest, EnrolResponse, ErrorCode, GpPractice,
    Nation, Outcome, OutcomeKind, OutcomePayload, Patient, PhotoMeta, PhotoSource, PhotoView, Referral,
    Referrer, Sex, SignedOutcome, Urgency,
};
use ed25519_dalek::SigningKey;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tempfile::TempDir;
use tower::ServiceExt as _;

pub const ADMIN_TOKEN: &str = "test-admin-token";

pub struct TestHub {
    pub hub: Hub,
    pub router: Router,
    /// The hub's photo directory with `new` (tests look at what reached the disk).
    pub photos: TempDir,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn error(&self) -> ApiError {
        self.json()
    }

    /// Asserts the status and the protocol error code together, the way clients branch.
    #[track_caller]
    pub fn assert_error(&self, status: StatusCode, code: ErrorCode) -> ApiError {
        assert_eq!(self.status, status, "{}", String::from_utf8_lossy(&self.body));
        let error = self.error();
        assert_eq!(error.code, code, "{}", error.message);
        error
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }
}

/// The hub tests' clock: Wednesday 2 December 2026, 10:30 UTC, running on from the first time
/// it is read (never today's date; signing times still increase).
pub fn test_clock() -> dermdesk_hub::HubClock {
    static CLOCK: std::sync::OnceLock<dermdesk_hub::HubClock> = std::sync::OnceLock::new();
    CLOCK.get_or_init(|| dermdesk_hub::clock_starting_at("2026-12-02T10:30:00Z".parse().unwrap())).clone()
}

/// Now, by [`test_clock`].
pub fn now() -> chrono::DateTime<Utc> {
    (test_clock())()
}

impl TestHub {
    pub fn new() -> TestHub {
        let photos = tempfile::tempdir().unwrap();
        let hub = Hub::open_with_clock(None, photos.path(), test_clock()).unwrap();
        TestHub { router: admin_router(&hub), hub, photos }
    }

    /// Around a hub opened by the test (e.g. on a database file it also opens directly).
    pub fn with_hub(hub: Hub) -> TestHub {
        TestHub { router: admin_router(&hub), hub, photos: tempfile::tempdir().unwrap() }
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.get_with(path, token, &[]).await
    }

    pub async fn get_with(&self, path: &str, token: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = Request::get(path).header(header::AUTHORIZATION, format!("Bearer {token}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &impl Serialize) -> Reply {
        self.send_json(Method::POST, path, token, body).await
    }

    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &impl Serialize,
    ) -> Reply {
        let mut request =
            Request::builder().method(method).uri(path).header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.send(request.body(Body::from(serde_json::to_vec(body).unwrap())).unwrap()).await
    }

    pub fn consultant(&self, name: &str) -> Consultant {
        self.hub.create_consultant(name).unwrap()
    }

    /// Stores a small fake JPEG (the right magic bytes, then a pattern) and describes it.
    pub fn photo(&self, seed: u8) -> (PhotoMeta, Vec<u8>) {
        let bytes = fake_jpeg(seed);
        let content_id = self.hub.add_photo_bytes(&bytes).unwrap();
        (photo_meta(&content_id, bytes.len() as u64), bytes)
    }

    /// Creates a referral with one photo (its bytes returned too), assigned to `consultant_id`.
    pub fn referral_for(&self, id: &str, consultant_id: &str) -> (Referral, Vec<u8>) {
        let seed = id.bytes().fold(7u8, |acc, b| acc.wrapping_mul(31).wrapping_add(b));
        let (photo, bytes) = self.photo(seed);
        let referral = referral(id, vec![photo]);
        self.hub.create_referral(&referral, consultant_id).unwrap();
        (referral, bytes)
    }

    pub async fn enrol(&self, consultant_id: &str) -> TestDevice {
        let code = self.hub.create_enrolment_code(consultant_id).unwrap();
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let reply = self.post_json("/v1/enrol", None, &enrol_request(&code, &key)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
        let enrolled: EnrolResponse = reply.json();
        TestDevice {
            device_id: enrolled.device_id,
            token: enrolled.device_token,
            consultant_id: enrolled.consultant.id,
            key,
        }
    }
}

fn admin_router(hub: &Hub) -> Router {
    app(hub.clone(), ServerConfig { admin_token: Some(ADMIN_TOKEN.into()), ..ServerConfig::default() })
}

/// A real server on 127.0.0.1, told to stop when dropped.
pub struct Served {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Served {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TestHub {
    /// Serves this hub (not `self.router`: its own router, built from `config`) over TCP.
    pub async fn serve(&self, config: ServerConfig) -> Served {
        // Bound before the server starts, so the port is known and nothing races the bind.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, app(self.hub.clone(), config), async {
            let _ = stopped.await;
        }));
        Served { base, stop: Some(stop) }
    }
}

pub fn enrol_request(code: &str, key: &SigningKey) -> EnrolRequest {
    EnrolRequest {
        enrolment_code: code.to_string(),
        device_name: "Derm Desk on test laptop".into(),
        public_key: encode_public_key(&key.verifying_key()),
    }
}

/// A small real JPEG, 40x30 like [`photo_meta`] says (the hub probes every upload's header),
/// followed by 1,000 bytes of a pattern after its end: distinct bytes for every seed, and long
/// enough for the range tests.
pub fn fake_jpeg(seed: u8) -> Vec<u8> {
    let pixels = (0..40 * 30 * 3u32).map(|i| (i as u8).wrapping_mul(seed | 1)).collect();
    let mut bytes = dermdesk_imaging::encode_jpeg(&dermdesk_imaging::Raster::new(40, 30, pixels), 90);
    bytes.extend((0..1000u32).map(|i| (i as u8).wrapping_mul(seed).wrapping_add(seed)));
    bytes
}

pub fn photo_meta(content_id: &str, size: u64) -> PhotoMeta {
    PhotoMeta {
        content_id: content_id.to_string(),
        size,
        width: 40,
        height: 30,
        media_type: "image/jpeg".into(),
        captured_at: Utc.with_ymd_and_hms(2026, 11, 20, 9, 30, 0).unwrap(),
        view: PhotoView::CloseUp,
        body_site: "left forearm, extensor surface".into(),
        source: PhotoSource::GpPractice,
    }
}

/// A synthetic referral (no real person).
pub fn referral(id: &str, photos: Vec<PhotoMeta>) -> Referral {
    Referral {
        id: id.to_string(),
        version: 1,
        patient: Patient {
            name: "Alex Testpatient".into(),
            nhs_number: "9999999999".into(),
            date_of_birth: NaiveDate::from_ymd_opt(1961, 4, 2).unwrap(),
            sex: Sex::NotKnown,
        },
        practice: GpPractice {
            ods_code: "Y00001".into(),
            name: "Test Surgery".into(),
            nation: Nation::England,
        },
        referrer: Referrer { name: "Dr Test Referrer".into(), role: "GP".into() },
        received_at: Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap(),
        urgency: Urgency::Routine,
        clinical: ClinicalDetails {
            question: "Is this a seborrhoeic keratosis?".into(),
            history: "Slowly enlarging pigmented lesion.".into(),
            duration: "6 months".into(),
            medications: "None".into(),
        },
        consent: Consent {
            given: true,
            recorded_at: Some(Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap()),
            recorded_by: Some("Dr Test Referrer, GP".into()),
        },
        photos,
    }
}

pub fn treatment_plan() -> Outcome {
    Outcome {
        kind: OutcomeKind::GpTreatmentPlan,
        appointment_urgency: None,
        diagnosis: "Seborrhoeic keratosis".into(),
        plan: "Reassure; no treatment needed.".into(),
        ..Outcome::default_extras()
    }
}

/// An enrolled device that signs the way the desktop app does.
pub struct TestDevice {
    pub device_id: String,
    pub token: String,
    pub consultant_id: String,
    pub key: SigningKey,
}

impl TestDevice {
    /// The same device identity with a copy of the key (for signing as it was before a rotation).
    pub fn clone_ids(&self) -> TestDevice {
        TestDevice {
            device_id: self.device_id.clone(),
            token: self.token.clone(),
            consultant_id: self.consultant_id.clone(),
            key: self.key.clone(),
        }
    }

    pub fn payload(&self, referral_id: &str, referral_version: u64, outcome: Outcome) -> OutcomePayload {
        OutcomePayload {
            outcome_id: uuid::Uuid::new_v4().to_string(),
            referral_id: referral_id.to_string(),
            referral_version,
            consultant_id: self.consultant_id.clone(),
            device_id: self.device_id.clone(),
            key_id: key_id(&self.key.verifying_key()),
            signed_at: now(),
            outcome,
        }
    }

    pub fn sign_payload(&self, payload: OutcomePayload) -> SignedOutcome {
        sign_outcome(payload, &self.key).unwrap()
    }

    pub fn sign(&self, referral_id: &str, referral_version: u64) -> SignedOutcome {
        self.sign_payload(self.payload(referral_id, referral_version, treatment_plan()))
    }
}
