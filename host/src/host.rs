//! The assembled host: the operator's config resolved into policies, tools
//! loaded and checked, and the audit log every call is recorded in.
//!
//! A call flows `Host::call` → runtime → sandbox, and its record (result,
//! denials, usage) is written to the audit log before the caller sees it
//! (with `durability = "commit"`).

use crate::audit::{self, AuditEvent, AuditLog, CallEvent, DenialEvent, LimitEvent};
use crate::component::eval;
use crate::config::Config;
use crate::error::CallError;
use crate::policy::{DenialKind, EffectivePolicy, PolicyError};
use crate::runtime::{CallRecord, Cancel, Runtime, RuntimeOptions, Tool};
use crate::sandbox::{Denial, SandboxPlan};
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// Runtime + audit log + the config they were built from.
pub struct Host {
    runtime: Runtime,
    audit: AuditLog,
    config: RwLock<Arc<Config>>,
}

/// Builds a runtime with the options of `cfg` (no tools loaded).
pub fn runtime_for(cfg: &Config) -> anyhow::Result<Runtime> {
    let cache_dir = cfg
        .runtime
        .cache_dir
        .as_ref()
        .map(|p| cfg.resolve_path(p))
        .or_else(crate::component::cache::CompileCache::default_dir);
    Runtime::new(RuntimeOptions { max_concurrent_calls: cfg.runtime.max_concurrent_calls, cache_dir, ..Default::default() })
}

/// Opens the audit log of `cfg`, its path resolved against the config file.
pub fn open_audit(cfg: &Config) -> anyhow::Result<AuditLog> {
    let mut ac = cfg.audit.clone();
    ac.path = cfg.resolve_path(&ac.path);
    AuditLog::open(&ac).map_err(|e| anyhow::anyhow!("{}: [audit] path {}: {e}", cfg.source, ac.path.display()))
}

/// Resolves the effective policy of one tool against the ceiling.
pub fn tool_policy(cfg: &Config, tc: &crate::config::ToolConfig) -> Result<EffectivePolicy, PolicyError> {
    EffectivePolicy::resolve(cfg.defaults.policy.as_ref(), tc.policy.as_ref(), &tc.name)
}

/// A refusal at load time (an import, an embedded interpreter): the load
/// fails and the refusal is audited like any other denial.
struct LoadRefusal {
    message: String,
    denial: Denial,
}

impl Host {
    /// Builds the runtime, opens the audit log and loads every tool.
    pub async fn open(cfg: Config) -> anyhow::Result<Host> {
        let runtime = runtime_for(&cfg)?;
        let audit = open_audit(&cfg)?;
        Host::with_parts(cfg, runtime, audit).await
    }

    /// Like `open` with a given runtime and audit log.
    pub async fn with_parts(cfg: Config, runtime: Runtime, audit: AuditLog) -> anyhow::Result<Host> {
        let host = Host::without_tools(runtime, audit);
        host.reload(cfg).await?;
        Ok(host)
    }

    fn without_tools(runtime: Runtime, audit: AuditLog) -> Host {
        Host { runtime, audit, config: RwLock::new(Arc::new(Config::default())) }
    }

    /// Swaps in `tools` and the config they came from, at once.
    fn install(&self, tools: Vec<Tool>, cfg: Config) {
        self.runtime.set_tools(tools);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cfg);
    }

    /// Validates `cfg` and loads all its tools, then swaps them in at once.
    /// On any error the tools already serving stay as they were.
    pub async fn reload(&self, cfg: Config) -> anyhow::Result<()> {
        let tools = self.load_tools(&cfg).await?;
        // Every function needs a name of its own in the lists agents see.
        let names = crate::server::names::Index::of_tools(&tools, &cfg.server.tool_name_separator);
        if let Some(p) = names.problems().first() {
            anyhow::bail!("{}: {p}", cfg.source);
        }
        self.install(tools, cfg);
        Ok(())
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every loaded tool, by name.
    pub fn tools(&self) -> Arc<std::collections::BTreeMap<String, Arc<Tool>>> {
        self.runtime.tools()
    }

    /// Calls a function by its full name (`text.greet`,
    /// `text.analysis.word-stats`).
    pub async fn call(&self, full_name: &str, args: &Value, caller: &str) -> CallRecord {
        let (tool, function) = full_name.split_once('.').unwrap_or((full_name, ""));
        self.call_tool(tool, function, args, caller).await
    }

    /// Calls `function` of `tool` and records the call and its denials.
    /// With `durability = "commit"` this returns only once they are
    /// committed; if the audit log cannot take them the call fails closed.
    pub async fn call_tool(&self, tool: &str, function: &str, args: &Value, caller: &str) -> CallRecord {
        self.call_tool_cancellable(tool, function, args, caller, None).await
    }

    /// [`Host::call_tool`] that `cancel` can stop: the call is then recorded
    /// with outcome `cancelled` and the denials it had.
    pub async fn call_tool_cancellable(&self, tool: &str, function: &str, args: &Value, caller: &str, cancel: Option<Cancel>) -> CallRecord {
        self.call_tool_linked(tool, function, args, caller, cancel, &audit::new_call_id(), None).await
    }

    /// [`Host::call_tool_cancellable`] recorded under `call_id` (so the
    /// server's gate events for the call share it), with the id of the
    /// approval that let it run in the `call` row.
    #[allow(clippy::too_many_arguments)]
    pub async fn call_tool_linked(
        &self,
        tool: &str,
        function: &str,
        args: &Value,
        caller: &str,
        cancel: Option<Cancel>,
        call_id: &str,
        approval_id: Option<&str>,
    ) -> CallRecord {
        let events = |record: &CallRecord| {
            let mut events = call_events(record, args, caller);
            if let Some(AuditEvent::Call(c)) = events.first_mut() {
                c.approval_id = approval_id.map(String::from);
            }
            events
        };
        // Fail closed: while the audit log cannot be written, no tool runs.
        // The refusal itself is queued behind the held events.
        if let Some(why) = self.audit.unavailable() {
            let message = format!("audit log unavailable, calls are refused until it can be written: {why}");
            let name = self.runtime.tool(tool).ok().and_then(|t| t.function(function).ok().map(|f| f.name.clone()));
            let record = CallRecord::failed(tool, name.as_deref().unwrap_or(function), CallError::Host { message });
            let _ = self.audit.record_with_id(call_id, events(&record)).await;
            return record;
        }
        let mut record = self.runtime.call_cancellable(tool, function, args, cancel).await;
        if let Err(e) = self.audit.record_with_id(call_id, events(&record)).await {
            tracing::error!(error = %e, "audit log write failed; failing the call closed");
            record.outcome = Err(CallError::Host { message: format!("audit log unavailable: {e}") });
        }
        record
    }

    /// Flushes the audit log.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.audit.shutdown().await.map_err(|e| anyhow::anyhow!("audit log flush failed: {e}"))
    }

    async fn load_tools(&self, cfg: &Config) -> anyhow::Result<Vec<Tool>> {
        let total = cfg.tools.len();
        let mut tools = Vec::with_capacity(total);
        let tls = cfg.runtime.tls_config().map_err(|m| anyhow::anyhow!("{}: {m}", cfg.source))?;
        for (i, tc) in cfg.tools.iter().enumerate() {
            tools.push(self.load_one(cfg, tc, &tls, i, total).await?);
        }
        Ok(tools)
    }

    /// Like [`Host::open`], but a tool that does not load does not stop
    /// the others: the host serves every tool that loaded, and each failure
    /// comes back as (tool name, message). What `wasmward check` uses to
    /// report every failing tool at once.
    pub async fn open_each(cfg: Config) -> anyhow::Result<(Host, Vec<(String, String)>)> {
        let host = Host::without_tools(runtime_for(&cfg)?, open_audit(&cfg)?);
        let tls = cfg.runtime.tls_config().map_err(|m| anyhow::anyhow!("{}: {m}", cfg.source))?;
        let total = cfg.tools.len();
        let mut tools = Vec::with_capacity(total);
        let mut failures = Vec::new();
        for (i, tc) in cfg.tools.iter().enumerate() {
            match host.load_one(&cfg, tc, &tls, i, total).await {
                Ok(t) => tools.push(t),
                Err(e) => failures.push((tc.name.clone(), format!("{e:#}"))),
            }
        }
        let names = crate::server::names::Index::of_tools(&tools, &cfg.server.tool_name_separator);
        failures.extend(names.problems().iter().map(|p| (String::new(), format!("{}: {p}", cfg.source))));
        host.install(tools, cfg);
        Ok((host, failures))
    }

    async fn load_one(
        &self,
        cfg: &Config,
        tc: &crate::config::ToolConfig,
        tls: &Option<Arc<rustls::ClientConfig>>,
        i: usize,
        total: usize,
    ) -> anyhow::Result<Tool> {
        let started = Instant::now();
        let ctx = format!("{}: tool {:?}", cfg.source, tc.name);
        let limits = tc
            .limits
            .resolve(&cfg.defaults.limits, &format!("tool {:?}.limits", tc.name))
            .map_err(|m| anyhow::anyhow!("{}: {m}", cfg.source))?;
        let policy = tool_policy(cfg, tc).map_err(|e| anyhow::anyhow!("{}: {e}", cfg.source))?;
        let path = cfg.resolve_path(&tc.path);
        tracing::info!(tool = %tc.name, path = %path.display(), "loading tool {}/{total}", i + 1);
        let mut tool = self
            .runtime
            .load_tool(SandboxPlan { tls: tls.clone(), ..SandboxPlan::new(policy, limits) }, &path, tc.sha256.as_deref())
            .map_err(|e| anyhow::anyhow!("{ctx}: {e}"))?;
        if let Err(refusal) = vet(&tool) {
            self.audit_load_refusal(&tc.name, &refusal).await;
            anyhow::bail!("{ctx}: {}", refusal.message);
        }
        if let Some(d) = &tc.description {
            for f in &mut tool.loaded.functions {
                f.description.get_or_insert_with(|| d.clone());
            }
        }
        tracing::info!(
            tool = %tc.name,
            functions = tool.loaded.functions.len(),
            cache = ?tool.loaded.cache,
            ms = started.elapsed().as_millis() as u64,
            "loaded tool {}/{total}", i + 1
        );
        Ok(tool)
    }

    async fn audit_load_refusal(&self, tool: &str, r: &LoadRefusal) {
        let event = denial_event(tool, "<load>", "operator", &r.denial);
        if let Err(e) = self.audit.record(vec![AuditEvent::Denial(event)]).await {
            tracing::error!(error = %e, "could not audit a load refusal");
        }
    }
}

/// Load-time checks of a compiled tool against its policy: memory floor,
/// imports, embedded interpreters.
fn vet(tool: &Tool) -> Result<(), LoadRefusal> {
    let policy = &tool.plan.policy;
    let m = &tool.loaded.metadata;
    let limit = tool.plan.limits.memory_bytes as u64;
    if m.min_memory_bytes > limit {
        return Err(LoadRefusal {
            message: format!(
                "the component needs {} MiB of linear memory to start but memory_mb = {}; raise [tool.limits] memory_mb to at least {}",
                m.min_memory_bytes.div_ceil(1 << 20),
                limit >> 20,
                m.min_memory_bytes.div_ceil(1 << 20)
            ),
            denial: Denial {
                kind: DenialKind::Import,
                op: "instantiate".into(),
                target: format!("{} bytes of initial memory", m.min_memory_bytes),
                rule: format!("memory_mb = {}", limit >> 20),
                action: "denied",
            },
        });
    }
    if !policy.allow_eval_exec {
        if let Some(interp) = eval::detect(m) {
            return Err(LoadRefusal {
                message: format!(
                    "the component embeds an interpreter, {}, which can run code it did not ship with. \
                     Fix: set allow_eval_exec = true in the tool's [tool.policy]; for a local trial of a file, \
                     `wasmward call --allow-eval FILE.wasm FUNCTION`. `wasmward inspect FILE.wasm` lists the evidence",
                    interp.summary()
                ),
                denial: Denial {
                    kind: DenialKind::Eval,
                    op: "load".into(),
                    // One line; `wasmward inspect` lists the evidence.
                    target: interp.summary(),
                    rule: "allow_eval_exec = false".into(),
                    action: "denied",
                },
            });
        }
    }
    let problems = policy.vet_imports(tool.loaded.imports.iter().map(String::as_str));
    let ungrantable: Vec<&str> = problems.iter().filter(|p| !p.fatal).map(|p| p.import.as_str()).collect();
    if !ungrantable.is_empty() {
        // Most toolchains import WASI interfaces a tool never uses, so this
        // is a note, not a warning; `wasmward check` lists each with why.
        tracing::info!(tool = %tool.name, imports = ?ungrantable, "imports its policy can never grant (set strict_imports = true to refuse)");
    }
    if let Some(p) = problems.iter().find(|p| p.fatal) {
        let fix = if policy.strict_imports && policy.imports.check_import(&p.import) == crate::policy::ImportVerdict::Allowed {
            "grant what it needs in [tool.policy], set strict_imports = false, or rebuild the tool without this import"
        } else {
            "remove the matching blocked_imports entry (or add the import to allowed_imports) in [tool.policy], or rebuild the tool without this import"
        };
        return Err(LoadRefusal {
            message: format!("{p}. Fix: {fix}"),
            denial: Denial {
                kind: DenialKind::Import,
                op: "import".into(),
                target: p.import.clone(),
                rule: p.reason.clone(),
                action: "denied",
            },
        });
    }
    Ok(())
}

fn denial_event(tool: &str, function: &str, caller: &str, d: &Denial) -> DenialEvent {
    DenialEvent {
        tool: tool.into(),
        function: function.into(),
        caller: caller.into(),
        capability: d.kind.as_str().into(),
        op: d.op.clone(),
        target: d.target.clone(),
        rule: d.rule.clone(),
        action: d.action.into(),
        count: None,
    }
}

/// The events of one call, all bounded whatever the tool did:
///
/// - the `call` row, its error text cut to
///   [`audit::MAX_RECORDED_STRING_BYTES`] (`error_bytes` then holds the
///   original size) and `denials` the call's true number of denials;
/// - one `denial` row for each of the first 32 denials;
/// - one summary `denial` row (with `count`) per capability and op for the
///   denials past those, carrying the last one's target and rule;
/// - one `limit` row per limit that refused something in the call.
pub fn call_events(r: &CallRecord, args: &Value, caller: &str) -> Vec<AuditEvent> {
    let mut call = CallEvent::new(&r.tool, &r.function, caller, args);
    call.outcome = match &r.outcome {
        Ok(_) => audit::outcome::OK.to_string(),
        Err(e) => e.code().to_string(),
    };
    if let Err(e) = &r.outcome {
        let text = e.to_string();
        if text.len() > audit::MAX_RECORDED_STRING_BYTES {
            call.error_bytes = Some(text.len() as u64);
        }
        call.error = Some(crate::sandbox::denials::truncate_text(&text, audit::MAX_RECORDED_STRING_BYTES));
    }
    call.duration_us = r.duration.as_micros() as u64;
    call.fuel_used = r.fuel_used;
    call.memory_bytes = Some(r.memory_peak_bytes);
    call.denials = r.denials_total.max(r.denials.len() as u64).min(u32::MAX as u64) as u32;
    let mut events = vec![AuditEvent::Call(call)];
    events.extend(r.denials.iter().map(|d| AuditEvent::Denial(denial_event(&r.tool, &r.function, caller, d))));
    events.extend(r.denials_summarized.iter().map(|s| {
        AuditEvent::Denial(DenialEvent {
            tool: r.tool.clone(),
            function: r.function.clone(),
            caller: caller.into(),
            capability: s.kind.as_str().into(),
            op: s.op.clone(),
            target: s.last_target.clone(),
            rule: s.last_rule.clone(),
            action: s.action.into(),
            count: Some(s.count),
        })
    }));
    events.extend(r.limits.iter().map(|h| {
        AuditEvent::Limit(LimitEvent {
            tool: r.tool.clone(),
            function: r.function.clone(),
            caller: caller.into(),
            limit: h.limit.into(),
            mount: h.mount.clone(),
            requested: h.requested,
            configured: h.configured,
            count: h.count,
        })
    }));
    events
}

/// The tool name a component given by path is served under: its file stem,
/// lowercased, with characters a tool name cannot hold replaced by `-`.
pub fn tool_name_for_file(path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("tool");
    stem.to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .collect()
}

/// A host for one component given by path, with the config's defaults (or
/// the built-in ones) and no `[tool.policy]`, so it is granted nothing.
/// What `wasmward call FILE.wasm` uses.
pub async fn host_for_file(path: &Path, cfg: &Config) -> anyhow::Result<(Host, String)> {
    host_for_file_with_policy(path, cfg, None).await
}

/// [`host_for_file`] with a `[tool.policy]` (still under the config's
/// `[defaults.policy]` ceiling): `wasmward call --allow-eval` grants
/// `allow_eval_exec` this way.
pub async fn host_for_file_with_policy(
    path: &Path,
    cfg: &Config,
    policy: Option<crate::policy::PolicySpec>,
) -> anyhow::Result<(Host, String)> {
    let name = tool_name_for_file(path);
    let mut one = cfg.clone();
    if one.source.is_empty() {
        one.source = path.display().to_string();
    }
    one.tools = vec![crate::config::ToolConfig {
        name: name.clone(),
        path: std::path::absolute(path)?,
        sha256: None,
        description: None,
        limits: Default::default(),
        policy,
        require_approval: false,
    }];
    Ok((Host::open(one).await?, name))
}
