//! The kill trials: the client is started, killed with SIGKILL at a random point of a phase
//! chosen at random, checked, given more work, and started again — hundreds of times.
//!
//! The run is split into epochs, each a separate client (its own data directory, secret store,
//! journal, consultant and enrolment code), so kills also land in enrolment and no cache grows
//! without bound. Some epochs run with the hub's network faults on. Each epoch ends with one
//! unkilled run to completion, after which the journal is compared with the hub: every
//! outcome the client was told is queued must be there exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dermdesk_core::plan::OutboxState;
use dermdesk_faults::events::{ClientCounters, Phase, EXIT_ENROLMENT_REFUSED};
use dermdesk_faults::journal;
use dermdesk_hub::{FaultConfig, FaultCounts, HubError};
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};

use crate::check::{hub_outcomes, inspect, ClientFiles, Inspection};
use crate::client::{run_client, KillPlan, Run};
use crate::report::Report;
use crate::sabotage::{self, Sabotage};
use crate::world::World;

/// Longest a killed-or-not trial may run before the harness calls the client stuck.
const TRIAL_TIMEOUT: Duration = Duration::from_secs(90);
/// The unkilled run that ends an epoch may have retries to wait out under network faults.
const FINAL_RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// Referrals waiting when an epoch's client first starts.
const INITIAL_REFERRALS: usize = 3;
/// New referrals for the unkilled run that ends an epoch (more under network faults).
const FINAL_REFERRALS: usize = 2;
const FINAL_REFERRALS_FAULTED: usize = 10;

#[derive(Debug, Clone)]
pub struct KillSettings {
    /// Kills wanted in the whole run.
    pub kills: u64,
    pub kills_per_epoch: u64,
    /// Every `fault_every`-th epoch runs with `faults` on (0: never).
    pub fault_every: u64,
    pub faults: FaultConfig,
    pub seed: u64,
    pub client_exe: PathBuf,
    pub work_dir: PathBuf,
    pub sabotage: Option<Sabotage>,
}

/// The longest random delay after the client announces a phase before it is killed, from the
/// phases' measured durations on loopback in a debug build (see a client's `trials.log`): the
/// cache opens in 2-5 ms, enrolment takes 5-8 ms, a feed pull 5-10 ms, photos 10-100 ms (more
/// with a large photo), signing 4-30 ms, a push 5-30 ms. So the kill lands anywhere inside the
/// phase, and sometimes in the next one.
fn max_kill_delay(phase: Phase) -> Duration {
    Duration::from_micros(match phase {
        Phase::Open => 5_000,
        Phase::Enrol => 8_000,
        Phase::Feed => 10_000,
        Phase::Photos => 80_000,
        Phase::Sign => 20_000,
        Phase::Push => 30_000,
        Phase::Wait => 1_000_000,
    })
}

fn choose_kill(rng: &mut StdRng, enrolled: bool) -> KillPlan {
    let phase = if !enrolled && rng.gen_bool(0.8) {
        Phase::Enrol
    } else {
        let weighted =
            [(Phase::Open, 1), (Phase::Feed, 2), (Phase::Photos, 3), (Phase::Sign, 3), (Phase::Push, 2)];
        weighted.choose_weighted(rng, |(_, weight)| *weight).expect("weights are positive").0
    };
    let max = max_kill_delay(phase).as_micros() as u64;
    KillPlan { phase, delay: Duration::from_micros(rng.gen_range(0..=max)) }
}

/// One client's life.
struct Epoch {
    index: u64,
    data_dir: PathBuf,
    secrets: PathBuf,
    journal: PathBuf,
    stderr_log: PathBuf,
    consultant_id: String,
    code: String,
    /// Every referral created for this client's consultant.
    referrals: Vec<String>,
    withdrawn: BTreeSet<String>,
    faulted: bool,
    enrolled: bool,
    /// Referrals with an outcome queued but not yet sent, as of the last inspection.
    queued: Vec<String>,
}

impl Epoch {
    fn new(world: &World, work_dir: &Path, index: u64, faulted: bool) -> Result<Epoch, String> {
        let dir = work_dir.join(format!("client-{index:02}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let consultant = world.new_consultant(&format!("Dr Fault Harness {index} (synthetic)"))?;
        Ok(Epoch {
            index,
            data_dir: dir.join("desk"),
            secrets: dir.join("secrets"),
            journal: dir.join("journal"),
            stderr_log: dir.join("client.stderr"),
            code: world.enrolment_code(&consultant.id)?,
            consultant_id: consultant.id,
            referrals: Vec::new(),
            withdrawn: BTreeSet::new(),
            faulted,
            enrolled: false,
            queued: Vec::new(),
        })
    }

    /// One line in the client's trial log (kept with its files, for a person reading a failure).
    fn log(&self, line: &str) {
        let log = self.stderr_log.with_file_name("trials.log");
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = std::io::Write::write_all(&mut file, format!("{line}\n").as_bytes());
        }
    }

    fn files<'a>(&'a self, hub_photo_dir: &'a Path) -> ClientFiles<'a> {
        ClientFiles {
            data_dir: &self.data_dir,
            secrets: &self.secrets,
            journal: &self.journal,
            hub_photo_dir,
        }
    }
}

/// The last line a client wrote to its stderr log (what it said as it failed).
fn last_line(log: &Path) -> String {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|text| text.lines().rev().find(|line| !line.trim().is_empty()).map(str::to_owned))
        .unwrap_or_default()
}

/// Distinct problems seen, by kind (a corrupt photo seen by ten checks is one corrupt photo).
#[derive(Default)]
struct Seen(BTreeMap<&'static str, BTreeSet<String>>);

impl Seen {
    fn add(&mut self, report: &mut Report, kind: &'static str, epoch: u64, item: String) {
        let item = format!("client {epoch}: {item}");
        if self.0.entry(kind).or_default().insert(item.clone()) {
            report.problem(kind, item);
        }
    }

    fn count(&self, kind: &str) -> u64 {
        self.0.get(kind).map_or(0, |items| items.len() as u64)
    }
}

pub struct Trials<'a> {
    world: &'a mut World,
    settings: KillSettings,
    rng: StdRng,
    seen: Seen,
    hub_photo_dir: PathBuf,
    client_counters: ClientCounters,
}

impl<'a> Trials<'a> {
    pub fn new(world: &'a mut World, settings: KillSettings) -> Trials<'a> {
        let hub_photo_dir = settings.work_dir.join("hub-photos");
        Trials {
            rng: StdRng::seed_from_u64(settings.seed),
            world,
            settings,
            seen: Seen::default(),
            hub_photo_dir,
            client_counters: ClientCounters::default(),
        }
    }

    pub async fn run(mut self, report: &mut Report) -> Result<(), String> {
        let fault_counts_before = self.world.faults.counts();
        let mut epoch_index = 0;
        while report.kills < self.settings.kills {
            let every = self.settings.fault_every;
            let faulted = every > 0 && epoch_index % every == every - 1;
            let mut epoch = Epoch::new(self.world, &self.settings.work_dir, epoch_index, faulted)?;
            report.epochs += 1;
            if faulted {
                report.epochs_with_network_faults += 1;
                let seed = Some(self.settings.seed.wrapping_add(epoch_index));
                self.world.faults.set(FaultConfig { seed, ..self.settings.faults.clone() });
            }
            for position in 0..INITIAL_REFERRALS {
                self.add_referral(&mut epoch, report, position == 0)?;
            }
            let wanted = self.settings.kills_per_epoch.min(self.settings.kills - report.kills);
            let mut kills = 0;
            let mut trial = 0;
            // A trial whose client finishes before its kill is not a kill; three times the
            // wanted number of trials is far more than ever needed.
            while kills < wanted && trial < wanted * 3 {
                trial += 1;
                self.add_work(&mut epoch, report)?;
                let plan = choose_kill(&mut self.rng, epoch.enrolled);
                let run = self.run_client(&epoch, Some(plan), TRIAL_TIMEOUT).await?;
                report.kill_trials += 1;
                let phases: Vec<String> = run
                    .phases
                    .iter()
                    .map(|(phase, at)| format!("{}@{}ms", phase.as_str(), at.as_millis()))
                    .collect();
                epoch.log(&format!(
                    "trial {trial}: kill {:?} +{:?} -> killed {} in {:?} after {:?} (exit {:?}, done {}) [{}]",
                    plan.phase,
                    plan.delay,
                    run.killed,
                    run.last_phase,
                    run.elapsed,
                    run.exit_code,
                    run.done,
                    phases.join(" ")
                ));
                if run.killed {
                    kills += 1;
                    report.kills += 1;
                    let phase = run.last_phase.map_or("before any output", Phase::as_str);
                    *report.kills_by_phase.entry(phase.to_owned()).or_default() += 1;
                } else if run.done {
                    report.trials_finished_before_kill += 1;
                }
                self.after_run(&mut epoch, &run, report, &format!("trial {trial}"))?;
                if let Some(sabotage) = self.settings.sabotage.filter(|_| epoch_index == 0 && trial >= 2) {
                    let files = epoch.files(&self.hub_photo_dir);
                    if let Some(done) =
                        sabotage::plant(sabotage, &files, &epoch.referrals, &self.world.url).await?
                    {
                        eprintln!("sabotage planted: {done}");
                        report.sabotage = Some(done);
                        self.settings.sabotage = None;
                    }
                }
                let inspection = self.inspect(&epoch, !epoch.faulted).await?;
                if run.killed && inspection.partials > 0 {
                    report.kills_leaving_partial_downloads += 1;
                }
                self.absorb(&mut epoch, &inspection, report);
                if trial % 10 == 0 {
                    eprintln!(
                        "client {epoch_index}: {trial} trials, {kills} kills (run total {})",
                        report.kills
                    );
                }
            }
            self.finish_epoch(&mut epoch, report).await?;
            if kills == 0 {
                return Err(format!(
                    "no kill landed in {trial} trials: the kill delays no longer fit the client"
                ));
            }
            epoch_index += 1;
        }
        let counts = self.world.faults.counts();
        self.count_faults(&fault_counts_before, &counts, report);
        self.settle(report);
        Ok(())
    }

    async fn run_client(
        &mut self,
        epoch: &Epoch,
        kill: Option<KillPlan>,
        timeout: Duration,
    ) -> Result<Run, String> {
        let files = epoch.files(&self.hub_photo_dir);
        let run = run_client(
            &self.settings.client_exe,
            &files,
            &self.world.url,
            &epoch.code,
            kill,
            timeout,
            &epoch.stderr_log,
        )
        .await?;
        // Each process counts from zero; a killed one's last report is what it got to.
        let c = &mut self.client_counters;
        c.photos_damaged += run.counters.photos_damaged;
        c.photos_resumed += run.counters.photos_resumed;
        c.bytes_resumed += run.counters.bytes_resumed;
        c.transient_failures += run.counters.transient_failures;
        c.photos_stored += run.counters.photos_stored;
        c.outcomes_signed += run.counters.outcomes_signed;
        c.steps_retried += run.counters.steps_retried;
        c.steps_failed += run.counters.steps_failed;
        Ok(run)
    }

    /// Handles how a client process ended.
    fn after_run(
        &mut self,
        epoch: &mut Epoch,
        run: &Run,
        report: &mut Report,
        what: &str,
    ) -> Result<(), String> {
        if run.timed_out {
            report.client_timeouts += 1;
            let last = run.errors.last().map(|(phase, kind, message)| format!("{phase:?} {kind}: {message}"));
            self.seen.add(report, "client stuck", epoch.index, format!("{what}: {last:?}"));
        }
        match run.exit_code {
            Some(EXIT_ENROLMENT_REFUSED) => {
                // An earlier run was killed after the hub enrolled the device but before the
                // device recorded it: the one-time code is spent. Like a consultant, ask for
                // another.
                report.enrolment_codes_spent_by_kills += 1;
                epoch.code = self.world.enrolment_code(&epoch.consultant_id)?;
            }
            Some(0) | None => {}
            Some(code) => {
                report.client_failures += 1;
                let last =
                    run.errors.last().map(|(phase, kind, message)| format!("{phase:?} {kind}: {message}"));
                self.seen.add(
                    report,
                    "client failed",
                    epoch.index,
                    format!(
                        "{what}: exit {code}, last error {last:?}, said {:?}",
                        last_line(&epoch.stderr_log)
                    ),
                );
            }
        }
        for (phase, kind, message) in &run.errors {
            if !matches!(kind.as_str(), "offline" | "busy") {
                self.seen.add(
                    report,
                    "client error (not transient)",
                    epoch.index,
                    format!("{phase:?} {kind}: {message}"),
                );
            }
        }
        Ok(())
    }

    async fn inspect(&self, epoch: &Epoch, check_partials: bool) -> Result<Inspection, String> {
        let (data_dir, secrets, journal, photo_dir) = (
            epoch.data_dir.clone(),
            epoch.secrets.clone(),
            epoch.journal.clone(),
            self.hub_photo_dir.clone(),
        );
        let (hub, referrals) = (self.world.hub.clone(), epoch.referrals.clone());
        tokio::task::spawn_blocking(move || {
            let files = ClientFiles {
                data_dir: &data_dir,
                secrets: &secrets,
                journal: &journal,
                hub_photo_dir: &photo_dir,
            };
            inspect(&files, &hub, &referrals, check_partials)
        })
        .await
        .map_err(|e| format!("inspection task: {e}"))
    }

    fn absorb(&mut self, epoch: &mut Epoch, inspection: &Inspection, report: &mut Report) {
        report.checks_run += 1;
        report.photos_checked += inspection.photos_checked as u64;
        epoch.enrolled = inspection.enrolled;
        epoch.queued = inspection
            .outbox
            .values()
            .filter(|row| row.state == OutboxState::Queued)
            .map(|row| row.referral_id.clone())
            .collect();
        let lists: [(&'static str, &Vec<String>); 8] = [
            ("integrity", &inspection.integrity_failures),
            ("corrupt photo accepted", &inspection.corrupt_photos),
            ("bad partial download", &inspection.bad_partials),
            ("bad signature", &inspection.bad_signatures),
            ("journalled outcome missing locally", &inspection.journal_missing),
            ("referral signed twice", &inspection.double_signed),
            ("sent outcome missing on hub", &inspection.sent_not_on_hub),
            ("hub outcome unknown locally", &inspection.hub_unknown_locally),
        ];
        for (kind, items) in lists {
            for item in items {
                self.seen.add(report, kind, epoch.index, item.clone());
            }
        }
    }

    fn add_referral(&mut self, epoch: &mut Epoch, report: &mut Report, large: bool) -> Result<(), String> {
        let referral = self.world.add_referral(&mut self.rng, &epoch.consultant_id, large)?;
        epoch.referrals.push(referral.id);
        report.referrals_created += 1;
        Ok(())
    }

    /// Between runs, as GP practices do: new referrals arrive, and now and then one is
    /// withdrawn — preferably one whose outcome is queued but not yet delivered, the case
    /// where the consultant's signed work must be kept and shown as a conflict.
    fn add_work(&mut self, epoch: &mut Epoch, report: &mut Report) -> Result<(), String> {
        for _ in 0..self.rng.gen_range(1..=2) {
            let large = self.rng.gen_bool(0.25);
            self.add_referral(epoch, report, large)?;
        }
        if self.rng.gen_bool(0.2) {
            let candidates: Vec<&String> = if !epoch.queued.is_empty() && self.rng.gen_bool(0.6) {
                epoch.queued.iter().collect()
            } else {
                epoch.referrals.iter().filter(|id| !epoch.withdrawn.contains(*id)).collect()
            };
            if let Some(referral_id) = candidates.choose(&mut self.rng).map(|id| (*id).clone()) {
                match self.world.hub.withdraw_referral(&referral_id) {
                    Ok(()) => {
                        epoch.withdrawn.insert(referral_id);
                        report.referrals_withdrawn += 1;
                    }
                    // Already answered: the GP practice cannot withdraw it any more.
                    Err(HubError::AlreadyDecided(_)) => {}
                    Err(error) => return Err(format!("withdrawing {referral_id}: {error}")),
                }
            }
        }
        Ok(())
    }

    /// Ends an epoch: more work, one run to completion without a kill, then the accounting of
    /// every promise against the hub.
    async fn finish_epoch(&mut self, epoch: &mut Epoch, report: &mut Report) -> Result<(), String> {
        // Enough photos that injected bit flips are likely to hit some in this unkilled run.
        let referrals = if epoch.faulted { FINAL_REFERRALS_FAULTED } else { FINAL_REFERRALS };
        for position in 0..referrals {
            self.add_referral(epoch, report, position == 0)?;
        }
        // A kept piece with a flipped byte (kept before a kill, under faults) is refused once
        // when its download completes: expected damage that no flip in this run caused.
        let damaged_before = self.inspect(epoch, true).await?.bad_partials.len() as u64;
        if epoch.faulted {
            // A burst of corruption, so this exact check has flips to count.
            let seed = Some(self.settings.seed.wrapping_add(1000 + epoch.index));
            self.world.faults.set(FaultConfig {
                seed,
                flip: 0.2,
                truncate: 0.1,
                wrong_length: 0.05,
                ..self.settings.faults.clone()
            });
        }
        let before = self.world.faults.counts();
        let mut run = self.run_client(epoch, None, FINAL_RUN_TIMEOUT).await?;
        if run.exit_code == Some(EXIT_ENROLMENT_REFUSED) {
            self.after_run(epoch, &run, report, "final run")?;
            run = self.run_client(epoch, None, FINAL_RUN_TIMEOUT).await?;
        }
        let after = self.world.faults.counts();
        self.after_run(epoch, &run, report, "final run")?;
        if !run.done {
            report.client_failures += 1;
            self.seen.add(
                report,
                "client failed",
                epoch.index,
                "the final run did not finish its work".into(),
            );
        }
        // Every flipped photo must be refused: exactly one refusal per flip, plus one per
        // damaged piece kept from before.
        report.flips_in_unkilled_runs += after.flip - before.flip;
        report.damaged_pieces_before_unkilled_runs += damaged_before;
        report.photos_refused_in_unkilled_runs += run.counters.photos_damaged;
        if epoch.faulted {
            self.world.faults.set(FaultConfig::default());
        }

        let inspection = self.inspect(epoch, !epoch.faulted).await?;
        self.absorb(epoch, &inspection, report);
        self.account(epoch, &inspection, report)
    }

    /// Compares the journal (what the user was told is queued) with the hub.
    fn account(&mut self, epoch: &Epoch, inspection: &Inspection, report: &mut Report) -> Result<(), String> {
        let (entries, _torn) = journal::read(&epoch.journal).map_err(|e| format!("journal: {e}"))?;
        let on_hub = hub_outcomes(&self.world.hub, &epoch.referrals)?;
        let journalled: BTreeSet<&str> = entries.iter().map(|e| e.outcome_id.as_str()).collect();
        let mut signed_per_referral: BTreeMap<&str, u64> = BTreeMap::new();
        for entry in &entries {
            report.outcomes_queued += 1;
            *signed_per_referral.entry(entry.referral_id.as_str()).or_default() += 1;
            let copies = on_hub
                .get(&entry.referral_id)
                .map_or(0, |outcomes| outcomes.iter().filter(|o| o.outcome_id == entry.outcome_id).count());
            let kept_as_conflict = inspection
                .outbox
                .get(&entry.outcome_id)
                .is_some_and(|row| row.state == OutboxState::Conflict)
                && epoch.withdrawn.contains(&entry.referral_id);
            match copies {
                1 => report.outcomes_delivered += 1,
                0 if kept_as_conflict => report.outcomes_kept_as_conflict += 1,
                0 => {
                    let state = inspection.outbox.get(&entry.outcome_id).map(|row| row.state);
                    self.seen.add(
                        report,
                        "outcome lost",
                        epoch.index,
                        format!("{} for {} (cache: {state:?})", entry.outcome_id, entry.referral_id),
                    );
                }
                n => self.seen.add(
                    report,
                    "outcome duplicated",
                    epoch.index,
                    format!("{} on the hub {n} times", entry.outcome_id),
                ),
            }
        }
        for (referral_id, count) in signed_per_referral.into_iter().filter(|(_, n)| *n > 1) {
            self.seen.add(
                report,
                "outcome duplicated",
                epoch.index,
                format!("{referral_id} journalled {count} times"),
            );
        }
        for (referral_id, outcomes) in &on_hub {
            if outcomes.len() > 1 {
                self.seen.add(
                    report,
                    "outcome duplicated",
                    epoch.index,
                    format!("{referral_id} has {} outcomes on the hub", outcomes.len()),
                );
            }
            if outcomes.is_empty() && !epoch.withdrawn.contains(referral_id) {
                self.seen.add(report, "referral unanswered at end", epoch.index, referral_id.clone());
            }
            for outcome in outcomes.iter().filter(|o| !journalled.contains(o.outcome_id.as_str())) {
                // Killed between sign_outcome's Ok and the journal append: never shown to the
                // user, delivered anyway. Allowed (it is in the cache; checked above).
                let _ = outcome;
                report.outcomes_delivered_unjournalled += 1;
            }
        }
        for row in inspection.outbox.values() {
            if row.receipt.as_ref().is_some_and(|receipt| !receipt.first_receipt) {
                report.repeat_pushes_recognised += 1;
            }
            let expected_conflict =
                row.state == OutboxState::Conflict && epoch.withdrawn.contains(&row.referral_id);
            if !matches!(row.state, OutboxState::Sent) && !expected_conflict {
                self.seen.add(
                    report,
                    "outcome not delivered at end",
                    epoch.index,
                    format!("{} is {:?}: {:?}", row.outcome_id, row.state, row.problem),
                );
            }
        }
        if inspection.missing_photos > 0 {
            self.seen.add(
                report,
                "photos missing at end",
                epoch.index,
                format!("{} photos never stored", inspection.missing_photos),
            );
        }
        Ok(())
    }

    fn count_faults(&self, before: &FaultCounts, after: &FaultCounts, report: &mut Report) {
        let injected = &mut report.corruptions_injected;
        injected.flip = after.flip - before.flip;
        injected.truncate = after.truncate - before.truncate;
        injected.wrong_length = after.wrong_length - before.wrong_length;
        injected.total = injected.flip + injected.truncate + injected.wrong_length;
        let faults = [
            ("error_5xx", after.error_5xx - before.error_5xx),
            ("too_many_requests", after.too_many_requests - before.too_many_requests),
            ("latency", after.latency - before.latency),
            ("timeout", after.timeout - before.timeout),
            ("reset_before_handler", after.reset_before_handler - before.reset_before_handler),
            ("reset_after_handler", after.reset_after_handler - before.reset_after_handler),
        ];
        report.network_faults_injected = faults.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let c = &self.client_counters;
        let detected = &mut report.corruptions_detected;
        detected.photos_damaged = c.photos_damaged;
        detected.transient_failures = c.transient_failures;
        detected.photos_resumed = c.photos_resumed;
        detected.bytes_resumed = c.bytes_resumed;
        detected.total = c.photos_damaged + c.transient_failures;
    }

    /// Turns the distinct problems into the report's counts.
    fn settle(&self, report: &mut Report) {
        let seen = &self.seen;
        report.integrity_failures = seen.count("integrity");
        report.corrupt_photos_accepted = seen.count("corrupt photo accepted");
        report.bad_partial_downloads = seen.count("bad partial download");
        report.bad_signatures = seen.count("bad signature");
        report.journalled_outcomes_missing_locally = seen.count("journalled outcome missing locally");
        report.sent_outcomes_missing_on_hub = seen.count("sent outcome missing on hub");
        report.hub_outcomes_unknown_locally = seen.count("hub outcome unknown locally");
        report.outcomes_lost = seen.count("outcome lost");
        report.outcomes_duplicated = seen.count("outcome duplicated") + seen.count("referral signed twice");
        report.referrals_unanswered_at_end = seen.count("referral unanswered at end");
        report.photos_missing_at_end = seen.count("photos missing at end");
        report.outcomes_undelivered_at_end = seen.count("outcome not delivered at end");
    }
}
