//! Call overhead of a trivial tool call (`text.greet`), a fresh instance per
//! call, compared in one run against:
//!
//! - bare wasmtime: the same component on an engine configured like
//!   wasmward's (`runtime::engine::build_engine`), a linker with only
//!   wasmtime-wasi p2 + wasi-http, `InstancePre` + fresh `Store` + typed call;
//! - a `python3 -c 'print(...)'` subprocess per call.
//!
//! Run: `cargo bench -p wasmward --bench call_overhead`
//! Env: `BENCH_CALLS` (default 20000), `BENCH_PY_CALLS` (default 100),
//! `WASMWARD_EXAMPLE_TOOLS_BUILT=1` to skip building the example tools.

#[path = "support/mod.rs"]
mod support;
use support::{env_usize, stats, us, Stats};

use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, ResourceTable, TypedFunc, Val};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};
use wasmward::config::Config;
use wasmward::host::Host;
use wasmward::runtime::engine;
use wasmward::sandbox::{Limits, SandboxPlan, SandboxState};
use wasmward::{Runtime, RuntimeOptions};

const MAX_CONCURRENT: u32 = 64;

// ------------------------------------------------------------ bare wasmtime

struct BareState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: [(); 0],
}

impl WasiView for BareState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for BareState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

struct Bare {
    engine: Engine,
    pre: InstancePre<BareState>,
    greet: ComponentExportIndex,
    ticks: u64,
}

impl Bare {
    fn new(path: &Path) -> Bare {
        let engine = engine::build_engine(&engine::PoolSizes::for_concurrency(MAX_CONCURRENT)).unwrap();
        engine::start_epoch_ticker(&engine);
        let component = Component::from_file(&engine, path).unwrap();
        let mut linker: Linker<BareState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).unwrap();
        let pre = linker.instantiate_pre(&component).unwrap();
        let greet = component.get_export_index(None, "greet").expect("greet export");
        Bare { engine, pre, greet, ticks: engine::ticks_for(Limits::default().timeout) }
    }

    async fn call(&self, name: &str) -> String {
        let state = BareState {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: [],
        };
        let mut store = Store::new(&self.engine, state);
        store.set_epoch_deadline(self.ticks);
        store.epoch_deadline_trap();
        store.set_fuel(u64::MAX).unwrap();
        let instance = self.pre.instantiate_async(&mut store).await.unwrap();
        let f: TypedFunc<(String,), (String,)> = instance.get_typed_func(&mut store, self.greet).unwrap();
        let (out,) = f.call_async(&mut store, (name.to_string(),)).await.unwrap();
        out
    }
}

// ----------------------------------- bare wasmtime + wasmward's Store data

/// Bare wasmtime, but with wasmward's linker (`sandbox::add_to_linker`) and
/// per-call `SandboxState` + memory limiter: splits wasmward's overhead into
/// the sandbox state and everything else (JSON, `Val`s, timeout, record).
struct Sandboxed {
    engine: Engine,
    pre: InstancePre<SandboxState>,
    greet: ComponentExportIndex,
    plan: Arc<SandboxPlan>,
    resolver: Arc<dyn wasmward::sandbox::http::Resolver>,
    ticks: u64,
}

impl Sandboxed {
    fn new(path: &Path) -> Sandboxed {
        let engine = engine::build_engine(&engine::PoolSizes::for_concurrency(MAX_CONCURRENT)).unwrap();
        engine::start_epoch_ticker(&engine);
        let component = Component::from_file(&engine, path).unwrap();
        let mut linker: Linker<SandboxState> = Linker::new(&engine);
        wasmward::sandbox::add_to_linker(&mut linker).unwrap();
        let pre = linker.instantiate_pre(&component).unwrap();
        let greet = component.get_export_index(None, "greet").expect("greet export");
        Sandboxed {
            engine,
            pre,
            greet,
            plan: Arc::new(SandboxPlan::deny_all("text", Limits::default())),
            resolver: Arc::new(wasmward::sandbox::http::SystemResolver),
            ticks: engine::ticks_for(Limits::default().timeout),
        }
    }

    async fn store(&self) -> Store<SandboxState> {
        let mut store = Store::new(&self.engine, SandboxState::new(self.plan.clone(), self.resolver.clone()).unwrap());
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(self.ticks);
        store.epoch_deadline_trap();
        store.set_fuel(u64::MAX).unwrap();
        store
    }

    async fn call_typed(&self, name: &str) -> String {
        let mut store = self.store().await;
        let instance = self.pre.instantiate_async(&mut store).await.unwrap();
        let f: TypedFunc<(String,), (String,)> = instance.get_typed_func(&mut store, self.greet).unwrap();
        f.call_async(&mut store, (name.to_string(),)).await.unwrap().0
    }

    async fn call_dynamic(&self, name: &str) -> String {
        let mut store = self.store().await;
        let instance = self.pre.instantiate_async(&mut store).await.unwrap();
        let f = instance.get_func(&mut store, self.greet).unwrap();
        let mut results = [Val::Bool(false)];
        f.call_async(&mut store, &[Val::String(name.into())], &mut results).await.unwrap();
        match &results[0] {
            Val::String(s) => s.clone(),
            v => panic!("{v:?}"),
        }
    }
}

// ------------------------------------------------------------------ setups

struct Setup {
    runtime: Runtime,
    host: Host,
    bare: Bare,
    sandboxed: Sandboxed,
}

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Runtime,
    Host,
    Bare,
    SandboxedTyped,
    SandboxedDynamic,
}

impl Which {
    fn label(self) -> &'static str {
        match self {
            Which::Runtime => "wasmward Runtime::call",
            Which::Host => "wasmward Host::call (audit async)",
            Which::Bare => "bare wasmtime",
            Which::SandboxedTyped => "bare + SandboxState, typed call",
            Which::SandboxedDynamic => "bare + SandboxState, Val call",
        }
    }
}

impl Setup {
    async fn call(&self, which: Which) {
        let args = json!({"name": "x"});
        match which {
            Which::Runtime => {
                let r = self.runtime.call("text", "greet", &args).await;
                debug_assert_eq!(r.outcome.unwrap(), json!("Hello, x!"));
            }
            Which::Host => {
                let r = self.host.call("text.greet", &args, "bench").await;
                debug_assert_eq!(r.outcome.unwrap(), json!("Hello, x!"));
            }
            Which::Bare => {
                let out = self.bare.call("x").await;
                debug_assert_eq!(out, "Hello, x!");
            }
            Which::SandboxedTyped => {
                let out = self.sandboxed.call_typed("x").await;
                debug_assert_eq!(out, "Hello, x!");
            }
            Which::SandboxedDynamic => {
                let out = self.sandboxed.call_dynamic("x").await;
                debug_assert_eq!(out, "Hello, x!");
            }
        }
    }
}

// ------------------------------------------------------------- measuring

async fn sequential(setup: &Setup, which: Which, n: usize) -> Stats {
    support::sequential(n, 0, || setup.call(which)).await
}

/// `loops` concurrent loops of `n / loops` calls each on a multi-thread
/// runtime with `workers` worker threads.
fn concurrent(setup: &Arc<Setup>, which: Which, n: usize, workers: usize, loops: usize) -> Stats {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().unwrap();
    rt.block_on(async {
        // Warm up every worker.
        let warm: Vec<_> = (0..loops)
            .map(|_| {
                let s = setup.clone();
                tokio::spawn(async move {
                    for _ in 0..200 {
                        s.call(which).await;
                    }
                })
            })
            .collect();
        for w in warm {
            w.await.unwrap();
        }
        let start = Instant::now();
        let tasks: Vec<_> = (0..loops)
            .map(|_| {
                let s = setup.clone();
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(n / loops);
                    for _ in 0..n / loops {
                        let t = Instant::now();
                        s.call(which).await;
                        lat.push(t.elapsed());
                    }
                    lat
                })
            })
            .collect();
        let mut lat = Vec::with_capacity(n);
        for t in tasks {
            lat.extend(t.await.unwrap());
        }
        stats(lat, start.elapsed())
    })
}

fn python_subprocess(n: usize) -> (Stats, String) {
    // Resolve the real interpreter once, so a version-manager shim (pyenv)
    // is not what gets measured.
    let exe = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "python3".into());
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let o = std::process::Command::new(&exe).args(["-c", "print(\"Hello, x!\")"]).output().expect("run python3");
        assert_eq!(o.stdout, b"Hello, x!\n");
        lat.push(t.elapsed());
    }
    (stats(lat, start.elapsed()), exe)
}

/// Pieces of wasmward's call path, timed alone, to see where the time over
/// bare wasmtime goes.
fn breakdown(setup: &Setup, n: usize) -> Vec<(&'static str, Duration)> {
    use wasmward::component::convert;
    let tool = setup.runtime.tool("text").unwrap();
    let f = tool.function("greet").unwrap();
    let args = json!({"name": "x"});
    let time = |f: &mut dyn FnMut()| {
        for _ in 0..1000 {
            f();
        }
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        t.elapsed() / n as u32
    };
    let plan = tool.plan.clone();
    let resolver: Arc<dyn wasmward::sandbox::http::Resolver> = Arc::new(wasmward::sandbox::http::SystemResolver);
    let ty = f.result.clone().unwrap();
    let val = wasmtime::component::Val::String("Hello, x!".into());
    vec![
        ("tool + function lookup", time(&mut || { std::hint::black_box(setup.runtime.tool("text").unwrap().function("greet").is_ok()); })),
        ("args_to_vals", time(&mut || drop(std::hint::black_box(convert::args_to_vals(&args, &f.params).unwrap())))),
        ("SandboxState::new + drop", time(&mut || drop(std::hint::black_box(wasmward::sandbox::SandboxState::new(plan.clone(), resolver.clone()).unwrap())))),
        ("bare WasiCtx+table+http ctx + drop", time(&mut || {
            drop(std::hint::black_box(BareState {
                wasi: WasiCtxBuilder::new().build(),
                table: ResourceTable::new(),
                http: WasiHttpCtx::new(),
                hooks: [],
            }))
        })),
        ("val_to_json + size check", time(&mut || {
            let j = convert::val_to_json(&val, &ty);
            std::hint::black_box(serde_json::to_vec(&j).unwrap().len());
        })),
    ]
}

fn main() {
    let root: PathBuf = support::repo_root();
    support::build_tools(&["build-tools.sh"]);
    let text = root.join("example-tools/target/wasm32-wasip2/release/text.wasm");
    let n = env_usize("BENCH_CALLS", 20_000);
    let py_n = env_usize("BENCH_PY_CALLS", 100);
    let tmp = tempfile::tempdir().unwrap();

    let setup = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let runtime = Runtime::new(RuntimeOptions { max_concurrent_calls: MAX_CONCURRENT, cache_dir: Some(tmp.path().join("cache")), ..Default::default() }).unwrap();
        let tool = runtime.load_tool(SandboxPlan::deny_all("text", Limits::default()), &text, None).unwrap();
        runtime.set_tools(vec![tool]);
        let cfg_text = format!(
            "[runtime]\nmax_concurrent_calls = {MAX_CONCURRENT}\ncache_dir = {:?}\n[audit]\npath = {:?}\ndurability = \"async\"\n[[tool]]\nname = \"text\"\npath = {:?}\n",
            tmp.path().join("cache").display().to_string(),
            tmp.path().join("audit.db").display().to_string(),
            text.display().to_string(),
        );
        let host = Host::open(Config::parse(&cfg_text, "bench.toml", tmp.path()).unwrap()).await.unwrap();
        Setup { runtime, host, bare: Bare::new(&text), sandboxed: Sandboxed::new(&text) }
    });
    // Every path gives the right answer before it is timed.
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let args = json!({"name": "x"});
        assert_eq!(setup.runtime.call("text", "greet", &args).await.outcome.unwrap(), json!("Hello, x!"));
        assert_eq!(setup.host.call("text.greet", &args, "bench").await.outcome.unwrap(), json!("Hello, x!"));
        assert_eq!(setup.bare.call("x").await, "Hello, x!");
        assert_eq!(setup.sandboxed.call_typed("x").await, "Hello, x!");
        assert_eq!(setup.sandboxed.call_dynamic("x").await, "Hello, x!");
    });
    let setup = Arc::new(setup);
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);

    println!("call_overhead: text.greet {{\"name\":\"x\"}}, fresh instance per call");
    println!("  {n} calls per measurement ({py_n} for the subprocess), {cpus} CPUs available\n");

    let paths = [Which::Bare, Which::Runtime, Which::Host];
    let mut single = Vec::new();
    let st = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for &p in &paths {
        let s = st.block_on(async {
            sequential(&setup, p, 1000).await; // warm-up
            sequential(&setup, p, n).await
        });
        single.push(s);
    }
    let mut dual = Vec::new();
    for &p in &paths {
        dual.push(concurrent(&setup, p, n, 2, 2));
    }
    let (py, py_exe) = python_subprocess(py_n);

    println!("{:<36} {:>10} {:>10} {:>14} {:>20}", "path", "p50", "p99", "calls/s (1)", "calls/s (2 workers)");
    for (i, &p) in paths.iter().enumerate() {
        println!(
            "{:<36} {:>10} {:>10} {:>14.0} {:>20.0}",
            p.label(),
            us(single[i].p50),
            us(single[i].p99),
            single[i].per_sec,
            dual[i].per_sec
        );
    }
    println!("{:<36} {:>10} {:>10} {:>14.0} {:>20}", "python3 -c subprocess", us(py.p50), us(py.p99), py.per_sec, "-");
    println!("  (python: {py_exe})\n");

    let (bare, full, host) = (&single[0], &single[1], &single[2]);
    println!("ratios (single-threaded p50; target full/bare <= 1.3, subprocess/full >= 1000):");
    println!("  Runtime::call / bare  = {:.2}x", full.p50.as_secs_f64() / bare.p50.as_secs_f64());
    println!("  Host::call / bare     = {:.2}x", host.p50.as_secs_f64() / bare.p50.as_secs_f64());
    println!("  subprocess / Runtime  = {:.0}x", py.p50.as_secs_f64() / full.p50.as_secs_f64());
    println!("  subprocess / Host     = {:.0}x", py.p50.as_secs_f64() / host.p50.as_secs_f64());
    println!("throughput ratios (2 workers; target >= 30000 calls/s):");
    println!("  bare / Runtime::call  = {:.2}x", dual[0].per_sec / dual[1].per_sec);
    println!("  bare / Host::call     = {:.2}x", dual[0].per_sec / dual[2].per_sec);

    println!("\ndecomposition (single thread; same engine config, no JSON, no CallRecord):");
    for which in [Which::Bare, Which::SandboxedTyped, Which::SandboxedDynamic, Which::Runtime] {
        let s = st.block_on(async {
            sequential(&setup, which, 1000).await;
            sequential(&setup, which, n).await
        });
        println!("  {:<36} p50 {:>10}  p99 {:>10}  {:>8.0} calls/s", which.label(), us(s.p50), us(s.p99), s.per_sec);
    }

    println!("\nbreakdown of wasmward-only work per call (single thread, mean):");
    for (what, d) in breakdown(&setup, 20_000) {
        println!("  {what:<36} {}", us(d));
    }

    let setup = Arc::into_inner(setup).expect("no other handles");
    st.block_on(async { setup.host.shutdown().await.unwrap() });
}
