//! The desk's life cycle, pure: one [`Stage`] at a time, changed only by [`next`] with an
//! [`Event`]. No I/O, no clock of its own (the caller passes a monotonic [`Instant`]).
//!
//! ```text
//!  Starting ──Prepared──► Connect ◄──────────────── Ended(signed out | revoked | wiped | …)
//!     │                    │  ▲                         ▲ (from any stage after Connect)
//!  StartFailed         Connect  ConnectFailed           │
//!     ▼                    ▼  │                         │
//!   Failed             Connecting ──Enrolled──► ChoosePassphrase ──PassphraseChosen──┐
//!                                                                                    ▼
//!  Starting ──Prepared(passphrase set)──► Locked ──Unlocked──► Unlocked ◄──Rechecked── Recheck
//!                                           ▲                    │  └──SignRefused──►  │
//!                                           └───Locked(idle)─────┴──◄──Locked──────────┘
//! ```
//!
//! The rules that hang on the stage live here too: signing only from `Unlocked` and only
//! while the last passphrase entry is recent ([`Stage::may_sign`]); the idle lock
//! ([`Stage::idle_expired`]). `lifecycle.rs` holds the stage behind one lock and does the I/O
//! each transition needs; the shell only forwards.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::lock::{LockPolicy, Session};
use crate::views::StatusError;

/// Where the desk is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// Finding the keychain and the vault.
    Starting,
    /// Could not start; the error says why and what to do (a restart is needed).
    Failed(StatusError),
    /// Not set up: the Connect screen (service address, enrolment code). `ended` says why the
    /// desk is here again, if it was set up before.
    Connect { ended: Option<Ended> },
    /// The enrolment request is in flight.
    Connecting,
    /// Enrolled; the passphrase that seals the new cache key comes next. Nothing is on disk
    /// that outlives a restart without it (the half-made desk is erased at the next start).
    ChoosePassphrase,
    /// A passphrase is set and the cache is closed.
    Locked { idle: Option<Duration> },
    /// The cache is open.
    Unlocked(Session),
    /// Signing was asked for but the last passphrase entry is too old: the passphrase again.
    Recheck(Session),
}

/// Why a desk that was set up is back at the Connect screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum Ended {
    /// The consultant signed out; `unsent` signed outcomes were erased as they confirmed.
    SignedOut { unsent: u32 },
    /// The service no longer accepts this device.
    Revoked,
    /// Too many wrong passphrases in a row.
    TooManyAttempts,
    /// Setting up was interrupted between enrolment and the passphrase; what was made is erased.
    SetupInterrupted,
}

impl Ended {
    /// What the Connect screen says about it.
    pub fn notice(self) -> String {
        match self {
            Ended::SignedOut { unsent: 0 } => {
                "Signed out. This computer's cache and keys were erased. Connect again with a new enrolment code."
                    .to_owned()
            }
            Ended::SignedOut { unsent } => format!(
                "Signed out. This computer's cache and keys were erased, including {unsent} signed outcome(s) \
                 that had not been sent, as you confirmed."
            ),
            Ended::Revoked => crate::CoreError::DeviceRevoked.to_string(),
            Ended::TooManyAttempts => crate::CoreError::TooManyAttempts.to_string(),
            Ended::SetupInterrupted => "Setting up was interrupted before a passphrase was chosen, so what was \
                 made was erased. The enrolment code you used is spent: ask your service for a new one."
                .to_owned(),
        }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The vault was read: is a passphrase set, and was a set-up interrupted (erased since)?
    Prepared {
        passphrase_set: bool,
        interrupted: bool,
    },
    StartFailed(StatusError),
    ConnectStarted,
    ConnectFailed,
    /// Enrolled with the service. `passphrase_set`: a desk that already had its passphrase
    /// (one unlocked but never enrolled) goes straight to work.
    Enrolled {
        passphrase_set: bool,
        now: Instant,
    },
    PassphraseChosen {
        now: Instant,
    },
    Unlocked {
        now: Instant,
    },
    /// The lock button, or the idle lock (`idle`: after how long).
    Locked {
        idle: Option<Duration>,
    },
    /// An unlocked desk turned out not to be enrolled (an older Derm Desk's half-made desk):
    /// the Connect screen, with the cache kept open to enrol into.
    NeedsEnrolment,
    Activity {
        now: Instant,
    },
    SignRefused,
    Rechecked {
        now: Instant,
    },
    RecheckCancelled,
    Ended(Ended),
}

/// The event does not apply to the stage (e.g. "unlock" on the Connect screen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub stage: StageName,
    pub event: &'static str,
}

impl Refused {
    pub fn into_error(self) -> crate::CoreError {
        let Refused { stage, event } = self;
        let message = match stage {
            StageName::Starting => "Derm Desk is still starting; try again in a moment".to_owned(),
            StageName::Connect | StageName::Connecting => {
                format!("Derm Desk is not connected to a service yet, so it cannot {event}")
            }
            StageName::ChoosePassphrase => {
                format!("Choose a passphrase first; Derm Desk cannot {event} before")
            }
            StageName::Locked => return crate::CoreError::Locked,
            StageName::Failed => format!("Derm Desk could not start, so it cannot {event}"),
            StageName::Unlocked | StageName::Recheck => {
                format!("Derm Desk is already open; nothing to {event}")
            }
        };
        crate::CoreError::NotNow(format!("{message}. Nothing was changed."))
    }
}

/// The stage's name, as the window sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageName {
    Starting,
    Failed,
    Connect,
    Connecting,
    ChoosePassphrase,
    Locked,
    Unlocked,
    Recheck,
}

impl Stage {
    pub fn name(&self) -> StageName {
        match self {
            Stage::Starting => StageName::Starting,
            Stage::Failed(_) => StageName::Failed,
            Stage::Connect { .. } => StageName::Connect,
            Stage::Connecting => StageName::Connecting,
            Stage::ChoosePassphrase => StageName::ChoosePassphrase,
            Stage::Locked { .. } => StageName::Locked,
            Stage::Unlocked(_) => StageName::Unlocked,
            Stage::Recheck(_) => StageName::Recheck,
        }
    }

    /// The cache is open (patient data may be shown).
    pub fn is_open(&self) -> bool {
        matches!(self, Stage::Unlocked(_) | Stage::Recheck(_))
    }

    /// May an outcome be signed now? Only unlocked, and only while the last passphrase entry is
    /// younger than the policy allows.
    pub fn may_sign(&self, policy: &LockPolicy, now: Instant) -> bool {
        matches!(self, Stage::Unlocked(session) if session.may_sign(policy, now))
    }

    pub fn idle_expired(&self, policy: &LockPolicy, now: Instant) -> bool {
        match self {
            Stage::Unlocked(session) | Stage::Recheck(session) => session.idle_expired(policy, now),
            _ => false,
        }
    }

    /// What the Connect or lock screen says, if anything.
    pub fn notice(&self) -> Option<String> {
        match self {
            Stage::Failed(error) => Some(error.message.clone()),
            Stage::Connect { ended: Some(ended) } => Some(ended.notice()),
            Stage::Locked { idle: Some(idle) } => Some(match idle.as_secs() {
                seconds @ 0..=59 => format!("Locked after {seconds} seconds without activity."),
                seconds => format!("Locked after {} minutes without activity.", seconds.div_ceil(60)),
            }),
            _ => None,
        }
    }
}

/// The one transition function.
pub fn next(stage: &Stage, event: Event) -> Result<Stage, Refused> {
    use Event as E;
    use Stage as S;
    let refused = |event: &'static str| Refused { stage: stage.name(), event };
    Ok(match (stage, event) {
        (S::Starting, E::Prepared { passphrase_set: true, .. }) => S::Locked { idle: None },
        (S::Starting, E::Prepared { passphrase_set: false, interrupted }) => {
            S::Connect { ended: interrupted.then_some(Ended::SetupInterrupted) }
        }
        (S::Starting, E::StartFailed(error)) => S::Failed(error),
        (S::Connect { .. }, E::ConnectStarted) => S::Connecting,
        (S::Connecting, E::ConnectFailed) => S::Connect { ended: None },
        (S::Connecting, E::Enrolled { passphrase_set: false, .. }) => S::ChoosePassphrase,
        (S::Connecting, E::Enrolled { passphrase_set: true, now }) => S::Unlocked(Session::unlocked(now)),
        (S::ChoosePassphrase, E::PassphraseChosen { now }) => S::Unlocked(Session::unlocked(now)),
        (S::Locked { .. }, E::Unlocked { now }) => S::Unlocked(Session::unlocked(now)),
        (S::Unlocked(_) | S::Recheck(_), E::Locked { idle }) => S::Locked { idle },
        (S::Unlocked(_), E::NeedsEnrolment) => S::Connect { ended: None },
        (S::Unlocked(session), E::Activity { now }) => S::Unlocked(touched(*session, now)),
        (S::Recheck(session), E::Activity { now }) => S::Recheck(touched(*session, now)),
        (S::Unlocked(session), E::SignRefused) => S::Recheck(*session),
        (S::Unlocked(session) | S::Recheck(session), E::Rechecked { now }) => {
            let mut session = *session;
            session.reauthenticated(now);
            S::Unlocked(session)
        }
        (S::Recheck(session), E::RecheckCancelled) => S::Unlocked(*session),
        (S::Unlocked(_), E::RecheckCancelled) => stage.clone(),
        (S::Starting | S::Failed(_), E::Ended(_)) => return Err(refused("end the session")),
        (_, E::Ended(ended)) => S::Connect { ended: Some(ended) },
        (_, E::Prepared { .. } | E::StartFailed(_)) => return Err(refused("start again")),
        (_, E::ConnectStarted | E::ConnectFailed | E::Enrolled { .. }) => return Err(refused("connect")),
        (_, E::PassphraseChosen { .. }) => return Err(refused("choose a passphrase")),
        (_, E::Unlocked { .. }) => return Err(refused("unlock")),
        (_, E::Locked { .. }) => return Err(refused("lock")),
        (_, E::NeedsEnrolment) => return Err(refused("enrol")),
        (_, E::Activity { .. }) => stage.clone(),
        (_, E::SignRefused | E::Rechecked { .. } | E::RecheckCancelled) => return Err(refused("sign")),
    })
}

fn touched(mut session: Session, now: Instant) -> Session {
    session.touch(now);
    session
}

/// What the window shows of the stage (the `lock-state` event and `lock_status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifeView {
    pub state: StageName,
    /// Consecutive wrong passphrases so far.
    pub failures: u32,
    /// Something the consultant must read (signed out, wiped, locked when idle, why it failed).
    pub notice: Option<String>,
    /// The Connect screen's service address: as pre-set by the deployment, else last typed.
    pub service_url: Option<String>,
    /// The deployment fixed the address; the field is read-only.
    pub service_url_locked: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LockPolicy {
        LockPolicy { idle: Duration::from_secs(60), reauth_before_signing: Duration::from_secs(30) }
    }

    #[test]
    fn a_first_run_goes_connect_then_passphrase_then_unlocked() {
        let t0 = Instant::now();
        let stage =
            next(&Stage::Starting, Event::Prepared { passphrase_set: false, interrupted: false }).unwrap();
        assert_eq!(stage, Stage::Connect { ended: None });
        let stage = next(&stage, Event::ConnectStarted).unwrap();
        assert_eq!(stage, Stage::Connecting);
        // A wrong code: back to the Connect screen, usable again.
        let stage = next(&stage, Event::ConnectFailed).unwrap();
        assert_eq!(stage, Stage::Connect { ended: None });
        let stage = next(
            &next(&stage, Event::ConnectStarted).unwrap(),
            Event::Enrolled { passphrase_set: false, now: t0 },
        )
        .unwrap();
        assert_eq!(stage, Stage::ChoosePassphrase);
        let stage = next(&stage, Event::PassphraseChosen { now: t0 }).unwrap();
        assert!(stage.is_open() && stage.may_sign(&policy(), t0));
    }

    #[test]
    fn an_interrupted_set_up_is_said_on_the_connect_screen() {
        let stage =
            next(&Stage::Starting, Event::Prepared { passphrase_set: false, interrupted: true }).unwrap();
        assert_eq!(stage, Stage::Connect { ended: Some(Ended::SetupInterrupted) });
        assert!(stage.notice().unwrap().contains("ask your service for a new one"));
    }

    #[test]
    fn nothing_can_be_unlocked_or_signed_before_connecting() {
        let connect = Stage::Connect { ended: None };
        let refused = next(&connect, Event::Unlocked { now: Instant::now() }).unwrap_err();
        assert_eq!(refused, Refused { stage: StageName::Connect, event: "unlock" });
        assert!(refused.into_error().to_string().contains("not connected to a service"));
        assert!(next(&connect, Event::PassphraseChosen { now: Instant::now() }).is_err());
        assert!(next(&Stage::ChoosePassphrase, Event::Unlocked { now: Instant::now() }).is_err());
        assert!(next(&Stage::Locked { idle: None }, Event::SignRefused).is_err());
        assert!(!connect.may_sign(&policy(), Instant::now()));
        assert!(!Stage::Locked { idle: None }.may_sign(&policy(), Instant::now()));
    }

    #[test]
    fn signing_needs_the_passphrase_again_once_the_last_entry_is_old() {
        let t0 = Instant::now();
        let unlocked = next(&Stage::Locked { idle: None }, Event::Unlocked { now: t0 }).unwrap();
        assert!(unlocked.may_sign(&policy(), t0 + Duration::from_secs(29)));
        let later = t0 + Duration::from_secs(31);
        assert!(!unlocked.may_sign(&policy(), later));
        let recheck = next(&unlocked, Event::SignRefused).unwrap();
        assert_eq!(recheck.name(), StageName::Recheck);
        assert!(!recheck.may_sign(&policy(), later), "not while the passphrase is being asked");
        assert_eq!(next(&recheck, Event::RecheckCancelled).unwrap().name(), StageName::Unlocked);
        let rechecked = next(&recheck, Event::Rechecked { now: later }).unwrap();
        assert!(rechecked.may_sign(&policy(), later + Duration::from_secs(29)));
    }

    #[test]
    fn idle_locks_and_activity_keeps_it_away() {
        let t0 = Instant::now();
        let unlocked = next(&Stage::Locked { idle: None }, Event::Unlocked { now: t0 }).unwrap();
        let touched = next(&unlocked, Event::Activity { now: t0 + Duration::from_secs(50) }).unwrap();
        assert!(unlocked.idle_expired(&policy(), t0 + Duration::from_secs(61)));
        assert!(!touched.idle_expired(&policy(), t0 + Duration::from_secs(61)));
        let locked = next(&touched, Event::Locked { idle: Some(Duration::from_secs(60)) }).unwrap();
        assert_eq!(locked.notice().as_deref(), Some("Locked after 1 minutes without activity."));
        assert!(!locked.is_open());
        // Activity on a locked desk changes nothing.
        assert_eq!(next(&locked, Event::Activity { now: t0 }).unwrap(), locked);
    }

    #[test]
    fn sign_out_revocation_and_wipes_all_return_to_connect_and_say_why() {
        let t0 = Instant::now();
        let unlocked = Stage::Unlocked(Session::unlocked(t0));
        for (ended, said) in [
            (Ended::SignedOut { unsent: 0 }, "Signed out."),
            (Ended::SignedOut { unsent: 2 }, "including 2 signed outcome(s)"),
            (Ended::Revoked, "no longer accepts this computer"),
            (Ended::TooManyAttempts, "Too many wrong passphrases"),
        ] {
            for from in
                [unlocked.clone(), Stage::Locked { idle: None }, Stage::ChoosePassphrase, Stage::Connecting]
            {
                let stage = next(&from, Event::Ended(ended)).unwrap();
                assert_eq!(stage, Stage::Connect { ended: Some(ended) });
                assert!(stage.notice().unwrap().contains(said), "{:?}", stage.notice());
            }
        }
        assert!(next(&Stage::Starting, Event::Ended(Ended::Revoked)).is_err());
    }

    #[test]
    fn a_desk_unlocked_but_never_enrolled_is_offered_the_connect_screen() {
        let t0 = Instant::now();
        let unlocked = Stage::Unlocked(Session::unlocked(t0));
        let stage = next(&unlocked, Event::NeedsEnrolment).unwrap();
        assert_eq!(stage, Stage::Connect { ended: None });
        let stage = next(
            &next(&stage, Event::ConnectStarted).unwrap(),
            Event::Enrolled { passphrase_set: true, now: t0 },
        )
        .unwrap();
        assert!(stage.is_open(), "its passphrase is already set: straight to work");
    }
}
