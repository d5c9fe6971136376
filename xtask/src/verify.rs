//! `cargo xtask verify FILE [--hub-key KEY] [--key-id ID]`: checks a signed outcome exported by
//! Derm Desk (format `dermdesk-signed-outcome/1`, docs/VERIFY.md) with nothing but the protocol
//! crate, and prints what was signed, by which key, and whether it verifies.
//!
//! - The consultant's signature is checked against the public key in the file.
//! - `--hub-key KEY` (the service's receipt key: base64url, or the JSON that
//!   `GET /v1/hub-key` and `dermdesk-hub admin hub-key` print, or a file holding either) also
//!   checks the service's receipt, if the file has one.
//! - `--key-id ID` insists on the consultant key the practice has on record.
//!
//! Exits non-zero if anything checked fails.

use dermdesk_protocol::export::{ExportVerification, ReceiptCheck};
use dermdesk_protocol::signature::decode_public_key;
use dermdesk_protocol::{PublicKeyInfo, SignedOutcomeExport};
use ed25519_dalek::VerifyingKey;

use crate::Result;

pub fn verify(args: &[String]) -> Result {
    let mut file = None;
    let mut hub_key = None;
    let mut key_id = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--hub-key" => hub_key = Some(rest.next().ok_or("--hub-key needs a KEY")?.clone()),
            "--key-id" => key_id = Some(rest.next().ok_or("--key-id needs an ID")?.clone()),
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            path if file.is_none() => file = Some(path.to_owned()),
            extra => return Err(format!("one FILE only (also got {extra})")),
        }
    }
    let file = file.ok_or("usage: cargo xtask verify FILE [--hub-key KEY] [--key-id ID]")?;
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?;
    let export = SignedOutcomeExport::parse(&text).map_err(|e| format!("{file}: {e}"))?;
    let hub_key = hub_key.as_deref().map(read_hub_key).transpose()?;
    let (shown, valid) = report(&export, hub_key.as_ref(), key_id.as_deref());
    println!("{file}\n{shown}");
    if valid {
        Ok(())
    } else {
        Err(format!("{file} does not verify"))
    }
}

/// The members of an outcome in the order of the consultant's form.
const OUTCOME_ORDER: &[&str] = &[
    "kind",
    "appointment_urgency",
    "diagnosis",
    "diagnosis_code",
    "certainty",
    "plan",
    "missing_views",
    "patient_information_url",
    "key_photos",
    "governance_reason",
];

fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The service's key as given: base64url, `{"key_id": .., "public_key": ..}`, or a file of either.
fn read_hub_key(given: &str) -> Result<VerifyingKey> {
    let text = match std::fs::read_to_string(given) {
        Ok(contents) => contents,
        Err(_) => given.to_owned(),
    };
    let text = text.trim();
    if text.starts_with('{') {
        let info: PublicKeyInfo =
            serde_json::from_str(text).map_err(|e| format!("--hub-key: not a published key ({e})"))?;
        info.decode().map_err(|e| format!("--hub-key: {e}"))
    } else {
        decode_public_key(text).map_err(|e| format!("--hub-key: {e}"))
    }
}

/// What the file says and what checks out, and whether everything checked passed.
fn report(
    export: &SignedOutcomeExport,
    hub_key: Option<&VerifyingKey>,
    expected_key_id: Option<&str>,
) -> (String, bool) {
    let payload = &export.payload;
    let checked: ExportVerification = export.verify(hub_key);
    let mut lines = vec![
        format!("  {:<24} {}", "format", export.format),
        format!("  {:<24} {}", "outcome id", payload.outcome_id),
        format!("  {:<24} {} (version {})", "referral", payload.referral_id, payload.referral_version),
        format!("  {:<24} {} on device {}", "consultant", payload.consultant_id, payload.device_id),
        format!("  {:<24} {}", "signed at", timestamp(payload.signed_at)),
    ];
    // Every member of the outcome, as signed: the form's order first, then any member this
    // verifier does not know yet (it is signed all the same).
    if let Ok(serde_json::Value::Object(mut members)) = serde_json::to_value(&payload.outcome) {
        let mut names: Vec<String> = OUTCOME_ORDER
            .iter()
            .map(|name| name.to_string())
            .filter(|name| members.contains_key(name))
            .collect();
        names.extend(members.keys().filter(|name| !OUTCOME_ORDER.contains(&name.as_str())).cloned());
        for name in names {
            let text = match members.remove(&name) {
                None | Some(serde_json::Value::Null) => continue,
                Some(serde_json::Value::String(text)) => text,
                Some(other) => other.to_string(),
            };
            let label = name.replace('_', " ");
            lines.push(format!("  {label:<24} {}", text.replace('\n', &format!("\n{:27}", ""))));
        }
    }
    lines.push(format!(
        "  {:<24} {} (Ed25519 public key {})",
        "signing key id", export.consultant_public_key.key_id, export.consultant_public_key.public_key
    ));
    if let Some(hash) = &checked.payload_sha256 {
        lines.push(format!("  {:<24} {hash}", "payload SHA-256"));
    }
    let mut valid = checked.is_valid();
    lines.push(match &checked.signature {
        Ok(()) => format!(
            "signature: VALID: the outcome above is exactly what key {} signed",
            export.consultant_public_key.key_id
        ),
        Err(error) => format!("signature: INVALID ({error})"),
    });
    if let Some(expected) = expected_key_id {
        if expected == export.consultant_public_key.key_id {
            lines.push("signing key: the one given with --key-id".to_owned());
        } else {
            lines.push(format!("signing key: NOT the one given with --key-id ({expected})"));
            valid = false;
        }
    }
    lines.push(match (&checked.receipt, &export.receipt) {
        (ReceiptCheck::Absent, _) => "receipt: none in the file (not delivered when exported)".to_owned(),
        (ReceiptCheck::NotChecked, _) => {
            "receipt: present, NOT CHECKED: give the service's key with --hub-key".to_owned()
        }
        (ReceiptCheck::Verified, Some(receipt)) => format!(
            "receipt: VALID: the service (key {}) received exactly this outcome at {}",
            receipt.hub_key_id,
            timestamp(receipt.received_at)
        ),
        (ReceiptCheck::Failed(error), _) => format!("receipt: INVALID ({error})"),
        (ReceiptCheck::Verified, None) => unreachable!("a verified receipt is in the file"),
    });
    (lines.join("\n"), valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example in tests/data (made by the integration test `write_example_export`): the
    /// format must keep verifying as the code changes.
    fn example() -> (SignedOutcomeExport, VerifyingKey) {
        let data = crate::root().join("tests").join("data");
        let text = std::fs::read_to_string(data.join("signed-outcome.example.json")).unwrap();
        let hub_key = read_hub_key(data.join("hub-key.example.json").to_str().unwrap()).unwrap();
        (SignedOutcomeExport::parse(&text).unwrap(), hub_key)
    }

    #[test]
    fn the_example_verifies_with_its_receipt() {
        let (export, hub_key) = example();
        let (text, valid) = report(&export, Some(&hub_key), Some(&export.consultant_public_key.key_id));
        assert!(valid, "{text}");
        assert!(text.contains("signature: VALID"), "{text}");
        assert!(text.contains("receipt: VALID"), "{text}");
        let (text, valid) = report(&export, None, None);
        assert!(valid && text.contains("NOT CHECKED"), "{text}");
    }

    #[test]
    fn a_changed_word_another_service_key_or_another_consultant_key_fails() {
        let (export, hub_key) = example();
        let mut changed = export.clone();
        changed.payload.outcome.plan.push_str(" Discharge.");
        let (text, valid) = report(&changed, None, None);
        assert!(!valid && text.contains("signature: INVALID"), "{text}");

        let stranger = decode_public_key("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        let (text, valid) = report(&export, Some(&stranger), None);
        assert!(!valid && text.contains("receipt: INVALID"), "{text}");

        let (text, valid) =
            report(&export, Some(&hub_key), Some("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"));
        assert!(!valid && text.contains("NOT the one given"), "{text}");
    }

    #[test]
    fn the_hub_key_is_read_in_every_published_form() {
        let raw = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let json = r#"{"key_id":"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k","public_key":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        assert_eq!(read_hub_key(raw).unwrap(), read_hub_key(json).unwrap());
        let lying = json.replace("kPrK", "xPrK");
        assert!(read_hub_key(&lying).is_err(), "a key id that is not the key's thumbprint");
        assert!(read_hub_key("not a key").is_err());
    }
}
