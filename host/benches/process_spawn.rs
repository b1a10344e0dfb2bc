//! Cost of a confined spawn against a plain spawn of `/bin/true` (issue 9).
//!
//! Measured one after the other (no concurrency), each a spawn + wait:
//!
//! - plain: `std::process::Command::new("/bin/true")`;
//! - confined: the same with the process sandbox of `wasmward:tool/process`
//!   (`sandbox::confine`): the Landlock ruleset and seccomp program built
//!   per spawn, then in the child rlimits, a fresh network namespace and a
//!   uid drop when root, `no_new_privs`, Landlock, seccomp; plus the
//!   process group;
//! - Host::call `hostile.caps.spawn true` (the whole capability: policy
//!   checks, private temp dir, pipes, group kill, audit on, durability commit) against
//!   Host::call `hostile.caps.env-all` (the same call without a spawn).
//!
//! Run: `cargo bench -p wasmward --bench process_spawn`
//! Env: `BENCH_SPAWNS` (default 500 per measurement), `BENCH_ROUNDS`
//! (default 3, interleaved; all samples pooled),
//! `WASMWARD_EXAMPLE_TOOLS_BUILT=1` to skip building the example tools.

#[path = "support/mod.rs"]
mod support;
use support::env_usize;

use serde_json::json;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};
use wasmward::config::Config;
use wasmward::host::Host;
use wasmward::sandbox::confine::{Confinement, Grants, Limits};

fn plain() {
    let st = std::process::Command::new("/bin/true").status().unwrap();
    assert!(st.success());
}

fn confined(tmp: &Path) {
    let grants = Grants { program: Path::new("/bin/true"), extra_read: &[], mounts: Vec::new(), tmp };
    let limits = Limits { cpu_seconds: 11, memory_bytes: 1 << 30, processes: 64, file_bytes: 64 << 20, open_files: 256 };
    let c = Confinement::new(&grants, &limits, 65534).unwrap();
    let mut cmd = std::process::Command::new("/bin/true");
    cmd.process_group(0);
    // SAFETY: `apply` is async-signal-safe (see sandbox::confine).
    unsafe {
        cmd.pre_exec(move || c.apply());
    }
    let st = cmd.status().unwrap();
    assert!(st.success());
}

fn summary(name: &str, mut v: Vec<Duration>) -> Duration {
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q) as usize];
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    println!(
        "{name:<44} mean {:>9.1} µs   p50 {:>9.1} µs   p99 {:>9.1} µs",
        mean.as_secs_f64() * 1e6,
        p(0.5).as_secs_f64() * 1e6,
        p(0.99).as_secs_f64() * 1e6
    );
    p(0.5)
}

fn main() {
    support::build_tools(&["build-tools.sh"]);
    let n = env_usize("BENCH_SPAWNS", 500);
    let rounds = env_usize("BENCH_ROUNDS", 3);
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let hostile = support::repo_root().join("example-tools/target/wasm32-wasip2/release/hostile.wasm");
    let text = format!(
        "[runtime]\ncache_dir = {:?}\n\n[audit]\npath = {:?}\n\n[[tool]]\nname = \"t\"\npath = {:?}\n[tool.policy]\nallow_subprocess = true\nsubprocess_allowlist = [\"true\"]\n",
        cache.display().to_string(),
        dir.path().join("audit.db").display().to_string(),
        hostile.display().to_string()
    );
    let cfg = Config::parse(&text, "bench.toml", dir.path()).unwrap();
    let host = rt.block_on(Host::open(cfg)).unwrap();

    let (mut a, mut b, mut c, mut d) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        for _ in 0..n {
            let t = Instant::now();
            plain();
            a.push(t.elapsed());
        }
        for _ in 0..n {
            let t = Instant::now();
            confined(tmp.path());
            b.push(t.elapsed());
        }
        for _ in 0..n {
            let t = Instant::now();
            let r = rt.block_on(host.call("t.caps.spawn", &json!({"program": "true", "args": []}), "bench"));
            assert!(r.outcome.is_ok(), "{:?}", r.outcome);
            c.push(t.elapsed());
        }
        for _ in 0..n {
            let t = Instant::now();
            let r = rt.block_on(host.call("t.caps.env-all", &json!({}), "bench"));
            assert!(r.outcome.is_ok());
            d.push(t.elapsed());
        }
    }
    rt.block_on(host.shutdown()).unwrap();
    // SAFETY: no arguments.
    let root = unsafe { libc::geteuid() } == 0;
    println!("spawn + wait of /bin/true, {rounds} x {n} each, sequential (host is root: {root})");
    let pa = summary("plain Command", a);
    let pb = summary("confined (sandbox::confine)", b);
    let pc = summary("Host::call hostile.caps.spawn true", c);
    let pd = summary("Host::call hostile.caps.env-all (no spawn)", d);
    println!(
        "confined / plain (p50): {:.2}x, +{:.1} µs; capability call over a call without spawn (p50): +{:.1} µs",
        pb.as_secs_f64() / pa.as_secs_f64(),
        (pb.as_secs_f64() - pa.as_secs_f64()) * 1e6,
        (pc.as_secs_f64() - pd.as_secs_f64()) * 1e6
    );
}
