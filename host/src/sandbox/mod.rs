//! Turns one tool's resolved policy into the per-call Store state.
//!
//! One file per capability (`fs`, `net`, `http`, `env`, `process`,
//! `limits`, plus `stdio` and `log`). Each reports refusals to the one
//! [`Denials`] sink; none writes the audit log.

mod caps;
pub mod denials;
pub mod fds;
pub mod fs;
pub mod http;
pub mod limits;
mod log;
pub mod net;
#[cfg(target_os = "linux")]
pub mod confine;
pub mod process;
pub mod stdio;

pub use denials::{Denial, DenialLog, DenialSummary, Denials};
pub use limits::{LimitHit, LimitHits};
pub use process::ProcessPlan;

use crate::policy::{EffectivePolicy, MountMode, ViolationAction};
use limits::{MemoryLimiter, MountQuota, WriteBudget};
use std::sync::Arc;
use std::time::Duration;
use stdio::CappedPipe;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Default of `max_handles`: resources (files, sockets, streams, ...) one
/// call may hold at once. Well under a typical RLIMIT_NOFILE divided by
/// `max_concurrent_calls`; see [`fds`] for the process-wide reserve.
pub const MAX_RESOURCES: usize = 256;

/// Default of `max_write_bytes`: bytes one call may write to files.
pub const DEFAULT_MAX_WRITE_BYTES: u64 = 256 << 20;

/// Per-call resource limits of a tool.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    pub timeout: Duration,
    pub memory_bytes: usize,
    /// `None`: unmetered (fuel is still counted for the audit record).
    pub fuel: Option<u64>,
    pub max_output_bytes: usize,
    pub max_stdout_bytes: usize,
    /// Bytes the call may write to files (write, append, streams, and file
    /// growth by set-size), summed over all its files.
    pub max_write_bytes: u64,
    /// Resources (files, sockets, streams, pollables, ...) held at once.
    pub max_handles: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(10),
            memory_bytes: 128 << 20,
            fuel: None,
            max_output_bytes: 1 << 20,
            max_stdout_bytes: 64 << 10,
            max_write_bytes: DEFAULT_MAX_WRITE_BYTES,
            max_handles: MAX_RESOURCES,
        }
    }
}

/// Everything a call of one tool may touch, decided at load.
#[derive(Debug, Clone)]
pub struct SandboxPlan {
    pub tool: String,
    pub limits: Limits,
    pub policy: Arc<EffectivePolicy>,
    pub process: ProcessPlan,
    /// Whether the component imports `wasi:filesystem` / `wasi:sockets`;
    /// when it cannot reach them, their per-call setup is skipped.
    pub imports_fs: bool,
    pub imports_sockets: bool,
    /// Outgoing HTTPS trust with `[runtime] ca_certificates` (`None`: the
    /// built-in web roots).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl SandboxPlan {
    /// The plan for `policy`: env, process and mounts all come from it.
    pub fn new(policy: EffectivePolicy, limits: Limits) -> Self {
        let env: Vec<(String, String)> = policy.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let cwd = policy.mounts.mounts().iter().find(|m| m.mode == MountMode::Rw).map(|m| m.host.clone());
        let mut process = ProcessPlan::new(policy.subprocess.clone(), env, cwd);
        process.mounts = policy.mounts.mounts().iter().map(|m| (m.host.clone(), m.mode == MountMode::Rw)).collect();
        SandboxPlan {
            tool: policy.tool.clone(),
            limits,
            policy: Arc::new(policy),
            process,
            imports_fs: true,
            imports_sockets: true,
            tls: None,
        }
    }

    /// A plan that grants nothing: no mounts, network, env or process.
    pub fn deny_all(tool: &str, limits: Limits) -> Self {
        let policy = EffectivePolicy::resolve(None, None, tool).expect("the empty policy always resolves");
        SandboxPlan::new(policy, limits)
    }

    pub fn action(&self) -> ViolationAction {
        self.policy.violation_action
    }
}

/// The Store data of one call. Built fresh per call and dropped after it.
pub struct SandboxState {
    pub(crate) plan: Arc<SandboxPlan>,
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: http::HttpGate,
    fs: fs::FsGuard,
    net: net::NetGuard,
    pub limiter: MemoryLimiter,
    pub denials: Denials,
    /// Per-call limits that refused something (other than memory).
    pub limit_hits: LimitHits,
    pub stdout: CappedPipe,
    pub stderr: CappedPipe,
    /// Guest log lines emitted so far (capped per call).
    pub(crate) log_lines: u32,
}

impl SandboxState {
    /// A fresh sandbox for one call of the tool `plan` describes: no
    /// preopens, no network, no args, empty stdin, and only the plan's env.
    pub fn new(plan: Arc<SandboxPlan>, resolver: Arc<dyn http::Resolver>) -> wasmtime::Result<Self> {
        let stdout = CappedPipe::new(plan.limits.max_stdout_bytes);
        let stderr = CappedPipe::new(plan.limits.max_stdout_bytes);
        let denials = Denials::default();
        let limit_hits = LimitHits::default();
        let net = net::NetGuard::new(plan.policy.clone(), denials.clone());
        let mut b = WasiCtxBuilder::new();
        b.stdout(stdout.clone()).stderr(stderr.clone());
        b.envs(&plan.process.env);
        if plan.imports_fs {
            fs::preopen(&mut b, &plan.policy.mounts)?;
        }
        if plan.imports_sockets {
            net::configure(&mut b, &net);
        }
        Ok(SandboxState {
            wasi: b.build(),
            table: {
                // Every open file, socket and stream is a table entry; a cap
                // keeps one call from exhausting the host's descriptors.
                let mut t = ResourceTable::new();
                t.set_max_capacity(plan.limits.max_handles);
                t
            },
            http: WasiHttpCtx::new(),
            hooks: http::HttpGate::new(plan.policy.clone(), denials.clone(), resolver).with_tls(plan.tls.clone()),
            fs: fs::FsGuard::new(plan.policy.clone(), denials.clone())
                .with_write_budget(WriteBudget::new(plan.limits.max_write_bytes, limit_hits.clone()))
                .with_quotas(if plan.imports_fs { quotas(&plan.policy.mounts, &limit_hits) } else { Vec::new() }),
            net,
            limiter: MemoryLimiter::new(plan.limits.memory_bytes),
            denials,
            limit_hits,
            stdout,
            stderr,
            plan,
            log_lines: 0,
        })
    }

    fn guarded_fs(&mut self) -> fs::GuardedFs<'_> {
        let inner = wasmtime_wasi::filesystem::WasiFilesystemCtxView { ctx: self.wasi.filesystem(), table: &mut self.table };
        fs::GuardedFs::new(inner, &mut self.fs)
    }

    fn guarded_net(&mut self) -> net::GuardedNet<'_> {
        let inner = wasmtime_wasi::sockets::WasiSocketsCtxView { ctx: self.wasi.sockets(), table: &mut self.table };
        net::GuardedNet::new(inner, &self.net)
    }
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for SandboxState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// Measures, at the start of a call, what each write mount with a
/// `quota_bytes` holds; mounts without one cost nothing.
fn quotas(mounts: &crate::policy::MountTable, hits: &LimitHits) -> Vec<MountQuota> {
    mounts
        .mounts()
        .iter()
        .filter(|m| m.mode == crate::policy::MountMode::Rw)
        .filter_map(|m| m.quota_bytes.map(|q| MountQuota::measure(&m.guest, &m.host, q, hits.clone())))
        .collect()
}

/// Links WASI 0.2 (every patch version resolves by semver), `wasi:http`
/// and wasmward's own interfaces.
pub fn add_to_linker(linker: &mut Linker<SandboxState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    fs::add_to_linker(linker, SandboxState::guarded_fs)?;
    net::add_to_linker(linker, SandboxState::guarded_net)?;
    net::add_create_socket_guards(linker, SandboxState::guarded_net)?;
    caps::log::add_to_linker::<_, HasSelf<SandboxState>>(linker, |s| s)?;
    caps::process::add_to_linker::<_, HasSelf<SandboxState>>(linker, |s| s)?;
    Ok(())
}
