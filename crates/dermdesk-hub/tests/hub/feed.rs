//! The change feed: paging with cursors, per-consultant isolation, removals, current versions.

use axum::http::StatusCode;
use dermdesk_protocol::{Change, ErrorCode, FeedPage, RemovalReason, FEED_PAGE_DEFAULT};

use crate::support::{TestDevice, TestHub};

async fn page(test: &TestHub, device: &TestDevice, query: &str) -> FeedPage {
    let reply = test.get(&format!("/v1/feed{query}"), &device.token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
    reply.json()
}

/// Every change, read page by page from the start.
async fn all_changes(test: &TestHub, device: &TestDevice) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = page(test, device, &format!("?cursor={cursor}")).await;
        changes.extend(page.changes);
        cursor = page.next_cursor;
        if !page.has_more {
            return changes;
        }
    }
}

/// One line per change, for assertions that read like the feed.
fn describe(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .map(|change| match change {
            Change::Upsert { referral } => format!("upsert {} v{}", referral.id, referral.version),
            Change::Removed { referral_id, reason } => format!("removed {referral_id} {reason:?}"),
        })
        .collect()
}

#[tokio::test]
async fn pages_follow_the_cursor_and_say_when_more_are_waiting() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    for id in ["R-1", "R-2", "R-3", "R-4", "R-5"] {
        test.referral_for(id, &consultant.id);
    }
    let device = test.enrol(&consultant.id).await;

    let first = page(&test, &device, "?limit=2").await;
    assert_eq!(describe(&first.changes), ["upsert R-1 v1", "upsert R-2 v1"]);
    assert!(first.has_more);
    let second = page(&test, &device, &format!("?cursor={}&limit=2", first.next_cursor)).await;
    assert_eq!(describe(&second.changes), ["upsert R-3 v1", "upsert R-4 v1"]);
    assert!(second.has_more);
    let third = page(&test, &device, &format!("?cursor={}&limit=2", second.next_cursor)).await;
    assert_eq!(describe(&third.changes), ["upsert R-5 v1"]);
    assert!(!third.has_more);

    // Caught up: an empty page that keeps the cursor where it was.
    let caught_up = page(&test, &device, &format!("?cursor={}&limit=2", third.next_cursor)).await;
    assert!(caught_up.changes.is_empty() && !caught_up.has_more);
    assert_eq!(caught_up.next_cursor, third.next_cursor);

    // A page of exactly the remaining size must not claim more.
    let exact = page(&test, &device, &format!("?cursor={}&limit=1", second.next_cursor)).await;
    assert_eq!(describe(&exact.changes), ["upsert R-5 v1"]);
    assert!(!exact.has_more);

    // A new change appears after the cursor a caught-up client holds.
    test.referral_for("R-6", &consultant.id);
    let later = page(&test, &device, &format!("?cursor={}", third.next_cursor)).await;
    assert_eq!(describe(&later.changes), ["upsert R-6 v1"]);
}

#[tokio::test]
async fn limit_defaults_and_is_capped_and_bad_values_are_refused() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    for i in 0..(FEED_PAGE_DEFAULT + 1) {
        test.referral_for(&format!("R-{i:03}"), &consultant.id);
    }
    let device = test.enrol(&consultant.id).await;

    let default = page(&test, &device, "?cursor=&limit=").await;
    assert_eq!(default.changes.len(), FEED_PAGE_DEFAULT as usize);
    assert!(default.has_more);
    let capped = page(&test, &device, "?limit=100000").await;
    assert_eq!(capped.changes.len(), FEED_PAGE_DEFAULT as usize + 1);
    assert!(!capped.has_more);

    for query in ["?limit=0", "?limit=-1", "?cursor=abc"] {
        let reply = test.get(&format!("/v1/feed{query}"), &device.token).await;
        reply.assert_error(StatusCode::BAD_REQUEST, ErrorCode::BadRequest);
    }
}

#[tokio::test]
async fn a_consultant_sees_only_their_own_referrals() {
    let test = TestHub::new();
    let ada = test.consultant("Dr Ada Example");
    let ben = test.consultant("Dr Ben Example");
    test.referral_for("R-ADA-1", &ada.id);
    test.referral_for("R-BEN-1", &ben.id);
    test.referral_for("R-ADA-2", &ada.id);
    let ada_device = test.enrol(&ada.id).await;
    let ben_device = test.enrol(&ben.id).await;

    assert_eq!(describe(&all_changes(&test, &ada_device).await), ["upsert R-ADA-1 v1", "upsert R-ADA-2 v1"]);
    assert_eq!(describe(&all_changes(&test, &ben_device).await), ["upsert R-BEN-1 v1"]);
}

#[tokio::test]
async fn a_withdrawn_referral_is_removed_from_the_feed() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    test.referral_for("R-1", &consultant.id);
    test.referral_for("R-2", &consultant.id);
    let device = test.enrol(&consultant.id).await;
    let synced = page(&test, &device, "").await;

    test.hub.withdraw_referral("R-1").unwrap();
    let after = page(&test, &device, &format!("?cursor={}", synced.next_cursor)).await;
    assert_eq!(describe(&after.changes), ["removed R-1 Withdrawn"]);
    // A device syncing from scratch gets the end state, not the history.
    assert_eq!(describe(&all_changes(&test, &device).await), ["upsert R-2 v1", "removed R-1 Withdrawn"]);
}

#[tokio::test]
async fn a_reassigned_referral_leaves_one_feed_and_joins_the_other() {
    let test = TestHub::new();
    let ada = test.consultant("Dr Ada Example");
    let ben = test.consultant("Dr Ben Example");
    test.referral_for("R-1", &ada.id);
    let ada_device = test.enrol(&ada.id).await;
    let ben_device = test.enrol(&ben.id).await;
    let ada_synced = page(&test, &ada_device, "").await;
    assert_eq!(describe(&ada_synced.changes), ["upsert R-1 v1"]);

    test.hub.reassign_referral("R-1", &ben.id).unwrap();
    let ada_after = page(&test, &ada_device, &format!("?cursor={}", ada_synced.next_cursor)).await;
    assert_eq!(describe(&ada_after.changes), ["removed R-1 Reassigned"]);
    assert_eq!(describe(&all_changes(&test, &ben_device).await), ["upsert R-1 v1"]);

    // Changes after the reassignment reach only the new consultant.
    let referral = match &all_changes(&test, &ben_device).await[0] {
        Change::Upsert { referral } => referral.clone(),
        other => panic!("{other:?}"),
    };
    test.hub.update_referral(&referral).unwrap();
    assert_eq!(describe(&all_changes(&test, &ben_device).await), ["upsert R-1 v2"]);
    let ada_all = all_changes(&test, &ada_device).await;
    assert!(
        matches!(&ada_all[..], [Change::Removed { reason: RemovalReason::Reassigned, .. }]),
        "{ada_all:?}"
    );
}

#[tokio::test]
async fn an_update_carries_the_current_version() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    let (mut referral, _) = test.referral_for("R-1", &consultant.id);
    let device = test.enrol(&consultant.id).await;
    let synced = page(&test, &device, "").await;

    referral.clinical.history.push_str(" Now itchy.");
    assert_eq!(test.hub.update_referral(&referral).unwrap(), 2);
    let after = page(&test, &device, &format!("?cursor={}", synced.next_cursor)).await;
    let [Change::Upsert { referral: sent }] = &after.changes[..] else { panic!("{:?}", after.changes) };
    assert_eq!(sent.version, 2);
    assert!(sent.clinical.history.ends_with("Now itchy."));
}
