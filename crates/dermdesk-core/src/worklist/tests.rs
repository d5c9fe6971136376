//! The worklist query against a real encrypted cache (filters, search, order, counts, the
//! stored status after every kind of change), the readiness report and its wording, and the
//! trip window.

use std::path::Path;
use std::sync::Arc;

use dermdesk_protocol::{
    Nation, Outcome, OutcomeKind, OutcomePayload, PhotoMeta, PhotoSource, PhotoView, Referral, RemovalReason,
    SignedOutcome, Urgency,
};

use super::*;
use crate::cache::ReadinessPhoto;
use crate::plan::{CacheOp, OutboxState};
use crate::secrets::MemorySecretStore;
use crate::views::ReferralStatus as S;
use crate::DeskConfig;

fn open_desk(dir: &Path) -> Desk {
    let config = DeskConfig { data_dir: dir.join("desk"), device_name: "test".into() };
    Desk::open(config, Arc::new(MemorySecretStore::default()))
        .unwrap()
        .with_clock(Arc::new(crate::clock::FixedClock::new(crate::clock::test_instant())))
}

struct Spec {
    id: &'static str,
    name: &'static str,
    nhs: &'static str,
    urgency: Urgency,
    practice: (&'static str, &'static str),
    /// Received on this day of November 2026 at 09:00 UTC (a Monday is the 23rd).
    received_day: u32,
}

fn referral(spec: &Spec) -> Referral {
    let mut referral = crate::plan::tests::referral(spec.id, 1);
    referral.patient.name = spec.name.into();
    referral.patient.nhs_number = spec.nhs.into();
    referral.urgency = spec.urgency;
    referral.practice.ods_code = spec.practice.0.into();
    referral.practice.name = spec.practice.1.into();
    referral.received_at = format!("2026-11-{:02}T09:00:00Z", spec.received_day).parse().unwrap();
    referral
}

fn upsert(desk: &Desk, referral: Referral) {
    let due_at = desk.deadline_policy().due(referral.received_at, referral.practice.nation).due_at;
    desk.cache()
        .apply(&[CacheOp::Upsert { referral: Box::new(referral), due_at }], crate::clock::test_instant())
        .unwrap();
}

fn signed(referral_id: &str) -> SignedOutcome {
    SignedOutcome {
        payload: OutcomePayload {
            outcome_id: uuid::Uuid::new_v4().to_string(),
            referral_id: referral_id.into(),
            referral_version: 1,
            consultant_id: "C1".into(),
            device_id: "D1".into(),
            key_id: "K1".into(),
            signed_at: crate::clock::test_instant(),
            outcome: Outcome {
                kind: OutcomeKind::RequestMoreInformation,
                appointment_urgency: None,
                diagnosis: "Synthetic".into(),
                plan: "Synthetic plan for a test.".into(),
                governance_reason: None,
                ..Outcome::default_extras()
            },
        },
        // The cache stores what it is given; signatures are checked elsewhere.
        jws: "header..signature".into(),
    }
}

fn receipt(outcome: &SignedOutcome) -> dermdesk_protocol::OutcomeReceipt {
    dermdesk_protocol::OutcomeReceipt {
        outcome_id: outcome.payload.outcome_id.clone(),
        referral_id: outcome.payload.referral_id.clone(),
        payload_sha256: String::new(),
        received_at: crate::clock::test_instant(),
        hub_key_id: String::new(),
        first_receipt: true,
        receipt_jws: String::new(),
    }
}

const NORTH: (&str, &str) = ("Y00001", "Northgate Surgery");
const RIVER: (&str, &str) = ("Y00002", "Riverside Medical Practice");
const GLEN: (&str, &str) = ("Y00003", "Glen Health Centre");

const SPECS: &[Spec] = &[
    Spec {
        id: "R-001",
        name: "Amara Patel",
        nhs: "9992542292",
        urgency: Urgency::Routine,
        practice: NORTH,
        received_day: 23,
    },
    Spec {
        id: "R-002",
        name: "Callum O'Rourke",
        nhs: "9990000018",
        urgency: Urgency::TwoWeekWait,
        practice: RIVER,
        received_day: 24,
    },
    Spec {
        id: "R-003",
        name: "Zofia Wójcik",
        nhs: "9990000026",
        urgency: Urgency::Urgent,
        practice: NORTH,
        received_day: 23,
    },
    Spec {
        id: "R-004",
        name: "Priya Patel",
        nhs: "9990000034",
        urgency: Urgency::TwoWeekWait,
        practice: NORTH,
        received_day: 23,
    },
    Spec {
        id: "R-005",
        name: "Hamish Fairbairn",
        nhs: "9990000042",
        urgency: Urgency::Routine,
        practice: GLEN,
        received_day: 20,
    },
    Spec {
        id: "R-006",
        name: "Leila Rahman",
        nhs: "9990000050",
        urgency: Urgency::Routine,
        practice: RIVER,
        received_day: 25,
    },
    Spec {
        id: "R-007",
        name: "Owain Llewellyn",
        nhs: "9990000069",
        urgency: Urgency::Urgent,
        practice: RIVER,
        received_day: 24,
    },
    Spec {
        id: "R-008",
        name: "Niamh Brennan",
        nhs: "9990000077",
        urgency: Urgency::Routine,
        practice: NORTH,
        received_day: 23,
    },
];

/// Eight referrals, one in each state: R-001 new, R-002 opened, R-003 draft, R-004 queued,
/// R-005 sent, R-006 conflict (refused by the service), R-007 rejected, R-008 withdrawn while
/// a draft was kept (conflict).
fn desk_in_every_state(dir: &Path) -> Desk {
    let desk = open_desk(dir);
    for spec in SPECS {
        upsert(&desk, referral(spec));
    }
    let mut cache = desk.cache();
    for id in ["R-002", "R-003", "R-004", "R-005", "R-006", "R-007", "R-008"] {
        cache.mark_opened(id, crate::clock::test_instant()).unwrap();
    }
    cache.save_draft("R-003", "{}", crate::clock::test_instant()).unwrap();
    for id in ["R-004", "R-005", "R-006", "R-007"] {
        let outcome = signed(id);
        let reviewed = cache.referral(id).unwrap().unwrap().referral;
        cache.queue_outcome(&outcome, &reviewed, crate::clock::test_instant()).unwrap();
        match id {
            "R-005" => cache
                .mark_sent(&outcome.payload.outcome_id, &receipt(&outcome), crate::clock::test_instant())
                .unwrap(),
            "R-006" => cache
                .mark_outcome_failed(
                    &outcome.payload.outcome_id,
                    OutboxState::Conflict,
                    "The referral changed.",
                )
                .unwrap(),
            "R-007" => {
                cache.mark_outcome_failed(&outcome.payload.outcome_id, OutboxState::Rejected, "No.").unwrap()
            }
            _ => {}
        }
    }
    cache.save_draft("R-008", "{}", crate::clock::test_instant()).unwrap();
    cache
        .apply(
            &[CacheOp::MarkRemoved { referral_id: "R-008".into(), reason: RemovalReason::Withdrawn }],
            crate::clock::test_instant(),
        )
        .unwrap();
    drop(cache);
    desk
}

fn ids(page: &WorklistPage) -> Vec<&str> {
    page.rows.iter().map(|row| row.referral_id.as_str()).collect()
}

#[test]
fn every_change_keeps_the_stored_status_the_rule_s() {
    let dir = tempfile::tempdir().unwrap();
    let desk = desk_in_every_state(dir.path());
    let statuses: Vec<(String, S)> =
        desk.worklist().unwrap().into_iter().map(|row| (row.referral_id, row.status)).collect();
    let expected = [
        ("R-004", S::Queued),
        ("R-002", S::Opened),
        ("R-003", S::Draft),
        ("R-007", S::Rejected),
        ("R-005", S::Sent),
        ("R-001", S::New),
        ("R-008", S::Conflict),
        ("R-006", S::Conflict),
    ];
    let mut sorted = statuses.clone();
    sorted.sort();
    let mut want: Vec<(String, S)> = expected.iter().map(|(id, s)| (id.to_string(), *s)).collect();
    want.sort();
    assert_eq!(sorted, want);
    let check = desk.cache().worklist_status_check().unwrap();
    assert!(check.iter().all(|(_, stored, fresh)| stored == fresh), "{check:?}");

    // Conflict rows say why, from the outbox or the removal.
    let rows = desk.worklist().unwrap();
    let conflict = |id: &str| rows.iter().find(|row| row.referral_id == id).unwrap().conflict.clone();
    assert_eq!(conflict("R-006").as_deref(), Some("The referral changed."));
    assert!(conflict("R-008").unwrap().contains("draft is kept"));

    // Discarding a draft, then the referral disappearing from the feed: rows follow.
    desk.discard_draft("R-003").unwrap();
    desk.cache()
        .apply(&[CacheOp::Delete { referral_id: "R-001".into() }], crate::clock::test_instant())
        .unwrap();
    let page = desk.worklist_query(&WorklistQuery::default()).unwrap();
    assert_eq!(page.total_matching, 7);
    assert_eq!(page.counts_by_status[&S::Draft], 0);
    assert_eq!(page.counts_by_status[&S::Opened], 2);
    assert_eq!(page.counts_by_status[&S::New], 0);
    // A new version from the feed clears the removal; the draft is still there.
    upsert(&desk, referral(&SPECS[7]));
    let row = desk.worklist().unwrap().into_iter().find(|row| row.referral_id == "R-008").unwrap();
    assert_eq!(row.status, S::Draft);
    let check = desk.cache().worklist_status_check().unwrap();
    assert!(check.iter().all(|(_, stored, fresh)| stored == fresh), "{check:?}");
}

#[test]
fn filters_search_order_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let desk = desk_in_every_state(dir.path());
    let query = |f: &dyn Fn(&mut WorklistQuery)| {
        let mut query = WorklistQuery::default();
        f(&mut query);
        desk.worklist_query(&query).unwrap()
    };
    // (query, rows in order, total)
    #[allow(clippy::type_complexity)]
    let table: Vec<(&str, Box<dyn Fn(&mut WorklistQuery)>, Vec<&str>, usize)> = vec![
        // Two-week wait, urgent, routine; then earliest due (received earlier); then id.
        (
            "everything",
            Box::new(|_| {}),
            vec!["R-004", "R-002", "R-003", "R-007", "R-005", "R-001", "R-008", "R-006"],
            8,
        ),
        ("a page", Box::new(|q| (q.offset, q.limit) = (2, 3)), vec!["R-003", "R-007", "R-005"], 8),
        ("new", Box::new(|q| q.statuses = vec![S::New]), vec!["R-001"], 1),
        ("conflict", Box::new(|q| q.statuses = vec![S::Conflict]), vec!["R-008", "R-006"], 2),
        ("draft or queued", Box::new(|q| q.statuses = vec![S::Draft, S::Queued]), vec!["R-004", "R-003"], 2),
        ("urgent", Box::new(|q| q.urgencies = vec![Urgency::Urgent]), vec!["R-003", "R-007"], 2),
        ("a practice", Box::new(|q| q.practice = Some("Y00003".into())), vec!["R-005"], 1),
        ("a surname, any case", Box::new(|q| q.search = Some("  PATEL ".into())), vec!["R-004", "R-001"], 2),
        ("part of a name with an accent", Box::new(|q| q.search = Some("wÓJ".into())), vec!["R-003"], 1),
        ("an apostrophe", Box::new(|q| q.search = Some("o'r".into())), vec!["R-002"], 1),
        ("NHS number as printed", Box::new(|q| q.search = Some("999 254 2292".into())), vec!["R-001"], 1),
        ("NHS number as digits", Box::new(|q| q.search = Some("9992542292".into())), vec!["R-001"], 1),
        ("part of an NHS number", Box::new(|q| q.search = Some("254 22".into())), vec!["R-001"], 1),
        (
            "a referral id",
            Box::new(|q| q.search = Some("r-00".into())),
            vec!["R-004", "R-002", "R-003", "R-007", "R-005", "R-001", "R-008", "R-006"],
            8,
        ),
        ("a referral id in full", Box::new(|q| q.search = Some("R-006".into())), vec!["R-006"], 1),
        ("nothing matches", Box::new(|q| q.search = Some("zzz".into())), vec![], 0),
        // A search never matches across the name and the number.
        ("across fields", Box::new(|q| q.search = Some("patel9".into())), vec![], 0),
        (
            "every filter at once",
            Box::new(|q| {
                q.statuses = vec![S::New, S::Queued];
                q.urgencies = vec![Urgency::TwoWeekWait, Urgency::Routine];
                q.practice = Some("Y00001".into());
                q.search = Some("patel".into());
            }),
            vec!["R-004", "R-001"],
            2,
        ),
    ];
    for (name, set, rows, total) in &table {
        let page = query(set.as_ref());
        assert_eq!(ids(&page), *rows, "{name}");
        assert_eq!(page.total_matching, *total, "{name}");
    }

    // Counts per status ignore the status filter and follow the others.
    let page = query(&|q| {
        q.statuses = vec![S::New];
        q.practice = Some("Y00001".into());
    });
    let counts: Vec<(S, usize)> = page.counts_by_status.iter().map(|(s, n)| (*s, *n)).collect();
    assert_eq!(
        counts,
        [
            (S::New, 1),
            (S::Opened, 0),
            (S::Draft, 1),
            (S::Queued, 1),
            (S::Sent, 0),
            (S::Conflict, 1),
            (S::Rejected, 0)
        ]
    );
    // Counts per practice ignore the practice filter and follow the others.
    let practices: Vec<(&str, usize)> =
        page.practices.iter().map(|p| (p.ods_code.as_str(), p.count)).collect();
    assert_eq!(practices, [("Y00001", 1)]);
    let page = query(&|q| q.search = Some("patel".into()));
    assert_eq!(page.counts_by_status[&S::New], 1);
    assert_eq!(page.counts_by_status[&S::Queued], 1);
    let page = query(&|_| {});
    let practices: Vec<(&str, &str, usize)> =
        page.practices.iter().map(|p| (p.ods_code.as_str(), p.name.as_str(), p.count)).collect();
    assert_eq!(
        practices,
        [
            ("Y00003", "Glen Health Centre", 1),
            ("Y00001", "Northgate Surgery", 4),
            ("Y00002", "Riverside Medical Practice", 3)
        ]
    );
    assert_eq!(page.counts_by_status.values().sum::<usize>(), 8);

    // As the UI sends and receives it.
    let query: WorklistQuery =
        serde_json::from_str(r#"{"statuses": ["draft", "queued"], "search": "pat"}"#).unwrap();
    assert_eq!(query.limit, DEFAULT_PAGE);
    let json = serde_json::to_value(desk.worklist_query(&query).unwrap()).unwrap();
    assert_eq!(json["total_matching"], 1);
    assert_eq!(json["counts_by_status"]["queued"], 1);
    assert_eq!(json["counts_by_status"]["new"], 1);
    assert_eq!(json["practices"][0]["ods_code"], "Y00001");
    assert_eq!(json["rows"][0]["practice_ods"], "Y00001");
    assert_eq!(json["rows"][0]["status"], "queued");
}

#[test]
fn search_needles_and_keys() {
    assert_eq!(search_needles(None), Vec::<String>::new());
    assert_eq!(search_needles(Some("   ")), Vec::<String>::new());
    assert_eq!(search_needles(Some(" Ada ")), ["ada"]);
    assert_eq!(search_needles(Some("999 254 2292")), ["9992542292"]);
    assert_eq!(search_needles(Some("999-254-2292")), ["9992542292"]);
    assert_eq!(search_needles(Some("9992542292")), ["9992542292"]);
    assert_eq!(search_needles(Some("Ada Lovelace")), ["adalovelace"]);
    assert_eq!(search_needles(Some("O\u{2019}Brien")), ["obrien"]);
    assert_eq!(search_key("Zofia WÓJCIK", "999 000 0026", "REF-1"), "zofiawojcik\u{1f}9990000026\u{1f}ref1");
}

#[test]
fn folding_forgives_case_accents_apostrophes_hyphens_and_how_unicode_was_typed() {
    assert_eq!(fold("Núñez"), "nunez");
    assert_eq!(fold("O'Brien"), "obrien");
    assert_eq!(fold("Smith-Jones"), "smithjones");
    // "Zoë" composed (U+00EB) and decomposed (e + U+0308) fold the same.
    assert_eq!(fold("Zo\u{00eb}"), fold("Zoe\u{0308}"));
    assert_eq!(fold("Zo\u{00eb}"), "zoe");
    // Full-width letters (compatibility forms) read as the letters.
    assert_eq!(fold("ＺＯＥ"), "zoe");
    assert_eq!(fold("Ødegård"), "ødegard");
}

#[test]
fn search_finds_names_however_they_are_typed_or_stored() {
    let dir = tempfile::tempdir().unwrap();
    let desk = open_desk(dir.path());
    let specs = [
        ("R-101", "Mateo Núñez", "9434765919"),
        ("R-102", "Siobhan O'Brien", "9990000018"),
        // Stored decomposed (as some systems send it).
        ("R-103", "Zoe\u{0308} Hart-Lewis", "9990000026"),
    ];
    for (id, name, nhs) in specs {
        upsert(
            &desk,
            referral(&Spec { id, name, nhs, urgency: Urgency::Routine, practice: NORTH, received_day: 23 }),
        );
    }
    let found = |search: &str| -> Vec<String> {
        let query = WorklistQuery { search: Some(search.into()), ..WorklistQuery::default() };
        desk.worklist_query(&query).unwrap().rows.into_iter().map(|row| row.referral_id).collect()
    };
    for (search, expected) in [
        ("Nunez", "R-101"),
        ("NÚÑEZ", "R-101"),
        ("obrien", "R-102"),
        ("O\u{2019}Brien", "R-102"),
        ("o brien", "R-102"),
        ("Zo\u{00eb}", "R-103"),
        ("zoe hart lewis", "R-103"),
        ("hartlewis", "R-103"),
        ("943 476 5919", "R-101"),
    ] {
        assert_eq!(found(search), [expected], "{search:?}");
    }
    // Names are shown as stored: folding is for finding only.
    let rows = desk.worklist_query(&WorklistQuery::default()).unwrap().rows;
    assert!(rows.iter().any(|row| row.patient_name == "Mateo Núñez"));
}

#[test]
fn bytes_in_words() {
    let table = [
        (0, "0 bytes"),
        (1, "1 byte"),
        (740, "740 bytes"),
        (999, "999 bytes"),
        (1_000, "1.0 KB"),
        (12_345, "12 KB"),
        (949_999, "950 KB"),
        (999_999, "1.0 MB"),
        (1_949_000, "1.9 MB"),
        (12_000_000, "12 MB"),
        (1_900_000_000, "1.9 GB"),
        (23_400_000_000, "23 GB"),
    ];
    for (bytes, words) in table {
        assert_eq!(format_bytes(bytes), words, "{bytes}");
    }
}

#[test]
fn the_readiness_sentence() {
    // (ready, total, photos, missing photos, bytes ready, bytes missing)
    let table = [
        ((48, 48, 212, 0, 1_900_000_000, 0), "Ready: 48 of 48 referrals, 212 photos, 1.9 GB"),
        ((1, 1, 1, 0, 740, 0), "Ready: 1 of 1 referral, 1 photo, 740 bytes"),
        ((0, 0, 0, 0, 0, 0), "Ready: 0 of 0 referrals, 0 photos, 0 bytes"),
        (
            (46, 48, 212, 3, 1_800_000_000, 12_000_000),
            "Not ready: 46 of 48 referrals, 3 photos missing (12 MB) — see the list",
        ),
        ((0, 1, 1, 1, 0, 2_500_000), "Not ready: 0 of 1 referral, 1 photo missing (2.5 MB) — see the list"),
    ];
    for ((ready, total, photos, missing, bytes_ready, bytes_missing), sentence) in table {
        assert_eq!(readiness_summary(ready, total, photos, missing, bytes_ready, bytes_missing), sentence);
    }
    assert_eq!(missing_words(3, &[]), "3 photos not downloaded");
    assert_eq!(missing_words(1, &[]), "1 photo not downloaded");
    assert_eq!(
        missing_words(0, &["A photo arrived damaged (size)."]),
        "1 photo refused: A photo arrived damaged (size)."
    );
    assert_eq!(
        missing_words(2, &["first", "second"]),
        "2 photos not downloaded; 2 photos refused (last: second)"
    );
}

#[test]
fn readiness_counts_distinct_photos_and_says_what_is_missing() {
    let photo = |referral: &str, content: &str, stored: Option<u64>, problem: Option<&str>| ReadinessPhoto {
        referral_id: referral.into(),
        patient_name: format!("Patient {referral}"),
        content_id: content.into(),
        stored_bytes: stored,
        problem: problem.map(str::to_owned),
    };
    let photos = [
        photo("R1", "a", Some(1_000_000), None),
        photo("R1", "b", Some(2_000_000), None),
        photo("R2", "a", Some(1_000_000), None), // the same photo in two referrals counts once
        photo("R2", "c", None, None),
        photo("R2", "d", None, Some("A photo arrived damaged (fingerprint).")),
        photo("R3", "e", None, None),
    ];
    let sizes: HashMap<String, u64> = [("c", 5_000_000), ("d", 4_000_000), ("e", 3_000_000)]
        .into_iter()
        .map(|(id, size)| (id.to_owned(), size))
        .collect();
    // Four assigned referrals: R4 has no photos and is ready.
    let report = readiness(4, &photos, &sizes);
    assert_eq!(
        (report.referrals_total, report.referrals_ready, report.photos_total, report.photos_ready),
        (4, 2, 5, 2)
    );
    assert_eq!((report.bytes_ready, report.bytes_missing), (3_000_000, 12_000_000));
    assert!(!report.ready);
    assert_eq!(report.summary, "Not ready: 2 of 4 referrals, 3 photos missing (12 MB) — see the list");
    let missing: Vec<(&str, &str)> =
        report.missing.iter().map(|item| (item.referral_id.as_str(), item.what.as_str())).collect();
    assert_eq!(
        missing,
        [
            ("R2", "1 photo not downloaded; 1 photo refused: A photo arrived damaged (fingerprint)."),
            ("R3", "1 photo not downloaded")
        ]
    );
    let everything = readiness(2, &photos[..3], &sizes);
    assert!(everything.ready);
    assert_eq!(everything.summary, "Ready: 2 of 2 referrals, 2 photos, 3.0 MB");
}

fn photo_meta(content: &str, size: u64) -> PhotoMeta {
    PhotoMeta {
        content_id: content.repeat(64),
        size,
        width: 1,
        height: 1,
        media_type: "image/jpeg".into(),
        captured_at: "2026-11-23T09:00:00Z".parse().unwrap(),
        view: PhotoView::Overview,
        body_site: "left forearm".into(),
        source: PhotoSource::GpPractice,
    }
}

#[test]
fn readiness_of_a_cache() {
    let dir = tempfile::tempdir().unwrap();
    let desk = open_desk(dir.path());
    let mut first = referral(&SPECS[0]);
    first.photos = vec![photo_meta("a", 3), photo_meta("b", 4_000_000)];
    let mut second = referral(&SPECS[1]);
    second.photos = vec![photo_meta("c", 3)];
    upsert(&desk, first);
    upsert(&desk, second);
    let mut withdrawn = referral(&SPECS[2]);
    withdrawn.photos = vec![photo_meta("d", 3)];
    upsert(&desk, withdrawn);
    desk.cache().save_draft("R-003", "{}", crate::clock::test_instant()).unwrap();
    desk.cache()
        .apply(
            &[CacheOp::MarkRemoved { referral_id: "R-003".into(), reason: RemovalReason::Withdrawn }],
            crate::clock::test_instant(),
        )
        .unwrap();
    {
        let mut cache = desk.cache();
        cache
            .store_verified_photo(&"a".repeat(64), "image/jpeg", b"abc", crate::clock::test_instant())
            .unwrap();
        cache
            .store_verified_photo(&"c".repeat(64), "image/jpeg", b"abc", crate::clock::test_instant())
            .unwrap();
    }
    let report = desk.readiness().unwrap();
    assert_eq!((report.ready, report.summary.as_str()), (false, NEVER_SYNCED));
    desk.cache().set_meta("last_feed_at", &crate::clock::test_instant().to_rfc3339()).unwrap();
    let report = desk.readiness().unwrap();
    assert_eq!(report.summary, "Not ready: 1 of 2 referrals, 1 photo missing (4.0 MB) — see the list");
    assert_eq!(report.missing.len(), 1);
    assert_eq!(report.missing[0].patient_name, "Amara Patel");
    assert_eq!(report.missing[0].what, "1 photo not downloaded");
    desk.cache().record_photo_failure(&"b".repeat(64), "A photo arrived damaged (size).").unwrap();
    assert_eq!(desk.readiness().unwrap().missing[0].what, "1 photo refused: A photo arrived damaged (size).");
    desk.cache()
        .store_verified_photo(&"b".repeat(64), "image/jpeg", b"abcd", crate::clock::test_instant())
        .unwrap();
    let report = desk.readiness().unwrap();
    assert!(report.ready, "{report:?}");
    assert_eq!(report.summary, "Ready: 2 of 2 referrals, 3 photos, 10 bytes");
    assert_eq!(serde_json::to_value(&report).unwrap()["missing"], serde_json::json!([]));
}

#[test]
fn due_within_a_trip_counts_each_nation_s_bank_holidays() {
    let dir = tempfile::tempdir().unwrap();
    let desk = open_desk(dir.path());
    // Received Wednesday 25 November 2026, 09:00: 3 working days on is Monday 30 November in
    // England, but Tuesday 1 December in Scotland (Monday 30 is St Andrew's Day).
    let mut english = referral(&SPECS[0]);
    english.received_at = "2026-11-25T09:00:00Z".parse().unwrap();
    let mut scottish = referral(&SPECS[1]);
    scottish.received_at = english.received_at;
    scottish.practice.nation = Nation::Scotland;
    // Received Thursday 26 November: due Tuesday 1 December in England.
    let mut later = referral(&SPECS[2]);
    later.received_at = "2026-11-26T09:00:00Z".parse().unwrap();
    // Due in the window, but its outcome was delivered: nothing left to do.
    let mut answered = referral(&SPECS[3]);
    answered.received_at = english.received_at;
    for referral in [english, scottish, later, answered] {
        upsert(&desk, referral);
    }
    {
        let mut cache = desk.cache();
        let outcome = signed("R-004");
        let reviewed = cache.referral("R-004").unwrap().unwrap().referral;
        cache.queue_outcome(&outcome, &reviewed, crate::clock::test_instant()).unwrap();
        cache
            .mark_sent(&outcome.payload.outcome_id, &receipt(&outcome), crate::clock::test_instant())
            .unwrap();
    }
    let date = |text: &str| text.parse::<NaiveDate>().unwrap();
    let due = |from: &str, to: &str| -> Vec<String> {
        desk.due_within(date(from), date(to)).unwrap().into_iter().map(|row| row.referral_id).collect()
    };
    // A long weekend away, Friday 27 to Monday 30 November: only the English one.
    assert_eq!(due("2026-11-27", "2026-11-30"), ["R-001"]);
    // One day, Tuesday 1 December: the Scottish one and the later English one.
    assert_eq!(due("2026-12-01", "2026-12-01"), ["R-002", "R-003"]);
    assert_eq!(due("2026-11-30", "2026-12-01"), ["R-001", "R-002", "R-003"]);
    assert_eq!(due("2026-12-02", "2026-12-31"), Vec::<String>::new());
    assert_eq!(due("2026-12-01", "2026-11-30"), Vec::<String>::new());
}

#[test]
fn the_worklist_view_is_remembered_in_the_cache_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let desk = open_desk(dir.path());
    assert_eq!(desk.worklist_view_state().unwrap(), None);
    let view = serde_json::json!({ "statuses": ["new"], "search": "Ada", "scroll": 420 });
    desk.save_worklist_view_state(&view).unwrap();
    assert_eq!(desk.worklist_view_state().unwrap(), Some(view.clone()));

    let too_big = serde_json::json!({ "search": "x".repeat(crate::worklist::VIEW_STATE_LIMIT) });
    let error = desk.save_worklist_view_state(&too_big).unwrap_err().to_string();
    assert!(error.contains("remembered before is kept"), "{error}");
    let error = desk.save_worklist_view_state(&serde_json::json!([1, 2])).unwrap_err();
    assert!(matches!(error, CoreError::Cache(_)), "{error}");
    assert_eq!(desk.worklist_view_state().unwrap(), Some(view), "the earlier view is kept");
}

/// A calendar file dropped into the data folder moves the due dates already cached (not only
/// those of referrals that arrive later), once: the next start finds nothing to recount.
#[test]
fn a_replaced_calendar_moves_the_cached_due_dates() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(MemorySecretStore::default());
    let open_desk = |dir: &Path| {
        let config = DeskConfig { data_dir: dir.join("desk"), device_name: "test".into() };
        Desk::open(config, secrets.clone()).unwrap()
    };
    let spec = Spec {
        id: "R-100",
        name: "Ada Cal",
        nhs: "9990000100",
        urgency: Urgency::Routine,
        practice: ("A81001", "Alpha Practice"),
        received_day: 23, // Monday 23 November 2026, 09:00
    };
    {
        let desk = open_desk(dir.path());
        upsert(&desk, referral(&spec));
        let row = &desk.worklist().unwrap()[0];
        assert_eq!(row.due_at.to_rfc3339(), "2026-11-26T17:00:00+00:00", "3 working days: Thursday");
    }
    // The practice's nation gets a bank holiday on Tuesday 24 November.
    let mut calendar: serde_json::Value =
        serde_json::from_str(include_str!("../../data/bank-holidays.json")).unwrap();
    let division = match crate::plan::tests::referral("x", 1).practice.nation {
        dermdesk_protocol::Nation::Scotland => "scotland",
        dermdesk_protocol::Nation::NorthernIreland => "northern-ireland",
        _ => "england-and-wales",
    };
    calendar[division]["events"].as_array_mut().unwrap().push(
        serde_json::json!({ "title": "Test holiday", "date": "2026-11-24", "notes": "", "bunting": false }),
    );
    std::fs::write(
        dir.path().join("desk").join(crate::deadline::CALENDAR_FILE_NAME),
        serde_json::to_vec(&calendar).unwrap(),
    )
    .unwrap();

    let desk = open_desk(dir.path());
    let row = &desk.worklist().unwrap()[0];
    assert_eq!(row.due_at.to_rfc3339(), "2026-11-27T17:00:00+00:00", "the holiday moves it to Friday");
    let cached = desk.cache().referral("R-100").unwrap().unwrap();
    assert_eq!(cached.due_at, row.due_at, "the referral and its worklist row agree");
    drop(desk);
    let desk = open_desk(dir.path());
    let fingerprint = desk.deadline_policy().fingerprint();
    assert_eq!(desk.cache().recount_due_dates(&fingerprint, |_| unreachable!()).unwrap(), 0);
}
