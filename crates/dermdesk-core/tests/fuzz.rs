//! Fuzzing of every decoder the app applies to the service's answers, with proptest (cargo-fuzz
//! needs a nightly toolchain): `client::decode_answer` for each answer type (size cap, serde's
//! recursion limit, typed structs, the protocol's bounds), then what the app does next with a
//! decoded answer (the feed plan, the photo refusal, public key decoding, receipt verification).
//!
//! Three kinds of input: random JSON (bounded depth and size), valid answers mutated byte by
//! byte, and valid answers with one node swapped for random JSON. Every decoder runs under
//! `catch_unwind`; the test fails on any panic and writes its figures to
//! `target/security/fuzz.json`. `DERMDESK_FUZZ_CASES` sets the inputs per kind (default 2,000,
//! the CI quick mode: about 2 s).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{TimeZone as _, Utc};
use dermdesk_core::client::decode_answer;
use dermdesk_core::deadline::DeadlinePolicy;
use dermdesk_core::plan::plan_feed_page;
use dermdesk_core::verify::refuse_before_download;
use dermdesk_protocol::signature::{self, verify_receipt_for};
use dermdesk_protocol::{
    ApiError, EnrolResponse, FeedPage, KeyRotationResponse, Outcome, OutcomeKind, OutcomePayload,
    OutcomeReceipt, PublicKeyInfo, ReceiptPayload, SignedOutcome,
};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};

const DEFAULT_CASES: u32 = 2_000;

struct Fixture {
    /// Valid answers of every type, as the service would send them.
    corpus: Vec<Vec<u8>>,
    signed: SignedOutcome,
    hub_key: ed25519_dalek::VerifyingKey,
    deadlines: DeadlinePolicy,
}

fn fixture() -> Fixture {
    let consultant_key = SigningKey::from_bytes(&[7; 32]);
    let hub_signing = SigningKey::from_bytes(&[9; 32]);
    let hub_key = hub_signing.verifying_key();
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 9, 30, 0).unwrap();
    let payload = OutcomePayload {
        outcome_id: "6f2f8a4e-8a43-4c55-9d43-0c6a4f0f2b11".into(),
        referral_id: "R-1".into(),
        referral_version: 1,
        consultant_id: "C-1".into(),
        device_id: "D-1".into(),
        key_id: signature::key_id(&consultant_key.verifying_key()),
        signed_at: at,
        outcome: Outcome {
            kind: OutcomeKind::AdviceAndDischarge,
            diagnosis: "Seborrhoeic keratosis".into(),
            plan: "Reassure.".into(),
            ..Outcome::default_extras()
        },
    };
    let signed = signature::sign_outcome(payload, &consultant_key).unwrap();
    let receipt_payload = ReceiptPayload {
        outcome_id: signed.payload.outcome_id.clone(),
        payload_sha256: signature::payload_sha256(&signed.payload).unwrap(),
        received_at: at,
        referral_id: "R-1".into(),
        hub_key_id: signature::key_id(&hub_key),
    };
    let receipt = OutcomeReceipt {
        outcome_id: receipt_payload.outcome_id.clone(),
        referral_id: receipt_payload.referral_id.clone(),
        payload_sha256: receipt_payload.payload_sha256.clone(),
        received_at: at,
        hub_key_id: receipt_payload.hub_key_id.clone(),
        first_receipt: true,
        receipt_jws: signature::sign_receipt(&receipt_payload, &hub_signing).unwrap(),
    };
    let photo = json!({
        "content_id": "ab".repeat(32), "size": 123456, "width": 4000, "height": 3000,
        "media_type": "image/jpeg", "captured_at": "2026-11-20T09:30:00Z", "view": "close_up",
        "body_site": "left forearm", "source": "patient_link"
    });
    let referral = json!({
        "id": "R-1", "version": 2,
        "patient": {"name": "Synthetic Patient", "nhs_number": "9990000018", "date_of_birth": "1970-01-01", "sex": "not_known"},
        "practice": {"ods_code": "Y00001", "name": "Synthetic Practice", "nation": "scotland"},
        "referrer": {"name": "Dr Synthetic", "role": "GP"},
        "received_at": "2026-11-20T17:30:00Z", "urgency": "two_week_wait",
        "clinical": {"question": "Is this <script>alert(1)</script> a melanoma?", "history": "h", "duration": "3 months", "medications": "none"},
        "consent": {"given": true, "recorded_at": "2026-11-20T09:00:00Z", "recorded_by": "Nurse Synthetic"},
        "photos": [photo.clone(), photo],
    });
    let feed = json!({
        "changes": [
            {"type": "upsert", "referral": referral},
            {"type": "removed", "referral_id": "R-0", "reason": "withdrawn"},
        ],
        "next_cursor": "c-42", "has_more": true,
    });
    let hub_key_info = PublicKeyInfo::of(&hub_key);
    let enrol = EnrolResponse {
        device_id: "D-1".into(),
        device_token: "synthetic-token".into(),
        key_id: signed.payload.key_id.clone(),
        consultant: dermdesk_protocol::Consultant { id: "C-1".into(), display_name: "Dr Synthetic".into() },
        hub_key: Some(hub_key_info.clone()),
    };
    let rotation = KeyRotationResponse {
        device_id: "D-1".into(),
        key_id: "k2".into(),
        retired_key_id: "k1".into(),
        rotated_at: at,
    };
    let error = json!({"code": "referral_changed", "message": "changed", "current_version": 3});
    let corpus = [
        serde_json::to_vec(&feed).unwrap(),
        serde_json::to_vec(&enrol).unwrap(),
        serde_json::to_vec(&hub_key_info).unwrap(),
        serde_json::to_vec(&rotation).unwrap(),
        serde_json::to_vec(&receipt).unwrap(),
        serde_json::to_vec(&error).unwrap(),
    ]
    .to_vec();
    Fixture { corpus, signed, hub_key, deadlines: DeadlinePolicy::default() }
}

/// Every decoder on one input, each under `catch_unwind`. Returns (decoders run, panics, how
/// many decoded).
fn decode_everything(fixture: &Fixture, input: &[u8]) -> (u64, u64, u64) {
    let mut runs = 0;
    let mut panics = 0;
    let mut decoded = 0;
    let mut run = |step: &mut dyn FnMut() -> bool| {
        runs += 1;
        match catch_unwind(AssertUnwindSafe(step)) {
            Ok(true) => decoded += 1,
            Ok(false) => {}
            Err(_) => panics += 1,
        }
    };
    run(&mut || match decode_answer::<FeedPage>(input) {
        Ok(page) => {
            // What the app does with a page: plan it against the cache, refuse photos by metadata.
            let _ = plan_feed_page(&[], &page, &fixture.deadlines);
            for change in &page.changes {
                if let dermdesk_protocol::Change::Upsert { referral } = change {
                    for photo in &referral.photos {
                        let _ = refuse_before_download(photo);
                    }
                }
            }
            true
        }
        Err(error) => {
            // Every refusal says something (an empty message counts as a defect, like a panic).
            assert!(!error.to_string().is_empty());
            false
        }
    });
    run(&mut || match decode_answer::<EnrolResponse>(input) {
        Ok(enrol) => {
            if let Some(key) = &enrol.hub_key {
                let _ = key.decode();
            }
            true
        }
        Err(_) => false,
    });
    run(&mut || match decode_answer::<PublicKeyInfo>(input) {
        Ok(key) => {
            let _ = key.decode();
            true
        }
        Err(_) => false,
    });
    run(&mut || decode_answer::<KeyRotationResponse>(input).is_ok());
    run(&mut || match decode_answer::<OutcomeReceipt>(input) {
        Ok(receipt) => {
            let _ = verify_receipt_for(&fixture.signed, &receipt, &fixture.hub_key);
            true
        }
        Err(_) => false,
    });
    run(&mut || decode_answer::<ApiError>(input).is_ok());
    (runs, panics, decoded)
}

/// Random JSON, at most 6 levels deep and about 64 nodes.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        prop::sample::select(vec![
            "upsert",
            "removed",
            "withdrawn",
            "reassigned",
            "routine",
            "two_week_wait",
            "image/jpeg",
            "image/png",
            "2026-11-20T09:30:00Z",
            "1970-01-01",
            "female",
            "england",
            "close_up",
            "gp_practice",
            "referral_changed",
        ])
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        let keys = prop::sample::select(vec![
            "changes",
            "next_cursor",
            "has_more",
            "type",
            "referral",
            "referral_id",
            "reason",
            "id",
            "version",
            "photos",
            "content_id",
            "size",
            "width",
            "height",
            "code",
            "message",
            "device_token",
            "hub_key",
            "key_id",
            "public_key",
            "receipt_jws",
            "outcome_id",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((keys, inner), 0..8).prop_map(|entries| Value::Object(
                entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

/// A byte-level mutation of a valid answer.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: prop::sample::Index, bit: u8 },
    Insert { at: prop::sample::Index, byte: u8 },
    Delete { at: prop::sample::Index, length: usize },
    Duplicate { at: prop::sample::Index, length: usize },
    Truncate { at: prop::sample::Index },
    Splice { at: prop::sample::Index, token: &'static str },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let tokens = prop::sample::select(vec![
        "null",
        "[]",
        "{}",
        "-1",
        "1e999",
        "18446744073709551616",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"",
        ",",
        ":",
        "[[[[[[[[",
        "}}}}",
        "true",
        "\"65535\"",
        "4294967295",
        "0",
    ]);
    prop_oneof![
        (any::<prop::sample::Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        (any::<prop::sample::Index>(), 1usize..32).prop_map(|(at, length)| Mutation::Delete { at, length }),
        (any::<prop::sample::Index>(), 1usize..64)
            .prop_map(|(at, length)| Mutation::Duplicate { at, length }),
        any::<prop::sample::Index>().prop_map(|at| Mutation::Truncate { at }),
        (any::<prop::sample::Index>(), tokens).prop_map(|(at, token)| Mutation::Splice { at, token }),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        if bytes.is_empty() {
            break;
        }
        let len = bytes.len();
        match mutation {
            Mutation::Flip { at, bit } => bytes[at.index(len)] ^= 1 << bit,
            Mutation::Insert { at, byte } => bytes.insert(at.index(len + 1), *byte),
            Mutation::Delete { at, length } => {
                let start = at.index(len);
                bytes.drain(start..(start + length).min(len));
            }
            Mutation::Duplicate { at, length } => {
                let start = at.index(len);
                let piece = bytes[start..(start + length).min(len)].to_vec();
                bytes.splice(start..start, piece);
            }
            Mutation::Truncate { at } => bytes.truncate(at.index(len)),
            Mutation::Splice { at, token } => {
                let start = at.index(len);
                bytes.splice(start..start, token.bytes());
            }
        }
    }
    bytes
}

fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(members) => members.values().map(count_nodes).sum(),
        _ => 0,
    }
}

enum Replacement {
    Any(Value),
    SameKind { text: String, number: u64 },
}

/// Replaces one node (picked by `at`, in depth-first order) of `value`.
fn swap_node(value: &mut Value, at: &mut usize, replacement: &Replacement) -> bool {
    if *at == 0 {
        *value = match (replacement, &*value) {
            (Replacement::Any(node), _) => node.clone(),
            (Replacement::SameKind { text, .. }, Value::String(_)) => Value::String(text.clone()),
            (Replacement::SameKind { number, .. }, Value::Number(_)) => Value::from(*number),
            (Replacement::SameKind { .. }, Value::Bool(b)) => Value::Bool(!b),
            (Replacement::SameKind { .. }, Value::Array(_)) => Value::Array(Vec::new()),
            (Replacement::SameKind { .. }, other) => other.clone(),
        };
        return true;
    }
    *at -= 1;
    match value {
        Value::Array(items) => items.iter_mut().any(|item| swap_node(item, at, replacement)),
        Value::Object(members) => members.values_mut().any(|member| swap_node(member, at, replacement)),
        _ => false,
    }
}

#[test]
fn decoders_of_the_services_answers_never_panic() {
    let cases =
        std::env::var("DERMDESK_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_CASES);
    let fixture = fixture();
    // The corpus itself decodes: the mutations start from answers that reach the deep code.
    for document in &fixture.corpus {
        let (_, panics, decoded) = decode_everything(&fixture, document);
        assert_eq!((panics, decoded.min(1)), (0, 1), "{}", String::from_utf8_lossy(document));
    }
    let (runs, panics, decoded, inputs) =
        (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let first_panic: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let record = |input: &[u8]| {
        let (r, p, d) = decode_everything(&fixture, input);
        inputs.fetch_add(1, Ordering::Relaxed);
        runs.fetch_add(r, Ordering::Relaxed);
        panics.fetch_add(p, Ordering::Relaxed);
        decoded.fetch_add(d, Ordering::Relaxed);
        let mut first = first_panic.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if p > 0 && first.is_none() {
            *first = Some(String::from_utf8_lossy(&input[..input.len().min(2000)]).into_owned());
        }
    };
    // Quiet: the panics are counted, not printed a thousand times.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let seeded = || TestRng::from_seed(RngAlgorithm::ChaCha, &[42; 32]);

    let mut decoded_per_kind = Vec::new();
    let mut runner = TestRunner::new_with_rng(config.clone(), seeded());
    runner
        .run(&arbitrary_json(), |value| {
            record(&serde_json::to_vec(&value).unwrap());
            Ok(())
        })
        .unwrap();
    decoded_per_kind.push(decoded.load(Ordering::Relaxed));
    let corpus = fixture.corpus.clone();
    let mut runner = TestRunner::new_with_rng(config.clone(), seeded());
    runner
        .run(
            &(prop::sample::select(corpus.clone()), prop::collection::vec(mutation(), 1..6)),
            |(document, mutations)| {
                record(&apply(document, &mutations));
                Ok(())
            },
        )
        .unwrap();
    decoded_per_kind.push(decoded.load(Ordering::Relaxed) - decoded_per_kind[0]);
    let mut runner = TestRunner::new_with_rng(config, seeded());
    runner
        .run(
            &(
                prop::sample::select(corpus),
                any::<usize>(),
                arbitrary_json(),
                any::<bool>(),
                ".{0,300}",
                any::<u64>(),
            ),
            |(document, at, node, same_kind, text, number)| {
                let mut value: Value = serde_json::from_slice(&document).unwrap();
                let mut at = at % count_nodes(&value);
                // Half the time a value of the node's own kind (a string for a string...), which
                // gets past the types into the bounds, the plan and the signature checks.
                let replacement =
                    if same_kind { Replacement::SameKind { text, number } } else { Replacement::Any(node) };
                swap_node(&mut value, &mut at, &replacement);
                record(&serde_json::to_vec(&value).unwrap());
                Ok(())
            },
        )
        .unwrap();
    std::panic::set_hook(hook);
    decoded_per_kind.push(decoded.load(Ordering::Relaxed) - decoded_per_kind[0] - decoded_per_kind[1]);

    let (runs, panics, decoded, inputs) =
        (runs.into_inner(), panics.into_inner(), decoded.into_inner(), inputs.into_inner());
    let first_panic = first_panic.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    eprintln!(
        "fuzz: {inputs} inputs, {runs} decoder runs, {decoded} decoded (per kind {decoded_per_kind:?}), {panics} panics"
    );
    write_figures(&json!({
        "fuzz_execs": inputs,
        "fuzz_decoder_runs": runs,
        "fuzz_decoded": decoded,
        "fuzz_decoded_per_kind": decoded_per_kind,
        "fuzz_panics": panics,
        "cases_per_kind": cases,
        "kinds": ["random JSON (depth <= 6)", "valid answers mutated byte by byte", "valid answers with a node replaced"],
        "decoders": ["FeedPage + plan + photo refusal", "EnrolResponse + hub key", "PublicKeyInfo + key", "KeyRotationResponse", "OutcomeReceipt + receipt verification", "ApiError"],
        "first_panic_input": first_panic,
    }));
    assert_eq!(panics, 0, "a decoder panicked; first input: {first_panic:?}");
    // Not a test that cannot fail the other way either: mutated answers must still decode often.
    assert!(
        decoded_per_kind[1] > u64::from(cases) / 20 && decoded_per_kind[2] > u64::from(cases) / 20,
        "too few mutated answers decoded ({decoded_per_kind:?}): the mutations never reach the deep code"
    );
}

fn write_figures(report: &Value) {
    let dir = std::env::var_os("DERMDESK_SECURITY_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/security"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fuzz.json"), serde_json::to_vec_pretty(report).unwrap()).unwrap();
}
