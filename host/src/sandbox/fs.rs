//! `wasi:filesystem`, guarded.
//!
//! Mounts are cap-std preopens (read-only or read-write); cap-std refuses to
//! follow any path out of a preopen. An empty read-only virtual root `/` is
//! preopened too, so every absolute path the guest uses reaches the host
//! instead of failing inside the guest's libc unseen.
//!
//! Every path-taking `descriptor` method is wrapped: the guest path is
//! rebuilt from the descriptor it is relative to, checked against the mount
//! table (outside every mount, write to a read-only mount, `..` climbing
//! out), and a refusal is recorded as a denial before the guest sees an
//! error. What cap-std refuses on its own (a symlink out of the mount) is
//! recorded too. Allowed accesses go to wasmtime-wasi unchanged.

use super::denials::{Denial, Denials};
use super::limits::{BudgetedStream, MountQuota, WriteBudget, WriteCharge};
use crate::policy::{DenialKind, FsOp, MountMode, MountTable};
use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemCtxView};
use wasmtime_wasi::p2::bindings::filesystem::{preopens, types};
use wasmtime_wasi::p2::bindings::filesystem::types::{ErrorCode, HostDescriptor, HostDirectoryEntryStream};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// The guest path the virtual root is mounted at.
const ROOT: &str = "/";

/// Whether directories opened here can be handed to wasmtime-wasi as
/// `/proc/self/fd/N` (Linux with `/proc` mounted).
fn fd_paths() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| cfg!(target_os = "linux") && Path::new("/proc/self/fd").is_dir())
}

/// An empty directory shared by every sandbox as the virtual root.
///
/// On Linux it is created, opened, and removed at once: the open handle
/// (reached through `/proc/self/fd`) stays a valid, empty, read-only
/// directory in which nothing can be created, and nothing is left behind
/// in the temp dir when the process ends, however it ends. Without
/// `/proc` the temp directory is kept for the life of the process.
fn empty_root() -> std::io::Result<PathBuf> {
    static ROOT_DIR: OnceLock<PathBuf> = OnceLock::new();
    if let Some(d) = ROOT_DIR.get() {
        return Ok(d.clone());
    }
    let dir = tempfile::Builder::new().prefix("wasmward-empty-root").tempdir()?;
    #[cfg(target_os = "linux")]
    if fd_paths() {
        let fd = nofollow::open_dir(dir.path())?;
        drop(dir); // removes the directory; the handle stays valid
        let path = nofollow::fd_path(&fd);
        std::mem::forget(fd); // one per process, like the path it replaces
        return Ok(ROOT_DIR.get_or_init(|| path).clone());
    }
    let path = dir.keep();
    Ok(ROOT_DIR.get_or_init(|| path).clone())
}

/// Preopens the virtual root and every mount of `mounts`.
///
/// A mount's host directory (canonical since load) is opened one component
/// at a time without following any symlink, and that very directory is
/// preopened: a symlink planted at or above a mount root after load makes
/// the call fail (`host error: cannot build the sandbox`) instead of moving
/// the mount somewhere else. (Without `/proc`, the canonical path is opened
/// as it is.)
pub fn preopen(b: &mut WasiCtxBuilder, mounts: &MountTable) -> wasmtime::Result<()> {
    b.preopened_dir(empty_root()?, ROOT, FsPerms::ReadOnly)?;
    for m in mounts.mounts() {
        let perms = match m.mode {
            MountMode::Ro => FsPerms::ReadOnly,
            MountMode::Rw => FsPerms::ReadWrite,
        };
        #[cfg(target_os = "linux")]
        if fd_paths() {
            let fd = nofollow::open_dir(&m.host).map_err(|e| {
                wasmtime::format_err!(
                    "mount {} (host {}): {e}; the path must stay a real directory (no symlink at or above it) as it was at load",
                    m.guest,
                    m.host.display()
                )
            })?;
            b.preopened_dir(nofollow::fd_path(&fd), &m.guest, perms)?;
            continue;
        }
        b.preopened_dir(&m.host, &m.guest, perms)?;
    }
    Ok(())
}

/// Opening directories without following symlinks.
#[cfg(target_os = "linux")]
mod nofollow {
    use std::ffi::CString;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Component, Path, PathBuf};

    /// Opens the absolute `path` from `/`, one component at a time, with
    /// `O_NOFOLLOW`: a symlink anywhere on the way is an error. `O_PATH`
    /// needs no read permission on the directories passed through.
    pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: a valid NUL-terminated path; the result is checked.
        let raw = unsafe { libc::open(c"/".as_ptr(), flags) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor we own.
        let mut fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut walked = PathBuf::from("/");
        for comp in path.components() {
            let name = match comp {
                Component::RootDir => continue,
                Component::Normal(n) => n,
                _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "path is not canonical")),
            };
            walked.push(name);
            let c = CString::new(name.as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
            // SAFETY: `fd` is an open directory, `c` a valid name.
            let raw = unsafe { libc::openat(fd.as_raw_fd(), c.as_ptr(), flags) };
            if raw < 0 {
                let e = io::Error::last_os_error();
                let is_link = std::fs::symlink_metadata(&walked).is_ok_and(|m| m.file_type().is_symlink());
                return Err(if is_link {
                    io::Error::other(format!("{} is a symlink", walked.display()))
                } else {
                    io::Error::new(e.kind(), format!("{}: {e}", walked.display()))
                });
            }
            // SAFETY: as above.
            fd = unsafe { OwnedFd::from_raw_fd(raw) };
        }
        Ok(fd)
    }

    /// The `/proc/self/fd/N` path that reopens exactly `fd`'s directory.
    pub fn fd_path(fd: &OwnedFd) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
    }
}

/// Per-call state of the guard: the guest path of each open descriptor.
pub struct FsGuard {
    policy: Arc<crate::policy::EffectivePolicy>,
    denials: Denials,
    paths: HashMap<u32, String>,
    /// `max_write_bytes` of the call (see [`FsGuard::with_write_budget`]).
    budget: Option<WriteBudget>,
    /// The `quota_bytes` of each mount that has one (see
    /// [`FsGuard::with_quotas`]); empty for most tools.
    quotas: Vec<MountQuota>,
}

impl FsGuard {
    pub fn new(policy: Arc<crate::policy::EffectivePolicy>, denials: Denials) -> Self {
        FsGuard { policy, denials, paths: HashMap::new(), budget: None, quotas: Vec::new() }
    }

    /// The guest path `path` names relative to descriptor `fd`.
    /// `.` components are dropped; `..` stays for the mount check to judge.
    fn guest_path(&self, fd: u32, path: &str) -> String {
        let base = self.paths.get(&fd).map_or("/", String::as_str);
        let mut out = base.trim_end_matches('/').to_string();
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            out.push('/');
            out.push_str(part);
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    /// Checks `op` on `path` relative to `fd`; a refusal is recorded and
    /// becomes the guest's error.
    fn check(&self, fd: u32, path: &str, op: FsOp) -> FsResult<String> {
        let guest = self.guest_path(fd, path);
        let refusal = if path.starts_with('/') {
            Some(("absolute path in a relative lookup".to_string(), ErrorCode::NotPermitted))
        } else {
            match self.policy.mounts.check(&guest, op) {
                Ok(_) => None,
                Err(rule) if rule.starts_with("read-only") => Some((rule, ErrorCode::ReadOnly)),
                Err(rule) => Some((rule, ErrorCode::Access)),
            }
        };
        match refusal {
            None => Ok(guest),
            Some((rule, code)) => {
                self.deny(op, &guest, rule);
                Err(code.into())
            }
        }
    }

    fn deny(&self, op: FsOp, guest: &str, rule: String) {
        self.denials.record(Denial {
            kind: DenialKind::Fs,
            op: op.as_str().into(),
            target: guest.to_string(),
            rule,
            action: "denied",
        });
    }

    /// Records what cap-std refused by itself inside an allowed mount (a
    /// symlink or `..` leading out of it).
    fn after<T>(&self, op: FsOp, guest: &str, r: FsResult<T>) -> FsResult<T> {
        if let Err(e) = &r {
            if matches!(e.downcast_ref(), Some(ErrorCode::NotPermitted)) {
                self.deny(op, guest, "path escapes its mount (cap-std refused it)".into());
            }
        }
        r
    }

    /// Whether both guest paths lie in one and the same mount.
    fn same_mount(&self, a: &str, b: &str) -> bool {
        match (self.policy.mounts.locate(a), self.policy.mounts.locate(b)) {
            (Ok((a, _)), Ok((b, _))) => a.guest == b.guest,
            _ => false,
        }
    }

    /// Whether the guest may create a symlink at `link_guest` pointing to
    /// `target`. Off unless the policy sets `allow_symlinks`. Then the
    /// target must be relative and free of `..`, so the link only ever
    /// leads down from the directory it is in, wherever that directory is
    /// moved later; and resolved on the host from the link's real
    /// directory, following the links already in the mount, it must stay
    /// inside the mount (an operator's link to an absolute path is not a
    /// way out either). A link that passes can be followed by anyone on
    /// the host (another tool mounting a directory inside this mount, a
    /// backup job) without leaving the mount.
    fn check_symlink_target(&self, link_guest: &str, target: &str) -> FsResult<()> {
        let reason = if !self.policy.allow_symlinks {
            Some("symlink creation is off (allow_symlinks = false)".to_string())
        } else if target.starts_with('/') {
            Some(format!("symlink target `{target}` leaves its mount: absolute targets are refused"))
        } else if target.split('/').any(|c| c == "..") {
            Some(format!(
                "symlink target `{target}` leaves its mount, or could once a directory is renamed: `..` is refused in symlink targets"
            ))
        } else {
            match self.policy.mounts.locate(link_guest) {
                Ok((m, rel)) => {
                    let dir = Path::new(&rel).parent().unwrap_or(Path::new(""));
                    resolve_in_mount(&m.host, dir, Path::new(target))
                        .err()
                        .map(|why| format!("symlink target `{target}` leaves its mount: {why}"))
                }
                Err(miss) => Some(miss.to_string()),
            }
        };
        match reason {
            None => Ok(()),
            Some(rule) => {
                self.deny(FsOp::Create, link_guest, rule);
                Err(ErrorCode::NotPermitted.into())
            }
        }
    }
}

impl FsGuard {
    /// Renaming or hard-linking a symlink re-reads its target from a new
    /// directory. One whose target is absolute or climbs with `..` (left in
    /// the mount by someone else: the guest cannot create such links) could
    /// point out of the mount from there, so it may not be moved; a
    /// downward link may.
    fn check_moved_symlink(&self, old_guest: &str, new_guest: &str) -> FsResult<()> {
        let Ok((m, rel)) = self.policy.mounts.locate(old_guest) else { return Ok(()) };
        let host = m.host.join(&rel);
        let Ok(meta) = std::fs::symlink_metadata(&host) else { return Ok(()) };
        if !meta.file_type().is_symlink() {
            return Ok(());
        }
        let target = std::fs::read_link(&host).unwrap_or_default();
        let text = target.to_string_lossy();
        if target.is_absolute() || text.split('/').any(|c| c == "..") {
            self.deny(
                FsOp::Create,
                new_guest,
                format!("moving the symlink `{old_guest}` (target `{text}`) could point it out of its mount: only links without `..` may move"),
            );
            return Err(ErrorCode::NotPermitted.into());
        }
        Ok(())
    }
}

/// Most symlinks followed while resolving one target (Linux's limit).
const MAX_LINK_HOPS: usize = 40;

/// Resolves `dir/target` under the host directory `root` the way the
/// kernel would, following the symlinks that exist there now; `Err` says
/// how it would leave `root`. Components that do not exist yet resolve
/// lexically.
fn resolve_in_mount(root: &Path, dir: &Path, target: &Path) -> Result<(), String> {
    let mut pending: VecDeque<OsString> = dir.iter().chain(target.iter()).map(OsString::from).collect();
    let mut stack: Vec<OsString> = Vec::new();
    let mut hops = 0;
    while let Some(comp) = pending.pop_front() {
        match comp.to_str() {
            Some("" | "." | "/") => continue,
            Some("..") => {
                if stack.pop().is_none() {
                    return Err("a symlink on its way climbs above the mount root".into());
                }
                continue;
            }
            _ => {}
        }
        let here: PathBuf = stack.iter().chain(std::iter::once(&comp)).collect();
        let host = root.join(&here);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_LINK_HOPS {
                    return Err("too many levels of symlinks".into());
                }
                let next = std::fs::read_link(&host).map_err(|e| format!("cannot read the symlink {}: {e}", here.display()))?;
                if next.is_absolute() {
                    return Err(format!("it passes through {}, a symlink to the absolute path {}", here.display(), next.display()));
                }
                for c in next.iter().rev() {
                    pending.push_front(c.to_os_string());
                }
            }
            _ => stack.push(comp),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (links to create in the mount as (path, target), directory of the
    /// new link, its target, Ok or Err(substring))
    type Case = (&'static [(&'static str, &'static str)], &'static str, &'static str, Result<(), &'static str>);
    const CASES: &[Case] = &[
        (&[], "", "a.txt", Ok(())),
        (&[], "d1/d2", "x/y", Ok(())),
        // Existing links inside the mount are followed.
        (&[("d1/up", "..")], "", "d1/up/a.txt", Ok(())),
        (&[("d1/d2/s", "../../../../..")], "", "d1/d2/s/etc", Err("climbs above the mount root")),
        // The chain: `s` deep inside climbs far up; `t` goes through it.
        (&[("d1/d2/d3/s", "../../../../../../..")], "d1", "d2/d3/s/etc", Err("climbs above the mount root")),
        (&[("abs", "/etc")], "", "abs/passwd", Err("a symlink to the absolute path /etc")),
        (&[("loop", "loop")], "", "loop/x", Err("too many levels")),
        (&[("d1/in", "../d1")], "d1", "in/in/in/a", Ok(())),
        // The link's own directory may be reached through a link.
        (&[("d1/up", ".."), ("d1/d2/far", "../../../..")], "d1/up/d1/d2", "far/x", Err("climbs above")),
    ];

    #[test]
    fn resolve_table() {
        for (links, dir, target, want) in CASES {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().join("mount");
            std::fs::create_dir_all(root.join("d1/d2/d3")).unwrap();
            for (path, to) in *links {
                std::os::unix::fs::symlink(to, root.join(path)).unwrap();
            }
            let got = resolve_in_mount(&root, Path::new(dir), Path::new(target));
            match (&got, want) {
                (Ok(()), Ok(())) => {}
                (Err(g), Err(w)) => assert!(g.contains(w), "{links:?} {dir}/{target}: {g}"),
                _ => panic!("{links:?} {dir}/{target}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn mount_roots_open_without_following_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().canonicalize().unwrap().join("real");
        std::fs::create_dir_all(real.join("sub")).unwrap();
        std::os::unix::fs::symlink(&real, real.parent().unwrap().join("link")).unwrap();
        assert!(nofollow::open_dir(&real.join("sub")).is_ok());
        let e = nofollow::open_dir(&real.parent().unwrap().join("link/sub")).unwrap_err().to_string();
        assert!(e.contains("link is a symlink"), "{e}");
        let e = nofollow::open_dir(&real.parent().unwrap().join("link")).unwrap_err().to_string();
        assert!(e.contains("link is a symlink"), "{e}");
        let e = nofollow::open_dir(&real.join("missing")).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_empty_root_is_an_open_handle_to_an_empty_removed_directory() {
        let root = empty_root().unwrap();
        assert!(root.starts_with("/proc/self/fd"), "{}", root.display());
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
        assert!(std::fs::write(root.join("x"), b"x").is_err(), "nothing can be created in it");
        assert_eq!(empty_root().unwrap(), root, "one per process");
    }
}

/// The filesystem view the guarded bindings see.
pub struct GuardedFs<'a> {
    inner: WasiFilesystemCtxView<'a>,
    guard: &'a mut FsGuard,
}

impl<'a> GuardedFs<'a> {
    pub fn new(inner: WasiFilesystemCtxView<'a>, guard: &'a mut FsGuard) -> Self {
        GuardedFs { inner, guard }
    }
}

/// Links the guarded filesystem over wasmtime-wasi's own (shadowing it for
/// every `wasi:filesystem` 0.2.x the guest imports).
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    getter: fn(&mut T) -> GuardedFs<'_>,
) -> wasmtime::Result<()> {
    struct Guarded;
    impl HasData for Guarded {
        type Data<'a> = GuardedFs<'a>;
    }
    linker.allow_shadowing(true);
    types::add_to_linker::<T, Guarded>(linker, getter)?;
    preopens::add_to_linker::<T, Guarded>(linker, getter)?;
    linker.allow_shadowing(false);
    Ok(())
}

fn open_op(oflags: types::OpenFlags, flags: types::DescriptorFlags) -> FsOp {
    if oflags.contains(types::OpenFlags::CREATE) {
        FsOp::Create
    } else if oflags.contains(types::OpenFlags::TRUNCATE)
        || flags.intersects(types::DescriptorFlags::WRITE | types::DescriptorFlags::MUTATE_DIRECTORY)
    {
        FsOp::Write
    } else {
        FsOp::Read
    }
}

impl preopens::Host for GuardedFs<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        let dirs = preopens::Host::get_directories(&mut self.inner)?;
        for (fd, guest) in &dirs {
            self.guard.paths.insert(fd.rep(), guest.clone());
        }
        Ok(dirs)
    }
}

impl types::Host for GuardedFs<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.inner, err)
    }

    fn filesystem_error_code(&mut self, err: Resource<wasmtime::Error>) -> wasmtime::Result<Option<ErrorCode>> {
        types::Host::filesystem_error_code(&mut self.inner, err)
    }
}

impl HostDirectoryEntryStream for GuardedFs<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<types::DirectoryEntryStream>,
    ) -> FsResult<Option<types::DirectoryEntry>> {
        HostDirectoryEntryStream::read_directory_entry(&mut self.inner, stream).await
    }

    fn drop(&mut self, stream: Resource<types::DirectoryEntryStream>) -> wasmtime::Result<()> {
        HostDirectoryEntryStream::drop(&mut self.inner, stream)
    }
}

impl HostDescriptor for GuardedFs<'_> {
    async fn open_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        oflags: types::OpenFlags,
        flags: types::DescriptorFlags,
    ) -> FsResult<Resource<types::Descriptor>> {
        let op = open_op(oflags, flags);
        let guest = self.guard.check(fd.rep(), &path, op)?;
        super::fds::check_reserve().map_err(|e| FsError::trap(wasmtime::Error::new(e)))?;
        let r = HostDescriptor::open_at(&mut self.inner, fd, path_flags, path, oflags, flags).await;
        let r = self.guard.after(op, &guest, r);
        if let Ok(new) = &r {
            self.guard.paths.insert(new.rep(), guest);
        }
        r
    }

    async fn create_directory_at(&mut self, fd: Resource<types::Descriptor>, path: String) -> FsResult<()> {
        let guest = self.guard.check(fd.rep(), &path, FsOp::Create)?;
        let r = HostDescriptor::create_directory_at(&mut self.inner, fd, path).await;
        self.guard.after(FsOp::Create, &guest, r)
    }

    async fn stat_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::DescriptorStat> {
        let guest = self.guard.check(fd.rep(), &path, FsOp::Read)?;
        let r = HostDescriptor::stat_at(&mut self.inner, fd, path_flags, path).await;
        self.guard.after(FsOp::Read, &guest, r)
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        let guest = self.guard.check(fd.rep(), &path, FsOp::Write)?;
        let r = HostDescriptor::set_times_at(&mut self.inner, fd, path_flags, path, atim, mtim).await;
        self.guard.after(FsOp::Write, &guest, r)
    }

    async fn link_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        old_path_flags: types::PathFlags,
        old_path: String,
        new_descriptor: Resource<types::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        let old = self.guard.check(fd.rep(), &old_path, FsOp::Read)?;
        let new = self.guard.check(new_descriptor.rep(), &new_path, FsOp::Create)?;
        if !self.guard.same_mount(&old, &new) {
            self.guard.deny(FsOp::Create, &new, format!("hard link to `{old}` crosses mounts"));
            return Err(ErrorCode::NotPermitted.into());
        }
        self.guard.check_moved_symlink(&old, &new)?;
        let r = HostDescriptor::link_at(&mut self.inner, fd, old_path_flags, old_path, new_descriptor, new_path).await;
        self.guard.after(FsOp::Create, &new, r)
    }

    async fn readlink_at(&mut self, fd: Resource<types::Descriptor>, path: String) -> FsResult<String> {
        let guest = self.guard.check(fd.rep(), &path, FsOp::Read)?;
        let r = HostDescriptor::readlink_at(&mut self.inner, fd, path).await;
        self.guard.after(FsOp::Read, &guest, r)
    }

    async fn remove_directory_at(&mut self, fd: Resource<types::Descriptor>, path: String) -> FsResult<()> {
        let guest = self.guard.check(fd.rep(), &path, FsOp::Remove)?;
        let r = HostDescriptor::remove_directory_at(&mut self.inner, fd, path).await;
        self.guard.after(FsOp::Remove, &guest, r)
    }

    async fn rename_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        old_path: String,
        new_fd: Resource<types::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        let old = self.guard.check(fd.rep(), &old_path, FsOp::Remove)?;
        let new = self.guard.check(new_fd.rep(), &new_path, FsOp::Create)?;
        self.guard.check_moved_symlink(&old, &new)?;
        self.guard.check_rename_into_quota(&old, &new)?;
        let r = HostDescriptor::rename_at(&mut self.inner, fd, old_path, new_fd, new_path).await;
        self.guard.after(FsOp::Create, &new, r)
    }

    async fn symlink_at(&mut self, fd: Resource<types::Descriptor>, src_path: String, dest_path: String) -> FsResult<()> {
        let link = self.guard.check(fd.rep(), &dest_path, FsOp::Create)?;
        self.guard.check_symlink_target(&link, &src_path)?;
        let r = HostDescriptor::symlink_at(&mut self.inner, fd, src_path, dest_path).await;
        self.guard.after(FsOp::Create, &link, r)
    }

    async fn unlink_file_at(&mut self, fd: Resource<types::Descriptor>, path: String) -> FsResult<()> {
        let guest = self.guard.check(fd.rep(), &path, FsOp::Remove)?;
        let r = HostDescriptor::unlink_file_at(&mut self.inner, fd, path).await;
        self.guard.after(FsOp::Remove, &guest, r)
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::MetadataHashValue> {
        let guest = self.guard.check(fd.rep(), &path, FsOp::Read)?;
        let r = HostDescriptor::metadata_hash_at(&mut self.inner, fd, path_flags, path).await;
        self.guard.after(FsOp::Read, &guest, r)
    }

    fn drop(&mut self, fd: Resource<types::Descriptor>) -> wasmtime::Result<()> {
        self.guard.paths.remove(&fd.rep());
        HostDescriptor::drop(&mut self.inner, fd)
    }

    // Descriptor methods without a path act on something already opened
    // through the checks above; they pass through.

    async fn advise(
        &mut self,
        fd: Resource<types::Descriptor>,
        offset: types::Filesize,
        len: types::Filesize,
        advice: types::Advice,
    ) -> FsResult<()> {
        HostDescriptor::advise(&mut self.inner, fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Resource<types::Descriptor>) -> FsResult<()> {
        HostDescriptor::sync_data(&mut self.inner, fd).await
    }

    async fn get_flags(&mut self, fd: Resource<types::Descriptor>) -> FsResult<types::DescriptorFlags> {
        HostDescriptor::get_flags(&mut self.inner, fd).await
    }

    async fn get_type(&mut self, fd: Resource<types::Descriptor>) -> FsResult<types::DescriptorType> {
        HostDescriptor::get_type(&mut self.inner, fd).await
    }

    async fn set_size(&mut self, fd: Resource<types::Descriptor>, size: types::Filesize) -> FsResult<()> {
        let current = HostDescriptor::stat(&mut self.inner, Resource::new_borrow(fd.rep())).await?.size;
        self.guard.charge_write(fd.rep(), size.saturating_sub(current))?;
        HostDescriptor::set_size(&mut self.inner, fd, size).await
    }

    async fn set_times(
        &mut self,
        fd: Resource<types::Descriptor>,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        HostDescriptor::set_times(&mut self.inner, fd, atim, mtim).await
    }

    async fn read(
        &mut self,
        fd: Resource<types::Descriptor>,
        len: types::Filesize,
        offset: types::Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        HostDescriptor::read(&mut self.inner, fd, len, offset).await
    }

    async fn write(
        &mut self,
        fd: Resource<types::Descriptor>,
        buf: Vec<u8>,
        offset: types::Filesize,
    ) -> FsResult<types::Filesize> {
        self.guard.charge_write(fd.rep(), buf.len() as u64)?;
        HostDescriptor::write(&mut self.inner, fd, buf, offset).await
    }

    async fn read_directory(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<Resource<types::DirectoryEntryStream>> {
        HostDescriptor::read_directory(&mut self.inner, fd).await
    }

    async fn sync(&mut self, fd: Resource<types::Descriptor>) -> FsResult<()> {
        HostDescriptor::sync(&mut self.inner, fd).await
    }

    async fn stat(&mut self, fd: Resource<types::Descriptor>) -> FsResult<types::DescriptorStat> {
        HostDescriptor::stat(&mut self.inner, fd).await
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<types::Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynInputStream>> {
        HostDescriptor::read_via_stream(&mut self.inner, fd, offset)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<types::Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        let rep = fd.rep();
        let stream = HostDescriptor::write_via_stream(&mut self.inner, fd, offset)?;
        self.budget_stream(rep, stream)
    }

    fn append_via_stream(&mut self, fd: Resource<types::Descriptor>) -> FsResult<Resource<DynOutputStream>> {
        let rep = fd.rep();
        let stream = HostDescriptor::append_via_stream(&mut self.inner, fd)?;
        self.budget_stream(rep, stream)
    }

    async fn is_same_object(
        &mut self,
        a: Resource<types::Descriptor>,
        b: Resource<types::Descriptor>,
    ) -> wasmtime::Result<bool> {
        HostDescriptor::is_same_object(&mut self.inner, a, b).await
    }

    async fn metadata_hash(&mut self, fd: Resource<types::Descriptor>) -> FsResult<types::MetadataHashValue> {
        HostDescriptor::metadata_hash(&mut self.inner, fd).await
    }
}

// `max_write_bytes` and `quota_bytes`: every way a call writes file bytes is
// charged to one per-call budget (write, the output streams, growth by
// set-size), and, for a file in a mount with a quota, to that mount's quota.

impl FsGuard {
    /// Sets the call's write budget.
    pub fn with_write_budget(mut self, budget: WriteBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Sets the quotas of the mounts that have one (measured by the caller).
    pub fn with_quotas(mut self, quotas: Vec<MountQuota>) -> Self {
        self.quotas = quotas;
        self
    }

    /// The quota of the mount holding this guest path, if it has one.
    fn quota_of(&self, guest: &str) -> Option<&MountQuota> {
        if self.quotas.is_empty() {
            return None;
        }
        let (m, _) = self.policy.mounts.locate(guest).ok()?;
        self.quotas.iter().find(|q| q.guest == m.guest)
    }

    /// What a write through descriptor `fd` is charged to. Every descriptor
    /// comes from a preopen or `open-at`, which record its path; should one
    /// be missing, its writes are charged to the first quota mount rather
    /// than to none.
    fn charge_for(&self, fd: u32) -> WriteCharge {
        let quota = match self.paths.get(&fd) {
            Some(guest) => self.quota_of(guest).cloned(),
            None => self.quotas.first().cloned(),
        };
        WriteCharge { budget: self.budget.clone(), quota }
    }

    /// Charges `n` bytes written through `fd` to the budget and its mount's
    /// quota; past either the guest gets `insufficient-space` (ENOSPC) and
    /// the limit hit is recorded.
    fn charge_write(&self, fd: u32, n: u64) -> FsResult<()> {
        if self.quotas.is_empty() {
            // No quota mount (most tools): only the call's budget.
            return match &self.budget {
                Some(b) if b.charge(n).is_err() => Err(ErrorCode::InsufficientSpace.into()),
                _ => Ok(()),
            };
        }
        match self.charge_for(fd).charge(n) {
            Err(_) => Err(ErrorCode::InsufficientSpace.into()),
            Ok(()) => Ok(()),
        }
    }

    /// A rename from another mount into a mount with a quota would bring
    /// bytes in without writing them: refused as `cross-device` (EXDEV),
    /// so the tool copies instead, and the copy is charged.
    fn check_rename_into_quota(&self, old: &str, new: &str) -> FsResult<()> {
        if self.quota_of(new).is_some() && !self.same_mount(old, new) {
            return Err(ErrorCode::CrossDevice.into());
        }
        Ok(())
    }
}

impl GuardedFs<'_> {
    /// Wraps a file's new output stream so its writes are charged too.
    fn budget_stream(&mut self, fd: u32, stream: Resource<DynOutputStream>) -> FsResult<Resource<DynOutputStream>> {
        let budget = self.guard.charge_for(fd);
        if budget.is_free() {
            return Ok(stream);
        }
        let slot = self.inner.table.get_mut(&stream).map_err(|e| FsError::trap(wasmtime::Error::new(e)))?;
        let inner = std::mem::replace(slot, Box::new(wasmtime_wasi::p2::pipe::ClosedOutputStream));
        *slot = Box::new(BudgetedStream::new(inner, budget));
        Ok(stream)
    }
}
