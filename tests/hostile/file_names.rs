//! No name the service supplies reaches the file system. Photos live inside the encrypted cache
//! (never as files) keyed by content id; an export is named by our own outcome UUID. Here a
//! referral whose id, patient name, body sites and feed cursor are path traversals is synced,
//! opened, drafted, signed and exported, and every file the desk made is checked.

use std::path::{Path, PathBuf};

use dermdesk_core::deadline::DeadlinePolicy;
use dermdesk_core::plan::plan_feed_page;
use dermdesk_protocol::{Change, FeedPage, Outcome, OutcomeKind};

use crate::support::{TestDesk, TestHub};

fn files_under(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, found);
        }
        found.push(path);
    }
}

#[tokio::test]
async fn no_service_supplied_name_reaches_the_file_system() {
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    desk.sync().await;

    // A hostile service's referral (the reference hub refuses such ids, so it is applied as a
    // feed page would be, through the same plan and cache operations).
    let marker = format!("dermdesk-escape-{}", std::process::id());
    let traversal = format!("../../../../../tmp/{marker}");
    let mut referral = hub.set.referrals[0].clone();
    referral.id = traversal.clone();
    referral.patient.name = format!("..\\..\\{marker}\\patient");
    for photo in &mut referral.photos {
        photo.body_site = format!("/tmp/{marker}/photo.jpg");
    }
    let page = FeedPage {
        changes: vec![Change::Upsert { referral: referral.clone() }],
        next_cursor: traversal.clone(),
        has_more: false,
    };
    let mut cache = desk.cache();
    cache
        .apply(&plan_feed_page(&[], &page, &DeadlinePolicy::default()), dermdesk_core::clock::test_instant())
        .unwrap();
    drop(cache);

    let view = desk.desk.open_referral(&traversal).unwrap();
    desk.desk.save_draft(&traversal, &serde_json::json!({"plan": marker})).unwrap();
    let outcome = Outcome {
        kind: OutcomeKind::RequestMoreInformation,
        diagnosis: "Seborrhoeic keratosis".into(),
        plan: "Please send a dermoscopic photograph.".into(),
        governance_reason: Some("Synthetic test referral.".into()),
        ..Outcome::default_extras()
    };
    desk.desk.sign_outcome(&traversal, view.referral.version, outcome).unwrap();
    let exports = tempfile::tempdir().unwrap();
    let exported = desk.desk.export_outcome_file(&traversal, exports.path()).unwrap();
    for photo in &referral.photos {
        assert_eq!(desk.desk.serve_photo(&format!("/{}/thumb.jpg", photo.content_id)).status, 200);
    }

    // The export is named by our own UUID, inside the folder asked for.
    assert_eq!(exported.parent(), Some(exports.path()));
    let name = exported.file_name().unwrap().to_str().unwrap();
    let id = name.strip_prefix("signed-outcome-").and_then(|n| n.strip_suffix(".json")).expect(name);
    assert!(uuid_like(id), "{name}");

    let mut files = Vec::new();
    files_under(desk.desk.data_dir().parent().unwrap(), &mut files);
    files_under(exports.path(), &mut files);
    let supplied: Vec<String> = hub
        .set
        .referrals
        .iter()
        .flat_map(|r| {
            let mut names = vec![r.id.clone(), r.patient.name.clone()];
            names.extend(r.photos.iter().map(|p| p.content_id.clone()));
            names
        })
        .chain([marker.clone()])
        .collect();
    let mut leaks = Vec::new();
    for file in &files {
        let text = file.to_string_lossy();
        for name in &supplied {
            if text.contains(name.as_str()) {
                leaks.push(format!("{text} contains {name:?}"));
            }
        }
    }
    let escaped = Path::new("/tmp").join(&marker).exists();
    crate::write_figures(
        "file_names.json",
        &serde_json::json!({
            "files_scanned": files.len(),
            "service_names_on_disk": leaks.len() + usize::from(escaped),
            "file_names": files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect::<Vec<_>>(),
        }),
    );
    assert!(!escaped, "a file escaped to /tmp/{marker}");
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
    assert!(files.len() >= 2, "{files:?}");
}

fn uuid_like(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}
