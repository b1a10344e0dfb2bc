//! `allow_subprocess` + `subprocess_allowlist`: programs are resolved to
//! absolute paths once, at load, so PATH changes later cannot swap them.
//! An entry is a name/path or `{ program, args, allow_shell,
//! extra_read_paths }`; shells and interpreters ([`SHELL_LIKE`]) need
//! `allow_shell = true`; `args` are whole-argument regexes, one per
//! position ([`Program::check_args`]). The `subprocess_max_*` limits and
//! `subprocess_run_as` feed the kernel confinement (`sandbox::confine`);
//! without Landlock a grant is refused at load ([`sandbox_unavailable`]).
//!
//! ```ignore
//! let sh = resolve_program("sh", std::env::var_os("PATH").as_deref()).unwrap();
//! assert!(sh.is_absolute());
//! ```

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::{ErrorKind, Problem};

/// Built-in limits when neither the tool nor the ceiling sets them.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// 1 MiB of stdout + stderr per run.
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 1 << 20;
/// Runs at once, per tool.
pub const DEFAULT_MAX_CONCURRENT: u32 = 4;
/// RLIMIT_AS of a run: 1 GiB of address space.
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 1 << 30;
/// RLIMIT_NPROC of a run. Counted per uid by the kernel (and never enforced
/// for uid 0), which is why runs drop to [`DEFAULT_RUN_AS`].
pub const DEFAULT_MAX_PROCESSES: u64 = 64;
/// RLIMIT_FSIZE of a run: 64 MiB per file.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;
/// RLIMIT_NOFILE of a run.
pub const DEFAULT_MAX_OPEN_FILES: u64 = 256;
/// The uid and gid a run drops to when the host is root: `nobody`.
pub const DEFAULT_RUN_AS: u32 = 65534;

/// One allowlisted program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Program {
    /// As written in the allowlist (`git` or `/usr/bin/git`).
    pub name: String,
    /// Absolute path found at load. Not canonicalised: multi-call binaries
    /// (busybox) depend on the name they are started by.
    pub path: PathBuf,
    /// Argument patterns (`None`: any argv); see [`Program::check_args`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<ArgPattern>>,
    /// A shell or interpreter the operator let on the list.
    pub allow_shell: bool,
    /// Host paths the program may read besides the tool's mounts.
    pub extra_read_paths: Vec<PathBuf>,
}

impl Program {
    /// A plain entry: any argv, no shell, no extra paths.
    pub fn plain(name: &str, path: impl Into<PathBuf>) -> Program {
        Program { name: name.into(), path: path.into(), args: None, allow_shell: false, extra_read_paths: Vec::new() }
    }

    /// With patterns, argv must have exactly one argument per pattern and
    /// argument `i` must match pattern `i` whole (the pattern is anchored
    /// as `^(?:pattern)$`). Err: the rule naming the refused argument.
    pub fn check_args(&self, args: &[String]) -> Result<(), String> {
        let Some(pats) = &self.args else { return Ok(()) };
        for (i, a) in args.iter().enumerate() {
            match pats.get(i) {
                None => {
                    return Err(format!(
                        "argument {} {a:?}: the allowlist entry allows {} argument(s)",
                        i + 1,
                        pats.len()
                    ))
                }
                Some(p) if !p.regex.is_match(a) => {
                    return Err(format!("argument {} {a:?} does not match {:?}", i + 1, p.source))
                }
                Some(_) => {}
            }
        }
        if args.len() < pats.len() {
            return Err(format!("{} argument(s), the allowlist entry needs {}", args.len(), pats.len()));
        }
        Ok(())
    }
}

/// One argument regex, compiled at load.
#[derive(Debug, Clone)]
pub struct ArgPattern {
    /// As written.
    pub source: String,
    regex: regex::Regex,
}

impl ArgPattern {
    pub fn new(source: &str) -> Result<ArgPattern, regex::Error> {
        Ok(ArgPattern { source: source.into(), regex: regex::Regex::new(&format!("^(?:{source})$"))? })
    }
}

impl PartialEq for ArgPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}
impl Eq for ArgPattern {}

impl Serialize for ArgPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

/// Programs that run other programs or code by nature: shells,
/// interpreters, and launchers whose arguments name another program.
pub const SHELL_LIKE: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "csh", "tcsh", "fish", "busybox", "env", "xargs", "find",
    "awk", "gawk", "mawk", "nawk", "perl", "ruby", "node", "nodejs", "deno", "bun", "php", "lua", "tclsh", "wish",
    "pypy", "pypy3", "nice", "nohup", "timeout", "stdbuf", "setsid", "sudo", "su", "doas", "strace", "ltrace",
    "gdb", "watch", "script", "expect", "flock", "chroot", "unshare", "nsenter", "parallel", "osascript", "pwsh",
];

/// Whether `path` (or what it links to) is a shell or interpreter.
pub fn is_shell_like(path: &Path) -> bool {
    let hit = |p: &Path| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            SHELL_LIKE.contains(&n)
                || n.starts_with("python")
                || n.starts_with("perl")
                || n.starts_with("ruby")
                || n.starts_with("lua")
                || n.starts_with("php")
        })
    };
    hit(path) || std::fs::canonicalize(path).is_ok_and(|c| hit(&c))
}

/// The resolved subprocess grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubprocessPolicy {
    /// `allow_subprocess`.
    pub allowed: bool,
    /// Programs `process` may run.
    pub programs: Vec<Program>,
    /// Per-run timeout.
    pub timeout_ms: u64,
    /// Captured output cap per run.
    pub max_output_bytes: u64,
    /// Concurrent runs per tool.
    pub max_concurrent: u32,
    /// RLIMIT_AS, bytes.
    pub max_memory_bytes: u64,
    /// RLIMIT_NPROC (per uid).
    pub max_processes: u64,
    /// RLIMIT_FSIZE, bytes.
    pub max_file_bytes: u64,
    /// RLIMIT_NOFILE.
    pub max_open_files: u64,
    /// Uid and gid of the program when the host is root (0: stay root).
    pub run_as: u32,
}

impl Default for SubprocessPolicy {
    fn default() -> Self {
        SubprocessPolicy {
            allowed: false,
            programs: Vec::new(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            max_processes: DEFAULT_MAX_PROCESSES,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_open_files: DEFAULT_MAX_OPEN_FILES,
            run_as: DEFAULT_RUN_AS,
        }
    }
}

impl SubprocessPolicy {
    /// The program a tool asked for (by allowlisted name or absolute path),
    /// or the rule that refuses it. The first entry for it wins.
    pub fn find(&self, program: &str) -> Result<&Program, String> {
        if !self.allowed {
            return Err("allow_subprocess is false".into());
        }
        self.programs
            .iter()
            .find(|p| p.name == program || p.path.as_os_str() == program)
            .ok_or_else(|| "not on subprocess_allowlist".into())
    }
}

/// Why programs cannot be confined here, if they cannot: the process
/// capability needs Landlock (Linux 5.13+, enabled at boot) and seccomp.
/// A tool granted `allow_subprocess` is refused at load without them.
pub fn sandbox_unavailable() -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        let abi = landlock_abi();
        if abi < 1 {
            return Some("the kernel has no Landlock (Linux 5.13+ with landlock in the lsm= boot list), so a program could not be confined".into());
        }
        None
    }
    #[cfg(not(target_os = "linux"))]
    {
        Some("programs can only be confined on Linux (Landlock + seccomp)".into())
    }
}

/// The kernel's Landlock ABI version (0: none).
#[cfg(target_os = "linux")]
pub fn landlock_abi() -> i64 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: the documented version query; no pointers are read.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    v.max(0)
}

/// Resolves an allowlist entry: an absolute path must be an executable
/// file; a bare name is looked up in `path_var` (PATH).
pub fn resolve_program(name: &str, path_var: Option<&OsStr>) -> Result<PathBuf, Problem> {
    let unresolved =
        |problem: String, fix: &str| Problem::new(ErrorKind::UnresolvedProgram, problem, fix);
    if name.is_empty() || name.contains('\0') {
        return Err(unresolved(
            "empty program name".into(),
            "write a program name such as `git`, or remove the entry",
        ));
    }
    if name.contains('/') {
        let p = Path::new(name);
        if !p.is_absolute() {
            return Err(Problem::new(
                ErrorKind::RelativePath,
                "relative program path",
                "write an absolute path, or a bare name to look up in PATH",
            ));
        }
        return if is_executable(p) {
            Ok(p.to_path_buf())
        } else {
            Err(unresolved(
                "not an executable file".into(),
                "check the path, or install the program",
            ))
        };
    }
    std::env::split_paths(path_var.unwrap_or_default())
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            unresolved(
                "not found in PATH".into(),
                "install it, or write its absolute path",
            )
        })
}

fn is_executable(p: &Path) -> bool {
    let Ok(meta) = p.metadata() else { return false };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (patterns, argv, Ok or Err(substring of the rule))
    const ARGS: &[(Option<&[&str]>, &[&str], Result<(), &str>)] = &[
        (None, &["-c", "anything"], Ok(())),
        (Some(&["status", "--porcelain"]), &["status", "--porcelain"], Ok(())),
        (Some(&["status", "--porcelain"]), &["status"], Err("1 argument(s), the allowlist entry needs 2")),
        (Some(&["status"]), &["status", "-c"], Err("argument 2 \"-c\": the allowlist entry allows 1")),
        (Some(&["status"]), &["xstatus"], Err("argument 1 \"xstatus\" does not match \"status\"")),
        (Some(&["^status$"]), &["status"], Ok(())),
        (Some(&["[a-z]+\\.txt"]), &["a.txt; rm -rf /"], Err("argument 1")),
        (Some(&[]), &[], Ok(())),
    ];

    #[test]
    fn args_table() {
        for &(pats, argv, want) in ARGS {
            let mut p = Program::plain("git", "/usr/bin/git");
            p.args = pats.map(|ps| ps.iter().map(|s| ArgPattern::new(s).unwrap()).collect());
            let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
            match (p.check_args(&argv), want) {
                (Ok(()), Ok(())) => {}
                (Err(g), Err(w)) => assert!(g.contains(w), "{pats:?} {argv:?}: {g}"),
                (g, w) => panic!("{pats:?} {argv:?}: {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn shells_are_recognised() {
        for p in ["/bin/sh", "/usr/bin/env", "/usr/bin/python3", "/usr/bin/python3.11", "/usr/bin/find", "/usr/bin/xargs"] {
            assert!(is_shell_like(Path::new(p)), "{p}");
        }
        for p in ["/bin/true", "/usr/bin/cat", "/bin/sleep"] {
            assert!(!is_shell_like(Path::new(p)), "{p}");
        }
    }

    /// (program, PATH, Ok(path) or Err(kind))
    const CASES: &[(&str, &str, Result<&str, ErrorKind>)] = &[
        ("sh", "/bin:/usr/bin", Ok("/bin/sh")),
        ("sh", "relative:/bin", Ok("/bin/sh")),
        ("/bin/sh", "", Ok("/bin/sh")),
        ("sh", "", Err(ErrorKind::UnresolvedProgram)),
        (
            "no-such-program-xyz",
            "/bin:/usr/bin",
            Err(ErrorKind::UnresolvedProgram),
        ),
        (
            "/etc/hostname-does-not-exist",
            "",
            Err(ErrorKind::UnresolvedProgram),
        ),
        ("/etc", "", Err(ErrorKind::UnresolvedProgram)),
        ("bin/sh", "/", Err(ErrorKind::RelativePath)),
        ("", "/bin", Err(ErrorKind::UnresolvedProgram)),
    ];

    #[test]
    fn resolve_table() {
        for &(name, path, want) in CASES {
            let got = resolve_program(name, Some(OsStr::new(path)));
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, Path::new(w), "{name} in {path}"),
                (Err(g), Err(w)) => assert_eq!(g.kind, w, "{name} in {path}: {g}"),
                (g, w) => panic!("{name} in {path}: {g:?}, want {w:?}"),
            }
        }
    }

    /// (requested, allowed?, Ok(path) or Err(rule))
    const FIND: &[(&str, bool, Result<&str, &str>)] = &[
        ("git", true, Ok("/usr/bin/git")),
        ("/usr/bin/git", true, Ok("/usr/bin/git")),
        ("sh", true, Err("not on subprocess_allowlist")),
        ("git", false, Err("allow_subprocess is false")),
    ];

    #[test]
    fn find_table() {
        for &(req, allowed, want) in FIND {
            let sp = SubprocessPolicy {
                allowed,
                programs: vec![Program::plain("git", "/usr/bin/git")],
                ..Default::default()
            };
            let got = sp.find(req).map(|p| p.path.to_str().unwrap());
            assert_eq!(got, want.map_err(String::from), "{req}");
        }
    }
}
