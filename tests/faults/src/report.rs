//! The run's figures: one struct, printed as a table and written as JSON
//! (`target/faults/report.json`). `violations()` decides the exit status.

use std::collections::BTreeMap;

use serde::Serialize;

/// Examples kept per kind of problem (the counts are complete; the text is for a person).
const EXAMPLES: usize = 5;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub mode: String,
    pub seed: u64,
    pub started_at: String,
    pub machine: String,
    pub wall_time_secs: f64,
    pub kill_section_secs: f64,

    /// Client runs started with a kill planned.
    pub kill_trials: u64,
    /// SIGKILLs that hit a running client.
    pub kills: u64,
    /// Trials where the client finished before its planned kill.
    pub trials_finished_before_kill: u64,
    /// Kills by the phase the client had last announced.
    pub kills_by_phase: BTreeMap<String, u64>,
    /// Separate clients (devices) used: each enrols afresh, so kills land in enrolment too.
    pub epochs: u64,
    pub epochs_with_network_faults: u64,
    /// Enrolment codes spent by a client killed after the hub enrolled it but before it
    /// recorded the enrolment; the harness issued a new code (see RELIABILITY.md).
    pub enrolment_codes_spent_by_kills: u64,
    pub referrals_created: u64,
    pub referrals_withdrawn: u64,
    pub checks_run: u64,
    pub photos_checked: u64,
    /// Kills after which the cache held kept pieces of unfinished photo downloads (which a
    /// later run resumes).
    pub kills_leaving_partial_downloads: u64,

    pub outcomes_queued: u64,
    pub outcomes_delivered: u64,
    pub outcomes_duplicated: u64,
    pub outcomes_lost: u64,
    /// Queued, then the GP practice withdrew the referral before it was delivered: kept in the
    /// outbox as a conflict, visible to the consultant (not lost).
    pub outcomes_kept_as_conflict: u64,
    /// Delivered outcomes the client was killed before journalling (never acknowledged).
    pub outcomes_delivered_unjournalled: u64,
    /// Pushes answered with the original receipt (`first_receipt: false`): the hub had stored
    /// the outcome but its answer was lost (kill or reset) and the repeat was recognised.
    pub repeat_pushes_recognised: u64,
    pub referrals_unanswered_at_end: u64,
    /// Outbox rows neither sent nor an expected conflict after the final run (queued,
    /// rejected, or a conflict the harness did not cause).
    pub outcomes_undelivered_at_end: u64,
    pub photos_missing_at_end: u64,

    pub corruptions_injected: CorruptionsInjected,
    pub corruptions_detected: CorruptionsDetected,
    /// In the unkilled runs that end each client's life: bit flips injected, damaged pieces
    /// kept from earlier (killed) runs, and photos the client refused as damaged. Refused must
    /// equal flips + damaged pieces: every corruption caught, nothing refused without cause. (A
    /// killed client may die before verifying a flipped photo, so killed runs cannot be
    /// compared this way.)
    pub flips_in_unkilled_runs: u64,
    pub damaged_pieces_before_unkilled_runs: u64,
    pub photos_refused_in_unkilled_runs: u64,
    pub network_faults_injected: BTreeMap<String, u64>,

    pub corrupt_photos_accepted: u64,
    pub integrity_failures: u64,
    pub bad_signatures: u64,
    pub bad_partial_downloads: u64,
    pub journalled_outcomes_missing_locally: u64,
    pub sent_outcomes_missing_on_hub: u64,
    pub hub_outcomes_unknown_locally: u64,
    pub client_failures: u64,
    pub client_timeouts: u64,

    pub disk_full: DiskFullReport,
    /// A deliberate fault the run was asked to plant (to show a check fails), if any.
    pub sabotage: Option<String>,
    /// One line per broken invariant, with examples.
    pub problems: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Serialize)]
pub struct CorruptionsInjected {
    pub flip: u64,
    pub truncate: u64,
    pub wrong_length: u64,
    pub total: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct CorruptionsDetected {
    /// Photos that arrived complete but failed verification and were refused.
    pub photos_damaged: u64,
    /// Photo downloads cut short or refused by a busy service, retried.
    pub transient_failures: u64,
    /// Downloads resumed from a kept piece.
    pub photos_resumed: u64,
    pub bytes_resumed: u64,
    pub total: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct DiskFullReport {
    /// "passed", "failed" or "skipped".
    pub status: String,
    pub reason: Option<String>,
    /// What each step saw, in order.
    pub steps: Vec<String>,
}

impl Report {
    /// Records a broken invariant (counted by the caller; examples kept here).
    pub fn problem(&mut self, kind: &str, example: String) {
        let examples = self.problems.entry(kind.to_owned()).or_default();
        if examples.len() < EXAMPLES {
            examples.push(example);
        }
    }

    /// Every broken invariant; empty means the run passed.
    pub fn violations(&self, kills_wanted: u64) -> Vec<String> {
        let mut broken = Vec::new();
        let mut zero = |name: &str, value: u64| {
            if value > 0 {
                broken.push(format!("{name} = {value} (must be 0)"));
            }
        };
        zero("outcomes_lost", self.outcomes_lost);
        zero("outcomes_duplicated", self.outcomes_duplicated);
        zero("corrupt_photos_accepted", self.corrupt_photos_accepted);
        zero("integrity_failures", self.integrity_failures);
        zero("bad_signatures", self.bad_signatures);
        zero("bad_partial_downloads", self.bad_partial_downloads);
        zero("journalled_outcomes_missing_locally", self.journalled_outcomes_missing_locally);
        zero("sent_outcomes_missing_on_hub", self.sent_outcomes_missing_on_hub);
        zero("hub_outcomes_unknown_locally", self.hub_outcomes_unknown_locally);
        zero("referrals_unanswered_at_end", self.referrals_unanswered_at_end);
        zero("outcomes_undelivered_at_end", self.outcomes_undelivered_at_end);
        zero("photos_missing_at_end", self.photos_missing_at_end);
        zero("client_failures", self.client_failures);
        zero("client_timeouts", self.client_timeouts);
        let expected_refusals = self.flips_in_unkilled_runs + self.damaged_pieces_before_unkilled_runs;
        if self.photos_refused_in_unkilled_runs != expected_refusals {
            broken.push(format!(
                "{} bit flips injected and {} damaged pieces kept in unkilled runs, but {} photos refused",
                self.flips_in_unkilled_runs,
                self.damaged_pieces_before_unkilled_runs,
                self.photos_refused_in_unkilled_runs
            ));
        }
        if self.kills < kills_wanted {
            broken.push(format!("only {} kills of the {kills_wanted} wanted", self.kills));
        }
        if self.disk_full.status == "failed" {
            broken.push("disk-full scenario failed".into());
        }
        broken
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |name: &str, value: String| rows.push((name.to_owned(), value));
        row("mode / seed", format!("{} / {}", self.mode, self.seed));
        row("kill trials / kills", format!("{} / {}", self.kill_trials, self.kills));
        let phases: Vec<String> = self.kills_by_phase.iter().map(|(p, n)| format!("{p} {n}")).collect();
        row("kills by phase", phases.join(", "));
        row(
            "clients (epochs) / with network faults",
            format!("{} / {}", self.epochs, self.epochs_with_network_faults),
        );
        row(
            "checks after kills / photos re-verified",
            format!("{} / {}", self.checks_run, self.photos_checked),
        );
        row(
            "kills after which a partial download was kept",
            self.kills_leaving_partial_downloads.to_string(),
        );
        row("outcomes queued (journalled)", self.outcomes_queued.to_string());
        row("  delivered exactly once", self.outcomes_delivered.to_string());
        row("  kept as conflict (GP withdrew first)", self.outcomes_kept_as_conflict.to_string());
        row("  duplicated", self.outcomes_duplicated.to_string());
        row("  lost", self.outcomes_lost.to_string());
        row("delivered, killed before journalling", self.outcomes_delivered_unjournalled.to_string());
        row("repeat pushes recognised by the hub", self.repeat_pushes_recognised.to_string());
        row(
            "corruptions injected (flip / truncate / wrong length)",
            format!(
                "{} ({} / {} / {})",
                self.corruptions_injected.total,
                self.corruptions_injected.flip,
                self.corruptions_injected.truncate,
                self.corruptions_injected.wrong_length
            ),
        );
        row(
            "detected (refused as damaged / failed transfers retried / resumed)",
            format!(
                "{} ({} / {} / {})",
                self.corruptions_detected.total,
                self.corruptions_detected.photos_damaged,
                self.corruptions_detected.transient_failures,
                self.corruptions_detected.photos_resumed
            ),
        );
        row(
            "unkilled runs: flips + damaged pieces / photos refused",
            format!(
                "{} + {} / {}",
                self.flips_in_unkilled_runs,
                self.damaged_pieces_before_unkilled_runs,
                self.photos_refused_in_unkilled_runs
            ),
        );
        row("corrupt photos accepted", self.corrupt_photos_accepted.to_string());
        row("integrity failures", self.integrity_failures.to_string());
        row(
            "bad signatures / bad partials",
            format!("{} / {}", self.bad_signatures, self.bad_partial_downloads),
        );
        row("enrolment codes spent by kills", self.enrolment_codes_spent_by_kills.to_string());
        let disk = match &self.disk_full.reason {
            Some(reason) => format!("{} ({reason})", self.disk_full.status),
            None => self.disk_full.status.clone(),
        };
        row("disk full (download, signing, recovery)", disk);
        row(
            "wall time",
            format!("{:.1} s (kill trials {:.1} s)", self.wall_time_secs, self.kill_section_secs),
        );
        let width = rows.iter().map(|(name, _)| name.chars().count()).max().unwrap_or(0);
        let mut out = format!("| {:<width$} | value |\n|{}|-------|\n", "figure", "-".repeat(width + 2));
        for (name, value) in rows {
            out.push_str(&format!("| {name:<width$} | {value} |\n"));
        }
        out
    }
}
