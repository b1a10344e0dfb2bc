//! `wasmward:tool/process`: there is no WASI process API, so this is the
//! only way a tool can start a program. Only an allowlisted absolute path
//! runs, with an argv (never a shell), an env built from the policy alone, a
//! timeout, an output cap and a concurrency cap. Everything else is `denied`
//! and recorded.
//!
//! On Linux the program is confined by the kernel ([`super::confine`]):
//! Landlock limits it to the tool's mounts, its own executable, the system
//! library dirs and a private temp dir (`TMPDIR`); it has no network; it runs
//! as `subprocess_run_as` when the host is root, under rlimits, `no_new_privs`
//! and a seccomp filter; and it runs in its own process group, which is
//! killed whole when the call ends, on success, error or timeout. A
//! descendant still alive then, or a run killed at its timeout, is an audit
//! event. Elsewhere `allow_subprocess` is refused at load.

use super::caps::process::{Error, Host, Output};
use super::denials::Denial;
use super::SandboxState;
use crate::policy::{DenialKind, SubprocessPolicy};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

/// What the policy lets a tool run, plus the per-tool concurrency cap.
#[derive(Debug, Clone)]
pub struct ProcessPlan {
    pub policy: SubprocessPolicy,
    /// The policy's `env`; the program sees nothing else.
    pub env: Vec<(String, String)>,
    /// Working directory: the first write mount, else a fresh temp dir.
    pub cwd: Option<PathBuf>,
    /// Shared by every call of the tool.
    pub concurrency: Arc<Semaphore>,
    /// The tool's mounts (host path, writable?): all a program may reach
    /// besides the system's libraries and its private temp dir.
    pub mounts: Vec<(PathBuf, bool)>,
}

impl ProcessPlan {
    pub fn new(policy: SubprocessPolicy, env: Vec<(String, String)>, cwd: Option<PathBuf>) -> Self {
        let permits = policy.max_concurrent.max(1) as usize;
        ProcessPlan { policy, env, cwd, concurrency: Arc::new(Semaphore::new(permits)), mounts: Vec::new() }
    }
}

impl Default for ProcessPlan {
    fn default() -> Self {
        ProcessPlan::new(SubprocessPolicy::default(), Vec::new(), None)
    }
}

impl Host for SandboxState {
    async fn run(&mut self, program: String, args: Vec<String>, stdin: Vec<u8>) -> Result<Output, Error> {
        let plan = self.plan.process.clone();
        // The allowlist holds in `log` mode too: discovery mode records
        // network uses, it never runs a program the operator did not list.
        let resolved = match plan.policy.find(&program).and_then(|p| p.check_args(&args).map(|()| p)) {
            Ok(p) => p.clone(),
            Err(rule) => {
                self.denials.record(Denial::new(
                    DenialKind::Process,
                    "spawn",
                    argv_summary(&program, &args),
                    rule.clone(),
                    self.plan.action().for_kind(DenialKind::Process),
                ));
                return Err(Error::Denied(format!("{program}: {rule}")));
            }
        };
        let Ok(_permit) = plan.concurrency.clone().acquire_owned().await else {
            return Err(Error::SpawnFailed("process capability shut down".into()));
        };
        let mut events = Vec::new();
        let out = run_program(&resolved, &args, stdin, &plan, &mut events).await;
        for (op, rule) in events {
            // Never `logged`: log mode does not widen the process capability.
            self.denials.record(Denial::new(
                DenialKind::Process,
                op,
                argv_summary(&program, &args),
                rule,
                crate::policy::ViolationAction::Deny,
            ));
        }
        out
    }
}

fn argv_summary(program: &str, args: &[String]) -> String {
    let mut s = program.to_string();
    for a in args.iter().take(16) {
        s.push(' ');
        s.push_str(a);
    }
    s.chars().take(512).collect()
}

/// Kills the run's whole process group when dropped: every path out of
/// [`run_program`] (success, error, timeout, the call being cancelled).
///
/// The pgid is the program's pid. While any member of the group lives, the
/// kernel does not reuse that number; after the program is reaped with no
/// member left, `kill` finds nothing (ESRCH). The one window: the group is
/// empty, the program was just reaped, and within those microseconds a new
/// process gets the same pid and makes itself a group leader. A PID
/// namespace or a cgroup would close it; not done yet.
struct GroupKill(Option<i32>);

impl GroupKill {
    /// SIGKILL to the group; whether any process was still there.
    fn kill(&mut self) -> bool {
        match self.0.take() {
            // SAFETY: plain syscall; the pgid is the child's pid, which the
            // kernel does not reuse while the group has members.
            Some(pgid) if pgid > 0 => unsafe { libc::kill(-pgid, libc::SIGKILL) == 0 },
            _ => false,
        }
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn run_program(
    entry: &crate::policy::Program,
    args: &[String],
    stdin: Vec<u8>,
    plan: &ProcessPlan,
    events: &mut Vec<(&'static str, String)>,
) -> Result<Output, Error> {
    let program = entry.path.as_path();
    let spawn_err = |what: &str, e: std::io::Error| Error::SpawnFailed(format!("{what}: {e}"));
    // The private temp dir: TMPDIR, writable by the run's uid, removed after.
    let tmp = tempfile::Builder::new().prefix("wasmward-run-").tempdir().map_err(|e| spawn_err("temp dir", e))?;
    let cwd = plan.cwd.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .env("TMPDIR", tmp.path())
        .current_dir(&cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    #[cfg(target_os = "linux")]
    {
        use super::confine::{Confinement, Grants, Limits};
        let p = &plan.policy;
        let grants = Grants { program, extra_read: &entry.extra_read_paths, mounts: plan.mounts.clone(), tmp: tmp.path() };
        let limits = Limits {
            cpu_seconds: p.timeout_ms.div_ceil(1000) + 1,
            memory_bytes: p.max_memory_bytes,
            processes: p.max_processes,
            file_bytes: p.max_file_bytes,
            open_files: p.max_open_files,
        };
        let confinement = Confinement::new(&grants, &limits, p.run_as).map_err(|e| spawn_err("sandbox", e))?;
        if let Some(uid) = confinement.run_as() {
            // SAFETY: plain syscall on a path we own.
            let c = std::ffi::CString::new(tmp.path().as_os_str().as_encoded_bytes()).unwrap_or_default();
            unsafe { libc::chown(c.as_ptr(), uid, uid) };
        }
        // SAFETY: `apply` makes only async-signal-safe system calls and
        // touches only memory built before the fork.
        unsafe {
            cmd.pre_exec(move || confinement.apply());
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        return Err(Error::SpawnFailed("programs can only be confined on Linux".into()));
    }
    let mut child = cmd.spawn().map_err(|e| spawn_err(&program.display().to_string(), e))?;
    let mut group = GroupKill(child.id().map(|id| id as i32));

    let mut child_stdin = child.stdin.take();
    let feed = async move {
        if let Some(s) = child_stdin.as_mut() {
            let _ = s.write_all(&stdin).await;
        }
        drop(child_stdin);
    };
    let cap = plan.policy.max_output_bytes as usize;
    let out = read_capped(child.stdout.take(), cap);
    let err = read_capped(child.stderr.take(), cap);
    let run = async {
        let status = child.wait();
        // Output ends when the last holder of the pipes exits: a background
        // descendant must not keep the call open, so once the program exits
        // the group is killed and the pipes drain.
        let ((), (stdout, t1), (stderr, t2), status) = tokio::join!(feed, out, err, async {
            let st = status.await;
            let leftover = group.kill();
            (st, leftover)
        });
        (status, stdout, stderr, t1 || t2)
    };
    let result = tokio::time::timeout(Duration::from_millis(plan.policy.timeout_ms), run).await;
    match result {
        Ok(((Ok(status), leftover), stdout, stderr, truncated)) => {
            if leftover {
                events.push(("kill", "descendants outlived the program; process group killed".into()));
            }
            use std::os::unix::process::ExitStatusExt;
            if let Some(sig) = status.signal() {
                let why = match sig {
                    libc::SIGXCPU => "CPU time limit (RLIMIT_CPU)".to_string(),
                    libc::SIGXFSZ => "file size limit (subprocess_max_file_bytes)".to_string(),
                    libc::SIGSYS => "a system call the sandbox refuses".to_string(),
                    s => format!("signal {s}"),
                };
                events.push(("killed", format!("the program died of {why}")));
            }
            Ok(Output { status: status.code().unwrap_or(-1), stdout, stderr, truncated })
        }
        Ok(((Err(e), _), ..)) => Err(Error::SpawnFailed(e.to_string())),
        Err(_) => {
            events.push(("kill", "subprocess_timeout_ms: process group killed".into()));
            Err(Error::Timeout)
        }
    }
}

/// Reads up to `cap` bytes, then drains the rest so the child never blocks
/// on a full pipe.
async fn read_capped(src: Option<impl tokio::io::AsyncRead + Unpin>, cap: usize) -> (Vec<u8>, bool) {
    let Some(mut src) = src else { return (Vec::new(), false) };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut truncated = false;
    loop {
        match src.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..n.min(room)]);
                truncated |= n > room;
            }
        }
    }
    (buf, truncated)
}
