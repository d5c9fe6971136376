//! The journal: one line `outcome_id referral_id` per outcome the client was told is queued.
//!
//! The client appends a line (and fsyncs) right after `Desk::sign_outcome` returns Ok, which is
//! the moment the app shows "queued" to the consultant. Whatever is in the journal is therefore a
//! promise: the outcome must reach the hub exactly once (or stay visibly in conflict when the GP
//! practice withdrew the referral first). A kill between the Ok and the append leaves an outcome
//! that is queued but not journalled; that is allowed, and counted apart.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;

/// One promise: this outcome, for this referral, was queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub outcome_id: String,
    pub referral_id: String,
}

/// Appends one entry and makes it durable before returning.
pub fn append(path: &Path, outcome_id: &str, referral_id: &str) -> std::io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    // One write(2) of a short line: a kill cannot split it (signals arrive between system calls).
    file.write_all(format!("{outcome_id} {referral_id}\n").as_bytes())?;
    file.sync_all()
}

/// The journal's entries, and whether its last line was torn (no newline: never acknowledged).
pub fn read(path: &Path) -> std::io::Result<(Vec<Entry>, bool)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
        Err(error) => return Err(error),
    };
    let torn = !text.is_empty() && !text.ends_with('\n');
    let complete = if torn { &text[..text.rfind('\n').map_or(0, |at| at + 1)] } else { &text[..] };
    let entries = complete
        .lines()
        .filter_map(|line| {
            let (outcome_id, referral_id) = line.split_once(' ')?;
            Some(Entry { outcome_id: outcome_id.to_owned(), referral_id: referral_id.to_owned() })
        })
        .collect();
    Ok((entries, torn))
}
