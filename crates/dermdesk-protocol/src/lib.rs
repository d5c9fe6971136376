//! Derm Desk wire protocol v1: the types the hub and the desktop app exchange, and the
//! signed-outcome envelope (RFC 8785 canonical JSON + detached JWS, EdDSA).
//!
//! This crate does no I/O and has no async: it is the contract, usable by any client or server.
//! Identifiers that may be long numbers (NHS numbers, ids) are strings everywhere, because
//! canonical JSON cannot carry integers above 2^53 faithfully.

pub mod audit;
pub mod canonical;
pub mod export;
pub mod limits;
pub mod nhs;
pub mod signature;
mod types;

pub use nhs::{check_nhs_number, parse_nhs_number, NhsNumberError};
pub use types::*;

/// Path prefix of every v1 route.
pub const API_PREFIX: &str = "/v1";
