//! `wasmward:tool/process`: there is no WASI process API, so this is the
//! only way a tool can start a program. Only an allowlisted absolute path
//! runs, with an argv (never a shell), an env built from the policy alone, a
//! timeout, an output cap and a concurrency cap. Everything else is `denied`
//! and recorded.

use super::caps::process::{Error, Host, Output};
use super::denials::Denial;
use super::SandboxState;
use crate::policy::{DenialKind, SubprocessPolicy};
use std::path::{Path, PathBuf};
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
}

impl ProcessPlan {
    pub fn new(policy: SubprocessPolicy, env: Vec<(String, String)>, cwd: Option<PathBuf>) -> Self {
        let permits = policy.max_concurrent.max(1) as usize;
        ProcessPlan { policy, env, cwd, concurrency: Arc::new(Semaphore::new(permits)) }
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
        let resolved = match plan.policy.find(&program) {
            Ok(p) => p.path.clone(),
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
        run_program(&resolved, &args, stdin, &plan).await
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

async fn run_program(program: &Path, args: &[String], stdin: Vec<u8>, plan: &ProcessPlan) -> Result<Output, Error> {
    let temp;
    let cwd = match &plan.cwd {
        Some(c) => c.as_path(),
        None => {
            temp = tempfile::tempdir().map_err(|e| Error::SpawnFailed(format!("temp dir: {e}")))?;
            temp.path()
        }
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env_clear()
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::SpawnFailed(format!("{}: {e}", program.display())))?;

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
        let ((), (stdout, t1), (stderr, t2)) = tokio::join!(feed, out, err);
        let status = child.wait().await;
        (status, stdout, stderr, t1 || t2)
    };
    match tokio::time::timeout(Duration::from_millis(plan.policy.timeout_ms), run).await {
        Ok((Ok(status), stdout, stderr, truncated)) => Ok(Output {
            status: status.code().unwrap_or(-1),
            stdout,
            stderr,
            truncated,
        }),
        Ok((Err(e), ..)) => Err(Error::SpawnFailed(e.to_string())),
        Err(_) => Err(Error::Timeout),
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
