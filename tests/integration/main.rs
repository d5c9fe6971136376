//! Integration tests: the reference hub on 127.0.0.1:0 and the real core client, end to end
//! over HTTP, with a real SQLCipher cache on disk. One test binary (ripgrep's habit).

mod proxy;
mod support;

mod lifecycle;
mod receipts;
mod resilience;

mod sync_and_sign;
mod updates;
mod worklist;
