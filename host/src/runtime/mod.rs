//! Runs calls: a fresh Store and instance per call from the tool's
//! `InstancePre`, limits armed, the result converted back to JSON.
//!
//! The runtime returns a [`CallRecord`] for every call, failed or not, so
//! the audit stage after it sees the same facts the caller does.

pub mod engine;

use crate::component::cache::CompileCache;
use crate::component::{convert, LoadError, LoadedComponent, ToolFunction};
use crate::error::CallError;
use crate::sandbox::http::{Resolver, SystemResolver};
use crate::sandbox::{self, Denial, DenialSummary, LimitHit, SandboxPlan, SandboxState};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use wasmtime::component::{InstancePre, Linker, Val};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

/// Settings fixed for the life of a runtime.
#[derive(Clone)]
pub struct RuntimeOptions {
    /// Calls in flight at once; more wait (backpressure).
    pub max_concurrent_calls: u32,
    /// Compile cache directory; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Resolves names for outgoing HTTP (injectable for tests).
    pub resolver: Arc<dyn Resolver>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions { max_concurrent_calls: 64, cache_dir: CompileCache::default_dir(), resolver: Arc::new(SystemResolver) }
    }
}

/// A loaded tool: its component, one `InstancePre`, and its sandbox plan.
pub struct Tool {
    pub name: String,
    pub path: PathBuf,
    pub loaded: LoadedComponent,
    pub plan: Arc<SandboxPlan>,
    pre: InstancePre<SandboxState>,
}

impl Tool {
    /// Finds a function by its full tool name (`text.greet`), by the name
    /// without the tool prefix (`greet`, `analysis.word-stats`), or by its
    /// bare WIT name when that is unique.
    pub fn function(&self, name: &str) -> Result<&ToolFunction, CallError> {
        let funcs = &self.loaded.functions;
        // The canonical reading first: `t.a` of tool `t` is `t.t.a` if
        // that exists (an interface `t`), before the world export `t.a`.
        let prefixed = format!("{}.{name}", self.name);
        if let Some(f) = funcs.iter().find(|f| f.name == prefixed).or_else(|| funcs.iter().find(|f| f.name == name)) {
            return Ok(f);
        }
        let mut bare = funcs.iter().filter(|f| f.function == name);
        match (bare.next(), bare.next()) {
            (Some(f), None) => Ok(f),
            _ => Err(CallError::UnknownFunction {
                tool: self.name.clone(),
                function: name.to_string(),
                available: funcs.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", "),
            }),
        }
    }
}

/// What one call did, whatever its outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    pub tool: String,
    pub function: String,
    pub outcome: Result<Value, CallError>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub duration: Duration,
    pub fuel_used: Option<u64>,
    pub memory_peak_bytes: u64,
    /// The first 32 denials of the call, in full.
    pub denials: Vec<Denial>,
    /// Denials past the first 32, counted per (kind, op, action).
    pub denials_summarized: Vec<DenialSummary>,
    /// Every denial of the call.
    pub denials_total: u64,
    /// Per-call limits that refused something, whatever the outcome.
    pub limits: Vec<LimitHit>,
}

impl CallRecord {
    /// A call that failed before any guest code ran.
    pub fn failed(tool: &str, function: &str, error: CallError) -> CallRecord {
        CallRecord {
            tool: tool.to_string(),
            function: function.to_string(),
            outcome: Err(error),
            stdout: String::new(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            duration: Duration::ZERO,
            fuel_used: None,
            memory_peak_bytes: 0,
            denials: Vec::new(),
            denials_summarized: Vec::new(),
            denials_total: 0,
            limits: Vec::new(),
        }
    }
}

/// Stops a call in flight: the guest is dropped at its next yield (or
/// host call) and the call ends as [`CallError::Cancelled`] with its
/// denials recorded. Cheap to clone; the first reason given wins.
#[derive(Clone, Default, Debug)]
pub struct Cancel {
    token: CancellationToken,
    reason: Arc<OnceLock<String>>,
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Cancels the call, saying why (`"the caller cancelled it"`).
    pub fn cancel(&self, reason: &str) {
        let _ = self.reason.set(reason.to_string());
        self.token.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    pub fn reason(&self) -> String {
        self.reason.get().cloned().unwrap_or_else(|| "cancelled".into())
    }
}

/// The engine, the linker, and the loaded tools.
pub struct Runtime {
    engine: Engine,
    linker: Linker<SandboxState>,
    cache: CompileCache,
    tools: RwLock<Arc<BTreeMap<String, Arc<Tool>>>>,
    permits: Arc<Semaphore>,
    resolver: Arc<dyn Resolver>,
    /// Guest code runs here, never on the caller's (the server's) workers,
    /// so a busy guest cannot delay the server's I/O.
    guest: Option<tokio::runtime::Runtime>,
    guest_handle: tokio::runtime::Handle,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside async code.
        if let Some(rt) = self.guest.take() {
            rt.shutdown_background();
        }
    }
}

/// The guest runtime: one worker per CPU.
fn guest_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 64);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("wasmward-guest")
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the guest runtime: {e}"))
}

impl Runtime {
    pub fn new(opts: RuntimeOptions) -> anyhow::Result<Runtime> {
        // Calls' files and sockets share the process's descriptors.
        sandbox::fds::raise_nofile_limit();
        let engine = engine::build_engine(&engine::PoolSizes::for_concurrency(opts.max_concurrent_calls))
            .map_err(|e| anyhow::anyhow!("cannot create the wasmtime engine: {e}"))?;
        engine::start_epoch_ticker(&engine);
        let mut linker = Linker::new(&engine);
        sandbox::add_to_linker(&mut linker).map_err(|e| anyhow::anyhow!("cannot link WASI: {e}"))?;
        let guest = guest_runtime()?;
        let guest_handle = guest.handle().clone();
        Ok(Runtime {
            engine,
            linker,
            cache: CompileCache::new(opts.cache_dir),
            tools: RwLock::default(),
            permits: Arc::new(Semaphore::new(opts.max_concurrent_calls.max(1) as usize)),
            resolver: opts.resolver,
            guest: Some(guest),
            guest_handle,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Loads a tool without registering it.
    pub fn load_tool(&self, mut plan: SandboxPlan, path: &Path, sha256: Option<&str>) -> Result<Tool, LoadError> {
        let loaded = crate::component::load(&self.engine, &self.cache, &plan.tool, path, sha256)?;
        plan.imports_fs = loaded.imports.iter().any(|i| i.starts_with("wasi:filesystem/"));
        plan.imports_sockets = loaded.imports.iter().any(|i| i.starts_with("wasi:sockets/"));
        let shown = path.display().to_string();
        let pre = self.linker.instantiate_pre(&loaded.component).map_err(|e| LoadError::Invalid {
            path: shown,
            message: format!("imports something wasmward does not provide: {e}"),
        })?;
        Ok(Tool { name: plan.tool.clone(), path: path.to_path_buf(), loaded, plan: Arc::new(plan), pre })
    }

    /// Replaces the whole set of tools at once; calls in flight keep the
    /// tools they started with.
    pub fn set_tools(&self, tools: Vec<Tool>) {
        let map = tools.into_iter().map(|t| (t.name.clone(), Arc::new(t))).collect();
        *self.tools.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
    }

    pub fn tools(&self) -> Arc<BTreeMap<String, Arc<Tool>>> {
        self.tools.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn tool(&self, name: &str) -> Result<Arc<Tool>, CallError> {
        let tools = self.tools();
        tools.get(name).cloned().ok_or_else(|| CallError::UnknownTool {
            tool: name.to_string(),
            hint: format!("loaded tools: {}", tools.keys().cloned().collect::<Vec<_>>().join(", ")),
        })
    }

    /// Calls `function` of `tool` with named JSON arguments.
    pub async fn call(&self, tool: &str, function: &str, args: &Value) -> CallRecord {
        self.call_cancellable(tool, function, args, None).await
    }

    /// Like [`Runtime::call`]; `cancel` stops the call (the record says
    /// `cancelled` and keeps the denials seen so far). Past its first epoch
    /// tick the guest runs on the runtime's own threads, and then the call
    /// ends even if this future is dropped (within its timeout).
    pub async fn call_cancellable(&self, tool: &str, function: &str, args: &Value, cancel: Option<Cancel>) -> CallRecord {
        let started = Instant::now();
        let blank = |function: &str, e| CallRecord { duration: started.elapsed(), ..CallRecord::failed(tool, function, e) };
        let t = match self.tool(tool) {
            Ok(t) => t,
            Err(e) => return blank(function, e),
        };
        let f = match t.function(function) {
            Ok(f) => f,
            Err(e) => return blank(function, e),
        };
        let params = match convert::args_to_vals(args, &f.params) {
            Ok(p) => p,
            Err(e) => return blank(&f.name, CallError::InvalidArguments { message: e.to_string() }),
        };
        let index = t.loaded.functions.iter().position(|g| std::ptr::eq(g, f)).unwrap_or(0);
        let name = f.name.clone();
        let permit = tokio::select! {
            p = self.permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return blank(&name, CallError::Host { message: "runtime is shutting down".into() }),
            },
            _ = cancelled(&cancel) => {
                let reason = cancel.as_ref().map(Cancel::reason).unwrap_or_default();
                return blank(&name, CallError::Cancelled { reason });
            }
        };
        let job = run_fresh(t.clone(), index, params, started, self.resolver.clone(), cancel);
        let mut job: std::pin::Pin<Box<dyn std::future::Future<Output = CallRecord> + Send>> = Box::pin(async move {
            let _permit = permit;
            job.await
        });
        // A quick call finishes in its first poll, here: moving it to another
        // thread would cost two thread wake-ups, more than the call. A call
        // still running at its first epoch tick (it yields there) or waiting
        // on I/O moves to the guest runtime, so guest code spends at most one
        // tick (5 ms) on the caller's thread.
        // Unconstrained: tokio's cooperative budget would otherwise make
        // every ~60th quick call return Pending from a timer or semaphore
        // poll and take the thread hop anyway (it showed as the p99).
        if let std::task::Poll::Ready(r) = futures::poll!(tokio::task::unconstrained(&mut job)) {
            return r;
        }
        match self.guest_handle.spawn(job).await {
            Ok(r) => r,
            Err(e) => blank(&name, CallError::Host { message: format!("the guest task failed: {e}") }),
        }
    }
}

/// Resolves when `cancel` fires; never without one.
async fn cancelled(cancel: &Option<Cancel>) {
    match cancel {
        Some(c) => c.cancelled().await,
        None => std::future::pending().await,
    }
}

/// One call in a fresh Store; nothing survives it.
async fn run_fresh(tool: Arc<Tool>, index: usize, params: Vec<Val>, started: Instant, resolver: Arc<dyn Resolver>, cancel: Option<Cancel>) -> CallRecord {
    let tool = &*tool;
    let f = &tool.loaded.functions[index];
    let limits = &tool.plan.limits;
    let state = match SandboxState::new(tool.plan.clone(), resolver) {
        Ok(s) => s,
        Err(e) => {
            let mut r = CallRecord::failed(&tool.name, &f.name, CallError::Host { message: format!("cannot build the sandbox: {e}") });
            r.duration = started.elapsed();
            return r;
        }
    };
    let mut store = Store::new(tool.pre.engine(), state);
    store.limiter(|s| &mut s.limiter);
    // Every epoch tick a running guest yields to the executor (so it
    // shares its thread and sees cancellation), and past its deadline it
    // is interrupted (`Trap::Interrupt`, reported as a timeout).
    let deadline = Instant::now() + limits.timeout;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now())))
        }
    });
    let fuel_budget = limits.fuel.unwrap_or(u64::MAX);
    store.set_fuel(fuel_budget).expect("fuel is enabled on the engine");

    let mut results = vec![Val::Bool(false); usize::from(f.result.is_some())];
    // The epoch stops guest code; this also stops a guest blocked in a host
    // call (a sleep, a socket read), which the epoch cannot interrupt.
    let run = async {
        let instance = tool.pre.instantiate_async(&mut store).await?;
        let func = instance
            .get_func(&mut store, f.export)
            .ok_or_else(|| wasmtime::format_err!("export {} vanished", f.name))?;
        func.call_async(&mut store, &params, &mut results).await
    };
    let ran = tokio::select! {
        r = tokio::time::timeout(limits.timeout + Duration::from_millis(50), run) => Some(r),
        _ = cancelled(&cancel) => None,
    };

    let state = store.data();
    let (stdout, stdout_truncated) = state.stdout.take();
    let (stderr, stderr_truncated) = state.stderr.take();
    let fuel_used = store.get_fuel().ok().map(|left| fuel_budget - left);
    let state = store.data();
    let refused = state.limiter.refused_bytes;
    let memory_peak_bytes = state.limiter.peak_bytes as u64;
    let denial_log = state.denials.take();
    let mut limit_hits = state.limit_hits.take();
    if let Some(requested) = refused {
        let configured = limits.memory_bytes as u64;
        limit_hits.insert(0, LimitHit { limit: "memory_mb", mount: None, requested: requested as u64, configured, count: state.limiter.refusals });
    }

    let outcome = match ran {
        None => Err(CallError::Cancelled { reason: cancel.as_ref().map(Cancel::reason).unwrap_or_default() }),
        Some(Err(_)) => Err(CallError::Timeout { timeout_ms: limits.timeout.as_millis() as u64 }),
        Some(Ok(Err(e))) => Err(classify_trap(&e, limits, refused, &stderr)),
        Some(Ok(Ok(()))) => finish(f, results.first(), limits.max_output_bytes),
    };
    let outcome = settle(outcome, &denial_log, &mut limit_hits);
    CallRecord {
        tool: tool.name.clone(),
        function: f.name.clone(),
        outcome,
        stdout,
        stderr,
        stdout_truncated,
        stderr_truncated,
        duration: started.elapsed(),
        fuel_used,
        memory_peak_bytes,
        denials: denial_log.full,
        denials_summarized: denial_log.summarized,
        denials_total: denial_log.total,
        limits: limit_hits,
    }
}

/// The reported cause of a failed call, given what the sandbox refused it:
/// a tool error, trap or exit after a refused write is `write_limit`; a
/// handle limit becomes a recorded limit hit; a failure after a policy
/// denial is `denied` (see [`CallError::after_denials`]). Limits, timeouts
/// and fuel are reported as they are, before denials.
fn settle(outcome: Result<Value, CallError>, denials: &sandbox::DenialLog, hits: &mut Vec<LimitHit>) -> Result<Value, CallError> {
    let e = match outcome {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let tool_failed = matches!(e, CallError::ToolError { .. } | CallError::Trap { .. } | CallError::Exited { .. });
    // The first write limit the call hit: `max_write_bytes` or a mount's `quota_bytes`.
    if let (true, Some(w)) = (tool_failed, hits.iter().find(|h| matches!(h.limit, "max_write_bytes" | "quota_bytes"))) {
        return Err(CallError::WriteLimit { limit: w.configured, requested: w.requested, mount: w.mount.clone() });
    }
    if let CallError::HandleLimit { limit, configured, .. } = &e {
        if !hits.iter().any(|h| h.limit == limit.as_str()) {
            let limit = if limit == "max_handles" { "max_handles" } else { "process_fd_reserve" };
            hits.push(LimitHit { limit, mount: None, requested: configured.saturating_add(1), configured: *configured, count: 1 });
        }
    }
    Err(CallError::after_denials(e, &denials.full, denials.total))
}

fn finish(f: &ToolFunction, result: Option<&Val>, max_output: usize) -> Result<Value, CallError> {
    let (Some(val), Some(ty)) = (result, f.result.as_ref()) else { return Ok(Value::Null) };
    // A top-level `result<_, E>` in `err` is the tool's own typed error.
    if let (Val::Result(Err(payload)), crate::component::wit_type::WitType::Result { err, .. }) = (val, ty) {
        let value = match (payload, err) {
            (Some(p), Some(t)) => convert::val_to_json(p, t),
            _ => Value::Null,
        };
        return Err(CallError::ToolError { value });
    }
    let json = convert::result_to_json(val, ty);
    let size = serde_json::to_vec(&json).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > max_output {
        return Err(CallError::OutputLimit { size: size as u64, limit: max_output as u64 });
    }
    Ok(json)
}

fn classify_trap(e: &wasmtime::Error, limits: &sandbox::Limits, refused: Option<usize>, stderr: &str) -> CallError {
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => return CallError::Timeout { timeout_ms: limits.timeout.as_millis() as u64 },
        Some(Trap::OutOfFuel) => return CallError::FuelExhausted { fuel: limits.fuel.unwrap_or(u64::MAX) },
        _ => {}
    }
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return CallError::Exited { status: exit.0 };
    }
    if let Some(h) = e.downcast_ref::<sandbox::fds::HandleLimitExceeded>() {
        return CallError::HandleLimit { limit: h.limit.into(), configured: h.configured, message: h.message.clone() };
    }
    if matches!(e.downcast_ref::<wasmtime::component::ResourceTableError>(), Some(wasmtime::component::ResourceTableError::Full)) {
        return CallError::HandleLimit {
            limit: "max_handles".into(),
            configured: limits.max_handles as u64,
            message: format!(
                "call exceeded max_handles = {} (files, sockets, streams and other resources held at once); close them sooner or raise [tool.limits] max_handles",
                limits.max_handles
            ),
        };
    }
    if let Some(requested) = refused {
        return CallError::MemoryLimit {
            limit_mb: (limits.memory_bytes >> 20) as u64,
            requested_bytes: requested as u64,
        };
    }
    let mut message = match e.downcast_ref::<Trap>() {
        Some(t) => t.to_string(),
        None => format!("{e}"),
    };
    // A Python exception or a Rust guest's panic message is on its stderr;
    // it explains the trap.
    if let Some(why) = guest_panic(stderr) {
        message.push_str(&format!(" (guest {why})"));
    }
    CallError::Trap { message }
}

/// What a guest's stderr says about its trap: the exception line of the
/// last Python traceback, else a Rust `panicked at` line and the message
/// line after it, else the last line.
fn guest_panic(stderr: &str) -> Option<String> {
    if let Some(e) = python_exception(stderr) {
        return Some(e.chars().take(500).collect());
    }
    if let Some(e) = js_exception(stderr) {
        return Some(e);
    }
    let lines: Vec<&str> = stderr.lines().collect();
    let text = match lines.iter().rposition(|l| l.contains("panicked at")) {
        Some(i) => lines[i..lines.len().min(i + 2)].join(" "),
        None => lines.iter().rev().find(|l| !l.trim().is_empty())?.to_string(),
    };
    Some(text.chars().take(500).collect())
}

/// The exception line (`LookupError: ...`) of the last top-level Python
/// traceback on a componentize-py guest's stderr: the uncaught exception,
/// after the ones it was chained from. An exception group's traceback
/// (`  + Exception Group Traceback ...`, lines under `  | `) gives its own
/// line (`ExceptionGroup: msg (2 sub-exceptions)`), not a sub-exception's.
fn python_exception(stderr: &str) -> Option<&str> {
    const MARK: &str = "Traceback (most recent call last):";
    const GROUP: &str = "  + Exception Group Traceback (most recent call last):";
    let lines: Vec<&str> = stderr.lines().collect();
    // A plain traceback's first line may follow output without a newline;
    // one nested in a group (`    | Traceback ...`) is not top-level.
    let start = lines.iter().rposition(|l| *l == GROUP || (l.ends_with(MARK) && !l.starts_with(' ') && !l.contains('|')))?;
    let rest = &lines[start + 1..];
    if lines[start] == GROUP {
        rest.iter().filter_map(|l| l.strip_prefix("  | ")).find(|l| !l.is_empty() && !l.starts_with(' '))
    } else {
        rest.iter().copied().find(|l| !l.is_empty() && !l.starts_with(' '))
    }
}

/// The line StarlingMonkey (componentize-js) prints when an uncaught
/// exception aborts the guest.
const JS_ABORT: &str = "Redirecting call to abort() to mozalloc_abort";

/// The uncaught exception a componentize-js guest printed before aborting:
/// `threw MESSAGE at FRAME, FRAME` (at most five frames of the tool's own
/// code; the frames of componentize-js's generated bindings and of the JS
/// SDK's generated entry module are dropped), or `threw VALUE` for a
/// thrown non-Error. StarlingMonkey prints an Error as its message lines,
/// `Stack:` and indented `fn@file:line:col` frames, a non-Error as its
/// source form on one line, then [`JS_ABORT`]. An Error's message is taken
/// back to the previous blank line, stack frame or `Stack:` line (earlier
/// `console.error` output ends there); at most 500 characters in all.
fn js_exception(stderr: &str) -> Option<String> {
    let (before, _) = stderr.rsplit_once(JS_ABORT)?;
    let lines: Vec<&str> = before.trim_end().lines().collect();
    let is_frame = |l: &str| l.starts_with("  ") && l.contains('@');
    // The exception's `Stack:` line: the last one followed only by frames.
    let frames_from = lines.iter().rposition(|l| !is_frame(l)).map_or(0, |i| i + 1);
    let (message_lines, frames) = match frames_from.checked_sub(1) {
        Some(i) if lines[i] == "Stack:" => (&lines[..i], &lines[frames_from..]),
        // A thrown non-Error: one line in source form.
        _ => (&lines[lines.len().saturating_sub(1)..], &lines[..0]),
    };
    let start = message_lines
        .iter()
        .rposition(|l| l.trim().is_empty() || l.starts_with("  ") || *l == "Stack:")
        .map_or(0, |i| i + 1);
    let message = message_lines[start..].join(" ").trim().to_string();
    if message.is_empty() {
        return None;
    }
    let own: Vec<&str> = frames
        .iter()
        .map(|f| f.trim())
        .filter(|f| !f.contains("/sources/initializer.js") && !f.contains("@.wasmward-entry.js:"))
        .take(5)
        .collect();
    let mut why = format!("threw {message}");
    if !own.is_empty() {
        why.push_str(&format!(" at {}", own.join(", ")));
    }
    Some(why.chars().take(500).collect())
}

#[cfg(test)]
mod tests {
    use super::{guest_panic, js_exception, python_exception};

    #[test]
    fn panic_reports_keep_the_message_line() {
        let cases = [
            ("thread '<unnamed>' (1) panicked at src/lib.rs:69:9:\nboom\nnote: run with `RUST_BACKTRACE=1`\n", Some("thread '<unnamed>' (1) panicked at src/lib.rs:69:9: boom")),
            ("Traceback (most recent call last):\n  File \"/0/app.py\", line 9, in g\nKeyError: 'a'\n", Some("KeyError: 'a'")),
            ("some output\nlast words\n", Some("last words")),
            ("", None),
        ];
        for (stderr, want) in cases {
            assert_eq!(guest_panic(stderr).as_deref(), want);
        }
    }

    /// Real stderr of componentize-js 0.23 tools (StarlingMonkey), captured
    /// from `wasmward call` on a probe tool: `throw new TypeError("kaboom")`
    /// two calls deep, an Error after `console.error` output that looks like
    /// a stack, a multi-line message, an async export, thrown non-Errors
    /// (the second after other output), and an `Error` thrown from
    /// a `result<_, string>` export (the bindings fail to lower it).
    #[test]
    fn js_exceptions_give_their_message_and_the_tools_own_frames() {
        let cases = [
            (
                "kaboom\nStack:\n  deep@app.js:7:25\n  boom@app.js:8:26\n  export_boom@/tmp/5b9c0aa42ce0/sources/initializer.js:20381:15\n\n\
                 Redirecting call to abort() to mozalloc_abort\n",
                "threw kaboom at deep@app.js:7:25, boom@app.js:8:26",
            ),
            (
                "some output\nStack:\n  fake@x.js:1:1\nafter output\nStack:\n  boomKind@app.js:52:90\n  \
                 export_boomKind@/tmp/5b9c0aa42ce0/sources/initializer.js:20583:15\n\nRedirecting call to abort() to mozalloc_abort\n",
                "threw after output at boomKind@app.js:52:90",
            ),
            (
                "line one\nline two\nStack:\n  boomKind@app.js:51:31\n  \
                 export_boomKind@/tmp/5b9c0aa42ce0/sources/initializer.js:20583:15\n\nRedirecting call to abort() to mozalloc_abort\n",
                "threw line one line two at boomKind@app.js:51:31",
            ),
            (
                "async kaboom\nStack:\n  boomAsync@app.js:60:9\n  async*export_boomAsync@/tmp/5b9c0aa42ce0/sources/initializer.js:20604:15\n\n\
                 Redirecting call to abort() to mozalloc_abort\n",
                "threw async kaboom at boomAsync@app.js:60:9",
            ),
            ("\"a thrown string\"\nRedirecting call to abort() to mozalloc_abort\n", "threw \"a thrown string\""),
            ("earlier output\n({code:7})\nRedirecting call to abort() to mozalloc_abort\n", "threw ({code:7})"),
            (
                "expected a string, received [object]\nStack:\n  _utf8AllocateAndEncode@/tmp/e805548826c4/sources/initializer.js:163:11\n  \
                 export_errResult@/tmp/e805548826c4/sources/initializer.js:20435:45\n\nRedirecting call to abort() to mozalloc_abort\n",
                "threw expected a string, received [object]",
            ),
        ];
        for (stderr, want) in cases {
            assert_eq!(js_exception(stderr).as_deref(), Some(want), "{stderr:?}");
            assert_eq!(guest_panic(stderr).as_deref(), Some(want), "the trap message takes it: {stderr:?}");
        }
        // Not a StarlingMonkey abort, or nothing before it.
        assert_eq!(js_exception("thread 'main' panicked at src/lib.rs:1:1:\nboom\n"), None);
        assert_eq!(js_exception("Redirecting call to abort() to mozalloc_abort\n"), None);
        let long = format!("{}\nStack:\n  f@app.js:1:1\n\nRedirecting call to abort() to mozalloc_abort\n", "x".repeat(2000));
        assert_eq!(js_exception(&long).map(|m| m.chars().count()), Some(500));
    }

    #[test]
    fn python_exceptions_are_taken_from_the_last_traceback() {
        let stderr = "Traceback (most recent call last):\n  File \"/0/app.py\", line 3, in f\nKeyError: 'a'\n\
                      Traceback (most recent call last):\n  File \"/0/app.py\", line 9, in g\n    x()\n\
                      LookupError: unknown encoding: idna\n\nthread '<unnamed>' (1) panicked at runtime/src/lib.rs:1293:29:\n";
        assert_eq!(python_exception(stderr), Some("LookupError: unknown encoding: idna"));
        assert_eq!(python_exception("thread 'main' panicked at src/lib.rs:1:1:"), None);
    }

    #[test]
    fn chained_python_exceptions_give_the_last_one_and_groups_their_own_line() {
        // `raise ValueError(...) from e` in a nested function, as CPython 3.14 prints it.
        let chained = "Traceback (most recent call last):\n  File \"/0/app.py\", line 32, in inner\n    {}[\"missing\"]\n    ~~^^^^^^^^^^^\n\
                       KeyError: 'missing'\n\nThe above exception was the direct cause of the following exception:\n\n\
                       Traceback (most recent call last):\n  File \"/0/app.py\", line 81, in boom\n    return inner(kind)\n\
                       ValueError: chained boom\n\nthread '<unnamed>' (1) panicked at runtime/src/lib.rs:1280:25:\n";
        assert_eq!(python_exception(chained), Some("ValueError: chained boom"));
        let group = "  + Exception Group Traceback (most recent call last):\n  |   File \"/0/app.py\", line 81, in boom\n\
                     \x20 |     return inner(kind)\n  | ExceptionGroup: many (2 sub-exceptions)\n  +-+---------------- 1 ----------------\n\
                     \x20   | Traceback (most recent call last):\n    |   File \"/0/app.py\", line 3, in f\n    | ValueError: a\n\
                     \x20   +---------------- 2 ----------------\n    | KeyError: 'b'\n    +------------------------------------\n\n\
                     thread '<unnamed>' (1) panicked at runtime/src/lib.rs:1280:25:\n";
        assert_eq!(python_exception(group), Some("ExceptionGroup: many (2 sub-exceptions)"));
        // A plain exception raised while handling a group: the plain one.
        let after_group = format!("{group}\nDuring handling of the above exception, another exception occurred:\n\n\
                                   Traceback (most recent call last):\n  File \"/0/app.py\", line 9, in g\nLookupError: last\n");
        assert_eq!(python_exception(&after_group), Some("LookupError: last"));
        // Output without a final newline before the traceback.
        assert_eq!(python_exception("partial outputTraceback (most recent call last):\n  File \"/0/app.py\", line 1, in f\nKeyError: 'k'\n"), Some("KeyError: 'k'"));
    }
}
