//! One real server on 127.0.0.1:0 with a real HTTP client: enrol, sync, fetch, decide, stop.

use dermdesk_hub::{app, serve, ServerConfig};
use dermdesk_protocol::{Change, EnrolResponse, FeedPage, OutcomeReceipt};
use ed25519_dalek::SigningKey;

use crate::support::{enrol_request, TestDevice, TestHub};

#[tokio::test]
async fn a_real_client_enrols_syncs_fetches_and_decides_over_tcp() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    let (_, photo_bytes) = test.referral_for("R-1", &consultant.id);
    let code = test.hub.create_enrolment_code(&consultant.id).unwrap();

    // Bound before the server starts, so the port is known and nothing races the bind.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app(test.hub.clone(), ServerConfig::default()), async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();

    let health: serde_json::Value =
        client.get(format!("{base}/v1/health")).send().await.unwrap().json().await.unwrap();
    // Who it is and what time it makes it: the Connect screen checks both before enrolling.
    assert_eq!(health["status"], "ok");
    assert_eq!(health["service"], "dermdesk");
    assert_eq!(health["protocol"], 1);
    let time: chrono::DateTime<chrono::Utc> = health["time"].as_str().unwrap().parse().unwrap();
    assert!((test.hub.now() - time).num_seconds().abs() <= 2, "{time} is the hub's clock");

    let key = SigningKey::from_bytes(&[5; 32]);
    let enrolled: EnrolResponse = client
        .post(format!("{base}/v1/enrol"))
        .json(&enrol_request(&code, &key))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let device = TestDevice {
        device_id: enrolled.device_id,
        token: enrolled.device_token,
        consultant_id: enrolled.consultant.id,
        key,
    };

    let feed: FeedPage = client
        .get(format!("{base}/v1/feed"))
        .bearer_auth(&device.token)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let [Change::Upsert { referral }] = &feed.changes[..] else { panic!("{:?}", feed.changes) };

    let photo = client
        .get(format!("{base}/v1/photos/{}", referral.photos[0].content_id))
        .bearer_auth(&device.token)
        .send()
        .await
        .unwrap();
    assert_eq!(photo.status(), reqwest::StatusCode::OK);
    assert_eq!(photo.content_length(), Some(photo_bytes.len() as u64));
    assert_eq!(photo.bytes().await.unwrap().as_ref(), photo_bytes.as_slice());

    let receipt: OutcomeReceipt = client
        .post(format!("{base}/v1/outcomes"))
        .bearer_auth(&device.token)
        .json(&device.sign(&referral.id, referral.version))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(receipt.first_receipt);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(client.get(format!("{base}/v1/health")).send().await.is_err(), "the server should have stopped");
}
