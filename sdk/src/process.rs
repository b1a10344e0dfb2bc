//! Run a program the operator allowlisted.
//!
//! There is no shell: `program` is resolved against the policy's
//! `subprocess_allowlist` and `args` become argv[1..]. Every call is denied
//! unless the operator granted `allow_subprocess`. An entry may pin the
//! arguments (a refused argv is `Denied`). The program runs inside the
//! tool's sandbox (Linux: Landlock, seccomp, rlimits, no network): it sees
//! the tool's mounts and a private `TMPDIR`, nothing else of the host.

use crate::bindings::wasmward::tool::process as host;
use std::fmt;

/// What a finished program produced.
pub use host::Output;

impl Output {
    /// True when the program exited with status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// Standard output as text, invalid UTF-8 replaced.
    pub fn stdout_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text, invalid UTF-8 replaced.
    pub fn stderr_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Why a program did not run to completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessError {
    /// The policy refused this program; the text names the rule.
    Denied(String),
    /// The program could not be started.
    SpawnFailed(String),
    /// The program ran past the policy's timeout and was killed.
    Timeout,
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::Denied(why) => write!(f, "denied: {why}"),
            ProcessError::SpawnFailed(why) => write!(f, "spawn failed: {why}"),
            ProcessError::Timeout => f.write_str("timeout: the program was killed"),
        }
    }
}

impl std::error::Error for ProcessError {}

impl From<host::Error> for ProcessError {
    fn from(e: host::Error) -> Self {
        match e {
            host::Error::Denied(why) => ProcessError::Denied(why),
            host::Error::SpawnFailed(why) => ProcessError::SpawnFailed(why),
            host::Error::Timeout => ProcessError::Timeout,
        }
    }
}

/// Run `program` with `args`, feeding it `stdin`, and wait for it to exit.
///
/// ```ignore
/// let out = wasmward_sdk::process::run("git", &["status", "--short"], b"")?;
/// println!("{}", out.stdout_lossy());
/// ```
pub fn run<S: AsRef<str>>(program: &str, args: &[S], stdin: &[u8]) -> Result<Output, ProcessError> {
    let args: Vec<String> = args.iter().map(|a| a.as_ref().to_string()).collect();
    host::run(program, &args, stdin).map_err(ProcessError::from)
}
