//! `wasmward:tool/process`: there is no WASI process API, so this is the
//! only way a tool can start a program. Only an allowlisted absolute path
//! runs, with an argv (never a shell), an env built from the policy alone, a
//! timeout, an output cap and a concurrency cap. Everything else is `denied`
//! and recorded.

use super::caps::process::{Error, Host, Output};
use super::denials::Denial;
use super::{SandboxState, ViolationAction};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

/// What the policy lets a tool run. The default runs nothing.
#[derive(Debug, Clone)]
pub struct ProcessPlan {
    pub allow: bool,
    /// Absolute, canonical program paths.
    pub allowlist: Vec<PathBuf>,
    pub env: Vec<(String, String)>,
    /// Working directory; `None` runs in a fresh temporary directory.
    pub cwd: Option<PathBuf>,
    pub timeout: Duration,
    pub max_output_bytes: usize,
    /// Shared by every call of the tool.
    pub concurrency: Arc<Semaphore>,
}

impl Default for ProcessPlan {
    fn default() -> Self {
        ProcessPlan {
            allow: false,
            allowlist: Vec::new(),
            env: Vec::new(),
            cwd: None,
            timeout: Duration::from_secs(10),
            max_output_bytes: 1 << 20,
            concurrency: Arc::new(Semaphore::new(4)),
        }
    }
}

impl ProcessPlan {
    /// Resolves `program` (a bare name or an absolute path) against the
    /// allowlist, or says which rule refuses it.
    pub fn resolve(&self, program: &str) -> Result<PathBuf, String> {
        if !self.allow {
            return Err("allow_subprocess = false".into());
        }
        let wanted = Path::new(program);
        let hit = self.allowlist.iter().find(|p| {
            if wanted.is_absolute() {
                *p == wanted
            } else {
                !program.contains('/') && p.file_name().is_some_and(|n| n == program)
            }
        });
        hit.cloned().ok_or_else(|| "not on subprocess_allowlist".into())
    }
}

impl Host for SandboxState {
    async fn run(&mut self, program: String, args: Vec<String>, stdin: Vec<u8>) -> Result<Output, Error> {
        let plan = self.plan.process.clone();
        let resolved = match plan.resolve(&program) {
            Ok(p) => p,
            Err(rule) => {
                let logged = self.plan.action == ViolationAction::Log && plan.allow;
                self.denials.record(Denial {
                    kind: "process",
                    op: "spawn".into(),
                    target: argv_summary(&program, &args),
                    rule: rule.clone(),
                    action: if logged { "logged" } else { "denied" },
                });
                // Discovery mode records the would-be denial, but still only
                // ever runs absolute paths that exist.
                match (logged, Path::new(&program).is_absolute()) {
                    (true, true) => PathBuf::from(&program),
                    _ => return Err(Error::Denied(format!("{program}: {rule}"))),
                }
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
    let cap = plan.max_output_bytes;
    let out = read_capped(child.stdout.take(), cap);
    let err = read_capped(child.stderr.take(), cap);
    let run = async {
        let ((), (stdout, t1), (stderr, t2)) = tokio::join!(feed, out, err);
        let status = child.wait().await;
        (status, stdout, stderr, t1 || t2)
    };
    match tokio::time::timeout(plan.timeout, run).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_admits_only_allowlisted_programs() {
        let plan = ProcessPlan {
            allow: true,
            allowlist: vec![PathBuf::from("/usr/bin/echo"), PathBuf::from("/bin/ls")],
            ..Default::default()
        };
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("echo", Ok("/usr/bin/echo")),
            ("/usr/bin/echo", Ok("/usr/bin/echo")),
            ("ls", Ok("/bin/ls")),
            ("sh", Err("not on subprocess_allowlist")),
            ("/bin/echo", Err("not on subprocess_allowlist")),
            ("./echo", Err("not on subprocess_allowlist")),
            ("../../usr/bin/echo", Err("not on subprocess_allowlist")),
            ("", Err("not on subprocess_allowlist")),
        ];
        for (program, want) in cases {
            let got = plan.resolve(program);
            match want {
                Ok(p) => assert_eq!(got.as_deref(), Ok(Path::new(p)), "{program}"),
                Err(e) => assert_eq!(got.unwrap_err(), *e, "{program}"),
            }
        }
        let closed = ProcessPlan { allow: false, ..plan };
        assert_eq!(closed.resolve("echo").unwrap_err(), "allow_subprocess = false");
    }
}
