//! Running one `faults-client` process: start it, follow its events, kill it with SIGKILL a
//! random delay after it announces the phase chosen for this trial, and collect what it said.
//!
//! The kill is timed from the client's own phase event (a real signal, read from its stdout),
//! not from the spawn, so "kill during the photo download" means that.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use dermdesk_faults::events::{ClientCounters, Event, Phase};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::check::ClientFiles;

/// When to kill: `delay` after the client announces `phase` (never, if it does not).
#[derive(Debug, Clone, Copy)]
pub struct KillPlan {
    pub phase: Phase,
    pub delay: Duration,
}

/// What one client process did.
#[derive(Debug, Default, Clone)]
pub struct Run {
    /// The harness sent SIGKILL while the process was running.
    pub killed: bool,
    /// The last phase the process announced before it ended (the phase it was killed in).
    pub last_phase: Option<Phase>,
    /// Exit code when it ended by itself.
    pub exit_code: Option<i32>,
    /// It reported everything done (and exited 0).
    pub done: bool,
    /// It ran past its deadline and was killed for it.
    pub timed_out: bool,
    /// The last counters it reported.
    pub counters: ClientCounters,
    /// Errors it reported, as (phase, kind).
    pub errors: Vec<(Phase, String, String)>,
    pub elapsed: Duration,
    /// Each phase announced, with when (since the process started), for the trial log.
    pub phases: Vec<(Phase, Duration)>,
}

impl Run {
    fn absorb(&mut self, line: &str, started: Instant) {
        match serde_json::from_str::<Event>(line) {
            Ok(Event::Phase { phase }) => {
                self.last_phase = Some(phase);
                self.phases.push((phase, started.elapsed()));
            }
            Ok(Event::Counters { counters }) => self.counters = counters,
            Ok(Event::Error { phase, kind, message }) => self.errors.push((phase, kind, message)),
            Ok(Event::Done { counters }) => {
                self.counters = counters;
                self.done = true;
            }
            // Not ours (nothing else should print to stdout); keep it visible.
            Err(_) => eprintln!("faults-client said: {line}"),
        }
    }
}

pub async fn run_client(
    exe: &Path,
    files: &ClientFiles<'_>,
    hub_url: &str,
    code: &str,
    kill: Option<KillPlan>,
    timeout: Duration,
    stderr_log: &Path,
) -> Result<Run, String> {
    let started = Instant::now();
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stderr_log)
        .map_err(|e| format!("{}: {e}", stderr_log.display()))?;
    let mut child = tokio::process::Command::new(exe)
        .arg("--data")
        .arg(files.data_dir)
        .args(["--hub", hub_url, "--code", code])
        .arg("--secrets")
        .arg(files.secrets)
        .arg("--journal")
        .arg(files.journal)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", exe.display()))?;
    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut kill_at: Option<tokio::time::Instant> = None;
    let mut run = Run::default();
    let mut stdout_open = true;

    let status = loop {
        tokio::select! {
            line = lines.next_line(), if stdout_open => match line {
                Ok(Some(line)) => {
                    run.absorb(&line, started);
                    if let (Some(plan), None) = (kill, kill_at) {
                        if run.last_phase == Some(plan.phase) {
                            kill_at = Some(tokio::time::Instant::now() + plan.delay);
                        }
                    }
                }
                Ok(None) | Err(_) => stdout_open = false,
            },
            status = child.wait() => break status,
            () = tokio::time::sleep_until(kill_at.unwrap_or(deadline)), if kill_at.is_some() => {
                // Child::start_kill is SIGKILL on Unix: no handler, no flush, no destructor runs.
                run.killed = child.start_kill().is_ok();
                break child.wait().await;
            }
            () = tokio::time::sleep_until(deadline) => {
                run.timed_out = true;
                let _ = child.start_kill();
                break child.wait().await;
            }
        }
    }
    .map_err(|e| format!("waiting for the client: {e}"))?;

    // Whatever it printed before it died is still in the pipe: read it, so `last_phase` is the
    // phase it was really in.
    while let Ok(Some(line)) = lines.next_line().await {
        run.absorb(&line, started);
    }
    run.exit_code = status.code();
    if run.exit_code.is_some() {
        // It had already exited by itself when the signal was sent.
        run.killed = false;
    }
    run.elapsed = started.elapsed();
    Ok(run)
}
