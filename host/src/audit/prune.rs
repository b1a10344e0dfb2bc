//! Drops old rows from the start of the chain and leaves a signed anchor
//! (seq and hash of the last dropped row) where `verify` starts instead of
//! genesis.
//!
//! A chain that does not verify is not pruned: pruning would delete the
//! evidence and re-sign the anchor over it.
//!
//! ```no_run
//! # fn demo(db: &std::path::Path) -> wasmward::audit::Result<()> {
//! use wasmward::audit::{prune, AuditKey};
//! let r = prune(db, &AuditKey::load(db)?, 90, 100_000)?;
//! println!("deleted {} rows, {} left", r.deleted, r.remaining);
//! # Ok(()) }
//! ```

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{OptionalExtension, TransactionBehavior};

use super::error::{AuditError, Result};
use super::key::AuditKey;
use super::store::{open_existing, write_anchor, ChainPos};
use super::verify::verify;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneReport {
    pub deleted: u64,
    /// The anchor after pruning (unchanged when nothing was deleted).
    pub anchor_seq: Option<u64>,
    pub remaining: u64,
}

/// Deletes rows older than `retention_days` and beyond the newest
/// `max_records` (0 disables either limit).
pub fn prune(
    db: &Path,
    key: &AuditKey,
    retention_days: u32,
    max_records: u64,
) -> Result<PruneReport> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    prune_at(db, key, retention_days, max_records, now)
}

pub(super) fn prune_at(
    db: &Path,
    key: &AuditKey,
    retention_days: u32,
    max_records: u64,
    now_ms: u64,
) -> Result<PruneReport> {
    let before = verify(db, key)?;
    if let Some(p) = &before.problem {
        return Err(AuditError::PruneRefused(format!(
            "the chain is broken at seq {}: {}: {}",
            p.seq, p.kind, p.detail
        )));
    }
    let mut conn = open_existing(db)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut cut: Option<i64> = None;
    if retention_days > 0 {
        let cutoff = now_ms.saturating_sub(u64::from(retention_days) * 86_400_000) as i64;
        let by_age: Option<i64> = tx.query_row(
            "SELECT MAX(seq) FROM events WHERE ts_ms < ?1",
            [cutoff],
            |r| r.get(0),
        )?;
        cut = cut.max(by_age);
    }
    let count: i64 = tx.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
    if max_records > 0 && count as u64 > max_records {
        let excess = count - max_records as i64;
        let by_count: Option<i64> = tx
            .query_row(
                "SELECT seq FROM events ORDER BY seq LIMIT 1 OFFSET ?1",
                [excess - 1],
                |r| r.get(0),
            )
            .optional()?;
        cut = cut.max(by_count);
    }
    let Some(cut) = cut else {
        return Ok(PruneReport {
            deleted: 0,
            anchor_seq: before.anchor_seq,
            remaining: count as u64,
        });
    };
    let hash: String = tx.query_row("SELECT hash FROM events WHERE seq = ?1", [cut], |r| {
        r.get(0)
    })?;
    let deleted = tx.execute("DELETE FROM events WHERE seq <= ?1", [cut])? as u64;
    write_anchor(
        &tx,
        key,
        &ChainPos {
            seq: cut as u64,
            hash,
        },
    )?;
    tx.commit()?;
    Ok(PruneReport {
        deleted,
        anchor_seq: Some(cut as u64),
        remaining: count as u64 - deleted,
    })
}
