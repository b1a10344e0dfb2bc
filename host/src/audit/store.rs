//! SQLite layout, chain append, head checkpoint and prune anchor.
//!
//! Row `n` stores `hash = hex(HMAC(key, prev_hash || body))` where `body` is
//! the canonical JSON of the event including `seq` and `ts_ms`, and
//! `prev_hash` is row `n-1`'s hash (or the prune anchor's, or [`GENESIS`]).
//!
//! Durability: WAL with `synchronous=FULL` under `durability = "fsync"` (a
//! commit is fsynced before `record` resolves; group commit amortises the
//! fsync over the batch) and `synchronous=NORMAL` under `"commit"` (the
//! commit is in the WAL file, safe from a process crash) and `"async"`.
//!
//! The head checkpoint `<db>.head` (`{"seq","hash","mac"}`) is rewritten
//! atomically after every commit. It may lag the database by one batch after
//! a crash (accepted), but never lead it unless rows were removed from the
//! end, which is how a truncated tail is detected.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde_json::{json, Value};

use super::config::Durability;
use super::error::{io_err, AuditError, Result};
use super::event::{write_body, AuditEvent};
use super::key::AuditKey;
use super::redact::Redactor;

/// `prev_hash` of the first row of a chain that was never pruned.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events(
    seq INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    call_id TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts_ms);
CREATE INDEX IF NOT EXISTS events_call ON events(call_id);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(db.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

/// `<db>.key`
pub fn key_path(db: &Path) -> PathBuf {
    sidecar(db, ".key")
}

/// `<db>.head`
pub fn head_path(db: &Path) -> PathBuf {
    sidecar(db, ".head")
}

/// A position in the chain: the last seq and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ChainPos {
    pub seq: u64,
    pub hash: String,
}

impl ChainPos {
    pub fn genesis() -> ChainPos {
        ChainPos {
            seq: 0,
            hash: GENESIS.into(),
        }
    }
}

/// A signed `(seq, hash)` from the head file or the anchor row.
#[derive(Clone)]
pub(super) enum Signed {
    Missing,
    /// Not parseable (for the head: possibly torn by a power loss).
    Unreadable(String),
    /// Parseable but the signature does not match.
    Invalid(String),
    Valid(ChainPos),
}

fn pos_mac(key: &AuditKey, domain: &str, pos: &ChainPos) -> String {
    key.mac_hex(&[
        domain.as_bytes(),
        b"\0",
        pos.seq.to_string().as_bytes(),
        b"\0",
        pos.hash.as_bytes(),
    ])
}

fn signed_json(key: &AuditKey, domain: &str, pos: &ChainPos) -> String {
    json!({"seq": pos.seq, "hash": pos.hash, "mac": pos_mac(key, domain, pos)}).to_string()
}

fn parse_signed(key: &AuditKey, domain: &str, text: &str) -> Signed {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Signed::Unreadable(format!("not valid JSON: {e}")),
    };
    let (Some(seq), Some(hash), Some(mac)) =
        (v["seq"].as_u64(), v["hash"].as_str(), v["mac"].as_str())
    else {
        return Signed::Unreadable("missing seq, hash or mac".into());
    };
    let pos = ChainPos {
        seq,
        hash: hash.into(),
    };
    if pos_mac(key, domain, &pos) != mac {
        return Signed::Invalid("signature does not match (edited, or a different key)".into());
    }
    Signed::Valid(pos)
}

/// Bytes per head slot. The head file holds two slots written in turn, so
/// a write torn by a crash leaves the other, one batch older, intact.
const HEAD_SLOT: usize = 256;

pub(super) fn read_head(db: &Path, key: &AuditKey) -> Result<Signed> {
    let path = head_path(db);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Signed::Missing),
        Err(e) => return Err(io_err(path)(e)),
    };
    let slots: Vec<Signed> = if bytes.len() == 2 * HEAD_SLOT {
        bytes.chunks(HEAD_SLOT).map(|c| parse_signed(key, "head", String::from_utf8_lossy(c).trim())).collect()
    } else {
        vec![parse_signed(key, "head", String::from_utf8_lossy(&bytes).trim())]
    };
    Ok(newest_slot(slots))
}

/// A forged slot wins over everything (it is tampering); else the valid
/// slot with the highest seq; else the first problem.
fn newest_slot(slots: Vec<Signed>) -> Signed {
    if let Some(bad) = slots.iter().find(|s| matches!(s, Signed::Invalid(_))) {
        return bad.clone();
    }
    let valid = slots.iter().filter_map(|s| match s {
        Signed::Valid(p) => Some(p.clone()),
        _ => None,
    });
    match valid.max_by_key(|p| p.seq) {
        Some(p) => Signed::Valid(p),
        None => slots.into_iter().next().unwrap_or(Signed::Missing),
    }
}

// The head checkpoint is written in place (see `Store::write_head`),
// because create + rename per batch cost up to a millisecond on the hot path.
/// Opens (creating it 0600) the head checkpoint file, to be written in
/// place, and whether it must be laid out afresh (new, or the one-record
/// layout): then both slots get the first checkpoint written.
fn open_head(path: &Path) -> Result<(std::fs::File, bool)> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new().create(true).write(true).truncate(false).mode(0o600).open(path).map_err(io_err(path))?;
    let len = f.metadata().map_err(io_err(path))?.len();
    let fresh = len != 2 * HEAD_SLOT as u64;
    if fresh {
        f.set_len(0).map_err(io_err(path))?;
    }
    Ok((f, fresh))
}

/// The slot text of a checkpoint: signed JSON padded to [`HEAD_SLOT`].
fn head_text(path: &Path, key: &AuditKey, pos: &ChainPos) -> Result<String> {
    let mut text = signed_json(key, "head", pos);
    if text.len() >= HEAD_SLOT {
        return Err(io_err(path)(std::io::Error::other("head checkpoint does not fit its slot")));
    }
    text.extend(std::iter::repeat_n(' ', HEAD_SLOT - 1 - text.len()));
    text.push('\n');
    Ok(text)
}

pub(super) fn read_anchor(conn: &Connection, key: &AuditKey) -> Result<Signed> {
    let text: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'anchor'", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(text.map_or(Signed::Missing, |t| parse_signed(key, "anchor", &t)))
}

pub(super) fn write_anchor(conn: &Connection, key: &AuditKey, pos: &ChainPos) -> Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('anchor', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [signed_json(key, "anchor", pos)],
    )?;
    Ok(())
}

pub(super) fn last_row(conn: &Connection) -> Result<Option<ChainPos>> {
    Ok(conn
        .prepare_cached("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")?
        .query_row(
            [],
            |r| {
                Ok(ChainPos {
                    seq: r.get::<_, i64>(0)? as u64,
                    hash: r.get(1)?,
                })
            },
        )
        .optional()?)
}

/// Makes the database's directory (created 0700 if missing; refused if
/// others may write it) and file (created 0600; an existing one, with its
/// `-wal` and `-shm`, tightened to 0600) private before SQLite opens it.
/// SQLite creates `-wal` and `-shm` with the database file's mode.
pub(super) fn prepare_private(db: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let dir = db.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err(dir))?;
    let mode = std::fs::metadata(dir).map_err(io_err(dir))?.permissions().mode() & 0o7777;
    if mode & 0o002 != 0 {
        return Err(AuditError::Config(format!(
            "directory {} of the audit database is writable by everyone (mode {:03o}): anyone could replace or delete the log and its checkpoint; run `chmod o-w {}`, or set [audit] path to a private directory",
            dir.display(),
            mode & 0o777,
            dir.display()
        )));
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(db) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(db)(e)),
    }
    for file in [db.to_path_buf(), sidecar(db, "-wal"), sidecar(db, "-shm")] {
        let Ok(meta) = std::fs::metadata(&file) else { continue };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(io_err(&file))?;
            tracing::warn!(target: "wasmward::audit", path = %file.display(), "audit file was mode {mode:03o}; now 0600");
        }
    }
    Ok(())
}

/// Opens an existing database for reading tools (verify, prune, tail).
pub(super) fn open_existing(db: &Path) -> Result<Connection> {
    if !db.exists() {
        return Err(AuditError::Io {
            path: db.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no audit database here"),
        });
    }
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// Where the next row chains on: the last row, else the anchor, else
/// genesis, but never below `floor`.
fn tail(conn: &Connection, key: &AuditKey, floor: &ChainPos) -> Result<ChainPos> {
    let pos = match last_row(conn)? {
        Some(p) => p,
        None => match read_anchor(conn, key)? {
            Signed::Valid(p) => p,
            _ => ChainPos::genesis(),
        },
    };
    Ok(if floor.seq > pos.seq {
        floor.clone()
    } else {
        pos
    })
}

/// WAL size (pages) at which the writer checkpoints by itself.
const WAL_BACKSTOP_PAGES: i64 = 16_384;
/// WAL size (pages) above which the checkpoint thread restarts the WAL
/// (briefly holding the writer) instead of a passive checkpoint.
const WAL_RESTART_PAGES: i64 = 8_192;

/// The checkpoint thread's connection to the log at `db`.
pub(super) fn checkpoint_conn(db: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// Copies the committed WAL into the database without blocking the writer
/// (PASSIVE); when the WAL has grown past [`WAL_RESTART_PAGES`] because
/// passive checkpoints cannot catch up with a busy writer, a RESTART one
/// (it waits for the writer's transaction, then lets the WAL start over).
pub(super) fn checkpoint(conn: &Connection) -> Result<()> {
    let (_busy, log, _done): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    if log > WAL_RESTART_PAGES {
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))?;
    }
    Ok(())
}

/// One `record` call's events, waiting for their seqs (contiguous).
pub(super) struct Pending {
    pub ts_ms: u64,
    pub call_id: String,
    pub events: Vec<AuditEvent>,
}

/// A row of the last batch, for tracing: its body is
/// `Store::bodies[body]`.
struct Appended {
    seq: u64,
    kind: &'static str,
    body: std::ops::Range<usize>,
}

/// The writer's connection.
pub(super) struct Store {
    conn: Connection,
    key: AuditKey,
    path: PathBuf,
    /// Never append below this: the head checkpoint seen at open. If the
    /// tail was cut, new rows continue after the checkpoint, so the gap
    /// stays visible to `verify` instead of being papered over.
    floor: ChainPos,
    /// The head slot the next checkpoint goes to.
    head_slot: u8,
    /// The last committed position (for the checkpoint).
    head: ChainPos,
    /// `<db>.head`, open for in-place writes once the first is done.
    head_file: Option<std::fs::File>,
    /// The bodies of the last batch, back to back (reused between batches).
    bodies: Vec<u8>,
    rows: Vec<Appended>,
}

impl Store {
    pub fn open(path: &Path, key: AuditKey, durability: Durability, max_db_mb: Option<u64>) -> Result<Store> {
        prepare_private(path)?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        if let Some(mb) = max_db_mb {
            let page: u64 = conn.pragma_query_value(None, "page_size", |r| r.get::<_, i64>(0))?.max(512) as u64;
            conn.pragma_update(None, "max_page_count", ((mb << 20) / page).max(1) as i64)?;
        }
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(AuditError::Config(format!(
                "{}: cannot use WAL (got {mode})",
                path.display()
            )));
        }
        let sync = match durability {
            Durability::Fsync => "FULL",
            Durability::Commit | Durability::Async => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        conn.execute_batch(SCHEMA)?;
        // Checkpoints (copying the WAL into the database, and fsyncing it)
        // run on their own thread (see `checkpoint`), not in the commit a
        // caller waits for; this is the backstop should that thread fall
        // behind or be missing.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_BACKSTOP_PAGES)?;

        let tail = tail(&conn, &key, &ChainPos::genesis())?;
        let floor = match read_head(path, &key)? {
            Signed::Valid(head) => {
                if head.seq > tail.seq {
                    tracing::error!(
                        target: "wasmward::audit",
                        head = head.seq, last = tail.seq,
                        "audit log tail truncated: rows {}..={} are missing; new rows continue after the checkpoint",
                        tail.seq + 1, head.seq
                    );
                }
                head
            }
            Signed::Invalid(reason) => {
                return Err(AuditError::Checkpoint {
                    path: head_path(path),
                    reason: format!(
                        "{reason}; run `wasmward audit verify`, and move the file aside only if you accept the database as it is"
                    ),
                })
            }
            Signed::Missing | Signed::Unreadable(_) => {
                if tail.seq > 0 {
                    tracing::warn!(target: "wasmward::audit", path = %head_path(path).display(),
                        "audit head checkpoint missing or unreadable; a truncated tail before now cannot be detected");
                }
                ChainPos::genesis()
            }
        };
        Ok(Store {
            conn,
            key,
            path: path.to_path_buf(),
            head: tail.clone(),
            floor,
            head_slot: 0,
            head_file: None,
            bodies: Vec::new(),
            rows: Vec::new(),
        })
    }

    /// Appends the events of `items` in one transaction (redacting every
    /// string first), then rewrites the head checkpoint. The tail is re-read
    /// inside the transaction, so a second writer on the same file cannot
    /// fork the chain. On error, `committed` tells whether the rows made it
    /// (only the checkpoint failed) or the transaction was rolled back.
    /// Returns the number of rows; [`Store::appended`] lists them.
    pub fn append(&mut self, items: &[Pending], redactor: &Redactor) -> Result<usize, AppendError> {
        let rolled_back = |error: AuditError| AppendError { error, committed: false };
        self.bodies.clear();
        self.rows.clear();
        // BEGIN and COMMIT as cached statements: rusqlite's Transaction
        // prepares both again for every batch.
        self.conn.prepare_cached("BEGIN IMMEDIATE").and_then(|mut s| s.execute([])).map_err(|e| rolled_back(e.into()))?;
        let pos = match self.insert(items, redactor) {
            Ok(pos) => pos,
            Err(e) => {
                self.rollback();
                return Err(rolled_back(e));
            }
        };
        if let Err(e) = self.conn.prepare_cached("COMMIT").and_then(|mut s| s.execute([])) {
            self.rollback();
            return Err(rolled_back(e.into()));
        }
        self.head = pos;
        self.write_head().map_err(|error| AppendError { error, committed: true })?;
        Ok(self.rows.len())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Ends the open transaction, if any (a failed COMMIT may have ended it).
    fn rollback(&self) {
        if !self.conn.is_autocommit() {
            if let Err(e) = self.conn.prepare_cached("ROLLBACK").and_then(|mut s| s.execute([])) {
                tracing::warn!(target: "wasmward::audit", error = %e, "audit batch rollback failed");
            }
        }
    }

    /// Inserts the rows of `items` inside the open transaction; returns the
    /// new tail.
    fn insert(&mut self, items: &[Pending], redactor: &Redactor) -> Result<ChainPos> {
        let mut pos = tail(&self.conn, &self.key, &self.floor)?;
        let mut insert = self.conn.prepare_cached(
            "INSERT INTO events(seq, ts_ms, kind, call_id, body, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut spare = String::with_capacity(64);
        for item in items {
            for event in &item.events {
                let seq = pos.seq + 1;
                let start = self.bodies.len();
                let call_id = write_body(&mut self.bodies, seq, item.ts_ms, &item.call_id, event, redactor);
                let body = std::str::from_utf8(&self.bodies[start..])
                    .map_err(|e| AuditError::Write(format!("event body is not UTF-8: {e}")))?;
                let mut hash = std::mem::take(&mut spare);
                self.key.mac_hex_into(&[pos.hash.as_bytes(), body.as_bytes()], &mut hash);
                let kind = event.kind();
                insert.execute(params![seq as i64, item.ts_ms as i64, kind, call_id, body, pos.hash, hash])?;
                spare = std::mem::replace(&mut pos.hash, hash);
                pos.seq = seq;
                self.rows.push(Appended { seq, kind, body: start..self.bodies.len() });
            }
        }
        Ok(pos)
    }

    /// `(seq, kind, body)` of each row the last successful [`Store::append`] wrote.
    pub fn appended(&self) -> impl Iterator<Item = (u64, &'static str, &str)> + '_ {
        self.rows
            .iter()
            .map(|r| (r.seq, r.kind, std::str::from_utf8(&self.bodies[r.body.clone()]).unwrap_or("")))
    }

    /// Writes the head checkpoint of the last commit (again, after a
    /// failure) in place into the next slot of `<db>.head`. Not fsynced
    /// (that would double the cost of a commit): after a power loss the
    /// checkpoint can only be stale (accepted) or unreadable (treated as
    /// missing at open). The file stays open between batches (one pwrite
    /// per batch); after a failed write it is opened again.
    pub fn write_head(&mut self) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let path = head_path(&self.path);
        let text = head_text(&path, &self.key, &self.head)?;
        let file = match self.head_file.take() {
            Some(f) => f,
            None => {
                let (f, fresh) = open_head(&path)?;
                if fresh {
                    f.write_all_at(text.as_bytes(), HEAD_SLOT as u64).map_err(io_err(&path))?;
                }
                f
            }
        };
        file.write_all_at(text.as_bytes(), u64::from(self.head_slot % 2) * HEAD_SLOT as u64)
            .map_err(io_err(&path))?;
        self.head_file = Some(file);
        self.head_slot ^= 1;
        Ok(())
    }
}

/// Why [`Store::append`] failed, and whether the rows were committed.
#[derive(Debug)]
pub(super) struct AppendError {
    pub error: AuditError,
    pub committed: bool,
}
