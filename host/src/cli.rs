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
        /// Named arguments as a JSON object: inline, `@FILE.json` to read
        /// a file, or `-` to read stdin.
        #[arg(long, default_value = "{}", value_name = "JSON|@FILE|-")]
        args: String,
        /// For a local trial of a .wasm given by path: let it run even if it
        /// embeds an interpreter (Python, JavaScript), as `allow_eval_exec =
        /// true` would. Prints a warning. A config's tools use their
        /// [tool.policy] instead.
        #[arg(long)]
        allow_eval: bool,
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
        Command::Call { config, tool, function, args, allow_eval } => {
            call(config.as_deref(), &tool, &function, &args, allow_eval).await
        }
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

/// The JSON of `--args`: inline text, `@FILE` (a file) or `-` (stdin).
/// Errors name where the text came from and the JSON position.
pub fn read_args(spec: &str, stdin: &mut dyn std::io::Read) -> Result<Value, Failure> {
    let (text, from) = if spec == "-" {
        let mut text = String::new();
        stdin
            .read_to_string(&mut text)
            .map_err(|e| usage(format!("--args -: cannot read stdin: {e}")))?;
        (text, "--args - (stdin)".to_string())
    } else if let Some(file) = spec.strip_prefix('@') {
        let text = std::fs::read_to_string(file).map_err(|e| {
            usage(format!("--args @{file}: cannot read {file}: {e}; give the path of a JSON file after @ (or inline JSON, or - for stdin)"))
        })?;
        (text, format!("--args @{file}: {file}"))
    } else {
        return serde_json::from_str(spec).map_err(|e| {
            usage(format!("--args is not valid JSON: {e}; pass an object such as '{{\"name\": \"x\"}}', @FILE.json or - (stdin)"))
        });
    };
    serde_json::from_str(&text).map_err(|e| usage(format!("{from} is not valid JSON: {e}")))
}

async fn call(config: Option<&Path>, tool: &str, function: &str, args: &str, allow_eval: bool) -> Result<(), Failure> {
    let args = read_args(args, &mut std::io::stdin().lock())?;
    let by_path = looks_like_path(tool);
    if allow_eval && !by_path {
        return Err(usage(format!(
            "--allow-eval applies to a .wasm given by path; `{tool}` is a config tool, so set allow_eval_exec = true in its [tool.policy]"
        )));
    }
    let progress = Progress::start(short_name(tool));
    let opened = if by_path {
        let cfg = optional_config(config)?;
        let policy = allow_eval.then(|| crate::policy::PolicySpec { allow_eval_exec: Some(true), ..Default::default() });
        crate::host::host_for_file_with_policy(Path::new(tool), &cfg, policy).await
    } else {
        let config = config.unwrap_or(Path::new(DEFAULT_CONFIG));
        let mut cfg = Config::load(config).map_err(usage)?;
        let Some(tc) = cfg.tools.iter().find(|t| t.name == tool).cloned() else {
            let names: Vec<_> = cfg.tools.iter().map(|t| t.name.as_str()).collect();
            return Err(usage(format!("no tool named `{tool}` in {}; tools: {}", config.display(), names.join(", "))));
        };
        // Only the called tool is loaded: another tool's broken file or
        // policy does not block this call, and the time does not grow with
        // the number of tools.
        cfg.tools = vec![tc];
        log_policy_warnings(&cfg);
        Host::open(cfg).await.map(|h| (h, tool.to_string()))
    };
    progress.finish();
    let (host, tool_name) = opened.map_err(|e| usage(format!("{e:#}")))?;
    if let Some(t) = host.tools().get(&tool_name) {
        note_compiled(&host.config(), tool, &t.loaded);
        if allow_eval {
            match crate::component::eval::detect(&t.loaded.metadata) {
                Some(i) => eprintln!(
                    "warning: --allow-eval: {tool} embeds an interpreter, {}, which can run code it did not ship with; \
                     this call allows it (in a config: allow_eval_exec = true in the tool's [tool.policy])",
                    i.summary()
                ),
                None => eprintln!("note: --allow-eval: {tool} embeds no interpreter; the flag changes nothing"),
            }
        }
    }
    let record = host.call_tool(&tool_name, function, &args, "cli").await;
    if let Err(e) = host.shutdown().await {
        tracing::error!(error = %e, "audit flush failed");
    }
    report_call(record)
}

/// The file name of a path (`python-text.wasm`), or a tool name as is.
fn short_name(tool: &str) -> String {
    Path::new(tool).file_name().map_or_else(|| tool.to_string(), |n| n.to_string_lossy().into_owned())
}

/// A spinner with the elapsed time on stderr while a tool loads, shown
/// only when stderr is a terminal and the load takes over 0.8 s (a
/// first compile of a Python or JS tool takes 20-40 s; a cache hit, ms).
struct Progress {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(label: String) -> Progress {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return Progress { stop: None, thread: None };
        }
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            if rx.recv_timeout(std::time::Duration::from_millis(800)).is_ok() {
                return;
            }
            let frames = ['|', '/', '-', '\\'];
            let mut i = 0;
            loop {
                let secs = started.elapsed().as_secs();
                // Short, so that it fits a terminal line and `\r` redraws it.
                eprint!("\r\x1b[2K{} compiling {label}: {secs} s (first load only; later loads use the cache)", frames[i % frames.len()]);
                i += 1;
                match rx.recv_timeout(std::time::Duration::from_millis(150)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
            eprint!("\r\x1b[2K");
        });
        Progress { stop: Some(tx), thread: Some(thread) }
    }

    fn finish(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// On a terminal, after a load that compiled: how long it took and that
/// the next load comes from the compile cache.
fn note_compiled(cfg: &Config, what: &str, loaded: &crate::component::LoadedComponent) {
    use crate::component::cache::CacheOutcome;
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || !matches!(loaded.cache, CacheOutcome::Miss | CacheOutcome::Rebuilt) {
        return;
    }
    if loaded.load_time < std::time::Duration::from_secs(1) {
        return;
    }
    let dir = cfg
        .runtime
        .cache_dir
        .as_ref()
        .map(|p| cfg.resolve_path(p))
        .or_else(crate::component::cache::CompileCache::default_dir);
    let at = dir.map(|d| format!(" ({})", d.display())).unwrap_or_default();
    eprintln!(
        "note: compiled {what} in {:.1} s; later calls load it from the compile cache{at} in milliseconds",
        loaded.load_time.as_secs_f64()
    );
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
    let cfg = Config::default();
    let rt = crate::host::runtime_for(&cfg).map_err(|e| usage(format!("{e:#}")))?;
    let plan = crate::sandbox::SandboxPlan::deny_all(&crate::host::tool_name_for_file(file), Default::default());
    let progress = Progress::start(short_name(&file.display().to_string()));
    let tool = rt.load_tool(plan, file, None);
    progress.finish();
    let tool = tool.map_err(usage)?;
    note_compiled(&cfg, &file.display().to_string(), &tool.loaded);
    let interpreter = crate::component::eval::detect(&tool.loaded.metadata);
    let l = &tool.loaded;
    let languages = tool_languages(&l.metadata, interpreter.as_ref());
    let report = json!({
        "file": file.display().to_string(),
        "sha256": l.digest,
        "size_bytes": std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
        "languages": languages,
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
    if !languages.is_empty() {
        println!("  language {}", languages.join(", "));
    }
    if let Some(i) = &interpreter {
        println!("  embeds interpreter {}: needs allow_eval_exec = true (or `call --allow-eval` for a trial)", i.summary());
        println!("    evidence: {}", i.evidence.join(", "));
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

/// The languages a tool is written in: for one that embeds an interpreter,
/// the interpreted language (its producers name the language the runtime
/// itself was built in, Rust or C, which is not the author's); else the
/// producers' `language` fields.
fn tool_languages(m: &crate::component::metadata::Metadata, interpreter: Option<&crate::component::eval::Interpreter>) -> Vec<String> {
    match interpreter {
        Some(i) => {
            let named = m.languages().into_iter().find(|l| l.starts_with(i.language()));
            vec![named.unwrap_or_else(|| i.language().to_string())]
        }
        None => m.languages(),
    }
}

/// Resolved limits as config keys (`timeout_ms = 5000, memory_mb = 128`),
/// the way an author writes them in `[tool.limits]`.
pub fn limits_as_written(l: &crate::sandbox::Limits) -> String {
    let mut parts = vec![format!("timeout_ms = {}", l.timeout.as_millis()), format!("memory_mb = {}", l.memory_bytes >> 20)];
    if let Some(f) = l.fuel {
        parts.push(format!("fuel = {f}"));
    }
    parts.push(format!("max_output_bytes = {}", l.max_output_bytes));
    parts.push(format!("max_stdout_bytes = {}", l.max_stdout_bytes));
    parts.push(format!("max_write_bytes = {}", l.max_write_bytes));
    parts.push(format!("max_handles = {}", l.max_handles));
    parts.join(", ")
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
        println!("[[tool]] {}  ({})", tc.name, cfg.resolve_path(&tc.path).display());
        // A policy error is reported with the tool's load failure below.
        let Ok(policy) = crate::host::tool_policy(&cfg, tc) else { continue };
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
    let total = cfg.tools.len();
    let progress = Progress::start(format!("{total} tool(s)"));
    let opened = Host::open_each(cfg).await;
    progress.finish();
    let (host, failures) = opened.map_err(|e| usage(format!("{e:#}")))?;
    let names = crate::server::names::Index::of_tools(host.tools().values().map(|t| &**t), &sep);
    for t in host.tools().values() {
        note_compiled(&host.config(), &format!("tool {}", t.name), &t.loaded);
        println!("tool {}: {} function(s), sha256 {}, limits {}", t.name, t.loaded.functions.len(), t.loaded.digest, limits_as_written(&t.plan.limits));
        for f in &t.loaded.functions {
            println!("  {}  (listed to agents as {})", f.name, names.listed(&f.name));
        }
    }
    // Each message names the file and the tool.
    for (_, message) in &failures {
        eprintln!("error: {message}");
    }
    host.shutdown().await.map_err(|e| usage(format!("{e:#}")))?;
    if !failures.is_empty() {
        let mut failed: Vec<&str> = failures.iter().map(|(t, _)| t.as_str()).filter(|t| !t.is_empty()).collect();
        failed.dedup();
        let shown = if failed.is_empty() { String::new() } else { format!(": {}", failed.join(", ")) };
        return Err(usage(format!(
            "{}: {} of {total} tool(s) failed to load{shown}, {} problem(s) in all (each is listed above); {warnings} warning(s)",
            config.display(),
            failed.len(),
            failures.len()
        )));
    }
    println!("{}: {total} tool(s) OK, {warnings} warning(s)", config.display());
    Ok(())
}
