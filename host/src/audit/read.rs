//! Reading rows back: `tail`, `Follow` (polling for new rows) and JSON-lines
//! export.
//!
//! ```no_run
//! # fn demo(db: &std::path::Path) -> wasmward::audit::Result<()> {
//! use wasmward::audit::{tail, Follow};
//! let last = tail(db, 20)?;
//! let mut follow = Follow::new(db, last.last().map_or(0, |r| r.seq))?;
//! loop {
//!     for r in follow.poll()? { println!("{}", r.to_json_line()); }
//!     std::thread::sleep(std::time::Duration::from_millis(500));
//! }
//! # }
//! ```

use std::io::Write;
use std::path::Path;

use rusqlite::{Connection, Row};

use super::error::{AuditError, Result};
use super::event::StoredEvent;
use super::store::open_existing;

pub(super) const SELECT: &str =
    "SELECT seq, ts_ms, kind, call_id, body, prev_hash, hash FROM events";

/// One stored row. `body` is the exact signed text.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub seq: u64,
    pub ts_ms: u64,
    pub kind: String,
    pub call_id: String,
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
}

impl Record {
    pub(super) fn from_row(r: &Row<'_>) -> rusqlite::Result<Record> {
        Ok(Record {
            seq: r.get::<_, i64>(0)? as u64,
            ts_ms: r.get::<_, i64>(1)? as u64,
            kind: r.get(2)?,
            call_id: r.get(3)?,
            body: r.get(4)?,
            prev_hash: r.get(5)?,
            hash: r.get(6)?,
        })
    }

    /// The typed event.
    pub fn event(&self) -> Result<StoredEvent> {
        Ok(serde_json::from_str(&self.body)?)
    }

    /// `{"seq":N,"prev_hash":"..","hash":"..","body":{...}}` with `body`
    /// byte-for-byte as signed, so the line can be re-verified elsewhere.
    pub fn to_json_line(&self) -> String {
        format!(
            r#"{{"seq":{},"prev_hash":"{}","hash":"{}","body":{}}}"#,
            self.seq, self.prev_hash, self.hash, self.body
        )
    }
}

fn query(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Record>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params, Record::from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The last `n` rows, oldest first.
pub fn tail(db: &Path, n: u64) -> Result<Vec<Record>> {
    let conn = open_existing(db)?;
    let sql = format!("SELECT * FROM ({SELECT} ORDER BY seq DESC LIMIT ?1) ORDER BY seq");
    query(&conn, &sql, [n as i64])
}

/// Polls for rows after a given seq (`audit tail --follow`).
pub struct Follow {
    conn: Connection,
    last_seq: u64,
}

impl Follow {
    pub fn new(db: &Path, after_seq: u64) -> Result<Follow> {
        Ok(Follow {
            conn: open_existing(db)?,
            last_seq: after_seq,
        })
    }

    /// Rows committed since the last poll (at most 1000 at a time).
    pub fn poll(&mut self) -> Result<Vec<Record>> {
        let sql = format!("{SELECT} WHERE seq > ?1 ORDER BY seq LIMIT 1000");
        let rows = query(&self.conn, &sql, [self.last_seq as i64])?;
        if let Some(r) = rows.last() {
            self.last_seq = r.seq;
        }
        Ok(rows)
    }
}

/// Writes every row as one JSON line ([`Record::to_json_line`]); returns the count.
pub fn export_jsonl(db: &Path, out: &mut dyn Write) -> Result<u64> {
    let conn = open_existing(db)?;
    let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY seq"))?;
    let mut n = 0;
    for row in stmt.query_map([], Record::from_row)? {
        let line = row?.to_json_line();
        writeln!(out, "{line}").map_err(|source| AuditError::Io {
            path: "<export>".into(),
            source,
        })?;
        n += 1;
    }
    Ok(n)
}
