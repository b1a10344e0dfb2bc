//! The batched writer: one thread owns the SQLite connection (rusqlite is
//! blocking) and commits whatever is queued in one transaction (group
//! commit), so concurrent calls share one commit (and one fsync). A second
//! thread, with its own connection, checkpoints the WAL into the database
//! off the commit path.
//!
//! Fail closed: a batch that cannot be committed (disk full, read-only
//! file system, `[audit] max_db_mb` reached) is kept, in order, and written
//! again every [`RETRY`] until it goes in; until then
//! [`AuditLog::unavailable`] says why, and the host refuses calls. Nothing
//! is dropped silently: events beyond [`MAX_HELD_EVENTS`], or still held at
//! shutdown, are reported as lost in an error line with their count.
//!
//! ```no_run
//! # async fn demo(cfg: wasmward::audit::AuditConfig) -> wasmward::audit::Result<()> {
//! use wasmward::audit::{AuditEvent, AuditLog, GateEvent};
//! let log = AuditLog::open(&cfg)?;
//! let for_a_call = log.clone(); // cheap: an Arc inside
//! for_a_call.record(vec![AuditEvent::Gate(GateEvent {
//!     tool: "t".into(), caller: "c".into(), stage: "token".into(),
//!     decision: "deny".into(), reason: "revoked".into(),
//! })]).await?;
//! log.shutdown().await // flushes everything queued
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};

use super::config::{AuditConfig, Durability};
use super::error::{AuditError, Result};
use super::event::AuditEvent;
use super::key::AuditKey;
use super::redact::Redactor;
use super::store::{Pending, Store};

/// Most events per transaction (a batch takes whole records, so it can
/// end a little past this).
const MAX_BATCH_EVENTS: usize = 2048;
/// How often a batch that failed is written again.
pub const RETRY: Duration = Duration::from_millis(200);
/// Most events held while the database cannot be written.
pub const MAX_HELD_EVENTS: usize = 100_000;

/// Why the log cannot be written now (`None`: it can).
type Health = Arc<std::sync::Mutex<Option<String>>>;

type Ack = oneshot::Sender<Result<(), String>>;

enum Msg {
    Events { record: Pending, ack: Option<Ack> },
    /// A caller's own commit put its rows in but not the head checkpoint:
    /// the writer rewrites the head until it can.
    HeadPending,
    Shutdown,
}

/// What the writer thread and a caller committing its own record share.
/// `store` is taken (`None`) when the writer stops.
struct Shared {
    store: Option<Store>,
    redactor: Redactor,
    since_checkpoint: usize,
    checkpointer: Option<std::sync::mpsc::SyncSender<()>>,
}

impl Shared {
    /// Appends `items` in one transaction; asks for a checkpoint every
    /// [`CHECKPOINT_EVERY_ROWS`] rows and mirrors the rows to `tracing`.
    fn commit(&mut self, items: &[Pending]) -> Result<usize, super::store::AppendError> {
        let Some(store) = self.store.as_mut() else {
            return Err(super::store::AppendError { error: AuditError::Closed, committed: false });
        };
        let rows = store.append(items, &self.redactor)?;
        self.since_checkpoint += rows;
        if self.since_checkpoint >= CHECKPOINT_EVERY_ROWS {
            if let Some(tx) = &self.checkpointer {
                // Full: a checkpoint is already asked for.
                let _ = tx.try_send(());
            }
            self.since_checkpoint = 0;
        }
        if tracing::enabled!(target: "wasmward::audit", tracing::Level::WARN) {
            store.appended().for_each(trace_row);
        }
        Ok(rows)
    }
}

struct Inner {
    tx: mpsc::Sender<Msg>,
    shared: Arc<std::sync::Mutex<Shared>>,
    /// Records being recorded now (in `record_with_id`), for [`commit_here`].
    recording: std::sync::atomic::AtomicUsize,
    /// Records committed on the caller's thread (tests).
    inline: std::sync::atomic::AtomicU64,
    durability: Durability,
    record_arguments: bool,
    path: PathBuf,
    done: watch::Receiver<bool>,
    health: Health,
}

/// Handle to the audit log. Clones share one writer.
#[derive(Clone)]
pub struct AuditLog {
    inner: Option<Arc<Inner>>,
}

/// A fresh call id (32 hex chars).
///
/// The first 12 are the wall-clock milliseconds and the other 20 are random
/// (80 bits), so ids sort by time: the `call_id` index then grows at its
/// end, and a commit writes one index page instead of one per call.
pub fn new_call_id() -> String {
    let ms = now_ms() & 0xffff_ffff_ffff;
    let random = rand::random::<u128>() & ((1u128 << 80) - 1);
    format!("{ms:012x}{random:020x}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl AuditLog {
    /// Validates `cfg`, loads or creates the key, opens the database and
    /// starts the writer thread.
    pub fn open(cfg: &AuditConfig) -> Result<AuditLog> {
        cfg.validate()?;
        let key = AuditKey::load_or_create(&cfg.path)?;
        AuditLog::open_with_key(cfg, key)
    }

    /// Like [`AuditLog::open`] with an explicit key (tests, embedding).
    pub fn open_with_key(cfg: &AuditConfig, key: AuditKey) -> Result<AuditLog> {
        cfg.validate()?;
        let redactor = cfg.redactor()?;
        let store = Store::open(&cfg.path, key, cfg.durability, cfg.max_db_mb)?;
        // `Shared` owns the checkpoint thread's only sender; the writer
        // joins the thread after dropping it.
        let (checkpointer, checkpoint_thread) = start_checkpointer(store.path()).unzip();
        let shared = Arc::new(std::sync::Mutex::new(Shared { store: Some(store), redactor, since_checkpoint: 0, checkpointer }));
        let writer_shared = shared.clone();
        let (tx, rx) = mpsc::channel(cfg.queue_capacity);
        let (done_tx, done) = watch::channel(false);
        let health = Health::default();
        let writer_health = health.clone();
        std::thread::Builder::new()
            .name("wasmward-audit".into())
            .spawn(move || {
                // Set on every exit path, panics included, so shutdown never hangs.
                struct Done(watch::Sender<bool>);
                impl Drop for Done {
                    fn drop(&mut self) {
                        self.0.send_replace(true);
                    }
                }
                let _done = Done(done_tx);
                run(writer_shared, checkpoint_thread, rx, writer_health);
            })
            .map_err(|e| AuditError::Write(format!("cannot start writer thread: {e}")))?;
        Ok(AuditLog {
            inner: Some(Arc::new(Inner {
                tx,
                shared,
                recording: std::sync::atomic::AtomicUsize::new(0),
                inline: std::sync::atomic::AtomicU64::new(0),
                durability: cfg.durability,
                record_arguments: cfg.record_arguments,
                path: cfg.path.clone(),
                done,
                health,
            })),
        })
    }

    /// A log that records nothing (for tools run without auditing, and tests).
    pub fn disabled() -> AuditLog {
        AuditLog { inner: None }
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    pub fn path(&self) -> Option<&Path> {
        self.inner.as_deref().map(|i| i.path.as_path())
    }

    /// Why the database cannot be written now (a batch failed to commit and
    /// is held until it can be), or `None` when it can. The host refuses
    /// calls while this is set.
    pub fn unavailable(&self) -> Option<String> {
        let inner = self.inner.as_deref()?;
        inner.health.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Batches waiting for the writer (0 when disabled); for metrics.
    pub fn queue_depth(&self) -> usize {
        self.inner.as_deref().map_or(0, |i| i.tx.max_capacity() - i.tx.capacity())
    }

    /// Records one call's events under a fresh call id; see [`AuditLog::record_with_id`].
    pub async fn record(&self, events: Vec<AuditEvent>) -> Result<()> {
        self.record_with_id(&new_call_id(), events).await
    }

    /// Records committed on the caller's own thread so far.
    #[cfg(test)]
    pub(crate) fn inline_commits(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.inline.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The lock the writer and inline commits take around the store.
    #[cfg(test)]
    pub(crate) fn store_lock(&self) -> Arc<std::sync::Mutex<impl Sized>> {
        self.inner.as_ref().expect("an enabled log").shared.clone()
    }

    /// Records `events` (a call and its denials) under `call_id`, contiguously.
    /// Waits while the queue is full. Under `durability = "commit"` resolves
    /// once they are committed and the head checkpoint is written.
    pub async fn record_with_id(&self, call_id: &str, events: Vec<AuditEvent>) -> Result<()> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        if events.is_empty() {
            return Ok(());
        }
        let mut events = events;
        if !inner.record_arguments {
            for event in &mut events {
                if let AuditEvent::Call(c) = event {
                    c.args = None;
                }
            }
        }
        let record = Pending { ts_ms: now_ms(), call_id: call_id.to_string(), events };
        let _recording = Recording::enter(&inner.recording);
        let record = match commit_here(inner, record) {
            Here::Committed => return Ok(()),
            Here::HeadFailed(why) => {
                // The rows are in; the writer rewrites the head until it can.
                let _ = inner.tx.send(Msg::HeadPending).await;
                return Err(AuditError::Write(why));
            }
            Here::ToWriter(record) => record,
        };
        let (ack, done) = match inner.durability {
            Durability::Commit | Durability::Fsync => {
                let (a, d) = oneshot::channel();
                (Some(a), Some(d))
            }
            Durability::Async => (None, None),
        };
        inner
            .tx
            .send(Msg::Events { record, ack })
            .await
            .map_err(|_| AuditError::Closed)?;
        match done {
            Some(done) => done
                .await
                .map_err(|_| AuditError::Closed)?
                .map_err(AuditError::Write),
            None => Ok(()),
        }
    }

    /// Stops accepting events, commits everything already queued (from every
    /// clone), closes the database and returns when that is done.
    pub async fn shutdown(self) -> Result<()> {
        let Some(inner) = self.inner else {
            return Ok(());
        };
        // Fails only if the writer already stopped; then just wait for it.
        let _ = inner.tx.send(Msg::Shutdown).await;
        let mut done = inner.done.clone();
        done.wait_for(|d| *d)
            .await
            .map_err(|_| AuditError::Closed)?;
        Ok(())
    }
}

/// Counts a record in `recording` while it is being recorded (a dropped,
/// cancelled future included).
struct Recording<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Recording<'a> {
    fn enter(n: &'a std::sync::atomic::AtomicUsize) -> Recording<'a> {
        n.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Recording(n)
    }
}

impl Drop for Recording<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// What became of a record offered to [`commit_here`].
enum Here {
    Committed,
    /// The rows went in but the head checkpoint did not (health is set).
    HeadFailed(String),
    /// Not committed here: the writer thread takes it.
    ToWriter(Pending),
}

/// Under `commit`, a record is committed on the caller's thread when it is
/// the only one being recorded and the writer is idle (nothing queued, the
/// store not locked, the log healthy): a lone call then pays for its SQLite
/// transaction, not for three cross-thread wake-ups (to the writer, back to
/// the runtime, and to the worker that answers). With company, records go
/// to the writer, whose batches grow by themselves (one transaction for
/// many calls beats one each). A failed transaction
/// is rolled back and handed to the writer, which holds and retries it as
/// before; `fsync` and `async` always use the writer.
fn commit_here(inner: &Inner, record: Pending) -> Here {
    let idle = inner.durability == Durability::Commit
        && inner.recording.load(std::sync::atomic::Ordering::Acquire) == 1
        && !inner.tx.is_closed()
        && inner.tx.capacity() == inner.tx.max_capacity()
        && inner.health.lock().unwrap_or_else(|e| e.into_inner()).is_none();
    if !idle {
        return Here::ToWriter(record);
    }
    let Ok(mut shared) = inner.shared.try_lock() else {
        return Here::ToWriter(record);
    };
    let result = shared.commit(std::slice::from_ref(&record));
    if result.as_ref().map_or_else(|e| e.committed, |_| true) {
        inner.inline.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    match result {
        Ok(_) => Here::Committed,
        Err(e) if e.committed => {
            let why = e.error.to_string();
            *inner.health.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
            Here::HeadFailed(why)
        }
        Err(_) => Here::ToWriter(record),
    }
}

/// Rows committed between two requests to the checkpoint thread (a few
/// hundred WAL pages).
const CHECKPOINT_EVERY_ROWS: usize = 2048;

type Checkpointer = (std::sync::mpsc::SyncSender<()>, std::thread::JoinHandle<()>);

/// The checkpoint thread: checkpoints whenever the writer asks, until its
/// sender is dropped. `None` if it cannot start (the writer's own
/// backstop autocheckpoint then does the work).
fn start_checkpointer(db: &Path) -> Option<Checkpointer> {
    let conn = match super::store::checkpoint_conn(db) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(target: "wasmward::audit", error = %e, "audit checkpoint thread not started; the writer checkpoints by itself");
            return None;
        }
    };
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    let handle = std::thread::Builder::new()
        .name("wasmward-audit-ckpt".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                if let Err(e) = super::store::checkpoint(&conn) {
                    tracing::warn!(target: "wasmward::audit", error = %e, "audit WAL checkpoint failed; retried after the next rows");
                }
            }
        })
        .map_err(|e| tracing::warn!(target: "wasmward::audit", error = %e, "audit checkpoint thread not started"))
        .ok()?;
    Some((tx, handle))
}

/// The writer thread. Group commit that pipelines: each batch is everything
/// queued while the previous one was being committed (up to
/// [`MAX_BATCH_EVENTS`]), so under load batches grow by themselves and a
/// lone caller never waits for company.
fn run(shared: Arc<std::sync::Mutex<Shared>>, checkpoint_thread: Option<std::thread::JoinHandle<()>>, mut rx: mpsc::Receiver<Msg>, health: Health) {
    // Records of batches that failed, oldest first, to be written again.
    let mut held: Vec<Pending> = Vec::new();
    // The rows went in but the head checkpoint did not.
    let mut head_pending = false;
    let mut closed = false;
    let mut acks: Vec<Ack> = Vec::new();
    loop {
        let failing = !held.is_empty() || head_pending;
        let mut items = std::mem::take(&mut held);
        let mut events: usize = items.iter().map(|p| p.events.len()).sum();
        if !failing {
            match rx.blocking_recv() {
                Some(first) => take(first, &mut rx, &mut items, &mut events, &mut acks, &mut head_pending),
                None => break,
            }
        } else {
            // Calls are refused meanwhile, but refusals and gate events
            // still come: take what is there, else wait before retrying.
            match rx.try_recv() {
                Ok(first) => take(first, &mut rx, &mut items, &mut events, &mut acks, &mut head_pending),
                Err(mpsc::error::TryRecvError::Empty) => std::thread::sleep(RETRY),
                Err(mpsc::error::TryRecvError::Disconnected) => closed = true,
            }
        }
        while events < MAX_BATCH_EVENTS {
            match rx.try_recv() {
                Ok(msg) => take(msg, &mut rx, &mut items, &mut events, &mut acks, &mut head_pending),
                Err(_) => break,
            }
        }
        let mut guard = shared.lock().unwrap_or_else(|e| e.into_inner());
        let result = if items.is_empty() {
            if head_pending {
                match guard.store.as_mut() {
                    Some(store) => store.write_head().map_err(|error| super::store::AppendError { error, committed: true }).map(|()| 0),
                    None => break,
                }
            } else {
                continue;
            }
        } else {
            guard.commit(&items)
        };
        drop(guard);
        let result = match result {
            Ok(_) => {
                head_pending = false;
                let was = health.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(why) = was {
                    tracing::warn!(target: "wasmward::audit", events, "audit log writable again (it failed: {why}); the held events are committed and calls are accepted");
                }
                Ok(())
            }
            Err(e) => {
                let why = e.error.to_string();
                if e.committed {
                    head_pending = true;
                } else {
                    held = items;
                    if events > MAX_HELD_EVENTS {
                        // Drop the oldest whole records past the bound.
                        let mut lost = 0;
                        let mut cut = 0;
                        while events - lost > MAX_HELD_EVENTS && cut < held.len() {
                            lost += held[cut].events.len();
                            cut += 1;
                        }
                        held.drain(..cut);
                        tracing::error!(target: "wasmward::audit", lost, "audit events LOST: more than {MAX_HELD_EVENTS} are held while the database cannot be written");
                    }
                    if !failing {
                        tracing::error!(target: "wasmward::audit", events, error = %why,
                            "audit batch not committed: holding it and refusing calls until the database can be written (free disk space, raise [audit] max_db_mb, or run `wasmward audit prune`)");
                    }
                }
                *health.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
                Err(why)
            }
        };
        for ack in acks.drain(..) {
            let _ = ack.send(result.clone());
        }
        if closed {
            if !held.is_empty() {
                let lost: usize = held.iter().map(|p| p.events.len()).sum();
                tracing::error!(target: "wasmward::audit", lost, "audit events LOST at shutdown: the database still cannot be written");
            }
            break;
        }
    }
    // The checkpoint thread closes its connection first, so the writer's,
    // the last, checkpoints and removes the WAL as before.
    let store = {
        let mut guard = shared.lock().unwrap_or_else(|e| e.into_inner());
        guard.checkpointer = None;
        guard.store.take()
    };
    if let Some(handle) = checkpoint_thread {
        let _ = handle.join();
    }
    drop(store);
}

fn take(msg: Msg, rx: &mut mpsc::Receiver<Msg>, items: &mut Vec<Pending>, events: &mut usize, acks: &mut Vec<Ack>, head_pending: &mut bool) {
    match msg {
        Msg::Events { record, ack } => {
            *events += record.events.len();
            items.push(record);
            acks.extend(ack);
        }
        Msg::HeadPending => *head_pending = true,
        // Closing keeps what is queued readable; later sends fail (Closed).
        Msg::Shutdown => rx.close(),
    }
}

/// Mirrors each committed (redacted) event to `tracing`.
fn trace_row((seq, kind, body): (u64, &'static str, &str)) {
    match kind {
        "denial" => tracing::warn!(target: "wasmward::audit", seq, kind = "denial", event = body),
        "gate" if body.contains("\"decision\":\"deny\"") => {
            tracing::warn!(target: "wasmward::audit", seq, kind = "gate", event = body)
        }
        kind => tracing::info!(target: "wasmward::audit", seq, kind, event = body),
    }
}
