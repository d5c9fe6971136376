//! Helpers for the end-to-end tests live in window.rs; this crate has no library code.
