//! The `wasmward` command line. Exit status: 0 success, 1 the call failed,
//! 2 bad usage or config.

use crate::config::Config;
use crate::host::Host;
use crate::runtime::CallRecord;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "wasmward", version, about = "Run untrusted WebAssembly tools behind a real capability boundary")]
pub struct Cli {
    /// Log level filter (or set RUST_LOG).
    #[arg(long, global = true, default_value = "warn")]
    pub log_level: String,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "human")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Call one function of a tool and print its JSON result.
    Call {
        /// Config file [default: wasmward.toml]; one named here must exist.
        #[arg(long)]
        config: Option<PathBuf>,
        /// A tool name from the config, or a path to a .wasm component.
        tool: String,
        /// The function: `greet`, `analysis.word-stats` or `text.greet`.
        function: String,
        /// Named arguments as a JSON object.
        #[arg(long, default_value = "{}")]
        args: String,
    },
    /// Show what a component imports and exports, its schemas and producers.
    Inspect {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Validate the config and load every tool, printing what each gets.
    Check {
        #[arg(long, default_value = "wasmward.toml")]
        config: PathBuf,
    },
    /// Verify, prune, follow or export the audit log.
    Audit {
        #[command(subcommand)]
        action: crate::audit_cli::AuditAction,
    },
    /// Serve tools over MCP (stdio, or streamable HTTP at /mcp) and the HTTP API.
    Serve {
        #[arg(long, default_value = "wasmward.toml")]
        config: PathBuf,
        /// MCP on stdin/stdout for a parent process (no HTTP unless --listen).
        #[arg(long)]
        stdio: bool,
        /// HTTP address (default: [server] listen).
        #[arg(long)]
        listen: Option<String>,
        /// Scope the stdio caller with a token.
        #[arg(long, env = "WASMWARD_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Issue, revoke or list bearer tokens.
    Token {
        #[command(subcommand)]
        action: crate::server::cli::TokenAction,
    },
    /// Decide calls waiting for approval on a running server.
    Approve {
        #[command(subcommand)]
        action: crate::server::cli::ApproveAction,
    },
    /// Scaffold a new tool (Rust crate, Python app or JS module).
    New {
        name: String,
        #[arg(long, value_enum, default_value = "rust")]
        lang: Lang,
        /// Directory to create it in (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Lang {
    Rust,
    /// componentize-py 0.25
    Python,
    /// componentize-js 0.23
    Js,
}

/// A failure with its exit status.
pub struct Failure {
    pub status: u8,
    pub message: String,
}

pub fn usage(message: impl std::fmt::Display) -> Failure {
    Failure { status: 2, message: message.to_string() }
}

/// `--config` when it is not given.
pub const DEFAULT_CONFIG: &str = "wasmward.toml";

/// The config of a command that can run without one (`call FILE.wasm`,
/// `audit ...`). A file named with `--config` must exist: a typo must not
/// quietly select the built-in defaults (and, say, prune the default log).
/// Without `--config`, `./wasmward.toml` is read if it exists, else the
/// defaults apply.
pub fn optional_config(config: Option<&Path>) -> Result<Config, Failure> {
    match config {
        Some(path) if !path.exists() => Err(usage(format!(
            "--config {}: no such file; check the path (without --config, ./{DEFAULT_CONFIG} or the built-in defaults are used)",
            path.display()
        ))),
        Some(path) => Config::load(path).map_err(usage),
        None if Path::new(DEFAULT_CONFIG).exists() => Config::load(Path::new(DEFAULT_CONFIG)).map_err(usage),
        None => Ok(Config::default()),
    }
}

/// Logs every policy warning (what `check` prints) on stderr, so `serve`
/// and `call` show them too.
pub fn log_policy_warnings(cfg: &Config) {
    for tc in &cfg.tools {
        let Ok(policy) = crate::host::tool_policy(cfg, tc) else { continue };
        for w in policy.warnings() {
            tracing::warn!(tool = %tc.name, field = %w.field, "policy warning: {}", w.message);
        }
    }
    for (a, b) in mount_overlaps(cfg) {
        tracing::warn!("policy warning: {a} and {b} overlap on the host; a link or file one of them writes is seen by the other (see `wasmward check`)");
    }
}

/// Pairs of mounts of different tools where one host path is inside (or is)
/// the other's, as `tool "a" /host/path (rw)` texts.
pub fn mount_overlaps(cfg: &Config) -> Vec<(String, String)> {
    let mut mounts: Vec<(String, crate::policy::Mount)> = Vec::new();
    for tc in &cfg.tools {
        if let Ok(p) = crate::host::tool_policy(cfg, tc) {
            mounts.extend(p.mounts.mounts().iter().map(|m| (tc.name.clone(), m.clone())));
        }
    }
    let show = |(t, m): &(String, crate::policy::Mount)| format!("tool {t:?} {} ({}, at {})", m.host.display(), m.mode, m.guest);
    let mut out = Vec::new();
    for (i, a) in mounts.iter().enumerate() {
        for b in &mounts[i + 1..] {
            if a.0 != b.0 && (a.1.host.starts_with(&b.1.host) || b.1.host.starts_with(&a.1.host)) {
                out.push((show(a), show(b)));
            }
        }
    }
    out
}

pub fn init_logging(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log_level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Call { config, tool, function, args } => call(config.as_deref(), &tool, &function, &args).await,
        Command::Inspect { file, json } => inspect(&file, json),
        Command::Check { config } => check(&config).await,
        Command::Audit { action } => crate::audit_cli::run(action).await,
        Command::Serve { config, stdio, listen, token } => {
            crate::server::run::serve(crate::server::run::ServeOptions { config, stdio, listen, token }).await
        }
        Command::Token { action } => crate::server::cli::token(action),
        Command::Approve { action } => crate::server::cli::approve(action).await,
        Command::New { name, lang, dir } => crate::scaffold::new_tool(&name, lang, dir.as_deref()).map_err(usage),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("error: {}", f.message);
            }
            ExitCode::from(f.status)
        }
    }
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
}

fn looks_like_path(tool: &str) -> bool {
    tool.ends_with(".wasm") || tool.contains('/')
}

async fn call(config: Option<&Path>, tool: &str, function: &str, args: &str) -> Result<(), Failure> {
    let args: Value = serde_json::from_str(args)
        .map_err(|e| usage(format!("--args is not valid JSON: {e}; pass an object such as '{{\"name\": \"x\"}}'")))?;
    let (host, tool_name) = if looks_like_path(tool) {
        let cfg = optional_config(config)?;
        crate::host::host_for_file(Path::new(tool), &cfg).await.map_err(|e| usage(format!("{e:#}")))?
    } else {
        let config = config.unwrap_or(Path::new(DEFAULT_CONFIG));
        let cfg = Config::load(config).map_err(usage)?;
        log_policy_warnings(&cfg);
        if !cfg.tools.iter().any(|t| t.name == tool) {
            let names: Vec<_> = cfg.tools.iter().map(|t| t.name.as_str()).collect();
            return Err(usage(format!("no tool named `{tool}` in {}; tools: {}", config.display(), names.join(", "))));
        }
        (Host::open(cfg).await.map_err(|e| usage(format!("{e:#}")))?, tool.to_string())
    };
    let record = host.call_tool(&tool_name, function, &args, "cli").await;
    if let Err(e) = host.shutdown().await {
        tracing::error!(error = %e, "audit flush failed");
    }
    report_call(record)
}

fn report_call(record: CallRecord) -> Result<(), Failure> {
    for (name, text, cut) in [("stdout", &record.stdout, record.stdout_truncated), ("stderr", &record.stderr, record.stderr_truncated)] {
        if !text.is_empty() {
            eprintln!("--- guest {name}{} ---\n{}", if cut { " (truncated)" } else { "" }, text.trim_end());
        }
    }
    for d in &record.denials {
        eprintln!("{d}");
    }
    for s in &record.denials_summarized {
        eprintln!("{} {} {}: {} more like this (last: {}: {})", s.action, s.kind.as_str(), s.op, s.count, s.last_target, s.last_rule);
    }
    match record.outcome {
        Ok(v) => {
            print_json(&v);
            Ok(())
        }
        Err(e) => {
            let status = match e {
                crate::CallError::UnknownTool { .. } | crate::CallError::UnknownFunction { .. } => 2,
                _ => 1,
            };
            let mut detail = serde_json::to_value(&e).unwrap_or(Value::Null);
            if let Some(o) = detail.as_object_mut() {
                o.insert("message".into(), Value::String(e.to_string()));
            }
            eprintln!("{}", json!({"error": detail}));
            Err(Failure { status, message: e.to_string() })
        }
    }
}

fn inspect(file: &Path, as_json: bool) -> Result<(), Failure> {
    let rt = crate::host::runtime_for(&Config::default()).map_err(|e| usage(format!("{e:#}")))?;
    let plan = crate::sandbox::SandboxPlan::deny_all(&crate::host::tool_name_for_file(file), Default::default());
    let tool = rt.load_tool(plan, file, None).map_err(usage)?;
    let interpreter = crate::component::eval::detect(&tool.loaded.metadata);
    let l = &tool.loaded;
    let report = json!({
        "file": file.display().to_string(),
        "sha256": l.digest,
        "size_bytes": std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
        "languages": l.metadata.languages(),
        "producers": l.metadata.producers.iter().map(|(f, n, v)| json!({"field": f, "name": n, "version": v})).collect::<Vec<_>>(),
        "core_modules": l.metadata.core_modules,
        "min_memory_bytes": l.metadata.min_memory_bytes,
        "imports": l.imports,
        "functions": l.functions,
        "skipped": l.skipped,
        "compile_cache": l.cache,
        "interpreter": interpreter,
    });
    if as_json {
        print_json(&report);
        return Ok(());
    }
    println!("{}\n  sha256  {}\n  size    {} bytes", file.display(), l.digest, report["size_bytes"]);
    if !l.metadata.languages().is_empty() {
        println!("  language {}", l.metadata.languages().join(", "));
    }
    if let Some(i) = &interpreter {
        println!("  embeds interpreter {} ({}): needs allow_eval_exec = true", i.runtime, i.evidence.join(", "));
    }
    println!("imports ({}):", l.imports.len());
    for i in &l.imports {
        println!("  {i}");
    }
    println!("functions ({}):", l.functions.len());
    for f in &l.functions {
        println!("  {}  {}", f.name, f.description.as_deref().unwrap_or("").lines().next().unwrap_or(""));
        println!("    input  {}", f.input_schema);
        println!("    output {}", f.output_schema);
    }
    if !l.skipped.is_empty() {
        println!("skipped ({}):", l.skipped.len());
        for s in &l.skipped {
            println!("  {}: {}", s.export, s.reason);
        }
    }
    Ok(())
}

/// What the programs of a tool granted `process` can reach (issue 9).
fn child_reach(policy: &crate::policy::EffectivePolicy) -> Vec<String> {
    let sp = &policy.subprocess;
    if !sp.allowed || sp.programs.is_empty() {
        return Vec::new();
    }
    let mut out = vec!["process: each program runs confined (Landlock + seccomp + rlimits), and can reach:".to_string()];
    for p in &sp.programs {
        let args = match &p.args {
            None => "any arguments".to_string(),
            Some(a) => format!("arguments matching {:?}", a.iter().map(|x| x.source.as_str()).collect::<Vec<_>>()),
        };
        let shell = if p.allow_shell { ", a shell or interpreter (allow_shell)" } else { "" };
        out.push(format!("  program {} ({}), {args}{shell}", p.path.display(), p.name));
        for x in &p.extra_read_paths {
            out.push(format!("    + read {} (extra_read_paths)", x.display()));
        }
    }
    for m in policy.mounts.mounts() {
        let mode = if m.mode == crate::policy::MountMode::Rw { "read-write" } else { "read-only" };
        out.push(format!("  {mode}: {} (the tool's mount {})", m.host.display(), m.guest));
    }
    #[cfg(target_os = "linux")]
    out.push(format!(
        "  read + execute: {} (those present)",
        crate::sandbox::confine::SYSTEM_READ_PATHS.join(", ")
    ));
    out.push("  read-write: /dev/null and a private empty TMPDIR, removed after the run".into());
    out.push("  network: none (no TCP/UDP sockets; a fresh network namespace when the host is root)".into());
    out.push(format!(
        "  limits: timeout {} ms (then the whole process group is killed; it is killed when the call ends anyway), \
         address space {} bytes, {} processes, files up to {} bytes, {} open files, output {} bytes",
        sp.timeout_ms, sp.max_memory_bytes, sp.max_processes, sp.max_file_bytes, sp.max_open_files, sp.max_output_bytes
    ));
    out.push(if sp.run_as == 0 {
        "  runs as: the host's user (subprocess_run_as = 0)".to_string()
    } else {
        format!("  runs as: uid/gid {} when the host is root, else the host's user", sp.run_as)
    });
    out
}

async fn check(config: &Path) -> Result<(), Failure> {
    let cfg = Config::load(config).map_err(usage)?;
    let mut warnings = 0;
    for tc in &cfg.tools {
        let policy = crate::host::tool_policy(&cfg, tc).map_err(|e| usage(format!("{}: {e}", config.display())))?;
        println!("[[tool]] {}  ({})", tc.name, cfg.resolve_path(&tc.path).display());
        println!("effective policy:");
        for line in policy.to_string().lines() {
            println!("  {line}");
        }
        for w in policy.warnings() {
            warnings += 1;
            println!("  warning: {w}");
        }
        for line in child_reach(&policy) {
            println!("  {line}");
        }
        let path = cfg.resolve_path(&tc.path);
        if let Ok(bytes) = std::fs::read(&path) {
            let imports = crate::component::metadata::import_names(&bytes);
            for p in policy.vet_imports(imports.iter().map(String::as_str)) {
                warnings += usize::from(!p.fatal);
                println!("  {}: {p}", if p.fatal { "error" } else { "warning" });
            }
        }
    }
    let gated: Vec<(String, u64)> = cfg
        .tools
        .iter()
        .filter(|tc| tc.require_approval || (cfg.gate.approve_process && crate::host::tool_policy(&cfg, tc).is_ok_and(|p| p.subprocess.allowed)))
        .filter_map(|tc| tc.limits.resolve(&cfg.defaults.limits, "").ok().map(|l| (tc.name.clone(), l.timeout.as_millis() as u64)))
        .collect();
    for w in cfg.gate.approval_warnings(&gated) {
        warnings += 1;
        println!("warning: {w}");
    }
    for (a, b) in mount_overlaps(&cfg) {
        warnings += 1;
        println!("warning: mounts overlap: {a} and {b}: one host path is inside the other, so a symlink or file one tool writes there is seen by the other; give each tool its own directory");
    }
    if let Some(o) = &cfg.server.oauth {
        let keys = match (&o.jwks_file, &o.jwks_url) {
            (Some(f), _) => format!("keys from {} (read and checked)", cfg.resolve_path(f).display()),
            (None, Some(u)) => format!("keys from {u} (fetched when the server starts)"),
            _ => String::new(),
        };
        println!("[server.oauth] resource {}, issuer {}, {keys}, {} scope(s)", o.resource, o.issuer, o.scopes.len());
    }
    let sep = cfg.server.tool_name_separator.clone();
    let host = Host::open(cfg).await.map_err(|e| usage(format!("{e:#}")))?;
    let names = crate::server::names::Index::of_tools(host.tools().values().map(|t| &**t), &sep);
    for t in host.tools().values() {
        println!("tool {}: {} function(s), sha256 {}, limits {}", t.name, t.loaded.functions.len(), t.loaded.digest,
            serde_json::to_string(&t.plan.limits).unwrap_or_default());
        for f in &t.loaded.functions {
            println!("  {}  (listed to agents as {})", f.name, names.listed(&f.name));
        }
    }
    println!("{}: {} tool(s) OK, {warnings} warning(s)", config.display(), host.tools().len());
    host.shutdown().await.map_err(|e| usage(format!("{e:#}")))?;
    Ok(())
}
