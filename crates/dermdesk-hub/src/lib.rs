//! Derm Desk's reference hub: the central service a consultant's desktop app enrols with,
//! syncs referrals and photos from, and sends signed outcomes to.
//!
//! It is real enough to test the app against (SQLite, signatures verified, exactly-once
//! outcomes) and small enough to embed: the desktop app's demo runs it in-process, and
//! `dermdesk-hub serve --demo` runs it alone. It depends on the protocol and the synthetic
//! data crate, never on the app's core, so the two sides can only agree through the protocol.
//!
//! Code map: `hub.rs` (state, referral changes), `enrolment.rs`, `keys.rs` (the hub's receipt
//! key, device key rotation, which key may sign what when), `feed.rs`, `photos.rs`,
//! `outcomes.rs`, `audit.rs` (the device-facing operations), `demo.rs` (seeding), `db.rs` (schema),
//! `http.rs` (routes, `AppError`), `faults.rs` (fault injection for testing clients). Only
//! `http.rs` and `faults.rs` know about HTTP; only `db.rs`, `photos.rs` and the operations' SQL
//! touch the disk.

mod audit;
mod db;
mod demo;
mod enrolment;
mod error;
mod faults;
mod feed;
mod http;
mod hub;
mod keys;
mod outcomes;
mod photos;
pub mod updates;

pub use demo::{DemoSeed, DEMO_SEED};
pub use error::HubError;
pub use faults::{FaultConfig, FaultCounts, FaultReport, FaultState, RouteCounts};
pub use http::{app, serve, AppError, ServerConfig, JSON_BODY_LIMIT};
pub use hub::{clock_starting_at, Hub, HubClock};
pub use outcomes::StoredOutcome;
