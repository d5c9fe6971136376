//! End-to-end: photo-quality flags in the real window. The demo carries a few photos taken
//! badly on purpose (out of focus, too dark, too bright; dermdesk-synth's `PhotoDefect`), which
//! the sync measured. A referral with one shows a badge on that thumbnail, and "Request better
//! photos" picks Request more information with its text filled in.

use std::time::Duration;

use dermdesk_e2e::{click, screenshot, wait_for, wait_for_first_sync, Driver};

const ROWS: &str = "document.querySelectorAll('#worklist .worklist-row')";

#[tokio::test(flavor = "multi_thread")]
async fn a_flagged_photo_shows_a_badge_and_one_click_asks_for_better_photos() {
    if dermdesk_e2e::skip_without_window("quality") {
        return;
    }
    let driver = Driver::start_with_env(&[]);
    let client = driver.open_app(&["--demo"]).await;
    let count = wait_for(&client, "the worklist", Duration::from_secs(300), &format!("{ROWS}.length")).await;
    wait_for_first_sync(&client, Duration::from_secs(300)).await;

    // Open referrals in turn until one has a flagged photo (the worklist's order depends on
    // today's date; which referrals carry the bad photos does not).
    let mut found = None;
    for index in 0..count.as_u64().unwrap() {
        // Clicked from the page itself: a background refresh may replace the rows at any time.
        let referral_id = client
            .execute(
                &format!(
                    "const row = {ROWS}[{index}]; row?.click(); return row?.dataset.referralId ?? null;"
                ),
                vec![],
            )
            .await
            .unwrap();
        let referral_id = referral_id.as_str().expect("the row exists").to_owned();
        wait_for(
            &client,
            "the referral opened",
            Duration::from_secs(30),
            &format!(
                "document.querySelector('#worklist .worklist-row.is-open')?.dataset.referralId === '{referral_id}' \
                 && document.querySelector('#patient-header')?.textContent"
            ),
        )
        .await;
        // The filmstrip renders with the referral (a referral without consent has none).
        dermdesk_e2e::next_frames(&client).await;
        let flagged = client
            .execute("return document.querySelector('#filmstrip .thumb.has-quality-problem .quality-badge')?.title ?? null;", vec![])
            .await
            .unwrap();
        if let Some(title) = flagged.as_str() {
            found = Some((referral_id, title.to_owned()));
            break;
        }
    }
    let (referral_id, badge_title) = found.expect("a demo referral with a flagged photo");
    assert!(
        ["looks out of focus", "too dark", "too bright"].iter().any(|problem| badge_title.contains(problem)),
        "the badge's tooltip says what is wrong: {badge_title}"
    );
    let aria = client
        .execute("return document.querySelector('#filmstrip .thumb.has-quality-problem').getAttribute('aria-label');", vec![])
        .await
        .unwrap();
    assert!(aria.as_str().unwrap().contains("Photo "), "{aria}");

    // One click: Request more information, its text saying which photo and what is wrong.
    wait_for(
        &client,
        "the request button",
        Duration::from_secs(10),
        "!document.querySelector('#photo-request')?.hidden",
    )
    .await;
    click(&client, "#request-better-photos").await;
    let plan = wait_for(
        &client,
        "the outcome pre-filled",
        Duration::from_secs(10),
        "document.querySelector('#kind-request_more_information')?.checked \
         && document.querySelector('#plan').value",
    )
    .await;
    let plan = plan.as_str().unwrap().to_owned();
    let problem = ["looks out of focus", "too dark", "too bright"]
        .into_iter()
        .find(|p| badge_title.contains(p))
        .unwrap();
    assert!(plan.starts_with("Photo ") && plan.contains(problem) && plan.contains("Please retake"), "{plan}");
    // The photographs needed are ticked, and the draft keeps it (saved a moment after input).
    let ticked = client
        .execute(
            "return [...document.querySelectorAll('input[name=\"missing-view\"]:checked')].length;",
            vec![],
        )
        .await
        .unwrap();
    assert!(ticked.as_u64().unwrap() >= 1, "the flagged photo's view is asked for");
    dermdesk_e2e::wait_for_viewers_settled(&client, "the photos drawn").await;
    screenshot(&client, "photo-quality.png").await;
    eprintln!("{referral_id}: {badge_title} → {plan}");
}
