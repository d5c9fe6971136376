//! Shared by the fault harness (`dermdesk-faults`) and the client it kills (`faults-client`):
//! the file-backed secret store, the journal of outcomes the user was told are queued, and the
//! one-line JSON events the client prints so the harness knows what it is doing when it dies.

pub mod events;
pub mod journal;
pub mod secrets;
