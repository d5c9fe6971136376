//! `GET /updates/{file}`: the service's directory of Derm Desk updates, served as it is, with
//! nothing outside it reachable, and no route at all when the hub has no updates directory.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use dermdesk_hub::{app, Hub, ServerConfig};
use dermdesk_protocol::ErrorCode;
use tower::ServiceExt as _;

use crate::support::test_clock;

async fn get(router: &axum::Router, path: &str) -> (StatusCode, Option<String>, Option<String>, Vec<u8>) {
    let response = router.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let header = |name: &str| {
        response.headers().get(name).map(|v: &axum::http::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let (content_type, cache) = (header("content-type"), header("cache-control"));
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec();
    (status, content_type, cache, body)
}

fn router(updates: Option<std::path::PathBuf>) -> (axum::Router, tempfile::TempDir) {
    let photos = tempfile::tempdir().unwrap();
    let hub = Hub::open_with_clock(None, photos.path(), test_clock()).unwrap();
    (app(hub, ServerConfig { updates, ..ServerConfig::default() }), photos)
}

#[tokio::test]
async fn the_manifest_and_the_installer_are_served_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = br#"{"version":"0.1.1","platforms":{}}"#;
    let package: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("latest.json"), manifest).unwrap();
    std::fs::write(dir.path().join("Derm-Desk_0.1.1_amd64.deb"), &package).unwrap();
    let (router, _photos) = router(Some(dir.path().to_owned()));

    let (status, content_type, cache, body) = get(&router, "/updates/latest.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    // A newly published manifest is seen at the next check.
    assert_eq!(cache.as_deref(), Some("no-cache"));
    assert_eq!(body, manifest);

    let (status, content_type, _, body) = get(&router, "/updates/Derm-Desk_0.1.1_amd64.deb").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type.as_deref(), Some("application/octet-stream"));
    assert_eq!(body, package);
}

#[tokio::test]
async fn nothing_outside_the_directory_is_reachable() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("updates");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(root.path().join("secret.json"), "{}").unwrap();
    std::fs::write(dir.join(".hidden.json"), "{}").unwrap();
    let (router, _photos) = router(Some(dir));
    for path in [
        "/updates/missing.json",
        "/updates/..%2Fsecret.json",
        "/updates/%2E%2E%2Fsecret.json",
        "/updates/.hidden.json",
        "/updates/../secret.json",
    ] {
        let (status, _, _, body) = get(&router, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        let error: dermdesk_protocol::ApiError = serde_json::from_slice(&body).unwrap();
        assert_eq!(error.code, ErrorCode::NotFound, "{path}");
    }
}

#[tokio::test]
async fn a_hub_without_an_updates_directory_has_no_such_route() {
    let (router, _photos) = router(None);
    let (status, _, _, _) = get(&router, "/updates/latest.json").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
