//! The hub's integration tests: the HTTP API as a client sees it, one module per area.
//! Most go through `oneshot` on the router; `server.rs` runs one real listener, and `faults.rs`
//! one per test, since a fault is only real on a real connection.

mod admin;
mod demo;
mod enrolment;
mod faults;
mod feed;
mod keys;
mod mutations;
mod outcomes;
mod photos;
mod server;
mod support;
mod updates;
