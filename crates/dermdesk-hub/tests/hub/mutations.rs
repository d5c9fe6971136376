//! Every way we could think of to pass off something the consultant did not sign, sent to a
//! real hub over HTTP: each byte of the protected header, of the signature and of the canonical
//! payload flipped; headers re-ordered or re-spelt; `alg: none`; unknown and foreign keys; the
//! valid JWS replayed for another referral version; a retired key; a revoked device. All must
//! be refused and none recorded; then the genuine outcome is accepted, once.
//!
//! Prints `N mutations, N rejected` to stderr, with or without `--nocapture`.

use std::collections::BTreeMap;
use std::io::Write as _;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use dermdesk_hub::ServerConfig;
use dermdesk_protocol::canonical::to_canonical_json;
use dermdesk_protocol::signature::{
    key_id, sign_key_rotation, sign_outcome, verify_receipt_for, JwsHeader, JWS_TYP, RECEIPT_TYP,
};
use dermdesk_protocol::{
    ApiError, MissingView, Outcome, OutcomeKind, OutcomePayload, OutcomeReceipt, SignedOutcome,
};
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::Value;

use crate::support::{TestDevice, TestHub};

/// One attempt: what it is, who sends it, and the exact request body.
struct Mutation {
    name: String,
    token: String,
    body: Vec<u8>,
}

fn body_of(signed: &SignedOutcome) -> Vec<u8> {
    serde_json::to_vec(signed).unwrap()
}

/// A request body with the payload given as raw JSON text (which need not parse).
fn raw_body(payload_json: &[u8], jws: &str) -> Vec<u8> {
    let mut body = b"{\"payload\":".to_vec();
    body.extend_from_slice(payload_json);
    body.extend_from_slice(format!(",\"jws\":{}}}", serde_json::to_string(jws).unwrap()).as_bytes());
    body
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JWS over `payload` with `header_json` as the protected header, genuinely signed by `key`.
fn signed_with_header(payload: &OutcomePayload, header_json: &str, key: &SigningKey) -> String {
    let header = b64(header_json);
    let input = format!("{header}.{}", b64(to_canonical_json(payload).unwrap()));
    format!("{header}..{}", b64(key.sign(input.as_bytes()).to_bytes()))
}

/// A rich outcome, so the payload has arrays, optional members and every type to flip.
fn outcome(photo: &str) -> Outcome {
    Outcome {
        kind: OutcomeKind::RequestMoreInformation,
        appointment_urgency: None,
        diagnosis: "Seborrhoeic keratosis, probable".into(),
        diagnosis_code: Some("900000000000001".into()),
        certainty: Some(dermdesk_protocol::Certainty::Provisional),
        plan: "Please send a dermoscopic view and an overview of the back.".into(),
        missing_views: vec![MissingView::Overview, MissingView::Dermoscopic],
        patient_information_url: Some("https://example.org/leaflets/seborrhoeic-keratosis".into()),
        key_photos: vec![photo.to_owned(), "ab".repeat(32)],
        governance_reason: None,
    }
}

#[tokio::test]
async fn every_mutation_of_a_signed_outcome_is_refused_over_http_and_nothing_is_recorded() {
    let test = TestHub::new();
    let consultant = test.consultant("Dr Ada Example");
    let (referral, _) = test.referral_for("R-1", &consultant.id);
    let (replayed_referral, _) = test.referral_for("R-2", &consultant.id);
    let photo = referral.photos[0].content_id.clone();
    let device = test.enrol(&consultant.id).await;
    let other = test.enrol(&consultant.id).await;
    let revoked = test.enrol(&consultant.id).await;
    let mut rotated = test.enrol(&consultant.id).await;

    let valid = device.sign_payload(device.payload("R-1", 1, outcome(&photo)));
    let canonical = to_canonical_json(&valid.payload).unwrap();
    let (header_b64, signature_b64) = valid.jws.split_once("..").unwrap();
    let header_json = URL_SAFE_NO_PAD.decode(header_b64).unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature_b64).unwrap();
    let kid = key_id(&device.key.verifying_key());
    let token = device.token.clone();

    let mut mutations = Vec::new();
    let mut add = |name: String, token: &str, body: Vec<u8>| {
        mutations.push(Mutation { name, token: token.to_owned(), body })
    };
    let with_jws = |jws: String| body_of(&SignedOutcome { payload: valid.payload.clone(), jws });
    let flip = |bytes: &[u8], index: usize| {
        let mut bytes = bytes.to_vec();
        bytes[index] ^= 0x01;
        bytes
    };

    // 1. Each byte of the protected header: as transmitted (base64url) and as JSON.
    for index in 0..header_b64.len() {
        let header = String::from_utf8(flip(header_b64.as_bytes(), index)).unwrap();
        add(format!("header segment byte {index}"), &token, with_jws(format!("{header}..{signature_b64}")));
    }
    for index in 0..header_json.len() {
        let header = b64(flip(&header_json, index));
        add(format!("header JSON byte {index}"), &token, with_jws(format!("{header}..{signature_b64}")));
    }
    // 2. Each byte of the signature: as transmitted and as the 64 raw bytes.
    for index in 0..signature_b64.len() {
        let signature = String::from_utf8(flip(signature_b64.as_bytes(), index)).unwrap();
        add(
            format!("signature segment byte {index}"),
            &token,
            with_jws(format!("{header_b64}..{signature}")),
        );
    }
    for index in 0..signature.len() {
        let signature = b64(flip(&signature, index));
        add(format!("signature byte {index}"), &token, with_jws(format!("{header_b64}..{signature}")));
    }
    // 3. Each byte of the canonical payload, sent as JSON text whether or not it still parses.
    for index in 0..canonical.len() {
        add(format!("payload byte {index}"), &token, raw_body(&flip(&canonical, index), &valid.jws));
    }

    // 4. Re-ordered and re-spelt headers, with the original signature and genuinely re-signed.
    let members =
        [("alg", "\"EdDSA\"".to_owned()), ("kid", format!("\"{kid}\"")), ("typ", format!("\"{JWS_TYP}\""))];
    for order in [[0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
        let header: Vec<String> =
            order.iter().map(|&i| format!("\"{}\":{}", members[i].0, members[i].1)).collect();
        let header = format!("{{{}}}", header.join(","));
        add(
            format!("header re-ordered {order:?}"),
            &token,
            with_jws(format!("{}..{signature_b64}", b64(&header))),
        );
        let resigned = signed_with_header(&valid.payload, &header, &device.key);
        add(format!("header re-ordered {order:?}, re-signed"), &token, with_jws(resigned));
    }
    let spelt = [
        format!(r#"{{"alg": "EdDSA", "kid": "{kid}", "typ": "{JWS_TYP}"}}"#),
        format!(r#"{{"alg":"EdDSA","b64":false,"crit":["b64"],"kid":"{kid}","typ":"{JWS_TYP}"}}"#),
        format!(r#"{{"alg":"EdDSA","kid":"{kid}","typ":"{JWS_TYP}","x5u":"https://example.org/key"}}"#),
        format!(r#"{{"alg":"eddsa","kid":"{kid}","typ":"{JWS_TYP}"}}"#),
        format!(r#"{{"alg":"Ed25519","kid":"{kid}","typ":"{JWS_TYP}"}}"#),
        format!(r#"{{"alg":"EdDSA","kid":"{kid}","typ":"{RECEIPT_TYP}"}}"#),
        format!(r#"{{"alg":"EdDSA","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"EdDSA","kid":"{kid}","typ":"JWT"}}"#),
    ];
    for (index, header) in spelt.iter().enumerate() {
        let resigned = signed_with_header(&valid.payload, header, &device.key);
        add(format!("header spelt otherwise #{index}, re-signed"), &token, with_jws(resigned));
    }
    // Payload arrays re-ordered: a different outcome, so the signature must not cover it.
    let mut swapped = valid.clone();
    swapped.payload.outcome.key_photos.reverse();
    add("key photos re-ordered".into(), &token, body_of(&swapped));
    let mut swapped = valid.clone();
    swapped.payload.outcome.missing_views.reverse();
    add("missing views re-ordered".into(), &token, body_of(&swapped));

    // 5. `alg: none` and other ways to have no signature.
    let none_header = |alg: &str| {
        b64(to_canonical_json(&JwsHeader { alg: alg.into(), kid: kid.clone(), typ: JWS_TYP.into() }).unwrap())
    };
    add("alg none, empty signature".into(), &token, with_jws(format!("{}..", none_header("none"))));
    add(
        "alg none, original signature".into(),
        &token,
        with_jws(format!("{}..{signature_b64}", none_header("none"))),
    );
    add("alg HS256, empty signature".into(), &token, with_jws(format!("{}..", none_header("HS256"))));
    add("empty signature".into(), &token, with_jws(format!("{header_b64}..")));
    add("empty JWS".into(), &token, with_jws(String::new()));
    add("header only".into(), &token, with_jws(header_b64.to_owned()));
    add(
        "attached payload".into(),
        &token,
        with_jws(format!("{header_b64}.{}.{signature_b64}", b64(&canonical))),
    );
    add("four segments".into(), &token, with_jws(format!("{header_b64}..{signature_b64}.")));
    add("signature padded".into(), &token, with_jws(format!("{}==", valid.jws)));
    add("signature truncated".into(), &token, with_jws(format!("{header_b64}..{}", b64(&signature[..63]))));
    add(
        "signature extended".into(),
        &token,
        with_jws(format!("{header_b64}..{}", b64([&signature[..], &[0]].concat()))),
    );
    add("signature zero".into(), &token, with_jws(format!("{header_b64}..{}", b64([0u8; 64]))));
    let standard = base64::engine::general_purpose::STANDARD.encode(&signature);
    if standard.contains(['+', '/', '=']) {
        add("signature in standard base64".into(), &token, with_jws(format!("{header_b64}..{standard}")));
    }
    add("whitespace in JWS".into(), &token, with_jws(format!(" {}", valid.jws)));
    add("payload missing".into(), &token, format!(r#"{{"jws":"{}"}}"#, valid.jws).into_bytes());
    let canonical_text = String::from_utf8(canonical.clone()).unwrap();
    add("jws missing".into(), &token, format!(r#"{{"payload":{canonical_text}}}"#).into_bytes());

    // Members the signature does not cover: parsing would drop or fill them in, so the JSON
    // sent would differ from the JSON signed.
    let edited = |edit: &dyn Fn(&mut Value)| {
        let mut payload = serde_json::to_value(&valid.payload).unwrap();
        edit(&mut payload);
        raw_body(serde_json::to_string(&payload).unwrap().as_bytes(), &valid.jws)
    };
    add("unsigned extra member".into(), &token, edited(&|p| p["outcome"]["note"] = "Excise urgently".into()));
    add("unsigned top-level member".into(), &token, edited(&|p| p["urgent"] = true.into()));
    add(
        "null member left out".into(),
        &token,
        edited(&|p| {
            p["outcome"].as_object_mut().unwrap().remove("appointment_urgency");
        }),
    );
    add(
        "absent optional member as null".into(),
        &token,
        edited(&|p| p["outcome"]["governance_reason"] = Value::Null),
    );
    add(
        "timestamp spelt otherwise".into(),
        &token,
        edited(&|p| {
            let at = valid.payload.signed_at.format("%Y-%m-%dT%H:%M:%S%.f+00:00").to_string();
            p["signed_at"] = at.into();
        }),
    );
    add("version as a string".into(), &token, edited(&|p| p["referral_version"] = "1".into()));
    add(
        "version as a float".into(),
        &token,
        raw_body(
            canonical_text.replace("\"referral_version\":1", "\"referral_version\":1.0").as_bytes(),
            &valid.jws,
        ),
    );

    // 6. Keys the hub does not know for this device, or another device's.
    let stranger = SigningKey::generate(&mut rand::rngs::OsRng);
    let mut payload = valid.payload.clone();
    payload.key_id = key_id(&stranger.verifying_key());
    add("unknown key, its own kid".into(), &token, body_of(&sign_outcome(payload, &stranger).unwrap()));
    let forged = signed_with_header(
        &valid.payload,
        &String::from_utf8(
            to_canonical_json(&JwsHeader {
                alg: "EdDSA".into(),
                kid: key_id(&stranger.verifying_key()),
                typ: JWS_TYP.into(),
            })
            .unwrap(),
        )
        .unwrap(),
        &stranger,
    );
    add("unknown key, payload names the device key".into(), &token, with_jws(forged));
    let mut payload = valid.payload.clone();
    payload.key_id = key_id(&other.key.verifying_key());
    add(
        "another device's key, this device's ids".into(),
        &token,
        body_of(&sign_outcome(payload, &other.key).unwrap()),
    );
    add("another device's outcome, this device's token".into(), &token, body_of(&other.sign("R-1", 1)));
    add("this device's outcome, another device's token".into(), &other.token, body_of(&valid));
    let unknown_kid = "A".repeat(43);
    let header = format!(r#"{{"alg":"EdDSA","kid":"{unknown_kid}","typ":"{JWS_TYP}"}}"#);
    add(
        "unknown kid, original signature".into(),
        &token,
        with_jws(format!("{}..{signature_b64}", b64(header))),
    );

    // 7. Replays: the valid JWS for another referral version, another referral, another id.
    let earlier = device.sign_payload(device.payload("R-2", 1, outcome(&photo)));
    assert_eq!(test.hub.update_referral(&replayed_referral).unwrap(), 2);
    let mut bumped = earlier.clone();
    bumped.payload.referral_version = 2;
    add("replay for the new referral version".into(), &token, body_of(&bumped));
    add("replay of the old version as signed".into(), &token, body_of(&earlier));
    let mut elsewhere = valid.clone();
    elsewhere.payload.referral_id = "R-2".into();
    add("replay for another referral".into(), &token, body_of(&elsewhere));
    let mut renamed = valid.clone();
    renamed.payload.outcome_id = uuid::Uuid::new_v4().to_string();
    add("replay under a new outcome id".into(), &token, body_of(&renamed));

    // 8. A retired key after rotation, and a revoked device (its token, and another's).
    let retired_key = rotated.key.clone();
    let next = SigningKey::generate(&mut rand::rngs::OsRng);
    let request = sign_key_rotation(&rotated.device_id, &next.verifying_key(), &rotated.key).unwrap();
    assert!(test.post_json("/v1/device/keys", Some(&rotated.token), &request).await.status.is_success());
    rotated.key = next;
    let old = TestDevice { key: retired_key, ..rotated.clone_ids() };
    add("retired key after rotation".into(), &rotated.token, body_of(&old.sign("R-1", 1)));
    test.hub.revoke_device(&revoked.device_id).unwrap();
    let after_revocation = revoked.sign("R-1", 1);
    add("revoked device, its own token".into(), &revoked.token, body_of(&after_revocation));
    add("revoked device, another device's token".into(), &other.token, body_of(&after_revocation));

    // Every attempt, over a real connection.
    let served = test.serve(ServerConfig::default()).await;
    let client = reqwest::Client::new();
    let total = mutations.len();
    let mut rejected = 0;
    let mut by_answer: BTreeMap<String, usize> = BTreeMap::new();
    for mutation in &mutations {
        let response = client
            .post(served.url("/v1/outcomes"))
            .bearer_auth(&mutation.token)
            .header("content-type", "application/json")
            .body(mutation.body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.bytes().await.unwrap();
        assert!(
            !status.is_success(),
            "accepted: {}: {}",
            mutation.name,
            String::from_utf8_lossy(&mutation.body)
        );
        let code = serde_json::from_slice::<ApiError>(&body)
            .map(|error| serde_json::to_value(error.code).unwrap().as_str().unwrap().to_owned())
            .unwrap_or_else(|_| "no ApiError body".into());
        *by_answer.entry(format!("{} {code}", status.as_u16())).or_default() += 1;
        rejected += 1;
    }
    for referral_id in ["R-1", "R-2"] {
        assert!(
            test.hub.outcomes(referral_id).unwrap().is_empty(),
            "something was recorded for {referral_id}"
        );
    }
    // Straight to stderr, not through eprintln!, so the test harness shows it on success too.
    writeln!(std::io::stderr(), "{total} mutations, {rejected} rejected").unwrap();
    writeln!(std::io::stderr(), "answers: {by_answer:?}").unwrap();
    assert_eq!(rejected, total);
    assert!(total >= 500, "only {total} mutations");

    // The genuine outcome: accepted once, with a receipt that verifies against the hub's key.
    let reply =
        client.post(served.url("/v1/outcomes")).bearer_auth(&token).json(&valid).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    let receipt: OutcomeReceipt = reply.json().await.unwrap();
    verify_receipt_for(&valid, &receipt, &test.hub.hub_key().decode().unwrap()).unwrap();
    // Its members in another order are the same outcome (the signature covers the canonical
    // form): the original receipt again, not a second record.
    let mut members: Vec<(String, Value)> =
        serde_json::to_value(&valid.payload).unwrap().as_object().unwrap().clone().into_iter().collect();
    members.reverse();
    let reordered: String = members
        .iter()
        .map(|(name, value)| format!("{}:{}", serde_json::to_string(name).unwrap(), value))
        .collect::<Vec<_>>()
        .join(",");
    let reply = client
        .post(served.url("/v1/outcomes"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(raw_body(format!("{{{reordered}}}").as_bytes(), &valid.jws))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply.json::<OutcomeReceipt>().await.unwrap(),
        OutcomeReceipt { first_receipt: false, ..receipt }
    );
    assert_eq!(test.hub.outcomes("R-1").unwrap().len(), 1);
}
