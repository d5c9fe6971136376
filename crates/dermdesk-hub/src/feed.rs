//! The per-consultant change feed behind `GET /v1/feed`: appending changes and reading pages.
//!
//! The cursor is the `seq` of the last change a page held, as a decimal string. Clients treat
//! it as opaque; the hub only promises that passing it back yields the changes after it.

use dermdesk_protocol::{Change, FeedPage, Referral, RemovalReason, FEED_PAGE_DEFAULT, FEED_PAGE_MAX};
use rusqlite::{params, Connection};

use crate::hub::{timestamp, Hub};
use crate::HubError;

/// What one feed row says about a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FeedEntry {
    /// Serve the referral's current JSON.
    Upsert,
    Removed(RemovalReason),
}

/// Records a change for one consultant, replacing their older rows about the same referral:
/// only the latest state matters to a client catching up, and an `upsert` left behind a later
/// `removed` would otherwise carry versions written after the referral left this consultant.
pub(crate) fn append_change(
    connection: &Connection,
    consultant_id: &str,
    referral_id: &str,
    entry: FeedEntry,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), HubError> {
    connection.execute(
        "DELETE FROM feed WHERE consultant_id = ?1 AND referral_id = ?2",
        params![consultant_id, referral_id],
    )?;
    let (kind, reason) = match entry {
        FeedEntry::Upsert => ("upsert", None),
        FeedEntry::Removed(RemovalReason::Withdrawn) => ("removed", Some("withdrawn")),
        FeedEntry::Removed(RemovalReason::Reassigned) => ("removed", Some("reassigned")),
    };
    connection.execute(
        "INSERT INTO feed (consultant_id, referral_id, kind, reason, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![consultant_id, referral_id, kind, reason, timestamp(now)],
    )?;
    Ok(())
}

/// Parses a cursor a client sent back: missing or empty means "from the start".
fn parse_cursor(cursor: Option<&str>) -> Result<i64, HubError> {
    match cursor.unwrap_or("") {
        "" => Ok(0),
        text => text
            .parse::<i64>()
            .ok()
            .filter(|seq| *seq >= 0)
            .ok_or_else(|| HubError::BadRequest("the cursor is not one this hub issued".into())),
    }
}

/// The page size asked for, defaulted, and capped at the protocol's maximum (not refused: a
/// client asking for more simply gets `has_more`).
fn page_size(limit: Option<u32>) -> Result<u32, HubError> {
    match limit {
        None => Ok(FEED_PAGE_DEFAULT),
        Some(0) => Err(HubError::BadRequest("limit must be at least 1".into())),
        Some(limit) => Ok(limit.min(FEED_PAGE_MAX)),
    }
}

impl Hub {
    /// One page of `consultant_id`'s changes after `cursor`, oldest first.
    pub(crate) fn feed_page(
        &self,
        consultant_id: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<FeedPage, HubError> {
        let after = parse_cursor(cursor)?;
        let limit = page_size(limit)?;
        let connection = self.lock();
        let mut statement = connection.prepare(
            "SELECT f.seq, f.referral_id, f.kind, f.reason, r.json
               FROM feed f JOIN referrals r ON r.id = f.referral_id
              WHERE f.consultant_id = ?1 AND f.seq > ?2
              ORDER BY f.seq
              LIMIT ?3",
        )?;
        // One row more than the page tells whether more are waiting, without a COUNT.
        let rows = statement
            .query_map(params![consultant_id, after, i64::from(limit) + 1], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, String>(4)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let has_more = rows.len() > limit as usize;
        let mut changes = Vec::with_capacity(rows.len().min(limit as usize));
        let mut last_seq = after;
        for (seq, referral_id, kind, reason, json) in rows.into_iter().take(limit as usize) {
            last_seq = seq;
            changes.push(match (kind.as_str(), reason.as_deref()) {
                ("upsert", None) => {
                    let referral: Referral = serde_json::from_str(&json).map_err(|_| {
                        HubError::Corrupt(format!("stored referral {referral_id} does not parse"))
                    })?;
                    Change::Upsert { referral }
                }
                ("removed", Some("withdrawn")) => {
                    Change::Removed { referral_id, reason: RemovalReason::Withdrawn }
                }
                ("removed", Some("reassigned")) => {
                    Change::Removed { referral_id, reason: RemovalReason::Reassigned }
                }
                _ => return Err(HubError::Corrupt(format!("feed row {seq} has an unknown kind"))),
            });
        }
        let next_cursor = if last_seq == 0 { cursor.unwrap_or("").to_string() } else { last_seq.to_string() };
        Ok(FeedPage { changes, next_cursor, has_more })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_sequence_numbers_or_nothing() {
        assert_eq!(parse_cursor(None).unwrap(), 0);
        assert_eq!(parse_cursor(Some("")).unwrap(), 0);
        assert_eq!(parse_cursor(Some("42")).unwrap(), 42);
        assert!(parse_cursor(Some("-1")).is_err());
        assert!(parse_cursor(Some("abc")).is_err());
    }

    #[test]
    fn page_size_defaults_and_caps() {
        assert_eq!(page_size(None).unwrap(), FEED_PAGE_DEFAULT);
        assert_eq!(page_size(Some(7)).unwrap(), 7);
        assert_eq!(page_size(Some(FEED_PAGE_MAX + 1)).unwrap(), FEED_PAGE_MAX);
        assert!(page_size(Some(0)).is_err());
    }
}
