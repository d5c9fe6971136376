//! What the client tells the harness, one JSON object per stdout line, flushed at once (Rust's
//! stdout is line-buffered). The harness uses the phase events as its signal for when to kill,
//! and keeps the last counters it saw from each process (a killed process says nothing more).

use serde::{Deserialize, Serialize};

/// Where the client is. Printed before the step starts, so a kill after it lands in the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Process started; opening the cache (key, migrations).
    Open,
    Enrol,
    Feed,
    Photos,
    Sign,
    Push,
    /// Nothing to do until a queued outcome's retry time.
    Wait,
}

impl Phase {
    pub const ALL: [Phase; 7] =
        [Phase::Open, Phase::Enrol, Phase::Feed, Phase::Photos, Phase::Sign, Phase::Push, Phase::Wait];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Open => "open",
            Phase::Enrol => "enrol",
            Phase::Feed => "feed",
            Phase::Photos => "photos",
            Phase::Sign => "sign",
            Phase::Push => "push",
            Phase::Wait => "wait",
        }
    }
}

/// Cumulative figures of one client process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCounters {
    /// From `Desk::counters()`: downloads that arrived complete but failed verification.
    pub photos_damaged: u64,
    /// Downloads resumed from a kept piece.
    pub photos_resumed: u64,
    pub bytes_resumed: u64,
    /// Photo attempts that failed for want of a connection or a busy service.
    pub transient_failures: u64,
    /// Photos verified and stored by this process.
    pub photos_stored: u64,
    /// Outcomes this process signed and journalled.
    pub outcomes_signed: u64,
    /// Sync steps (feed, photos, push) that failed with a transient error and were retried.
    pub steps_retried: u64,
    /// Sync steps that failed with anything else (a finding, unless the harness caused it).
    pub steps_failed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Phase {
        phase: Phase,
    },
    Counters {
        counters: ClientCounters,
    },
    /// A step failed; `kind` is the core's stable error kind.
    Error {
        phase: Phase,
        kind: String,
        message: String,
    },
    /// Everything signed, every photo stored, nothing queued: the process exits 0.
    Done {
        counters: ClientCounters,
    },
}

/// Exit code of the client when its one-time enrolment code was already spent (by an earlier
/// run killed after the hub accepted the enrolment but before the device recorded it).
pub const EXIT_ENROLMENT_REFUSED: i32 = 3;
