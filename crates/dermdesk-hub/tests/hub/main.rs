//! The hub's integration tests: the HTTP API as a client sees it, one module per area.
//! Most go through `oneshot` on the router; `server.rs` runs one real listener.

mod admin;
mod demo;
mod enrolment;
mod feed;
mod outcomes;
mod photos;
mod server;
mod support;
