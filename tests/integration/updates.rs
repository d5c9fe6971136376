//! Updates through the real client and a real hub on loopback (`serve --updates DIR`): the
//! enrolled desk's client finds the service's `latest.json`, downloads the installer it names,
//! and refuses one served from an address the service rule forbids or missing; a
//! service that publishes nothing, or is gone, is silent (no manifest, a look due again soon).

use std::time::{Duration, Instant};

use dermdesk_core::updates::{check_due, Updates};
use dermdesk_core::CoreError;
use dermdesk_hub::ServerConfig;

use crate::support::{TestDesk, TestHub};

fn publish(dir: &std::path::Path, base: &str, package: &[u8]) -> serde_json::Value {
    std::fs::write(dir.join("Derm-Desk_0.1.1_amd64.deb"), package).unwrap();
    let manifest = serde_json::json!({
        "version": "0.1.1",
        "notes": "Synthetic release",
        "platforms": { "linux-x86_64-deb": {
            "url": format!("{base}/updates/Derm-Desk_0.1.1_amd64.deb"), "signature": "c2ln" } },
    });
    std::fs::write(dir.join("latest.json"), manifest.to_string()).unwrap();
    manifest
}

#[tokio::test]
async fn the_desk_finds_the_services_manifest_and_downloads_the_installer_it_names() {
    let updates_dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start_with(ServerConfig {
        updates: Some(updates_dir.path().to_owned()),
        ..Default::default()
    })
    .await;
    let package: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let published = publish(updates_dir.path(), &hub.url, &package);
    let desk = TestDesk::enrolled(&hub).await;
    let client = desk.desk.client().unwrap();
    let updates = Updates::new("0.1.0");

    let manifest = updates.check(&client, Instant::now()).await.expect("the published manifest");
    assert_eq!(manifest, published);
    assert!(!updates.due(Instant::now(), Some(true)), "looked: the next look is hours away");

    let url = manifest["platforms"]["linux-x86_64-deb"]["url"].as_str().unwrap();
    let bytes = updates.download(&client, url, "0.1.1").await.unwrap();
    assert_eq!(bytes, package, "the installer arrives whole and unchanged");

    // An address the service rule forbids is refused before anything is requested.
    let error = updates.download(&client, "http://192.0.2.1/x.deb", "0.1.1").await.unwrap_err();
    let CoreError::UpdateRefused(message) = error else { panic!("{error:?}") };
    assert!(message.contains("download address is not allowed"), "{message}");
    assert!(message.contains("Nothing was installed or changed"), "{message}");
    // A missing file is refused the same plain way.
    let error =
        updates.download(&client, &format!("{}/updates/missing.deb", hub.url), "0.1.1").await.unwrap_err();
    assert!(matches!(error, CoreError::UpdateRefused(_)), "{error:?}");
}

#[tokio::test]
async fn a_service_with_no_updates_or_gone_is_silent() {
    // No updates directory: no such route, no manifest, and the look counts as done.
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    let updates = Updates::new("0.1.0");
    let start = Instant::now();
    assert_eq!(updates.check(&desk.desk.client().unwrap(), start).await, None);
    assert!(!updates.due(start + Duration::from_secs(3600), Some(true)));

    // The service gone: nothing, no error, and another look in ten minutes rather than hours.
    let gone = dermdesk_core::client::HubClient::new("http://127.0.0.1:9", None).unwrap();
    let updates = Updates::new("0.1.0");
    assert_eq!(updates.check(&gone, start).await, None);
    assert!(!updates.due(start + Duration::from_secs(9 * 60), Some(true)));
    assert!(updates.due(start + Duration::from_secs(10 * 60), Some(true)));
    // Offline, never due at all.
    assert!(!check_due(None, start, Some(false)));
}
