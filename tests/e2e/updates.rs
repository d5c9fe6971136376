//! Updates in the real window (issue 14, part 5), on the development build: the service
//! publishes a newer release in `/updates/latest.json`; the window offers it in a strip under the
//! top bar and installs nothing by itself; the click downloads it, and a signature that is not the
//! release key's (a throwaway key made here, as an attacker's or a tampered file's would be) is
//! refused with a message that says nothing was changed, and the app carries on.
//!
//! The rest, on the product bundles, is tests/e2e/install.rs: a correctly signed `.deb` of the
//! next version installed over the installed one by the app itself, and the restart into it.

use std::time::Duration;

use base64::Engine as _;
use dermdesk_e2e::{click, free_port, screenshot, wait_for, Driver, HubProcess};
use serde_json::json;

const OFFER_SHOWN: &str = "(() => { const o = document.querySelector('#update-offer'); \
     return o && !o.hidden && document.querySelector('#update-offer-headline').textContent; })()";
const REFUSAL: &str = "(() => { const e = document.querySelector('#update-offer-error'); \
     return e && !e.hidden && !document.querySelector('#update-install').disabled && e.textContent; })()";

/// An "update" signed by a key that is not the release key, published like a real one.
fn publish_wrongly_signed(dir: &std::path::Path, base_url: &str, version: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let name = format!("Derm-Desk_{version}_amd64.deb");
    let bytes = b"!<arch>\ndebian-binary   synthetic, not a real package".to_vec();
    std::fs::write(dir.join(&name), &bytes).unwrap();
    let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    let trusted = format!("timestamp:0\tfile:{name}\tversion:{version}");
    let signature =
        minisign::sign(None, &pair.sk, std::io::Cursor::new(&bytes), Some(&trusted), Some("throwaway"))
            .unwrap();
    let signature = base64::engine::general_purpose::STANDARD.encode(signature.to_string());
    // A development build has no bundle marker: the updater takes the plain `linux-x86_64` entry.
    let entry = json!({ "url": format!("{base_url}/updates/{name}"), "signature": signature });
    let manifest = json!({
        "version": version,
        "notes": "Synthetic test release",
        "platforms": { "linux-x86_64": entry.clone(), "linux-x86_64-deb": entry },
    });
    std::fs::write(dir.join("latest.json"), manifest.to_string()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newer_release_is_offered_and_a_wrong_signature_is_refused_with_nothing_changed() {
    if dermdesk_e2e::skip_without_window("updates") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("dermdesk-e2e-updates-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let updates = dir.join("updates");
    publish_wrongly_signed(&updates, &url, "9.9.9");
    let (hub, code) =
        HubProcess::start_seeded_with(dir.clone(), port, "", &["--updates", updates.to_str().unwrap()]);
    let driver = Driver::start_with_env(&[
        ("DERMDESK_HUB_URL", url.as_str()),
        ("DERMDESK_ENROLMENT_CODE", code.as_str()),
    ]);
    let client = driver.open_app(&[]).await;

    // 1. Offered after the first sync, in the window's words, not installed.
    let headline = wait_for(&client, "the update offer", Duration::from_secs(120), OFFER_SHOWN).await;
    assert_eq!(headline.as_str().unwrap(), "Derm Desk 9.9.9 is available");
    let button = client
        .execute("return document.querySelector('#update-install').textContent;", vec![])
        .await
        .unwrap();
    assert_eq!(button, json!("Install and restart"));
    screenshot(&client, "update-offer").await;

    // 2. The click downloads it; the signature is not the release key's: refused, said plainly.
    click(&client, "#update-install").await;
    let refusal = wait_for(&client, "the refusal", Duration::from_secs(60), REFUSAL).await;
    let refusal = refusal.as_str().unwrap();
    assert!(refusal.contains("signature does not match Derm Desk's release key"), "{refusal}");
    assert!(refusal.contains("Nothing was installed or changed"), "{refusal}");
    screenshot(&client, "update-refused").await;

    // 3. The app carries on as it was: same window, the worklist still there, the offer still
    // offered (a corrected release can be installed from it).
    let rows = client
        .execute("return document.querySelectorAll('#worklist .worklist-row').length;", vec![])
        .await
        .unwrap();
    assert!(rows.as_u64().unwrap() > 0, "the worklist is still shown");
    wait_for(&client, "the offer after the refusal", Duration::from_secs(10), OFFER_SHOWN).await;

    client.close().await.unwrap();
    drop(driver);
    drop(hub);
    let _ = std::fs::remove_dir_all(&dir);
}
