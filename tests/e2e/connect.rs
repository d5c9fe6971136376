//! First run and sign-in in the real window (issue 14): the Connect screen with the service
//! down and then up, a wrong code and then the right one (typed in lower case with spaces),
//! the code checked as typed; then sign-out and back in with a new code, and a device the
//! service revoked, both back at the Connect screen. Screenshots: target/e2e/connect-*.png.

use std::time::Duration;

use dermdesk_e2e::{
    click, connect, first_screen, free_port, revoke_this_device, screenshot, type_into, unlock, wait_for,
    wait_for_first_sync, Driver, HubProcess, CONNECT_NOTICE, TEST_PASSPHRASE,
};
use serde_json::json;

const ROWS: &str = "document.querySelectorAll('#worklist .worklist-row')";
#[tokio::test(flavor = "multi_thread")]
async fn first_run_connects_through_every_failure_and_comes_back_after_sign_out_and_revocation() {
    if dermdesk_e2e::skip_without_window("connect") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("dermdesk-e2e-connect-hub-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let driver = Driver::start_with_env(&[]);
    let client = driver.open_app_locked(&[]).await;

    // 1. A first start shows the Connect screen, and nothing else.
    assert_eq!(first_screen(&client).await, "connect");
    screenshot(&client, "connect-first-run.png").await;

    // 2. The code is checked as it is typed: a character codes never use is said at once.
    type_into(&client, "#connect-code", "k7qh 2m0").await;
    let hint = wait_for(
        &client,
        "the code hint",
        Duration::from_secs(10),
        "document.querySelector('#connect-code-hint').dataset.state === 'invalid' && document.querySelector('#connect-code-hint').textContent",
    )
    .await;
    assert!(hint.as_str().unwrap().contains("never use 0, O"), "{hint}");
    type_into(&client, "#connect-code", "k7qh 2m").await;
    wait_for(
        &client,
        "the incomplete hint",
        Duration::from_secs(10),
        "document.querySelector('#connect-code-hint').textContent.includes('6 more to go')",
    )
    .await;

    // 3. The service is down: said plainly, and the screen stays usable.
    let error = connect(&client, &url, "2222-3333-4444").await.unwrap_err();
    assert!(error.contains("could not be reached") && error.contains("Nothing was set up"), "{error}");
    // Plain http to another computer is refused before anything is sent.
    let error = connect(&client, "http://desk.example.nhs.uk", "2222-3333-4444").await.unwrap_err();
    assert!(error.contains("only https"), "{error}");
    screenshot(&client, "connect-error.png").await;

    // 4. The service is up; a wrong code is refused, the right one (lower case, spaces) connects.
    let (hub, code) = HubProcess::start_seeded(dir.clone(), port, "");
    let error = connect(&client, &url, "2222-3333-4444").await.unwrap_err();
    assert!(error.contains("unknown or has already been used"), "{error}");
    connect(&client, &url, &code.to_lowercase().replace('-', " ")).await.unwrap();
    unlock(&client, TEST_PASSPHRASE).await;
    wait_for(&client, "the worklist", Duration::from_secs(120), &format!("{ROWS}.length")).await;

    // 5. Sign out: back at the Connect screen, saying what was erased; in again with a new code.
    click(&client, "#consultant").await;
    click(&client, "#sign-out").await;
    click(&client, "#sign-out-confirm").await;
    let notice = wait_for(&client, "the signed-out notice", Duration::from_secs(60), CONNECT_NOTICE).await;
    assert!(notice.as_str().unwrap().contains("Signed out"), "{notice}");
    let kept =
        client.execute("return document.querySelector('#connect-service').value;", vec![]).await.unwrap();
    assert_eq!(kept, json!(url), "the address is kept for signing in again");
    let error = connect(&client, &url, &code).await.unwrap_err();
    assert!(error.contains("unknown or has already been used"), "a spent code stays spent: {error}");
    connect(&client, &url, &hub.new_enrolment_code()).await.unwrap();
    unlock(&client, TEST_PASSPHRASE).await;
    wait_for(&client, "the worklist again", Duration::from_secs(120), &format!("{ROWS}.length")).await;

    // 6. The service revokes this computer: the next sync wipes it, back to the Connect screen.
    // (While a sync runs, the Sync button stops it: wait for the first one to end.)
    wait_for_first_sync(&client, Duration::from_secs(120)).await;
    revoke_this_device(&client, port).await;
    let notice = wait_for(&client, "the revoked notice", Duration::from_secs(60), CONNECT_NOTICE).await;
    assert!(notice.as_str().unwrap().contains("no longer accepts this computer"), "{notice}");
    connect(&client, &url, &hub.new_enrolment_code()).await.unwrap();
    screenshot(&client, "connect-choose-passphrase.png").await;
    client.close().await.unwrap();
    drop(driver);
    drop(hub);
    let _ = std::fs::remove_dir_all(&dir);
}
