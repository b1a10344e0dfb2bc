//! Rust vs Python vs JS tools: the same `greet(name) -> string` called with
//! a fresh instance per call, plus each component's compile time (no cache)
//! and its load time from a warm compile cache (what a restart costs).
//!
//! Run: `cargo bench -p wasmward --bench lang_tools`
//! Env: `BENCH_CALLS` (default 2000, Rust), `BENCH_LANG_CALLS` (default 300,
//! Python and JS), `BENCH_LOADS` (default 5 warm loads per tool),
//! `WASMWARD_EXAMPLE_TOOLS_BUILT=1` to skip building the example tools.

#[path = "support/mod.rs"]
mod support;
use support::{env_usize, percentile, repo_root};

use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasmward::component::cache::CacheOutcome;
use wasmward::sandbox::{Limits, SandboxPlan};
use wasmward::{Runtime, RuntimeOptions};

fn runtime(cache_dir: Option<PathBuf>) -> Runtime {
    Runtime::new(RuntimeOptions { max_concurrent_calls: 16, cache_dir, ..Default::default() }).expect("runtime")
}

fn plan(name: &str) -> SandboxPlan {
    SandboxPlan::deny_all(name, Limits::default())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

struct Row {
    lang: &'static str,
    size_mb: f64,
    compile: Duration,
    warm_load: Duration,
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

async fn measure(lang: &'static str, path: &Path, calls: usize, loads: usize) -> Row {
    let size_mb = std::fs::metadata(path).expect("tool file").len() as f64 / (1 << 20) as f64;
    let name = "t";
    let started = Instant::now();
    runtime(None).load_tool(plan(name), path, None).expect("compile");
    let compile = started.elapsed();

    let cache = tempfile::tempdir().expect("temp cache");
    let rt = runtime(Some(cache.path().to_path_buf()));
    let first = rt.load_tool(plan(name), path, None).expect("first load");
    assert_eq!(first.loaded.cache, CacheOutcome::Miss);
    // A restart comes later than this: an artifact younger than the cache's
    // racy-timestamp window is checked by hash instead of by its stamp.
    std::thread::sleep(Duration::from_millis(2100));
    runtime(Some(cache.path().to_path_buf())).load_tool(plan(name), path, None).expect("stamping load");
    let mut warm = Vec::new();
    for _ in 0..loads {
        let rt = runtime(Some(cache.path().to_path_buf()));
        let t = Instant::now();
        let tool = rt.load_tool(plan(name), path, None).expect("warm load");
        warm.push(t.elapsed());
        assert_eq!(tool.loaded.cache, CacheOutcome::Hit);
    }
    warm.sort();

    let rt = runtime(Some(cache.path().to_path_buf()));
    rt.set_tools(vec![rt.load_tool(plan(name), path, None).expect("load")]);
    let args = json!({"name": "bench"});
    for _ in 0..calls.min(20) {
        rt.call(name, "greet", &args).await.outcome.expect("warm-up call");
    }
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let rec = rt.call(name, "greet", &args).await;
        times.push(t.elapsed());
        assert_eq!(rec.outcome.expect("call"), "Hello, bench!");
    }
    let mean = times.iter().sum::<Duration>() / calls as u32;
    times.sort();
    Row { lang, size_mb, compile, warm_load: percentile(&warm, 0.5), p50: percentile(&times, 0.5), p99: percentile(&times, 0.99), mean }
}

#[tokio::main]
async fn main() {
    support::build_tools(&["build-tools.sh", "build-lang-tools.sh"]);
    let calls = env_usize("BENCH_CALLS", 2000);
    let lang_calls = env_usize("BENCH_LANG_CALLS", 300);
    let loads = env_usize("BENCH_LOADS", 5);
    let root = repo_root();
    let tools = [
        ("Rust", root.join("example-tools/target/wasm32-wasip2/release/text.wasm"), calls),
        ("Python", root.join("example-tools/target/lang/python-text.wasm"), lang_calls),
        ("JS", root.join("example-tools/target/lang/js-text.wasm"), lang_calls),
    ];
    let mut rows = Vec::new();
    for (lang, path, n) in &tools {
        eprintln!("measuring {lang} ({})...", path.display());
        rows.push(measure(lang, path, *n, loads).await);
    }
    let rust_mean = rows[0].mean;
    println!("| tool (greet) | size | compile (no cache) | load, warm cache (p50 of {loads}) | call p50 | call p99 | call mean | × Rust |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.1} MB | {:.0} ms | {:.1} ms | {:.3} ms | {:.3} ms | {:.3} ms | {:.1} |",
            r.lang,
            r.size_mb,
            ms(r.compile),
            ms(r.warm_load),
            ms(r.p50),
            ms(r.p99),
            ms(r.mean),
            r.mean.as_secs_f64() / rust_mean.as_secs_f64()
        );
    }
}
