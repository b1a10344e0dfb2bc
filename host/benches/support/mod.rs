//! Helpers shared by the bench binaries (each uses a subset).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The repository root (the parent of `host/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

/// Runs the given `scripts/` build scripts, unless
/// `WASMWARD_EXAMPLE_TOOLS_BUILT=1` says the tools are already built.
pub fn build_tools(scripts: &[&str]) {
    if std::env::var("WASMWARD_EXAMPLE_TOOLS_BUILT").as_deref() == Ok("1") {
        return;
    }
    for script in scripts {
        let ok = std::process::Command::new("bash")
            .arg(repo_root().join("scripts").join(script))
            .status()
            .unwrap_or_else(|e| panic!("cannot run {script}: {e}"))
            .success();
        assert!(ok, "{script} failed");
    }
}

pub fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// Latency percentiles and throughput of one measurement.
pub struct Stats {
    pub p50: Duration,
    pub p99: Duration,
    pub per_sec: f64,
}

impl Stats {
    /// Wall time per call (the inverse of `per_sec`).
    pub fn per_call(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.per_sec)
    }
}

/// `n` calls of `call` one after another (one in flight), after `warmup`
/// unmeasured ones.
pub async fn sequential<F, Fut>(n: usize, warmup: usize, mut call: F) -> Stats
where
    F: FnMut() -> Fut,
    Fut: std::future::Future,
{
    for _ in 0..warmup {
        call().await;
    }
    let mut lat = Vec::with_capacity(n);
    let start = std::time::Instant::now();
    for _ in 0..n {
        let t = std::time::Instant::now();
        call().await;
        lat.push(t.elapsed());
    }
    stats(lat, start.elapsed())
}

pub fn stats(mut lat: Vec<Duration>, wall: Duration) -> Stats {
    lat.sort();
    Stats { p50: percentile(&lat, 0.50), p99: percentile(&lat, 0.99), per_sec: lat.len() as f64 / wall.as_secs_f64() }
}

/// The `q` quantile of sorted latencies.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}
