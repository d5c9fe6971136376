//! GET /v1/photos/{content_id}: access control, ETag revalidation and byte ranges.

use axum::http::StatusCode;
use dermdesk_protocol::ErrorCode;
use dermdesk_synth::hostile::jpeg_claiming;
use sha2::{Digest, Sha256};

use crate::support::TestHub;

#[tokio::test]
async fn a_photo_is_served_whole_with_its_validators() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    let (referral, bytes) = test.referral_for("R-1", &consultant.id);
    let device = test.enrol(&consultant.id).await;
    let content_id = &referral.photos[0].content_id;
    assert_eq!(content_id, &hex::encode(Sha256::digest(&bytes)));

    let reply = test.get(&format!("/v1/photos/{content_id}"), &device.token).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.as_ref(), bytes.as_slice());
    assert_eq!(reply.header("etag"), Some(format!("\"{content_id}\"").as_str()));
    assert_eq!(reply.header("content-type"), Some("image/jpeg"));
    assert_eq!(reply.header("content-length"), Some(bytes.len().to_string().as_str()));
    assert_eq!(reply.header("accept-ranges"), Some("bytes"));
    assert_eq!(reply.header("cache-control"), Some("private, no-store"));
}

#[tokio::test]
async fn a_matching_if_none_match_gets_304_without_a_body() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    let (referral, _) = test.referral_for("R-1", &consultant.id);
    let device = test.enrol(&consultant.id).await;
    let content_id = &referral.photos[0].content_id;
    let path = format!("/v1/photos/{content_id}");

    let etag = format!("\"{content_id}\"");
    let reply = test.get_with(&path, &device.token, &[("if-none-match", &etag)]).await;
    assert_eq!(reply.status, StatusCode::NOT_MODIFIED);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("etag"), Some(etag.as_str()));

    let other = format!("\"{}\"", "0".repeat(64));
    let reply = test.get_with(&path, &device.token, &[("if-none-match", &other)]).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn ranges_get_206_with_content_range_and_past_the_end_gets_416() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    let (referral, bytes) = test.referral_for("R-1", &consultant.id);
    let device = test.enrol(&consultant.id).await;
    let path = format!("/v1/photos/{}", referral.photos[0].content_id);
    let size = bytes.len();

    let reply = test.get_with(&path, &device.token, &[("range", "bytes=10-19")]).await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(reply.body.as_ref(), &bytes[10..20]);
    assert_eq!(reply.header("content-range"), Some(format!("bytes 10-19/{size}").as_str()));
    assert_eq!(reply.header("content-length"), Some("10"));
    assert_eq!(reply.header("content-type"), Some("image/jpeg"));

    // Resuming an interrupted download: from an offset to the end.
    let reply = test.get_with(&path, &device.token, &[("range", "bytes=1000-")]).await;
    assert_eq!(reply.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(reply.body.as_ref(), &bytes[1000..]);
    assert_eq!(reply.header("content-range"), Some(format!("bytes 1000-{}/{size}", size - 1).as_str()));
    assert_eq!(reply.header("content-length"), Some((size - 1000).to_string().as_str()));

    let reply = test.get_with(&path, &device.token, &[("range", &format!("bytes={size}-"))]).await;
    reply.assert_error(StatusCode::RANGE_NOT_SATISFIABLE, ErrorCode::BadRequest);
    assert_eq!(reply.header("content-range"), Some(format!("bytes */{size}").as_str()));

    // If-Range with another validator: the client's partial copy is stale, send it all.
    let reply = test
        .get_with(&path, &device.token, &[("range", "bytes=10-19"), ("if-range", "\"something-else\"")])
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body.len(), size);
}

#[tokio::test]
async fn photos_of_other_consultants_and_unknown_ids_are_not_found() {
    let test = TestHub::new();
    let ada = test.consultant("Dr Ada Example");
    let ben = test.consultant("Dr Ben Example");
    let (referral, _) = test.referral_for("R-1", &ada.id);
    let (unreferenced, _) = test.photo(99);
    let ben_device = test.enrol(&ben.id).await;
    let content_id = &referral.photos[0].content_id;

    for path in [
        format!("/v1/photos/{content_id}"),
        format!("/v1/photos/{}", unreferenced.content_id),
        format!("/v1/photos/{}", "a".repeat(64)),
        "/v1/photos/..%2Fhub.sqlite".to_string(),
        format!("/v1/photos/{}", content_id.to_uppercase()),
    ] {
        test.get(&path, &ben_device.token).await.assert_error(StatusCode::NOT_FOUND, ErrorCode::NotFound);
    }
}

#[tokio::test]
async fn reassignment_keeps_photos_for_both_consultants() {
    let test = TestHub::new();
    let ada = test.consultant("Dr Ada Example");
    let ben = test.consultant("Dr Ben Example");
    let (referral, _) = test.referral_for("R-1", &ada.id);
    let ada_device = test.enrol(&ada.id).await;
    let ben_device = test.enrol(&ben.id).await;
    let path = format!("/v1/photos/{}", referral.photos[0].content_id);
    assert_eq!(test.get(&path, &ben_device.token).await.status, StatusCode::NOT_FOUND);

    test.hub.reassign_referral("R-1", &ben.id).unwrap();
    assert_eq!(test.get(&path, &ben_device.token).await.status, StatusCode::OK);
    // Previously assigned: Ada's app may still need the photo it was reviewing.
    assert_eq!(test.get(&path, &ada_device.token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_referral_must_describe_its_stored_photos_truthfully() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    let (mut photo, _) = test.photo(5);
    photo.size += 1;
    let wrong_size = crate::support::referral("R-1", vec![photo.clone()]);
    assert!(matches!(
        test.hub.create_referral(&wrong_size, &consultant.id),
        Err(dermdesk_hub::HubError::BadRequest(_))
    ));
    photo.size -= 1;
    photo.media_type = "image/png".into();
    let wrong_type = crate::support::referral("R-1", vec![photo.clone()]);
    assert!(test.hub.create_referral(&wrong_type, &consultant.id).is_err());
    photo.media_type = "image/jpeg".into();
    photo.content_id = "b".repeat(64);
    let not_stored = crate::support::referral("R-1", vec![photo]);
    assert!(test.hub.create_referral(&not_stored, &consultant.id).is_err());
    assert!(test.hub.add_photo_bytes(b"GIF89a not a photo").is_err());
}

#[tokio::test]
async fn uploads_whose_header_the_app_would_not_decode_are_refused_and_not_stored() {
    let test = TestHub::new();
    let photo_dir = test.photos.path().to_path_buf();
    let files = || std::fs::read_dir(&photo_dir).unwrap().count();
    let files_before = files();
    for (what, bytes, expected) in [
        ("65535x65535 header", jpeg_claiming(65535, 65535), "65535x65535"),
        ("over 64 MP within the side limit", jpeg_claiming(16_000, 16_000), "16000x16000"),
        ("cut before its frame header", crate::support::fake_jpeg(9)[..20].to_vec(), "header cannot be read"),
    ] {
        let error = test.hub.add_photo_bytes(&bytes).expect_err(what).to_string();
        assert!(error.contains(expected) && error.contains("not stored"), "{what}: {error}");
    }
    // The same from a file (the seeding path) and over the admin route.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("giant.jpg");
    std::fs::write(&path, jpeg_claiming(65535, 65535)).unwrap();
    assert!(test.hub.add_photo_file(&path).unwrap_err().to_string().contains("65535x65535"));
    let upload = axum::http::Request::post("/admin/photos")
        .header(axum::http::header::AUTHORIZATION, format!("Bearer {}", crate::support::ADMIN_TOKEN))
        .body(axum::body::Body::from(jpeg_claiming(65535, 65535)))
        .unwrap();
    let reply = test.send(upload).await;
    reply.assert_error(StatusCode::BAD_REQUEST, ErrorCode::BadRequest);
    assert_eq!(files(), files_before, "nothing was stored");
    // An honest photo of the same shape is still accepted.
    assert!(test.hub.add_photo_bytes(&jpeg_claiming(40, 30)).is_ok());
}
