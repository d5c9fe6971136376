//! `faults-client`: the real Derm Desk sync client, as a process the fault harness can kill.
//!
//! It drives the same `Desk` methods the desktop app's engine does — enrol, pull the feed,
//! fetch photos, sign, push the outbox — with a file-backed secret store instead of the OS
//! keychain (see `secrets.rs` for why). It signs every referral it has not answered, journals
//! each outcome the moment `sign_outcome` returns Ok (that is when the consultant sees
//! "queued"), and exits 0 once every referral is answered, every photo is stored and nothing
//! is waiting to be sent.
//!
//! Usage: `faults-client --data DIR --hub URL --code CODE --secrets FILE --journal FILE`

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use dermdesk_core::views::ReferralStatus;
use dermdesk_core::{CoreError, Desk, DeskConfig};
use dermdesk_faults::events::{ClientCounters, Event, Phase, EXIT_ENROLMENT_REFUSED};
use dermdesk_faults::journal;
use dermdesk_faults::secrets::FileSecretStore;
use dermdesk_protocol::{ErrorCode, Outcome, OutcomeKind};

/// Photo downloads at the same time, as the app's engine does by default.
const PHOTO_CONCURRENCY: usize = 3;
/// Consecutive failed rounds after which the client gives up (and the harness reports it).
const MAX_FAILED_ROUNDS: u32 = 200;
/// Pause after a transient failure (the service busy or unreachable): a retry backoff.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Longest wait for a queued outcome's retry time (it is re-read after waking).
const MAX_WAIT: Duration = Duration::from_secs(5);

struct Args {
    data: PathBuf,
    hub: String,
    code: String,
    secrets: PathBuf,
    journal: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut data, mut hub, mut code, mut secrets, mut journal) = (None, None, None, None, None);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--data" => data = Some(PathBuf::from(value)),
            "--hub" => hub = Some(value),
            "--code" => code = Some(value),
            "--secrets" => secrets = Some(PathBuf::from(value)),
            "--journal" => journal = Some(PathBuf::from(value)),
            other => return Err(format!("unknown option {other}")),
        }
    }
    let missing = |name: &str| format!("{name} is required");
    Ok(Args {
        data: data.ok_or_else(|| missing("--data"))?,
        hub: hub.ok_or_else(|| missing("--hub"))?,
        code: code.ok_or_else(|| missing("--code"))?,
        secrets: secrets.ok_or_else(|| missing("--secrets"))?,
        journal: journal.ok_or_else(|| missing("--journal"))?,
    })
}

fn emit(event: &Event) {
    // One line per event; stdout is line-buffered, so the harness sees it at once.
    println!("{}", serde_json::to_string(event).expect("events serialise"));
}

fn phase(phase: Phase) {
    emit(&Event::Phase { phase });
}

/// The outcome the harness's consultant signs: valid, synthetic, the same every time.
fn harness_outcome() -> Outcome {
    Outcome {
        // Allowed by every governance rule (no consent, two-week wait, suspected cancer),
        // so it can answer any synthetic referral.
        kind: OutcomeKind::RequestMoreInformation,
        appointment_urgency: None,
        diagnosis: "Seborrhoeic keratosis (synthetic fault-harness case)".into(),
        plan: "Benign. Reassure; no treatment needed. Signed by the fault harness.".into(),
        governance_reason: Some("Synthetic test referral: answered by request whatever its urgency.".into()),
        ..Outcome::default_extras()
    }
}

struct Client {
    desk: Arc<Desk>,
    journal: PathBuf,
    photos_stored: u64,
    outcomes_signed: u64,
    steps_retried: u64,
    steps_failed: u64,
}

impl Client {
    fn counters(&self) -> ClientCounters {
        let counters = self.desk.counters();
        ClientCounters {
            photos_damaged: counters.photos_damaged.load(Relaxed),
            photos_resumed: counters.photos_resumed.load(Relaxed),
            bytes_resumed: counters.bytes_resumed.load(Relaxed),
            transient_failures: counters.transient_failures.load(Relaxed),
            photos_stored: self.photos_stored,
            outcomes_signed: self.outcomes_signed,
            steps_retried: self.steps_retried,
            steps_failed: self.steps_failed,
        }
    }

    fn report_counters(&self) {
        emit(&Event::Counters { counters: self.counters() });
    }

    /// Records a failed step; true if it was transient (worth a short pause and a retry).
    fn failed(&mut self, phase: Phase, error: &CoreError) -> bool {
        let transient = error.is_transient();
        if transient {
            self.steps_retried += 1;
        } else {
            self.steps_failed += 1;
        }
        let kind = serde_json::to_value(error.kind()).ok().and_then(|v| v.as_str().map(str::to_owned));
        emit(&Event::Error { phase, kind: kind.unwrap_or_default(), message: error.to_string() });
        transient
    }

    /// One round: push, feed, photos, sign, push. Returns whether every step succeeded.
    async fn round(&mut self) -> Result<bool, CoreError> {
        let client = self.desk.client()?;
        let mut clean = true;

        // Outcomes first, as the engine does: they are the consultant's work.
        if self.desk.outbox_waiting()? > 0 {
            phase(Phase::Push);
            if let Err(error) = self.desk.push_outbox(&client).await {
                self.failed(Phase::Push, &error);
                clean = false;
            }
        }

        phase(Phase::Feed);
        if let Err(error) = self.desk.pull_feed(&client, |_| {}).await {
            self.failed(Phase::Feed, &error);
            clean = false;
        }

        let missing = self.desk.missing_photos()?;
        if !missing.is_empty() {
            phase(Phase::Photos);
            let desk = Arc::clone(&self.desk);
            let mut stored = 0;
            let before = self.counters();
            let result = desk
                .fetch_photos(&client, missing, PHOTO_CONCURRENCY, Arc::new(|_| {}), |_, outcome| {
                    if outcome.is_ok() {
                        stored += 1;
                    }
                    // After every photo, so a kill loses at most the photos in flight.
                    let counters = desk.counters();
                    emit(&Event::Counters {
                        counters: ClientCounters {
                            photos_damaged: counters.photos_damaged.load(Relaxed),
                            photos_resumed: counters.photos_resumed.load(Relaxed),
                            bytes_resumed: counters.bytes_resumed.load(Relaxed),
                            transient_failures: counters.transient_failures.load(Relaxed),
                            photos_stored: before.photos_stored + stored,
                            ..before
                        },
                    });
                })
                .await;
            self.photos_stored += stored;
            match result {
                Ok(summary) => clean &= summary.failed.is_empty(),
                Err(error) => {
                    self.failed(Phase::Photos, &error);
                    clean = false;
                }
            }
            self.report_counters();
        }

        let unanswered: Vec<String> = self
            .desk
            .worklist()?
            .into_iter()
            .filter(|row| matches!(row.status, ReferralStatus::New | ReferralStatus::Opened))
            .map(|row| row.referral_id)
            .collect();
        if !unanswered.is_empty() {
            phase(Phase::Sign);
            for referral_id in unanswered {
                // As the consultant does: open the referral, read it, sign that version.
                let version = self.desk.open_referral(&referral_id)?.referral.version;
                match self.desk.sign_outcome(&referral_id, version, harness_outcome()) {
                    Ok(queued) => {
                        // The consultant now sees "queued": from here on it is a promise.
                        journal::append(&self.journal, &queued.outcome_id, &referral_id)?;
                        self.outcomes_signed += 1;
                    }
                    // Withdrawn or changed under us by the feed: nothing was signed.
                    Err(CoreError::ReferralRemoved(_) | CoreError::ReferralChanged { .. }) => {}
                    Err(error) => return Err(error),
                }
            }
        }

        if self.desk.outbox_waiting()? > 0 {
            phase(Phase::Push);
            if let Err(error) = self.desk.push_outbox(&client).await {
                self.failed(Phase::Push, &error);
                clean = false;
            }
        }
        self.report_counters();
        Ok(clean)
    }

    /// Whether there is nothing left to do: every referral answered (or removed), every photo
    /// of every referral stored, nothing queued.
    fn finished(&self) -> Result<bool, CoreError> {
        let unanswered = self
            .desk
            .worklist()?
            .iter()
            .any(|row| matches!(row.status, ReferralStatus::New | ReferralStatus::Opened));
        Ok(!unanswered && self.desk.missing_photos()?.is_empty() && self.desk.outbox_waiting()? == 0)
    }
}

async fn run(args: Args) -> Result<ExitCode, CoreError> {
    phase(Phase::Open);
    let secrets = Arc::new(FileSecretStore::new(&args.secrets));
    let config = DeskConfig { data_dir: args.data.clone(), device_name: "fault harness client".into() };
    let desk = Arc::new(Desk::open(config, secrets)?);

    if desk.enrolment()?.is_none() {
        phase(Phase::Enrol);
        loop {
            match desk.enrol(&args.hub, &args.code).await {
                Ok(_) => break,
                Err(CoreError::Hub { code: ErrorCode::EnrolmentRefused, .. }) => {
                    return Ok(ExitCode::from(EXIT_ENROLMENT_REFUSED as u8))
                }
                Err(error) if error.is_transient() => tokio::time::sleep(RETRY_PAUSE).await,
                Err(error) => return Err(error),
            }
        }
    }

    let mut client = Client {
        desk,
        journal: args.journal,
        photos_stored: 0,
        outcomes_signed: 0,
        steps_retried: 0,
        steps_failed: 0,
    };
    let mut failed_rounds = 0;
    loop {
        let clean = client.round().await?;
        if clean && client.finished()? {
            emit(&Event::Done { counters: client.counters() });
            return Ok(ExitCode::SUCCESS);
        }
        if clean {
            failed_rounds = 0;
        } else {
            failed_rounds += 1;
            if failed_rounds >= MAX_FAILED_ROUNDS {
                eprintln!("faults-client: giving up after {failed_rounds} failed rounds");
                return Ok(ExitCode::FAILURE);
            }
        }
        // What is left is either a queued outcome waiting for its retry time (the outbox's own
        // schedule), or a step that failed for now.
        let until_retry = client
            .desk
            .next_outbox_attempt()?
            .map(|at| (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO));
        match until_retry {
            Some(wait) if clean && !wait.is_zero() => {
                phase(Phase::Wait);
                tokio::time::sleep(wait.min(MAX_WAIT)).await;
            }
            _ if clean => {}
            _ => tokio::time::sleep(RETRY_PAUSE).await,
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("faults-client: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("faults-client: {error}");
            ExitCode::FAILURE
        }
    }
}
