//! Walks the chain from the prune anchor (or genesis) and reports the first
//! place where it breaks.
//!
//! ```no_run
//! # fn demo(db: &std::path::Path) -> wasmward::audit::Result<()> {
//! use wasmward::audit::{verify, AuditKey};
//! let report = verify(db, &AuditKey::load(db)?)?;
//! println!("{report}"); // "OK: 42 rows ..." or "TAMPERED at seq 7: edited row: ..."
//! assert!(report.is_ok());
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::Path;

use serde_json::Value;

use super::error::Result;
use super::key::AuditKey;
use super::read::{Record, SELECT};
use super::store::{open_existing, read_anchor, read_head, ChainPos, Signed};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TamperKind {
    /// A row's contents no longer match its hash (or the key is wrong).
    Edited,
    /// A row that is not part of the chain sits in it.
    Inserted,
    /// Rows are missing from the start or the middle.
    Deleted,
    /// Rows are missing from the end (the head checkpoint is ahead).
    Truncated,
    /// `<db>.head` is missing, unsigned or disagrees with the rows.
    Checkpoint,
    /// The prune anchor's signature does not match.
    Anchor,
}

impl fmt::Display for TamperKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TamperKind::Edited => "edited row",
            TamperKind::Inserted => "inserted row",
            TamperKind::Deleted => "deleted rows",
            TamperKind::Truncated => "truncated tail",
            TamperKind::Checkpoint => "bad head checkpoint",
            TamperKind::Anchor => "bad prune anchor",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tamper {
    /// The first seq where the chain is broken.
    pub seq: u64,
    pub kind: TamperKind,
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Rows that verified before any problem.
    pub rows: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub anchor_seq: Option<u64>,
    pub head_seq: Option<u64>,
    /// Verified rows after the head checkpoint: normal right after a crash
    /// (at most one batch); many suggest an old checkpoint was put back.
    pub unconfirmed: u64,
    pub problem: Option<Tamper>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.problem {
            return write!(f, "TAMPERED at seq {}: {}: {}", p.seq, p.kind, p.detail);
        }
        write!(f, "OK: {} rows", self.rows)?;
        if let (Some(a), Some(b)) = (self.first_seq, self.last_seq) {
            write!(f, " (seq {a}..={b})")?;
        }
        if let Some(a) = self.anchor_seq {
            write!(f, ", pruned up to seq {a}")?;
        }
        if self.unconfirmed > 0 {
            write!(f, ", {} rows after the head checkpoint", self.unconfirmed)?;
        }
        Ok(())
    }
}

fn authentic(key: &AuditKey, r: &Record) -> bool {
    key.mac_hex(&[r.prev_hash.as_bytes(), r.body.as_bytes()]) == r.hash
}

fn body_seq(r: &Record) -> Option<u64> {
    serde_json::from_str::<Value>(&r.body)
        .ok()?
        .get("seq")?
        .as_u64()
}

/// The indexed columns must say what the signed body says.
fn columns_match(r: &Record) -> std::result::Result<(), String> {
    let v: Value = serde_json::from_str(&r.body).map_err(|e| format!("body is not JSON: {e}"))?;
    let checks = [
        ("seq", v["seq"].as_u64() == Some(r.seq)),
        ("ts_ms", v["ts_ms"].as_u64() == Some(r.ts_ms)),
        ("kind", v["kind"].as_str() == Some(&r.kind)),
        ("call_id", v["call_id"].as_str() == Some(&r.call_id)),
    ];
    match checks.iter().find(|(_, ok)| !ok) {
        Some((col, _)) => Err(format!("column {col} differs from the signed body")),
        None => Ok(()),
    }
}

fn problem(report: &mut VerifyReport, seq: u64, kind: TamperKind, detail: String) {
    report.problem = Some(Tamper { seq, kind, detail });
}

/// Verifies the database at `db`. `Err` means it could not be read; a
/// broken chain is `Ok` with `problem` set.
pub fn verify(db: &Path, key: &AuditKey) -> Result<VerifyReport> {
    // The head is read before the rows: it only moves after a commit, so it
    // can never be ahead of what a later snapshot sees.
    let head = read_head(db, key)?;
    let mut conn = open_existing(db)?;
    let tx = conn.transaction()?; // one snapshot for anchor + rows
    let mut report = VerifyReport::default();

    let mut pos = match read_anchor(&tx, key)? {
        Signed::Missing => ChainPos::genesis(),
        Signed::Valid(a) => {
            report.anchor_seq = Some(a.seq);
            a
        }
        Signed::Invalid(why) | Signed::Unreadable(why) => {
            problem(
                &mut report,
                0,
                TamperKind::Anchor,
                format!("prune anchor: {why}"),
            );
            return Ok(report);
        }
    };
    let head_pos = match &head {
        Signed::Valid(h) => Some(h.clone()),
        _ => None,
    };
    let mut head_row_hash = None;

    let mut stmt = tx.prepare(&format!("{SELECT} ORDER BY seq"))?;
    let mut rows = stmt.query_map([], Record::from_row)?.peekable();
    while let Some(row) = rows.next() {
        let r = row?;
        let expected = pos.seq + 1;
        if !authentic(key, &r) {
            let next_skips_it =
                matches!(rows.peek(), Some(Ok(n)) if n.prev_hash == pos.hash && authentic(key, n));
            if next_skips_it {
                let detail = format!(
                    "row {} does not belong to the chain: the next row links to row {}",
                    r.seq, pos.seq
                );
                problem(&mut report, r.seq, TamperKind::Inserted, detail);
            } else {
                let detail = "hash does not match the row's contents (edited, or a different key)"
                    .to_string();
                problem(&mut report, r.seq, TamperKind::Edited, detail);
            }
            return Ok(report);
        }
        if r.seq < expected {
            let detail = format!(
                "row {} is at or before the prune anchor (seq {})",
                r.seq, pos.seq
            );
            problem(&mut report, r.seq, TamperKind::Inserted, detail);
            return Ok(report);
        }
        if r.seq > expected {
            let detail = if pos.seq == 0 {
                format!(
                    "rows 1..={} are missing and there is no prune anchor",
                    r.seq - 1
                )
            } else {
                format!("rows {expected}..={} are missing", r.seq - 1)
            };
            problem(&mut report, expected, TamperKind::Deleted, detail);
            return Ok(report);
        }
        if r.prev_hash != pos.hash {
            let (kind, detail) = match body_seq(&r) {
                Some(orig) if orig > r.seq => (
                    TamperKind::Deleted,
                    format!(
                        "row {orig} was renumbered to {}: rows before it were deleted",
                        r.seq
                    ),
                ),
                Some(orig) if orig < r.seq => (
                    TamperKind::Inserted,
                    format!(
                        "row {orig} was renumbered to {}: rows were inserted before it",
                        r.seq
                    ),
                ),
                _ => (
                    TamperKind::Edited,
                    format!("prev_hash does not link to row {}", pos.seq),
                ),
            };
            problem(&mut report, r.seq, kind, detail);
            return Ok(report);
        }
        if let Err(detail) = columns_match(&r) {
            problem(&mut report, r.seq, TamperKind::Edited, detail);
            return Ok(report);
        }
        if head_pos.as_ref().is_some_and(|h| h.seq == r.seq) {
            head_row_hash = Some(r.hash.clone());
        }
        report.first_seq.get_or_insert(r.seq);
        report.last_seq = Some(r.seq);
        report.rows += 1;
        pos = ChainPos {
            seq: r.seq,
            hash: r.hash,
        };
    }

    let next = pos.seq + 1;
    match head {
        Signed::Missing if pos.seq > 0 => {
            let detail = format!(
                "{} is missing, so a truncated tail cannot be ruled out",
                super::store::head_path(db).display()
            );
            problem(&mut report, next, TamperKind::Checkpoint, detail);
        }
        Signed::Missing => {}
        Signed::Invalid(why) | Signed::Unreadable(why) => {
            problem(&mut report, next, TamperKind::Checkpoint, why)
        }
        Signed::Valid(h) => {
            report.head_seq = Some(h.seq);
            if h.seq > pos.seq {
                let detail = format!(
                    "rows {next}..={} are missing: the head checkpoint is at seq {}",
                    h.seq, h.seq
                );
                problem(&mut report, next, TamperKind::Truncated, detail);
            } else if h.seq == pos.seq && h.hash != pos.hash
                || head_row_hash.is_some_and(|hash| hash != h.hash)
            {
                let detail = format!(
                    "checkpoint hash differs from row {}: the tail was rewritten",
                    h.seq
                );
                problem(&mut report, h.seq, TamperKind::Checkpoint, detail);
            } else {
                report.unconfirmed =
                    pos.seq - h.seq.max(report.anchor_seq.unwrap_or(0)).min(pos.seq);
            }
        }
    }
    Ok(report)
}
