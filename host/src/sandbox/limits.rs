//! Per-call resource limits: linear memory and table growth, bytes written
//! to disk, and what a refused limit leaves for the audit.
//!
//! A refused growth is remembered so the runtime can report a trap that
//! follows it as `memory_limit` rather than a generic trap, and audit it as
//! a `limit` event even when the guest handled the refusal.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use wasmtime::ResourceLimiter;

/// A per-call limit that refused something the guest asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitHit {
    /// The config field to raise: `memory_mb`, `max_write_bytes`,
    /// `max_handles`, or `process_fd_reserve` (not configurable: the
    /// process is close to its descriptor limit).
    pub limit: &'static str,
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
        let mut hits = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match hits.iter_mut().find(|h| h.limit == limit) {
            Some(h) => h.count += 1,
            None => {
                tracing::warn!(limit, requested, configured, "per-call limit refused a request");
                hits.push(LimitHit { limit, requested, configured, count: 1 });
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
}

/// A write refused by `max_write_bytes`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the call would write {requested} bytes, over max_write_bytes = {max}; raise [tool.limits] max_write_bytes")]
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
/// [`WriteBudget`]; a write past it fails (the guest sees an I/O error)
/// and nothing of it is written.
pub struct BudgetedStream {
    inner: wasmtime_wasi::p2::DynOutputStream,
    budget: WriteBudget,
}

impl BudgetedStream {
    pub fn new(inner: wasmtime_wasi::p2::DynOutputStream, budget: WriteBudget) -> Self {
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
}
