//! Per-call resource limits: linear memory and table growth, bytes written
//! to disk, and what a refused limit leaves for the audit.
//!
//! A refused growth is remembered so the runtime can report a trap that
//! follows it as `memory_limit` rather than a generic trap, and audit it as
//! a `limit` event even when the guest handled the refusal.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::path::Path;
use std::sync::{Arc, Mutex};
use wasmtime::ResourceLimiter;

/// A per-call limit that refused something the guest asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitHit {
    /// The config field to raise: `memory_mb`, `max_write_bytes`,
    /// `quota_bytes` (of the mount in `mount`), `max_handles`, or
    /// `process_fd_reserve` (not configurable: the process is close to its
    /// descriptor limit).
    pub limit: &'static str,
    /// For `quota_bytes`: the guest path of the mount whose quota refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
    /// What the first refused request would have reached (bytes for memory
    /// and writes, handles for handles).
    pub requested: u64,
    /// The configured value, in the same unit.
    pub configured: u64,
    /// How many requests this limit refused in the call.
    pub count: u64,
}

/// The limits hit during one call, one entry per limit; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct LimitHits(Arc<Mutex<Vec<LimitHit>>>);

impl LimitHits {
    /// Records a refusal by `limit`; the first one's `requested` is kept.
    pub fn record(&self, limit: &'static str, requested: u64, configured: u64) {
        self.record_at(limit, None, requested, configured)
    }

    /// Like [`record`](Self::record), for a limit of one mount.
    pub fn record_at(&self, limit: &'static str, mount: Option<&str>, requested: u64, configured: u64) {
        let mut hits = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match hits.iter_mut().find(|h| h.limit == limit && h.mount.as_deref() == mount) {
            Some(h) => h.count += 1,
            None => {
                tracing::warn!(limit, mount, requested, configured, "per-call limit refused a request");
                hits.push(LimitHit { limit, mount: mount.map(String::from), requested, configured, count: 1 });
            }
        }
    }

    pub fn take(&self) -> Vec<LimitHit> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn get(&self, limit: &str) -> Option<LimitHit> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|h| h.limit == limit).cloned()
    }
}

/// Bytes one call may still write to disk (`max_write_bytes`), shared by
/// every descriptor and stream of the call.
#[derive(Debug, Clone)]
pub struct WriteBudget {
    max: u64,
    used: Arc<AtomicU64>,
    hits: LimitHits,
}

impl WriteBudget {
    pub fn new(max: u64, hits: LimitHits) -> Self {
        WriteBudget { max, used: Arc::default(), hits }
    }

    /// Takes `n` bytes from the budget, or records the refusal and takes
    /// nothing when they do not fit.
    pub fn charge(&self, n: u64) -> Result<(), WriteLimitExceeded> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let want = used.saturating_add(n);
            if want > self.max {
                self.hits.record("max_write_bytes", want, self.max);
                return Err(WriteLimitExceeded { requested: want, max: self.max });
            }
            match self.used.compare_exchange_weak(used, want, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }

    /// Bytes written so far.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Gives back `n` bytes charged for a write that another limit refused.
    pub fn refund(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

/// How many directory entries the usage walk of a quota mount looks at
/// before it gives up and treats the mount as full.
pub const QUOTA_WALK_MAX_ENTRIES: u64 = 100_000;

/// The `quota_bytes` of one write mount for one call: what the mount held
/// when the call started, and every byte the call writes into it since.
///
/// Every written byte is charged, like `max_write_bytes` (an overwrite in
/// place counts although the file does not grow; set-size counts only the
/// growth); removing files frees room for the next call, not this one.
#[derive(Debug, Clone)]
pub struct MountQuota {
    /// Guest path of the mount.
    pub guest: String,
    quota: u64,
    /// Bytes the mount held at the start of the call.
    start: u64,
    used: Arc<AtomicU64>,
    hits: LimitHits,
}

impl MountQuota {
    /// Measures what the mount at `host` holds now (see [`mount_usage`]).
    /// A tree too large to measure counts as full.
    pub fn measure(guest: &str, host: &Path, quota: u64, hits: LimitHits) -> Self {
        let start = match mount_usage(host, QUOTA_WALK_MAX_ENTRIES) {
            Some(bytes) => bytes,
            None => {
                tracing::warn!(
                    mount = guest,
                    max_entries = QUOTA_WALK_MAX_ENTRIES,
                    "quota mount holds too many entries to measure; it counts as full for this call (remove files, or drop quota_bytes)"
                );
                u64::MAX
            }
        };
        MountQuota { guest: guest.to_string(), quota, start, used: Arc::default(), hits }
    }

    /// Takes `n` bytes from what the mount has left, or records the
    /// refusal (`quota_bytes`, with what the mount would hold) and takes
    /// nothing.
    /// Writing nothing always passes, even in a mount already over quota.
    pub fn charge(&self, n: u64) -> Result<(), WriteLimitExceeded> {
        if n == 0 {
            return Ok(());
        }
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let want = used.saturating_add(n);
            let holds = self.start.saturating_add(want);
            if holds > self.quota {
                self.hits.record_at("quota_bytes", Some(&self.guest), holds, self.quota);
                return Err(WriteLimitExceeded { requested: holds, max: self.quota });
            }
            match self.used.compare_exchange_weak(used, want, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }

    /// Gives back `n` bytes charged for a write that another limit refused.
    pub fn refund(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

/// Bytes of the regular files under `root`, walking without following
/// symlinks (a link counts nothing, nor does what it points to); `None`
/// when the tree has more than `max_entries` entries. Unreadable
/// directories are skipped.
pub fn mount_usage(root: &Path, max_entries: u64) -> Option<u64> {
    let mut total = 0u64;
    let mut seen = 0u64;
    let mut dirs = vec![root.to_path_buf()];
    if std::fs::symlink_metadata(root).map_or(true, |m| !m.is_dir()) {
        return Some(0);
    }
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            seen += 1;
            if seen > max_entries {
                return None;
            }
            let Ok(ty) = entry.file_type() else { continue };
            if ty.is_dir() {
                dirs.push(entry.path());
            } else if ty.is_file() {
                total = total.saturating_add(entry.metadata().map_or(0, |m| m.len()));
            }
        }
    }
    Some(total)
}

/// What one file write is charged to: the call's `max_write_bytes` and,
/// when the file is in a mount with a quota, that mount's `quota_bytes`.
/// Either refusing takes nothing from both.
#[derive(Debug, Clone, Default)]
pub struct WriteCharge {
    pub budget: Option<WriteBudget>,
    pub quota: Option<MountQuota>,
}

impl WriteCharge {
    pub fn is_free(&self) -> bool {
        self.budget.is_none() && self.quota.is_none()
    }

    pub fn charge(&self, n: u64) -> Result<(), WriteLimitExceeded> {
        if let Some(b) = &self.budget {
            b.charge(n)?;
        }
        if let Some(q) = &self.quota {
            if let Err(e) = q.charge(n) {
                if let Some(b) = &self.budget {
                    b.refund(n);
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

/// A write refused by `max_write_bytes` or a mount's `quota_bytes`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the write would reach {requested} bytes, over {max} (max_write_bytes or the mount's quota_bytes)")]
pub struct WriteLimitExceeded {
    pub requested: u64,
    pub max: u64,
}

/// Caps memory per call and records the peak and any refusal.
#[derive(Debug)]
pub struct MemoryLimiter {
    max_memory_bytes: usize,
    max_table_elements: usize,
    /// Sum of current sizes of all memories of the instance.
    current: usize,
    pub peak_bytes: usize,
    /// The size the first refused growth asked for, if any.
    pub refused_bytes: Option<usize>,
    /// How many growths were refused.
    pub refusals: u64,
}

impl MemoryLimiter {
    pub fn new(max_memory_bytes: usize) -> Self {
        MemoryLimiter {
            max_memory_bytes,
            max_table_elements: 1_000_000,
            current: 0,
            peak_bytes: 0,
            refused_bytes: None,
            refusals: 0,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.current - current.min(self.current) + desired;
        if total > self.max_memory_bytes {
            self.refused_bytes.get_or_insert(total);
            self.refusals += 1;
            return Ok(false);
        }
        self.current = total;
        self.peak_bytes = self.peak_bytes.max(total);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= self.max_table_elements)
    }
}

/// A file's output stream whose writes are charged to the call's
/// [`WriteBudget`] and its mount's quota; a write past either fails (the
/// guest sees an I/O error) and nothing of it is written.
pub struct BudgetedStream {
    inner: wasmtime_wasi::p2::DynOutputStream,
    budget: WriteCharge,
}

impl BudgetedStream {
    pub fn new(inner: wasmtime_wasi::p2::DynOutputStream, budget: WriteCharge) -> Self {
        BudgetedStream { inner, budget }
    }

    fn charge(&self, n: usize) -> wasmtime_wasi::p2::StreamResult<()> {
        self.budget
            .charge(n as u64)
            .map_err(|e| wasmtime_wasi::p2::StreamError::LastOperationFailed(wasmtime::Error::new(e)))
    }
}

#[async_trait::async_trait]
impl wasmtime_wasi::p2::Pollable for BudgetedStream {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

#[async_trait::async_trait]
impl wasmtime_wasi::p2::OutputStream for BudgetedStream {
    fn write(&mut self, bytes: bytes::Bytes) -> wasmtime_wasi::p2::StreamResult<()> {
        self.charge(bytes.len())?;
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> wasmtime_wasi::p2::StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> wasmtime_wasi::p2::StreamResult<usize> {
        self.inner.check_write()
    }

    async fn blocking_write_and_flush(&mut self, bytes: bytes::Bytes) -> wasmtime_wasi::p2::StreamResult<()> {
        self.charge(bytes.len())?;
        self.inner.blocking_write_and_flush(bytes).await
    }

    fn write_zeroes(&mut self, nelem: usize) -> wasmtime_wasi::p2::StreamResult<()> {
        self.charge(nelem)?;
        self.inner.write_zeroes(nelem)
    }

    async fn write_ready(&mut self) -> wasmtime_wasi::p2::StreamResult<usize> {
        self.inner.write_ready().await
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_within_the_cap_is_allowed_and_beyond_is_refused() {
        // (cap, [(current, desired)], allowed of the last, refused_bytes)
        let cases: &[(usize, &[(usize, usize)], bool, Option<usize>)] = &[
            (100, &[(0, 50)], true, None),
            (100, &[(0, 100)], true, None),
            (100, &[(0, 101)], false, Some(101)),
            (100, &[(0, 60), (60, 90)], true, None),
            (100, &[(0, 60), (60, 120)], false, Some(120)),
        ];
        for (cap, steps, last_ok, refused) in cases {
            let mut l = MemoryLimiter::new(*cap);
            let mut ok = true;
            for (cur, want) in *steps {
                ok = l.memory_growing(*cur, *want, None).unwrap();
            }
            assert_eq!(ok, *last_ok, "cap {cap} steps {steps:?}");
            assert_eq!(l.refused_bytes, *refused);
        }
    }

    #[test]
    fn the_write_budget_refuses_what_does_not_fit_and_records_it() {
        // (max, charges, results, used, hit (requested, count))
        let cases: &[(u64, &[u64], &[bool], u64, Option<(u64, u64)>)] = &[
            (10, &[4, 6], &[true, true], 10, None),
            (10, &[4, 7], &[true, false], 4, Some((11, 1))),
            (10, &[11, 2, 20], &[false, true, false], 2, Some((11, 2))),
            (0, &[0, 1], &[true, false], 0, Some((1, 1))),
        ];
        for (max, charges, results, used, hit) in cases {
            let hits = LimitHits::default();
            let b = WriteBudget::new(*max, hits.clone());
            let got: Vec<bool> = charges.iter().map(|n| b.charge(*n).is_ok()).collect();
            assert_eq!(&got, results, "max {max} charges {charges:?}");
            assert_eq!(b.used(), *used);
            let h = hits.get("max_write_bytes").map(|h| (h.requested, h.count));
            assert_eq!(h, *hit, "max {max} charges {charges:?}");
        }
    }

    #[test]
    fn a_mount_quota_counts_what_the_mount_held_and_refuses_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("x"), [0u8; 100]).unwrap();
        std::fs::write(root.join("a/b/y"), [0u8; 50]).unwrap();
        // A symlink to a big file outside counts nothing, nor does its target.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("big"), [0u8; 4096]).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out-link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("big"), root.join("big-link")).unwrap();
        assert_eq!(mount_usage(root, 100), Some(150));
        assert_eq!(mount_usage(root, 5), None, "6 entries: over the bound");
        assert_eq!(mount_usage(&root.join("missing"), 5), Some(0));

        // (quota, charges, results, hit (requested, count))
        let cases: &[(u64, &[u64], &[bool], Option<(u64, u64)>)] = &[
            (200, &[50], &[true], None),
            (200, &[40, 11, 10], &[true, false, true], Some((201, 1))),
            (150, &[0, 1], &[true, false], Some((151, 1))),
            (100, &[0, 1], &[true, false], Some((151, 1))),
        ];
        for (quota, charges, results, hit) in cases {
            let hits = LimitHits::default();
            let q = MountQuota::measure("/out", root, *quota, hits.clone());
            let got: Vec<bool> = charges.iter().map(|n| q.charge(*n).is_ok()).collect();
            assert_eq!(&got, results, "quota {quota} charges {charges:?}");
            let h = hits.get("quota_bytes").map(|h| (h.requested, h.count));
            assert_eq!(h, *hit, "quota {quota} charges {charges:?}");
            if hit.is_some() {
                assert_eq!(hits.get("quota_bytes").unwrap().mount.as_deref(), Some("/out"));
            }
        }
    }

    #[test]
    fn a_write_refused_by_one_limit_takes_nothing_from_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let hits = LimitHits::default();
        let budget = WriteBudget::new(100, hits.clone());
        let quota = MountQuota::measure("/q", dir.path(), 10, hits.clone());
        let both = WriteCharge { budget: Some(budget.clone()), quota: Some(quota.clone()) };
        assert!(both.charge(8).is_ok());
        assert!(both.charge(5).is_err(), "over the quota");
        assert_eq!(budget.used(), 8, "the budget got its 5 bytes back");
        let small = WriteCharge { budget: Some(WriteBudget::new(1, hits.clone())), quota: Some(quota.clone()) };
        assert!(small.charge(2).is_err(), "over the budget");
        assert!(quota.charge(2).is_ok(), "the quota was not charged: 8 + 2 = 10 fits");
    }
}
