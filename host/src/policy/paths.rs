//! Filesystem mounts (`allowed_read_paths`, `allowed_write_paths`) and the
//! lexical guest-path rules the host applies before cap-std does.
//!
//! Guest mount paths are absolute, unique, never nested in each other, and
//! never `/` (the host keeps an empty virtual root there so that every
//! absolute path reaches it and each refusal is recorded).
//!
//! ```ignore
//! let t = MountTable::new(vec![Mount { host: "/srv/data".into(), guest: "/data".into(), mode: MountMode::Ro, quota_bytes: None }]).unwrap();
//! assert_eq!(t.resolve("/data/./a/../b.txt").unwrap().1, "b.txt");
//! assert!(t.resolve("/data/../etc/passwd").is_none()); // `..` above a mount root
//! assert_eq!(t.check("/data/b.txt", FsOp::Write).unwrap_err(), "read-only mount /data");
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{ErrorKind, Problem};

/// Read-only or read-write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountMode {
    /// `"ro"`: read, list, stat.
    Ro,
    /// `"rw"`: also create, write, remove, rename.
    Rw,
}

impl fmt::Display for MountMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MountMode::Ro => "ro",
            MountMode::Rw => "rw",
        })
    }
}

/// A filesystem operation, as recorded in a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FsOp {
    /// Open for reading, stat, readdir, readlink.
    Read,
    /// Open for writing, truncate, set-times.
    Write,
    /// Create a file, directory, link or symlink.
    Create,
    /// Unlink, remove a directory, rename away.
    Remove,
}

impl FsOp {
    /// True for every operation a read-only mount refuses.
    pub fn writes(self) -> bool {
        !matches!(self, FsOp::Read)
    }

    /// Lowercase name for audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            FsOp::Read => "read",
            FsOp::Write => "write",
            FsOp::Create => "create",
            FsOp::Remove => "remove",
        }
    }
}

/// One preopen: a canonical host directory seen at `guest` inside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// Canonical absolute host directory.
    pub host: PathBuf,
    /// Normalised absolute guest path, never `/`.
    pub guest: String,
    /// Access mode.
    pub mode: MountMode,
    /// `quota_bytes`: the bytes this (read-write) mount may hold on the
    /// host, checked per call (see `sandbox::quota`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_bytes: Option<u64>,
}

/// Why a guest path matched no mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMiss {
    /// Not an absolute path.
    Relative,
    /// Under no mount.
    Outside,
    /// A `..` climbs above the root of this mount.
    Escapes(String),
}

impl fmt::Display for PathMiss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathMiss::Relative => f.write_str("guest path is not absolute"),
            PathMiss::Outside => f.write_str("outside every mount"),
            PathMiss::Escapes(m) => write!(f, "`..` climbs out of mount {m}"),
        }
    }
}

/// The tool's mounts, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MountTable {
    mounts: Vec<Mount>,
}

impl MountTable {
    /// Checks guest paths: unique, not nested, not `/`. The error carries the
    /// index of the later of two clashing mounts.
    pub fn new(mounts: Vec<Mount>) -> Result<MountTable, (usize, Problem)> {
        for (i, m) in mounts.iter().enumerate() {
            if m.guest == "/" {
                return Err((
                    i,
                    Problem::new(
                        ErrorKind::MountConflict,
                        "guest path `/` is reserved for the host's virtual root",
                        "mount it at a subdirectory, e.g. `{ host = \"...\", guest = \"/data\" }`",
                    ),
                ));
            }
            for earlier in &mounts[..i] {
                let (a, b) = (earlier.guest.as_str(), m.guest.as_str());
                let clash = if a == b {
                    format!("guest path {b} is mounted twice")
                } else if is_under(b, a) || is_under(a, b) {
                    format!("guest path {b} nests with mount {a}")
                } else {
                    continue;
                };
                return Err((
                    i,
                    Problem::new(
                        ErrorKind::MountConflict,
                        clash,
                        "give each mount its own guest path, side by side (e.g. `/data`, `/out`)",
                    ),
                ));
            }
        }
        Ok(MountTable { mounts })
    }

    /// The mounts, in policy order.
    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// True when the tool has no filesystem.
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
    }

    /// The mount holding `guest_path` and the path relative to its root
    /// (`.` for the root itself), or `None`.
    pub fn resolve(&self, guest_path: &str) -> Option<(&Mount, String)> {
        self.locate(guest_path).ok()
    }

    /// Like [`resolve`](Self::resolve), but says why nothing matched.
    /// `.` and empty components collapse; `..` may not climb above the root
    /// of the mount it is in, nor move through the virtual root.
    pub fn locate(&self, guest_path: &str) -> Result<(&Mount, String), PathMiss> {
        if !guest_path.starts_with('/') {
            return Err(PathMiss::Relative);
        }
        let mut stack: Vec<&str> = Vec::new();
        let mut inside: Option<(&Mount, usize)> = None;
        for comp in guest_path.split('/') {
            match comp {
                "" | "." => {}
                ".." => match inside {
                    Some((_, root)) if stack.len() > root => {
                        stack.pop();
                    }
                    Some((m, _)) => return Err(PathMiss::Escapes(m.guest.clone())),
                    None => return Err(PathMiss::Outside),
                },
                c => {
                    stack.push(c);
                    if inside.is_none() {
                        let joined = format!("/{}", stack.join("/"));
                        inside = self
                            .mounts
                            .iter()
                            .find(|m| m.guest == joined)
                            .map(|m| (m, stack.len()));
                    }
                }
            }
        }
        let (m, root) = inside.ok_or(PathMiss::Outside)?;
        let rel = stack[root..].join("/");
        Ok((m, if rel.is_empty() { ".".into() } else { rel }))
    }

    /// Whether `op` on `guest_path` is allowed; the error is the rule for
    /// the denial event (`outside every mount`, `read-only mount /data`).
    pub fn check(&self, guest_path: &str, op: FsOp) -> Result<(&Mount, String), String> {
        let (m, rel) = self.locate(guest_path).map_err(|miss| miss.to_string())?;
        if op.writes() && m.mode == MountMode::Ro {
            return Err(format!("read-only mount {}", m.guest));
        }
        Ok((m, rel))
    }
}

fn is_under(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Normalises a guest mount path: absolute, `.` and repeated `/` collapsed,
/// no trailing `/`, no `..`.
pub fn normalize_guest(path: &str) -> Result<String, Problem> {
    if !path.starts_with('/') {
        return Err(Problem::new(
            ErrorKind::RelativePath,
            "guest path is not absolute",
            format!("write `/{}`", path.trim_start_matches("./")),
        ));
    }
    let mut parts = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                return Err(Problem::new(
                    ErrorKind::Malformed,
                    "guest path contains `..`",
                    "write the path without `..`",
                ))
            }
            c => parts.push(c),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Resolves a host mount path to its canonical directory, once, at load.
///
/// A path that is itself a symlink is refused: whoever can replace that
/// link could point the mount anywhere between two loads. Symlinks among
/// its parents are resolved here, once; the sandbox then opens the
/// canonical path without following any symlink (`sandbox::fs`), so one
/// planted later makes the call fail instead of moving the mount.
pub fn host_dir(path: &str) -> Result<PathBuf, Problem> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(Problem::new(
            ErrorKind::RelativePath,
            "host path is relative",
            "write an absolute path; relative paths would depend on where wasmward is started",
        ));
    }
    // `link/` and `link/.` would follow the link: look at the last real name.
    let mut last = path;
    while let Some(t) = last.strip_suffix('/').or_else(|| last.strip_suffix("/.")) {
        last = t;
    }
    if let Ok(meta) = std::fs::symlink_metadata(last) {
        if meta.file_type().is_symlink() {
            let target = std::fs::canonicalize(last).map_or_else(|_| "a missing path".to_string(), |t| t.display().to_string());
            return Err(Problem::new(
                ErrorKind::SymlinkPath,
                format!("host path is a symlink (to {target})"),
                "mount the directory it points to by its own path",
            ));
        }
    }
    let canon = p.canonicalize().map_err(|e| {
        Problem::new(
            ErrorKind::MissingPath,
            format!("host path cannot be opened ({e})"),
            "create it, or remove the entry",
        )
    })?;
    if !canon.is_dir() {
        return Err(Problem::new(
            ErrorKind::MissingPath,
            "host path is not a directory",
            "mount the directory that holds it",
        ));
    }
    Ok(canon)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(mounts: &[(&str, MountMode)]) -> Result<MountTable, (usize, Problem)> {
        let mounts = mounts
            .iter()
            .map(|&(g, mode)| Mount {
                host: PathBuf::from("/h").join(&g[1..]),
                guest: g.into(),
                mode,
                quota_bytes: None,
            })
            .collect();
        MountTable::new(mounts)
    }

    const RO: MountMode = MountMode::Ro;
    const RW: MountMode = MountMode::Rw;

    /// (guest path, Ok((mount, relative)) or Err(miss))
    type LocateCase = (
        &'static str,
        Result<(&'static str, &'static str), &'static str>,
    );
    const LOCATE: &[LocateCase] = &[
        ("/data", Ok(("/data", "."))),
        ("/data/", Ok(("/data", "."))),
        ("/data/a.txt", Ok(("/data", "a.txt"))),
        ("//data//./a/./b", Ok(("/data", "a/b"))),
        ("/data/a/../b", Ok(("/data", "b"))),
        ("/data/a/..", Ok(("/data", "."))),
        ("/out/deep/x", Ok(("/out/deep", "x"))),
        ("/data/..", Err("`..` climbs out of mount /data")),
        ("/data/../out/deep/x", Err("`..` climbs out of mount /data")),
        ("/data/a/../../etc", Err("`..` climbs out of mount /data")),
        ("/../data/x", Err("outside every mount")),
        ("/etc/passwd", Err("outside every mount")),
        ("/", Err("outside every mount")),
        ("/dat", Err("outside every mount")),
        ("/database", Err("outside every mount")),
        ("/out", Err("outside every mount")),
        ("/out/x/../deep", Err("outside every mount")),
        ("data/a", Err("guest path is not absolute")),
        ("", Err("guest path is not absolute")),
    ];

    #[test]
    fn locate_table() {
        let t = table(&[("/data", RO), ("/out/deep", RW)]).unwrap();
        for &(path, want) in LOCATE {
            let got = t
                .locate(path)
                .map(|(m, r)| (m.guest.clone(), r))
                .map_err(|e| e.to_string());
            match (&got, want) {
                (Ok((m, r)), Ok((wm, wr))) => {
                    assert_eq!((m.as_str(), r.as_str()), (wm, wr), "{path}")
                }
                (Err(g), Err(w)) => assert_eq!(g, w, "{path}"),
                _ => panic!("locate({path:?}) = {got:?}, want {want:?}"),
            }
        }
    }

    /// (guest path, op, Ok or Err(rule))
    const CHECK: &[(&str, FsOp, Result<(), &str>)] = &[
        ("/data/a", FsOp::Read, Ok(())),
        ("/data/a", FsOp::Write, Err("read-only mount /data")),
        ("/data/a", FsOp::Create, Err("read-only mount /data")),
        ("/data/a", FsOp::Remove, Err("read-only mount /data")),
        ("/out/deep/a", FsOp::Remove, Ok(())),
        ("/tmp/a", FsOp::Read, Err("outside every mount")),
    ];

    #[test]
    fn check_table() {
        let t = table(&[("/data", RO), ("/out/deep", RW)]).unwrap();
        for &(path, op, want) in CHECK {
            assert_eq!(
                t.check(path, op).map(|_| ()),
                want.map_err(String::from),
                "{path} {op:?}"
            );
        }
    }

    /// (guest mounts, Ok or Err((index, problem substring)))
    type TableCase = (&'static [&'static str], Result<(), (usize, &'static str)>);
    const TABLES: &[TableCase] = &[
        (&["/a", "/b", "/c/d"], Ok(())),
        (&["/ab", "/a"], Ok(())),
        (&["/"], Err((0, "reserved"))),
        (&["/a", "/a"], Err((1, "mounted twice"))),
        (&["/a", "/a/b"], Err((1, "nests with mount /a"))),
        (&["/a/b", "/a"], Err((1, "nests with mount /a/b"))),
    ];

    #[test]
    fn table_validation() {
        for &(guests, want) in TABLES {
            let mounts: Vec<_> = guests.iter().map(|g| (*g, RW)).collect();
            match (table(&mounts), want) {
                (Ok(_), Ok(())) => {}
                (Err((i, p)), Err((wi, w))) => {
                    assert_eq!(i, wi, "{guests:?}");
                    assert!(p.problem.contains(w), "{guests:?}: {p}");
                }
                (got, _) => panic!("{guests:?}: {got:?}, want {want:?}"),
            }
        }
    }

    /// (guest path as written, Ok(normalised) or Err(substring))
    const NORMALIZE: &[(&str, Result<&str, &str>)] = &[
        ("/data", Ok("/data")),
        ("/data/", Ok("/data")),
        ("//data/./x", Ok("/data/x")),
        ("/", Ok("/")),
        ("data", Err("not absolute")),
        ("./data", Err("not absolute")),
        ("/data/../etc", Err("`..`")),
    ];

    #[test]
    fn normalize_table() {
        for &(path, want) in NORMALIZE {
            match (normalize_guest(path), want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{path}"),
                (Err(g), Err(w)) => assert!(g.problem.contains(w), "{path}: {g}"),
                (g, w) => panic!("{path}: {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn host_dir_cases() {
        let tmp = std::env::temp_dir().canonicalize().unwrap();
        let file = tmp.join(format!("wasmward-policy-file-{}", std::process::id()));
        std::fs::write(&file, b"x").unwrap();
        let missing = tmp.join("wasmward-policy-definitely-missing");
        let dotted = format!("{}/.", tmp.display());
        let cases: &[(&str, Result<&Path, ErrorKind>)] = &[
            (tmp.to_str().unwrap(), Ok(&tmp)),
            (&dotted, Ok(&tmp)),
            ("relative/dir", Err(ErrorKind::RelativePath)),
            (missing.to_str().unwrap(), Err(ErrorKind::MissingPath)),
            (file.to_str().unwrap(), Err(ErrorKind::MissingPath)),
        ];
        for (path, want) in cases {
            let got = host_dir(path);
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(&g, w, "{path}"),
                (Err(g), Err(w)) => assert_eq!(g.kind, *w, "{path}: {g}"),
                (g, w) => panic!("{path}: {g:?}, want {w:?}"),
            }
        }
        std::fs::remove_file(file).unwrap();
    }
}
