//! The kernel confinement of a program started by `wasmward:tool/process`
//! (Linux). Everything that allocates (the Landlock ruleset, the seccomp BPF
//! program, the rlimit table) is built in the host before the fork;
//! [`Confinement::apply`] runs in the child between fork and exec and only
//! makes async-signal-safe system calls, in this order:
//!
//! 1. rlimits: CPU seconds (from the timeout), address space, file size,
//!    processes (per uid), open files;
//! 2. a fresh network namespace when the host is root (only a `lo` that is
//!    down): the program has no network at all;
//! 3. drop to the policy's `subprocess_run_as` uid/gid when the host is root,
//!    with no supplementary groups;
//! 4. `no_new_privs`, then the Landlock ruleset: the tool's mounts (read-only
//!    or read-write), the program and the system's library and binary dirs
//!    read-only + execute, a private temp dir read-write, nothing else; TCP
//!    bind/connect refused (ABI 4+); abstract unix sockets and signals to
//!    processes outside the run refused (ABI 6+);
//! 5. a seccomp filter (see [`seccomp_filter`]).
//!
//! The process group is set by `Command::process_group(0)` before this runs;
//! the filter refuses `setsid`/`setpgid`, so every descendant stays in the
//! group and the host kills the whole group when the call ends.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use landlock::{
    Access, AccessFs, AccessNet, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope, ABI,
};

/// System paths every program may read and execute (when they exist):
/// what dynamic linking and a program's own data need.
pub const SYSTEM_READ_PATHS: &[&str] = &[
    "/usr",
    "/lib",
    "/lib64",
    "/lib32",
    "/bin",
    "/sbin",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/alternatives",
    "/dev/urandom",
    "/dev/random",
    "/dev/zero",
];

/// Device files a program may read and write.
pub const DEVICE_RW_PATHS: &[&str] = &["/dev/null"];

/// What one run may reach, resolved before the fork.
pub struct Grants<'a> {
    pub program: &'a Path,
    /// The allowlist entry's `extra_read_paths` (read + execute).
    pub extra_read: &'a [PathBuf],
    /// Tool mounts (host path, writable?).
    pub mounts: Vec<(PathBuf, bool)>,
    /// The run's private temp dir (read-write).
    pub tmp: &'a Path,
}

/// Built before the fork; applied in the child.
pub struct Confinement {
    ruleset: OwnedFd,
    bpf: Vec<libc::sock_filter>,
    rlimits: Vec<(libc::__rlimit_resource_t, libc::rlim_t)>,
    run_as: Option<u32>,
    new_netns: bool,
}

/// Process limits of a run.
pub struct Limits {
    pub cpu_seconds: u64,
    pub memory_bytes: u64,
    pub processes: u64,
    pub file_bytes: u64,
    pub open_files: u64,
}

fn is_root() -> bool {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl Confinement {
    pub fn new(grants: &Grants<'_>, limits: &Limits, run_as: u32) -> io::Result<Confinement> {
        let ruleset = landlock_ruleset(grants)?;
        let root = is_root();
        Ok(Confinement {
            ruleset,
            bpf: seccomp_filter(),
            rlimits: vec![
                (libc::RLIMIT_CPU, limits.cpu_seconds),
                (libc::RLIMIT_AS, limits.memory_bytes),
                (libc::RLIMIT_NPROC, limits.processes),
                (libc::RLIMIT_FSIZE, limits.file_bytes),
                (libc::RLIMIT_NOFILE, limits.open_files),
                (libc::RLIMIT_CORE, 0),
            ],
            run_as: (root && run_as != 0).then_some(run_as),
            new_netns: root,
        })
    }

    /// The uid the program will run as, if the host drops to one.
    pub fn run_as(&self) -> Option<u32> {
        self.run_as
    }

    /// In the child, between fork and exec: only async-signal-safe calls.
    ///
    /// # Safety
    /// Call only from a `pre_exec` hook.
    pub unsafe fn apply(&self) -> io::Result<()> {
        fn check(r: libc::c_long) -> io::Result<()> {
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
        for &(res, v) in &self.rlimits {
            let lim = libc::rlimit { rlim_cur: v, rlim_max: v };
            check(libc::setrlimit(res, &lim) as libc::c_long)?;
        }
        if self.new_netns {
            check(libc::unshare(libc::CLONE_NEWNET) as libc::c_long)?;
        }
        if let Some(id) = self.run_as {
            check(libc::setgroups(0, std::ptr::null()) as libc::c_long)?;
            check(libc::setresgid(id, id, id) as libc::c_long)?;
            check(libc::setresuid(id, id, id) as libc::c_long)?;
        }
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) as libc::c_long)?;
        check(libc::syscall(libc::SYS_landlock_restrict_self, self.ruleset.as_raw_fd(), 0u32))?;
        let prog = libc::sock_fprog { len: self.bpf.len() as u16, filter: self.bpf.as_ptr() as *mut _ };
        check(libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog as *const _, 0, 0) as libc::c_long)?;
        Ok(())
    }
}

fn landlock_ruleset(g: &Grants<'_>) -> io::Result<OwnedFd> {
    let err = |e: &dyn std::fmt::Display| io::Error::other(format!("landlock: {e}"));
    // Best effort above ABI 1: a newer right the kernel lacks is dropped,
    // which the load-time check (ABI >= 1) documents.
    let abi = ABI::V6;
    let ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .map_err(|e| err(&e))?
        .handle_access(AccessNet::from_all(abi))
        .map_err(|e| err(&e))?
        .scope(Scope::from_all(abi))
        .map_err(|e| err(&e))?;
    let mut created = ruleset.create().map_err(|e| err(&e))?;
    let read = AccessFs::from_read(abi);
    let all = AccessFs::from_all(abi);
    let mut rules: Vec<(&Path, landlock::BitFlags<AccessFs>)> = Vec::new();
    rules.extend(SYSTEM_READ_PATHS.iter().map(|p| (Path::new(*p), read)));
    rules.extend(DEVICE_RW_PATHS.iter().map(|p| (Path::new(*p), read | AccessFs::WriteFile)));
    rules.push((g.program, read));
    rules.extend(g.extra_read.iter().map(|p| (p.as_path(), read)));
    rules.extend(g.mounts.iter().map(|(p, rw)| (p.as_path(), if *rw { all } else { read })));
    rules.push((g.tmp, all));
    for (path, access) in rules {
        let Ok(meta) = std::fs::metadata(path) else { continue };
        let access = if meta.is_dir() { access } else { access & AccessFs::from_file(abi) };
        let fd = PathFd::new(path).map_err(|e| err(&e))?;
        created = created.add_rule(PathBeneath::new(fd, access)).map_err(|e| err(&e))?;
    }
    let fd: Option<OwnedFd> = created.into();
    fd.ok_or_else(|| io::Error::other("landlock: the kernel has no Landlock"))
}

// ---------------------------------------------------------------- seccomp

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt: 0, jf: 0, k }
}
fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// System calls a confined program never gets (EPERM): debugging other
/// processes, namespaces, mounts, kernel modules and keyrings, BPF, perf,
/// io_uring (which would bypass this filter), leaving the process group.
pub fn refused_syscalls() -> Vec<(&'static str, libc::c_long)> {
    vec![
        ("ptrace", libc::SYS_ptrace),
        ("process_vm_readv", libc::SYS_process_vm_readv),
        ("process_vm_writev", libc::SYS_process_vm_writev),
        ("mount", libc::SYS_mount),
        ("umount2", libc::SYS_umount2),
        ("pivot_root", libc::SYS_pivot_root),
        ("chroot", libc::SYS_chroot),
        ("open_tree", libc::SYS_open_tree),
        ("move_mount", libc::SYS_move_mount),
        ("fsopen", libc::SYS_fsopen),
        ("fsmount", libc::SYS_fsmount),
        ("unshare", libc::SYS_unshare),
        ("setns", libc::SYS_setns),
        ("setsid", libc::SYS_setsid),
        ("setpgid", libc::SYS_setpgid),
        ("bpf", libc::SYS_bpf),
        ("perf_event_open", libc::SYS_perf_event_open),
        ("kexec_load", libc::SYS_kexec_load),
        ("kexec_file_load", libc::SYS_kexec_file_load),
        ("init_module", libc::SYS_init_module),
        ("finit_module", libc::SYS_finit_module),
        ("delete_module", libc::SYS_delete_module),
        ("keyctl", libc::SYS_keyctl),
        ("add_key", libc::SYS_add_key),
        ("request_key", libc::SYS_request_key),
        ("userfaultfd", libc::SYS_userfaultfd),
        ("io_uring_setup", libc::SYS_io_uring_setup),
        ("io_uring_enter", libc::SYS_io_uring_enter),
        ("io_uring_register", libc::SYS_io_uring_register),
        ("open_by_handle_at", libc::SYS_open_by_handle_at),
        ("name_to_handle_at", libc::SYS_name_to_handle_at),
        ("swapon", libc::SYS_swapon),
        ("swapoff", libc::SYS_swapoff),
        ("reboot", libc::SYS_reboot),
        ("acct", libc::SYS_acct),
        ("quotactl", libc::SYS_quotactl),
        ("lookup_dcookie", libc::SYS_lookup_dcookie),
        ("syslog", libc::SYS_syslog),
        ("personality", libc::SYS_personality),
    ]
}

/// The seccomp BPF program: wrong architecture → kill; x32 → kill;
/// [`refused_syscalls`] → EPERM; `clone` with a namespace flag → EPERM;
/// `clone3` → ENOSYS (its flags are out of reach of BPF; libc falls back to
/// `clone`); `socket(AF_INET|AF_INET6)` → EACCES; anything else allowed.
pub fn seccomp_filter() -> Vec<libc::sock_filter> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_RET, BPF_W};
    const NR: u32 = 0;
    const ARCH: u32 = 4;
    const ARG0: u32 = 16;
    let ld = (BPF_LD | BPF_W | BPF_ABS) as u16;
    let jeq = (BPF_JMP | BPF_JEQ | BPF_K) as u16;
    let jge = (BPF_JMP | BPF_JGE | BPF_K) as u16;
    let jset = (BPF_JMP | BPF_JSET | BPF_K) as u16;
    let ret = (BPF_RET | BPF_K) as u16;
    let eperm = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let ns_flags = (libc::CLONE_NEWNS
        | libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWCGROUP) as u32;

    let mut f = vec![
        stmt(ld, ARCH),
        jump(jeq, AUDIT_ARCH, 1, 0),
        stmt(ret, SECCOMP_RET_KILL_PROCESS),
        stmt(ld, NR),
        jump(jge, 0x4000_0000, 0, 1),
        stmt(ret, SECCOMP_RET_KILL_PROCESS),
    ];
    for (_, nr) in refused_syscalls() {
        f.push(jump(jeq, nr as u32, 0, 1));
        f.push(stmt(ret, eperm));
    }
    // clone3: ENOSYS.
    f.push(jump(jeq, libc::SYS_clone3 as u32, 0, 1));
    f.push(stmt(ret, SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    // clone(flags, ...): no new namespaces.
    f.push(jump(jeq, libc::SYS_clone as u32, 0, 3));
    f.push(stmt(ld, ARG0));
    f.push(jump(jset, ns_flags, 0, 1));
    f.push(stmt(ret, eperm));
    f.push(stmt(ld, NR));
    // socket(AF_INET | AF_INET6, ...): EACCES.
    f.push(jump(jeq, libc::SYS_socket as u32, 0, 4));
    f.push(stmt(ld, ARG0));
    f.push(jump(jeq, libc::AF_INET as u32, 1, 0));
    f.push(jump(jeq, libc::AF_INET6 as u32, 0, 1));
    f.push(stmt(ret, SECCOMP_RET_ERRNO | libc::EACCES as u32));
    f.push(stmt(ret, SECCOMP_RET_ALLOW));
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_ends_in_allow_and_jumps_stay_inside() {
        let f = seccomp_filter();
        assert!(f.len() < 4096);
        assert_eq!(f.last().unwrap().k, SECCOMP_RET_ALLOW);
        for (i, ins) in f.iter().enumerate().filter(|(_, ins)| ins.code & 0x07 == libc::BPF_JMP as u16) {
            assert!(i + 1 + (ins.jt.max(ins.jf) as usize) < f.len(), "jump out of range at {i}");
        }
    }
}
