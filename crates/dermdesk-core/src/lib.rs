//! Derm Desk's engine: the encrypted local cache, sync with the hub, the outcome outbox,
//! signing and the keychain. It knows nothing of Tauri: the desktop shell is one caller, the
//! integration tests and the fault harness are others.
//!
//! Which modules may touch what:
//! - [`cache`]: the SQLCipher database (disk). The only module that runs SQL.
//! - [`secrets`]: the OS keychain; [`lock`]: the passphrase-sealed cache key in it, the lock
//!   rules (pure) and the crypto-shred (deletes keychain entries and the cache files).
//! - [`client`]: the network (the hub's HTTP API, and the service's update files for
//!   [`updates`], whose rules are pure).
//! - [`engine`]: tokio tasks that drive client + cache.
//! - [`life`]: the desk's life cycle, pure (one `Stage`, one transition function);
//!   [`lifecycle`]: that stage behind one lock, doing each transition's I/O (vault, enrolment,
//!   cache, engine, shred). [`connect`]: the Connect screen's input and the service's answer.
//! - [`photos`]: the viewer's photo requests, answered from the cache through
//!   `dermdesk-imaging` into memory only (never the disk).
//! - [`plan`], [`deadline`], [`views`], [`governance`], [`diagnoses`], and [`worklist`] but for
//!   its `impl Desk`: pure; no I/O at all,
//!   except that [`deadline`] reads a replacement bank holiday calendar from the data folder
//!   when [`Desk`] opens (`DeadlinePolicy::for_data_dir`).

pub mod audit;
pub mod cache;
pub mod client;
pub mod clock;
pub mod connect;
pub mod deadline;
pub mod desk;
pub mod diagnoses;
pub mod engine;
mod error;
pub mod governance;
pub mod keys;
pub mod life;
pub mod lifecycle;
pub mod lock;
pub mod photos;
pub mod plan;
pub mod secrets;
pub mod updates;
pub mod verify;
pub mod views;
pub mod worklist;

pub use desk::{Desk, DeskConfig};
pub use error::{CoreError, ErrorKind};
pub use photos::PhotoResponse;
