//! Logs never hold tokens, keys, patient names or NHS numbers. The whole flow (enrol, sync with
//! photos, open, view photos, draft, sign, send with its receipt, export) runs with every
//! `tracing` event at TRACE and every `log` record of the dependencies (reqwest, hyper,
//! rustls, ...) captured; then the capture is searched for every secret and identifier.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use dermdesk_core::secrets::{SecretStore as _, CACHE_KEY, DEVICE_SIGNING_KEY, DEVICE_TOKEN};
use dermdesk_protocol::{Outcome, OutcomeKind};

use crate::support::{TestDesk, TestHub};

/// Everything any thread of this test binary logged.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(Arc::clone(&buffer));
        // The most verbose: every level of every target, `log` records included (tracing-log).
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_target(true)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("the log scan installs the only global subscriber");
        buffer
    })
}

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// "9990000018" -> "999 000 0018", as clinicians write it.
fn spaced(nhs_number: &str) -> String {
    format!("{} {} {}", &nhs_number[..3], &nhs_number[3..6], &nhs_number[6..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_most_verbose_logs_hold_no_secret_and_no_patient() {
    let buffer = captured();
    tracing::info!(target: "log_scan", "capture started");
    let hub = TestHub::start().await;
    let desk = TestDesk::enrolled(&hub).await;
    desk.sync().await;
    let referral = &hub.set.referrals[0];
    let view = desk.desk.open_referral(&referral.id).unwrap();
    for photo in &referral.photos {
        for path in ["info.json", "preview.jpg", "thumb.jpg", "tiles/0/0_0.jpg"] {
            desk.desk.serve_photo(&format!("/{}/{path}", photo.content_id));
        }
    }
    let _ = desk.desk.worklist().unwrap();
    desk.desk.save_draft(&referral.id, &serde_json::json!({"plan": "draft"})).unwrap();
    let outcome = Outcome {
        kind: OutcomeKind::RequestMoreInformation,
        diagnosis: "Seborrhoeic keratosis".into(),
        plan: "Please send a dermoscopic photograph.".into(),
        governance_reason: Some("Synthetic test referral.".into()),
        ..Outcome::default_extras()
    };
    desk.desk.sign_outcome(&referral.id, view.referral.version, outcome).unwrap();
    desk.sync().await;
    let exports = tempfile::tempdir().unwrap();
    desk.desk.export_outcome_file(&referral.id, exports.path()).unwrap();
    // A failure path too: a wrong enrolment code is logged as a failure, not as the code.
    let other = tempfile::tempdir().unwrap();
    let stranger = dermdesk_core::Desk::open(
        dermdesk_core::DeskConfig { data_dir: other.path().join("desk"), device_name: "stranger".into() },
        Arc::new(dermdesk_core::secrets::MemorySecretStore::default()),
    )
    .unwrap();
    assert!(stranger.enrol(&hub.url, "WRONG-CODE-7Q4Z").await.is_err());

    // The secrets and identifiers to look for.
    let secrets = desk.secrets();
    let mut needles: Vec<(String, String)> = Vec::new();
    let token = String::from_utf8(secrets.get(DEVICE_TOKEN).unwrap().unwrap().to_vec()).unwrap();
    needles.push(("device token".into(), token));
    for (what, name) in [("cache key", CACHE_KEY), ("signing key", DEVICE_SIGNING_KEY)] {
        let key = secrets.get(name).unwrap().unwrap().to_vec();
        needles.push((format!("{what} (hex)"), hex::encode(&key)));
        needles.push((
            format!("{what} (base64url)"),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&key),
        ));
        needles.push((format!("{what} (base64)"), base64::engine::general_purpose::STANDARD.encode(&key)));
    }
    needles.push(("enrolment code".into(), hub.seed.enrolment_code.clone()));
    needles.push(("wrong enrolment code".into(), "WRONG-CODE-7Q4Z".into()));
    for referral in &hub.set.referrals {
        needles.push(("patient name".into(), referral.patient.name.clone()));
        needles.push(("NHS number".into(), referral.patient.nhs_number.clone()));
        needles.push(("NHS number with spaces".into(), spaced(&referral.patient.nhs_number)));
        needles.push(("date of birth".into(), referral.patient.date_of_birth.to_string()));
    }

    let log = String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned();
    let lines = log.lines().count();
    let mut targets: Vec<&str> = log
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2))
        .map(|target| target.trim_end_matches(':').split("::").next().unwrap_or(target))
        .collect();
    targets.sort_unstable();
    targets.dedup();
    let hits: Vec<String> = needles
        .iter()
        .filter(|(_, needle)| needle.len() >= 6 && log.contains(needle.as_str()))
        .map(|(what, _)| what.clone())
        .collect();
    if let Ok(dir) = std::env::var("DERMDESK_LOG_SCAN_KEEP") {
        std::fs::write(std::path::Path::new(&dir).join("log_scan.log"), &log).unwrap();
    }
    crate::write_figures(
        "log_scan.json",
        &serde_json::json!({
            "log_secret_hits": hits.len(),
            "hits": hits,
            "needles": needles.len(),
            "log_lines": lines,
            "log_bytes": log.len(),
            "targets": targets,
            "level": "TRACE, every target, log records included",
        }),
    );
    assert!(lines > 50, "the capture is too small to prove anything: {lines} lines\n{log}");
    assert!(hits.is_empty(), "found in the logs: {hits:?}");
}
