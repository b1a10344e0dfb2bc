//! Cost of policy + audit on the per-call path, and audit throughput.
//!
//! Paths compared in one run, all calling `text.greet {"name":"x"}` with a
//! fresh instance per call, at concurrency 16 on a multi-thread runtime:
//!
//! - core: `Runtime::call` on a tool loaded with a deny-all plan (no
//!   mounts, network or env, no audit);
//! - policy only: `Host::call` with a real `[tool.policy]` (a read mount, a
//!   write mount, network hosts, env) and the audit log disabled;
//! - full, commit: `Host::call` with that policy and `durability = "commit"`
//!   (a call returns once its events are committed to the WAL and the head
//!   checkpoint is written);
//! - full, fsync: the same with `durability = "fsync"` (also fsynced);
//! - full, async: the same with `durability = "async"`.
//!
//! Then `AuditLog::record` alone: events/s sustained by the batched writer
//! with 16 and 64 concurrent recorders, each recording a call event plus one
//! denial event per record.
//!
//! Then sequential calls (one in flight) on the audit-off, commit and async
//! paths, for the latency the audit adds to a lone call.
//!
//! "Writer alone": the writer thread's own CPU time (from
//! `/proc/self/task/<tid>/schedstat`) over the events it committed, i.e.
//! events/s on one core, whatever the recorders and the machine do.
//!
//! Run: `cargo bench -p wasmward --bench policy_audit`
//! `BENCH_MODE=writer` runs only the audit-alone part (for `valgrind
//! --tool=callgrind`, with `BENCH_AUDIT_RECORDS` small).
//! Env: `BENCH_CALLS` (default 20000 per measurement), `BENCH_ROUNDS`
//! (default 3; the median round is reported), `BENCH_AUDIT_RECORDS`
//! (default 50000), `WASMWARD_EXAMPLE_TOOLS_BUILT=1` to skip building the
//! example tools.

#[path = "support/mod.rs"]
mod support;
use support::{env_usize, stats, us, Stats};

use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmward::audit::{AuditConfig, AuditEvent, AuditLog, CallEvent, DenialEvent, Durability};
use wasmward::config::Config;
use wasmward::host::Host;
use wasmward::sandbox::{Limits, SandboxPlan};
use wasmward::{Runtime, RuntimeOptions};

const CONCURRENCY: usize = 16;
const WORKERS: usize = 2;

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Core,
    PolicyOnly,
    Commit,
    Fsync,
    Async,
}

impl Which {
    fn label(self) -> &'static str {
        match self {
            Which::Core => "core: Runtime::call (deny-all, no audit)",
            Which::PolicyOnly => "Host::call, policy, audit off",
            Which::Commit => "Host::call, policy + audit commit",
            Which::Fsync => "Host::call, policy + audit fsync",
            Which::Async => "Host::call, policy + audit async",
        }
    }
}

struct Setup {
    core: Runtime,
    policy_only: Host,
    commit: Host,
    fsync: Host,
    asynch: Host,
}

impl Setup {
    async fn call(&self, which: Which) {
        let args = json!({"name": "x"});
        let r = match which {
            Which::Core => self.core.call("text", "greet", &args).await,
            Which::PolicyOnly => self.policy_only.call("text.greet", &args, "bench").await,
            Which::Commit => self.commit.call("text.greet", &args, "bench").await,
            Which::Fsync => self.fsync.call("text.greet", &args, "bench").await,
            Which::Async => self.asynch.call("text.greet", &args, "bench").await,
        };
        assert_eq!(r.outcome.as_ref().unwrap(), &json!("Hello, x!"));
    }
}

/// `n` calls as `CONCURRENCY` concurrent loops.
async fn measure(setup: &Arc<Setup>, which: Which, n: usize) -> Stats {
    let per_loop = n / CONCURRENCY;
    let run = |count: usize| {
        (0..CONCURRENCY)
            .map(|_| {
                let s = setup.clone();
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(count);
                    for _ in 0..count {
                        let t = Instant::now();
                        s.call(which).await;
                        lat.push(t.elapsed());
                    }
                    lat
                })
            })
            .collect::<Vec<_>>()
    };
    for t in run(100) {
        t.await.unwrap(); // warm-up
    }
    let start = Instant::now();
    let mut lat = Vec::with_capacity(n);
    for t in run(per_loop) {
        lat.extend(t.await.unwrap());
    }
    stats(lat, start.elapsed())
}

/// `n` calls one after another (one in flight).
async fn measure_seq(setup: &Arc<Setup>, which: Which, n: usize) -> Stats {
    support::sequential(n, 200, || setup.call(which)).await
}

/// CPU time run so far by every thread named `wasmward-audit`, from
/// `/proc/self/task/*/schedstat` (nanoseconds on CPU), keyed by tid.
fn writer_cpu() -> Vec<(String, Duration)> {
    thread_cpu("wasmward-audit")
}

/// CPU time of every thread whose (15-byte) name is `name`, keyed by tid.
fn thread_cpu(name: &str) -> Vec<(String, Duration)> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return out };
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        if let Some(ns) = stat.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()) {
            out.push((t.file_name().to_string_lossy().into_owned(), Duration::from_nanos(ns)));
        }
    }
    out
}

fn denial(i: usize) -> DenialEvent {
    DenialEvent {
        tool: "bench".into(),
        function: "bench.f".into(),
        caller: "bench".into(),
        capability: "net".into(),
        op: "connect".into(),
        target: format!("10.0.0.{}:80", i % 250),
        rule: "block_private_ips: private 10.0.0.0/8".into(),
        action: "denied".into(),
        count: None,
    }
}

/// Events/s through `AuditLog::record` with `recorders` concurrent tasks,
/// each record being one call event and one denial event; and the writer
/// thread's CPU time for them.
async fn audit_throughput(dir: &Path, durability: Durability, recorders: usize, records: usize) -> (f64, Duration, Duration, Duration) {
    let cfg = AuditConfig {
        path: dir.join(format!("audit-{durability:?}-{recorders}.db")),
        durability,
        ..AuditConfig::default()
    };
    let before = writer_cpu();
    let ckpt_before: Duration = thread_cpu("wasmward-audit-").iter().map(|(_, d)| *d).sum();
    let log = AuditLog::open(&cfg).unwrap();
    let per = records / recorders;
    let start = Instant::now();
    let tasks: Vec<_> = (0..recorders)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 0..per {
                    let mut call = CallEvent::new("bench", "bench.f", "bench", &json!({"i": i, "t": t}));
                    call.denials = 1;
                    log.record(vec![AuditEvent::Call(call), AuditEvent::Denial(denial(i))]).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut after = writer_cpu();
    let ckpt: Duration = thread_cpu("wasmward-audit-").iter().map(|(_, d)| *d).sum::<Duration>().saturating_sub(ckpt_before);
    log.shutdown().await.unwrap(); // everything committed
    let wall = start.elapsed();
    // The new writer thread: the one not there before (read just before the
    // shutdown, while it still runs; its last batch is not counted, a tiny
    // under-count at these sizes).
    after.retain(|(tid, _)| !before.iter().any(|(b, _)| b == tid));
    let cpu = after.iter().map(|(_, d)| *d).sum();
    ((per * recorders * 2) as f64 / wall.as_secs_f64(), wall, cpu, ckpt)
}

/// The writer thread's CPU work per event, timed alone (mean over `n`):
/// what the batched writer spends besides SQLite and the head checkpoint.
fn writer_breakdown(n: usize) -> Vec<(&'static str, Duration)> {
    use hmac::{Hmac, Mac};
    use wasmward::audit::{Redactor, StoredEvent};
    let redactor = Redactor::new(&[]).unwrap();
    let mut call = CallEvent::new("text", "text.greet", "bench", &json!({"name": "x"}));
    call.args = None;
    call.duration_us = 73;
    call.memory_bytes = Some(1 << 20);
    call.fuel_used = Some(12345);
    let stored = |event: AuditEvent| StoredEvent { seq: 123456, ts_ms: 1_795_000_000_000, call_id: "0123456789abcdef0123456789abcdef".into(), event };
    let call_ev = stored(AuditEvent::Call(call));
    let denial_ev = stored(AuditEvent::Denial(denial(7)));
    let time = |f: &mut dyn FnMut()| {
        for _ in 0..n / 10 {
            f();
        }
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        t.elapsed() / n as u32
    };
    let key = [7u8; 32];
    let body = serde_json::to_string(&call_ev).unwrap();
    vec![
        ("to_value + sort + to_string (call)", time(&mut || {
            let mut v = serde_json::to_value(&call_ev).unwrap();
            v.sort_all_objects();
            std::hint::black_box(v.to_string());
        })),
        ("redact_json (call event)", time(&mut || {
            let mut v = serde_json::to_value(&call_ev).unwrap();
            redactor.redact_json(&mut v);
            std::hint::black_box(v);
        })),
        ("redact_json (denial event)", time(&mut || {
            let mut v = serde_json::to_value(&denial_ev).unwrap();
            redactor.redact_json(&mut v);
            std::hint::black_box(v);
        })),
        ("HMAC-SHA256 (prev ‖ body)", time(&mut || {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
            m.update(&[0u8; 64]);
            m.update(body.as_bytes());
            std::hint::black_box(hex::encode(m.finalize().into_bytes()));
        })),
    ]
}

/// Mean cost of rewriting a small file the way the head checkpoint is
/// written (create temp, write, rename) vs in place on an open file.
fn head_write_cost(dir: &Path, n: usize) -> (Duration, Duration) {
    use std::io::{Seek, Write};
    let body = format!("{{\"seq\":1,\"hash\":\"{}\",\"mac\":\"{}\"}}", "a".repeat(64), "b".repeat(64));
    let (tmp, path) = (dir.join("head.tmp"), dir.join("head"));
    let t = Instant::now();
    for _ in 0..n {
        let mut f = std::fs::File::create(&tmp).unwrap();
        f.write_all(body.as_bytes()).unwrap();
        drop(f);
        std::fs::rename(&tmp, &path).unwrap();
    }
    let replace = t.elapsed() / n as u32;
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let t = Instant::now();
    for _ in 0..n {
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.write_all(body.as_bytes()).unwrap();
    }
    (replace, t.elapsed() / n as u32)
}

fn host_config(tmp: &Path, text: &Path, durability: &str, db: &str) -> Config {
    let data = tmp.join("data");
    let out = tmp.join("out");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let cfg = format!(
        "[runtime]\nmax_concurrent_calls = {CONCURRENCY}\ncache_dir = {cache:?}\n\
         [audit]\npath = {db:?}\ndurability = {durability:?}\n\
         [[tool]]\nname = \"text\"\npath = {text:?}\n\
         [tool.policy]\n\
         allowed_read_paths = [{data:?}]\n\
         allowed_write_paths = [{{ host = {out:?}, guest = \"/out\" }}]\n\
         allowed_network_hosts = [\"api.example.com\", \"*.cdn.example.com:443\"]\n\
         env = {{ LANG = \"C.UTF-8\", APP_MODE = \"bench\" }}\n",
        cache = tmp.join("cache").display().to_string(),
        db = tmp.join(db).display().to_string(),
        text = text.display().to_string(),
        data = data.display().to_string(),
        out = out.display().to_string(),
    );
    Config::parse(&cfg, "bench.toml", tmp).unwrap()
}

fn audit_alone(rt: &tokio::runtime::Runtime, dir: &Path, audit_records: usize, durabilities: &[Durability], recorder_counts: &[usize]) {
    println!("\naudit log alone: AuditLog::record of (call + denial), events/s sustained until shutdown;");
    println!("writer core: events per second of the writer thread's own CPU time (target >= 150k):");
    for &durability in durabilities {
        for &recorders in recorder_counts {
            let (eps, wall, cpu, ckpt) = rt.block_on(audit_throughput(dir, durability, recorders, audit_records));
            let events = audit_records / recorders * recorders * 2;
            let core = if cpu.is_zero() { 0.0 } else { events as f64 / cpu.as_secs_f64() };
            println!(
                "  {:<7} {recorders:>3} recorders: {:>9.0} events/s ({} events in {:.2} s); writer core {:>9.0} events/s ({:.2} µs/event; checkpoint thread {:.2} µs/event)",
                format!("{durability:?}").to_lowercase(),
                eps,
                events,
                wall.as_secs_f64(),
                core,
                cpu.as_secs_f64() * 1e6 / events as f64,
                ckpt.as_secs_f64() * 1e6 / events as f64,
            );
        }
    }
}

fn main() {
    let mode = std::env::var("BENCH_MODE").unwrap_or_default();
    if mode == "writer" {
        let tmp = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(WORKERS).enable_all().build().unwrap();
        let records = env_usize("BENCH_AUDIT_RECORDS", 50_000);
        audit_alone(&rt, tmp.path(), records, &[Durability::Async, Durability::Commit], &[16]);
        return;
    }
    let root: PathBuf = support::repo_root();
    support::build_tools(&["build-tools.sh"]);
    let text = root.join("example-tools/target/wasm32-wasip2/release/text.wasm");
    let n = env_usize("BENCH_CALLS", 20_000);
    let rounds = env_usize("BENCH_ROUNDS", 3).max(1);
    let audit_records = env_usize("BENCH_AUDIT_RECORDS", 50_000);
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(WORKERS).enable_all().build().unwrap();

    let setup = rt.block_on(async {
        let core = Runtime::new(RuntimeOptions {
            max_concurrent_calls: CONCURRENCY as u32,
            cache_dir: Some(tmp.path().join("cache")),
            ..Default::default()
        })
        .unwrap();
        let tool = core.load_tool(SandboxPlan::deny_all("text", Limits::default()), &text, None).unwrap();
        core.set_tools(vec![tool]);
        let off = host_config(tmp.path(), &text, "async", "unused.db");
        let off_runtime = wasmward::host::runtime_for(&off).unwrap();
        let policy_only = Host::with_parts(off, off_runtime, AuditLog::disabled()).await.unwrap();
        let commit = Host::open(host_config(tmp.path(), &text, "commit", "commit.db")).await.unwrap();
        let fsync = Host::open(host_config(tmp.path(), &text, "fsync", "fsync.db")).await.unwrap();
        let asynch = Host::open(host_config(tmp.path(), &text, "async", "async.db")).await.unwrap();
        Arc::new(Setup { core, policy_only, commit, fsync, asynch })
    });

    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("policy_audit: text.greet {{\"name\":\"x\"}}, fresh instance per call, concurrency {CONCURRENCY}, {WORKERS} tokio workers");
    println!("  {n} calls per measurement, median of {rounds} interleaved rounds, {cpus} CPUs available\n");

    let paths = [Which::Core, Which::PolicyOnly, Which::Commit, Which::Fsync, Which::Async];
    let mut results: Vec<Vec<Stats>> = paths.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (i, &p) in paths.iter().enumerate() {
            results[i].push(rt.block_on(measure(&setup, p, n)));
        }
    }
    let median: Vec<Stats> = results
        .into_iter()
        .map(|mut v| {
            v.sort_by_key(|s| s.per_call());
            v.swap_remove(v.len() / 2)
        })
        .collect();

    println!("{:<42} {:>13} {:>10} {:>10} {:>10}", "path", "per call", "calls/s", "p50", "p99");
    for (i, &p) in paths.iter().enumerate() {
        let s = &median[i];
        println!("{:<42} {:>13} {:>10.0} {:>10} {:>10}", p.label(), us(s.per_call()), s.per_sec, us(s.p50), us(s.p99));
    }
    let core = median[0].per_call().as_secs_f64();
    let pct = |s: &Stats| (s.per_call().as_secs_f64() / core - 1.0) * 100.0;
    println!("\nadded per-call cost over core (throughput-based, concurrency {CONCURRENCY}; target <= 15% with commit):");
    println!("  policy only          {:+6.1}%  ({:.2}x)", pct(&median[1]), median[1].per_call().as_secs_f64() / core);
    println!("  policy + audit commit {:+6.1}%  ({:.2}x)", pct(&median[2]), median[2].per_call().as_secs_f64() / core);
    println!("  policy + audit fsync  {:+6.1}%  ({:.2}x)", pct(&median[3]), median[3].per_call().as_secs_f64() / core);
    println!("  policy + audit async  {:+6.1}%  ({:.2}x)", pct(&median[4]), median[4].per_call().as_secs_f64() / core);
    println!(
        "  audit commit over policy only: {:+.1}%",
        (median[2].per_call().as_secs_f64() / median[1].per_call().as_secs_f64() - 1.0) * 100.0
    );

    println!(
        "  commit throughput / audit off: {:.1}% (target >= 70%)",
        median[1].per_call().as_secs_f64() / median[2].per_call().as_secs_f64() * 100.0
    );

    let seq_n = env_usize("BENCH_SEQ_CALLS", 5_000);
    let seq_paths = [Which::PolicyOnly, Which::Commit, Which::Async];
    let mut seq: Vec<Vec<Stats>> = seq_paths.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (i, &p) in seq_paths.iter().enumerate() {
            seq[i].push(rt.block_on(measure_seq(&setup, p, seq_n)));
        }
    }
    let seq: Vec<Stats> = seq
        .into_iter()
        .map(|mut v| {
            v.sort_by_key(|s| s.p50);
            v.swap_remove(v.len() / 2)
        })
        .collect();
    println!("\nsequential, one call in flight ({seq_n} calls, median of {rounds} interleaved rounds by p50):");
    println!("{:<42} {:>10} {:>10} {:>10}", "path", "calls/s", "p50", "p99");
    for (i, &p) in seq_paths.iter().enumerate() {
        let s = &seq[i];
        println!("{:<42} {:>10.0} {:>10} {:>10}", p.label(), s.per_sec, us(s.p50), us(s.p99));
    }
    println!(
        "  p50 commit - async: {:+.1} µs (target <= 50 µs); commit - audit off: {:+.1} µs",
        (seq[1].p50.as_secs_f64() - seq[2].p50.as_secs_f64()) * 1e6,
        (seq[1].p50.as_secs_f64() - seq[0].p50.as_secs_f64()) * 1e6
    );

    audit_alone(&rt, tmp.path(), audit_records, &[Durability::Commit, Durability::Fsync, Durability::Async], &[16, 64]);

    println!("\naudit writer CPU per event (single thread, mean):");
    for (what, d) in writer_breakdown(20_000) {
        println!("  {what:<40} {}", us(d));
    }
    let (replace, in_place) = head_write_cost(tmp.path(), 500);
    println!("head checkpoint per batch: create+write+rename {}, in-place rewrite {}", us(replace), us(in_place));

    let setup = Arc::into_inner(setup).expect("no other handles");
    rt.block_on(async {
        setup.commit.shutdown().await.unwrap();
        setup.fsync.shutdown().await.unwrap();
        setup.asynch.shutdown().await.unwrap();
        setup.policy_only.shutdown().await.unwrap();
    });
}
