//! Turns one tool's resolved policy into the per-call Store state.
//!
//! One file per capability (`fs`, `net`, `http`, `env`, `process`,
//! `limits`, plus `stdio` and `log`). Each reports refusals to the one
//! [`Denials`] sink; none writes the audit log.

mod caps;
pub mod denials;
pub mod limits;
mod log;
pub mod process;
pub mod stdio;

pub use denials::{Denial, Denials};
pub use process::ProcessPlan;

use crate::policy::{DenialKind, EffectivePolicy, MountMode, ViolationAction};
use limits::MemoryLimiter;
use std::sync::Arc;
use std::time::Duration;
use stdio::CappedPipe;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// Per-call resource limits of a tool.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    pub timeout: Duration,
    pub memory_bytes: usize,
    /// `None`: unmetered (fuel is still counted for the audit record).
    pub fuel: Option<u64>,
    pub max_output_bytes: usize,
    pub max_stdout_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(10),
            memory_bytes: 128 << 20,
            fuel: None,
            max_output_bytes: 1 << 20,
            max_stdout_bytes: 64 << 10,
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
}

impl SandboxPlan {
    /// The plan for `policy`: env, process and mounts all come from it.
    pub fn new(policy: EffectivePolicy, limits: Limits) -> Self {
        let env: Vec<(String, String)> = policy.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let cwd = policy.mounts.mounts().iter().find(|m| m.mode == MountMode::Rw).map(|m| m.host.clone());
        let process = ProcessPlan::new(policy.subprocess.clone(), env, cwd);
        SandboxPlan { tool: policy.tool.clone(), limits, policy: Arc::new(policy), process }
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
    hooks: HttpGate,
    pub limiter: MemoryLimiter,
    pub denials: Denials,
    pub stdout: CappedPipe,
    pub stderr: CappedPipe,
}

impl SandboxState {
    /// A fresh sandbox for one call of the tool `plan` describes: no
    /// preopens, no network, no args, empty stdin, and only the plan's env.
    pub fn new(plan: Arc<SandboxPlan>) -> Self {
        let stdout = CappedPipe::new(plan.limits.max_stdout_bytes);
        let stderr = CappedPipe::new(plan.limits.max_stdout_bytes);
        let mut b = WasiCtxBuilder::new();
        b.stdout(stdout.clone()).stderr(stderr.clone());
        b.envs(&plan.process.env);
        let denials = Denials::default();
        SandboxState {
            wasi: b.build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: HttpGate { denials: denials.clone() },
            limiter: MemoryLimiter::new(plan.limits.memory_bytes),
            denials,
            stdout,
            stderr,
            plan,
        }
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

/// Outgoing-HTTP gate: refuses every request (no host is granted).
struct HttpGate {
    denials: Denials,
}

type IoFuture = Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;

impl WasiHttpHooks for HttpGate {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn std::future::Future<Output = Result<(http::Response<wasmtime_wasi_http::WasiBody>, IoFuture), wasmtime_wasi_http::Error>> + Send> {
        self.denials.record(Denial {
            kind: DenialKind::Http,
            op: request.method().to_string(),
            target: request.uri().to_string(),
            rule: "no allowed_network_hosts".into(),
            action: "denied",
        });
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

/// Links WASI 0.2 (every patch version resolves by semver), `wasi:http`
/// and wasmward's own interfaces.
pub fn add_to_linker(linker: &mut Linker<SandboxState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    caps::log::add_to_linker::<_, HasSelf<SandboxState>>(linker, |s| s)?;
    caps::process::add_to_linker::<_, HasSelf<SandboxState>>(linker, |s| s)?;
    Ok(())
}
