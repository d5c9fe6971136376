//! End-to-end: the right patient on every pane, in the real window. A demo referral whose
//! patient has an earlier referral is opened in the 4-up compare (the empty panes fill with the
//! next photos, the earlier referral's among them): every pane shows the patient's name, NHS
//! number and date of birth as the header does, a pane with an earlier referral's photo says
//! "Earlier referral, <date>", full screen keeps them on screen, and the service's text in the
//! header and the panes is isolated for direction (WebKit's computed `unicode-bidi`), so a
//! control character in one field cannot reorder its neighbours.

use std::time::Duration;

use dermdesk_e2e::{click, screenshot, wait_for, wait_for_first_sync, Driver};

const ROWS: &str = "document.querySelectorAll('#worklist .worklist-row')";

#[tokio::test(flavor = "multi_thread")]
async fn every_pane_names_the_patient_and_an_earlier_photo_says_so() {
    if dermdesk_e2e::skip_without_window("identity") {
        return;
    }
    let driver = Driver::start_with_env(&[]);
    let client = driver.open_app(&["--demo"]).await;
    let count = wait_for(&client, "the worklist", Duration::from_secs(300), &format!("{ROWS}.length")).await;
    wait_for_first_sync(&client, Duration::from_secs(300)).await;

    // Open referrals in turn until one has an earlier referral's photos in its filmstrip.
    let mut found = None;
    for index in 0..count.as_u64().unwrap() {
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
        // The detail pane is drawn in one go (header, filmstrip) once it carries the id.
        wait_for(
            &client,
            "the referral opened",
            Duration::from_secs(30),
            &format!(
                "document.querySelector('#worklist .worklist-row.is-open')?.dataset.referralId === '{referral_id}' \
                 && document.querySelector('#detail-content')?.dataset.referralId === '{referral_id}' \
                 && document.querySelectorAll('#filmstrip .filmstrip-item').length > 0"
            ),
        )
        .await;
        let priors = client
            .execute("return document.querySelectorAll('#filmstrip .filmstrip-item.is-prior .thumb:not(.is-downloading)').length;", vec![])
            .await
            .unwrap();
        if priors.as_u64().unwrap_or(0) > 0 {
            found = Some(referral_id);
            break;
        }
    }
    let referral_id = found.expect("a demo referral whose patient has an earlier referral with photos");

    // Who the header says it is.
    let header = client
        .execute(
            "const h = document.querySelector('#patient-header'); \
             return [h.querySelector('.patient-name').textContent, \
                     h.querySelector('.nhs-number .fact-value').textContent, \
                     [...h.querySelectorAll('.fact')].find(f => f.querySelector('.fact-name')?.textContent === 'Born') \
                        .querySelector('.fact-value').textContent.replace(/ \\(.*\\)$/, '')];",
            vec![],
        )
        .await
        .unwrap();
    let [name, nhs, born] = [0, 1, 2].map(|i| header[i].as_str().unwrap().to_owned());
    assert!(!name.is_empty() && nhs.len() == 12 && !born.is_empty(), "{header}");

    // Four panes: the current photos fill them; the last one is given an earlier referral's
    // photo (activate it, pick the earlier photo in the filmstrip).
    click(&client, "#layout-4").await;
    const PANES: &str =
        "[...document.querySelectorAll('.pane-cell.photo-pane')].filter(p => p.offsetParent !== null)";
    wait_for(&client, "four panes", Duration::from_secs(30), &format!("{PANES}.length === 4")).await;
    let prior_ids = client
        .execute(
            "return [...document.querySelectorAll('#filmstrip .filmstrip-item.is-prior .thumb:not(.is-downloading)')].map(t => t.dataset.contentId);",
            vec![],
        )
        .await
        .unwrap();
    let prior_ids: Vec<&str> = prior_ids.as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    client
        .execute(
            &format!(
                "const pane = {PANES}[3]; pane.dispatchEvent(new PointerEvent('pointerdown', {{bubbles: true}})); \
                 document.querySelector('#filmstrip .thumb[data-content-id=\"{}\"]').click();",
                prior_ids[0]
            ),
            vec![],
        )
        .await
        .unwrap();
    let panes = wait_for(
        &client,
        "four panes each showing a photo, the last an earlier one",
        Duration::from_secs(30),
        &format!(
            "(() => {{ const panes = {PANES}.filter(p => p.dataset.contentId); \
                 return panes.length === 4 && panes[3].dataset.contentId === '{}' \
                   ? panes.map(p => [p.dataset.contentId, p.querySelector('.pane-identity').innerText, \
                       p.querySelector('.pane-identity').hidden]) : null; }})()",
            prior_ids[0]
        ),
    )
    .await;
    let mut earlier_panes = 0;
    for pane in panes.as_array().unwrap() {
        let (content_id, text, hidden) =
            (pane[0].as_str().unwrap(), pane[1].as_str().unwrap(), pane[2].as_bool());
        assert_eq!(hidden, Some(false), "{referral_id}: a pane hides its patient: {pane}");
        for part in [&name, &nhs, &born] {
            assert!(text.contains(part.as_str()), "{referral_id}: a pane says {text:?}, not {part:?}");
        }
        let earlier = prior_ids.contains(&content_id);
        assert_eq!(
            text.contains("Earlier referral, "),
            earlier,
            "{referral_id}: pane {content_id} says {text:?}"
        );
        earlier_panes += usize::from(earlier);
    }
    assert!(earlier_panes >= 1, "{referral_id}: no pane shows the earlier referral's photo: {panes}");

    // Full screen: still on screen, over the photo.
    click(&client, "#viewer-fullscreen").await;
    let on_screen = wait_for(
        &client,
        "full screen with the patient on each pane",
        Duration::from_secs(10),
        "document.querySelector('.photo-workspace')?.classList.contains('is-fullscreen') && \
         [...document.querySelectorAll('.photo-pane .pane-identity')].filter(p => p.offsetParent !== null) \
           .map(p => p.getBoundingClientRect()).filter(r => r.width > 50 && r.height > 10).length",
    )
    .await;
    assert_eq!(on_screen.as_u64(), Some(4), "{on_screen}");
    screenshot(&client, "identity-fullscreen-4up").await;

    // Direction: every service-supplied piece in the header and the panes is isolated.
    let not_isolated = client
        .execute(
            "return [...document.querySelectorAll('#patient-header .patient-name, #patient-header .fact-value, \
                      .photo-pane .pane-identity bdi, .worklist-row .row-name, .worklist-row .row-practice, .worklist-row .nhs-number')] \
               .filter(e => getComputedStyle(e).unicodeBidi !== 'isolate').map(e => e.className);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(not_isolated, serde_json::json!([]), "fields not isolated for direction");
    let practice = client
        .execute(
            "return [...document.querySelectorAll('#patient-header bdi')].map(b => b.textContent);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        practice.as_array().map(Vec::len),
        Some(2),
        "practice name and code in their own bdi: {practice}"
    );
}
