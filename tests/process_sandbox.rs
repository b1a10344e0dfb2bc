//! Issue 9: a program started through `wasmward:tool/process` gets the
//! tool's sandbox, never the host's. Real programs from the machine (`env`,
//! `sh`, `python3`, `sleep`, `true`) run through the `hostile` example
//! tool's `spawn`, and each test checks what the child could do (its
//! stdout, as the guest saw it) and the audit rows of the call.
//!
//! The child's view: only the tool's mounts (read-only ones read-only), the
//! system library dirs, its private TMPDIR; no network; its whole process
//! group killed when the call ends; rlimits; `subprocess_run_as` (65534 by
//! default) when the host is root.

mod common;
mod policy_support;

use common::TestDir;
use policy_support::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const SPAWN: &str = "t.caps.spawn";
/// Debian's python3 (a `python3` found first in PATH may be a pyenv shim
/// under the host user's home, which the child cannot reach).
const PY: &str = "/usr/bin/python3";

/// Makes `dir` traversable by the unprivileged uid the child runs as (the
/// test dirs are 0700 root); the kernel's DAC checks still apply under
/// Landlock, so a mount must be reachable by `subprocess_run_as`.
fn open_to_all(dir: &Path, mode: u32) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    // SAFETY: no arguments.
    unsafe { libc::geteuid() == 0 }
}

struct Mounts {
    ro: std::path::PathBuf,
    rw: std::path::PathBuf,
}

fn mounts(dir: &TestDir) -> Mounts {
    open_to_all(dir.path(), 0o711);
    let ro = dir.path().join("ro");
    let rw = dir.path().join("rw");
    for d in [&ro, &rw] {
        std::fs::create_dir(d).unwrap();
        open_to_all(d, 0o777);
    }
    std::fs::write(ro.join("in.txt"), "read-only data\n").unwrap();
    open_to_all(&ro.join("in.txt"), 0o666);
    Mounts { ro, rw }
}

fn policy(m: &Mounts, extra: &str) -> String {
    format!(
        "allow_subprocess = true\n\
         subprocess_allowlist = [{{ program = \"env\", allow_shell = true }}, {{ program = \"sh\", allow_shell = true }}, \
         {{ program = {PY:?}, allow_shell = true }}, \"sleep\", \"true\", {{ program = \"cat\", args = [\"--\", \"/[^ ]+\\\\.txt\"] }}]\n\
         {timeout}\n\
         allowed_read_paths = [{{ host = {ro}, guest = \"/ro\", mode = \"ro\" }}]\n\
         allowed_write_paths = [{{ host = {rw}, guest = \"/rw\", mode = \"rw\" }}]\n\
         {extra}",
        ro = q(&m.ro),
        rw = q(&m.rw),
        timeout = if extra.contains("subprocess_timeout_ms") { "" } else { "subprocess_timeout_ms = 5000" },
    )
}

/// The program's stdout as the guest got it.
fn stdout(r: &wasmward::CallRecord) -> String {
    ok(r).as_str().unwrap_or_else(|| panic!("{:?}", ok(r))).to_string()
}

/// `python3 -c` code that tries each (label, action) and prints
/// `label: ok` or `label: <errno name>`.
fn py_probe(probes: &[(&str, &str)]) -> String {
    let mut s = String::from("import os, socket, errno\n");
    for (label, action) in probes {
        s.push_str(&format!(
            "try:\n    {action}\n    print('{label}: ok')\nexcept OSError as e:\n    print('{label}:', errno.errorcode.get(e.errno, e.errno))\n"
        ));
    }
    s
}

fn sh(script: &str) -> serde_json::Value {
    json!({"program": "sh", "args": ["-c", script]})
}

fn py(code: &str) -> serde_json::Value {
    json!({"program": PY, "args": ["-c", code]})
}

// ---------------------------------------------------------------- files

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_child_reaches_only_the_tools_mounts() {
    let dir = TestDir::new();
    let m = mounts(&dir);
    let host = open(&dir, &tool("t", "hostile", "", Some(&policy(&m, "")))).await;
    let audit = dir.audit_db();
    let ro_new = m.ro.join("new.txt");
    let rw_new = m.rw.join("new.txt");
    let probes = [
        ("shadow", "open('/etc/shadow').read()".to_string()),
        ("passwd", "open('/etc/passwd').read()".to_string()),
        ("root", "os.listdir('/root')".to_string()),
        ("home-etc", "os.listdir('/etc')".to_string()),
        ("audit", format!("open({:?}, 'rb').read()", audit.display().to_string())),
        ("testdir", format!("os.listdir({:?})", dir.path().display().to_string())),
        ("ro-read", format!("assert open({:?}).read() == 'read-only data\\n'", m.ro.join("in.txt").display().to_string())),
        ("ro-write", format!("open({:?}, 'w').write('x')", ro_new.display().to_string())),
        ("ro-append", format!("open({:?}, 'a').write('x')", m.ro.join("in.txt").display().to_string())),
        ("rw-write", format!("open({:?}, 'w').write('from the child')", rw_new.display().to_string())),
        ("rw-read", format!("assert open({:?}).read() == 'from the child'", rw_new.display().to_string())),
        ("tmp", "open(os.environ['TMPDIR'] + '/t', 'w').write('t')".to_string()),
        ("host-tmp", "open('/tmp/wasmward-escaped', 'w').write('t')".to_string()),
    ];
    let probes: Vec<(&str, &str)> = probes.iter().map(|(l, a)| (*l, a.as_str())).collect();
    let python = call(&host, SPAWN, py(&py_probe(&probes))).await;
    let shell = call(
        &host,
        SPAWN,
        sh("cat /etc/shadow >/dev/null 2>&1; echo shadow=$?; ls /root >/dev/null 2>&1; echo root=$?; id -u"),
    )
    .await;
    let env = call(&host, SPAWN, json!({"program": "env", "args": ["sh", "-c", "head -c 10 /etc/shadow; echo rc=$?"]})).await;
    host.shutdown().await.unwrap();

    let want = "shadow: EACCES\npasswd: EACCES\nroot: EACCES\nhome-etc: EACCES\naudit: EACCES\ntestdir: EACCES\n\
                ro-read: ok\nro-write: EACCES\nro-append: EACCES\nrw-write: ok\nrw-read: ok\ntmp: ok\nhost-tmp: EACCES\n";
    assert_eq!(stdout(&python), want);
    // SAFETY: no arguments.
    let uid = if is_root() { 65534 } else { unsafe { libc::geteuid() } };
    assert_eq!(stdout(&shell), format!("shadow=1\nroot=2\n{uid}\n"), "sh: no shadow, no /root, runs as nobody");
    assert_eq!(stdout(&env), "rc=1\n", "env is no way around it");
    assert_eq!(std::fs::read_to_string(&rw_new).unwrap(), "from the child");
    assert!(!ro_new.exists());
    assert_eq!(std::fs::read_to_string(m.ro.join("in.txt")).unwrap(), "read-only data\n");
    assert!(!Path::new("/tmp/wasmward-escaped").exists());

    // Kernel refusals inside the child are not visible to the host: the
    // calls are ok, with no denial rows; what the child saw is above.
    let (calls, _) = audited(&audit);
    assert_eq!(calls.len(), 3);
    for c in &calls {
        assert_call(c, SPAWN, "ok", &[]);
    }
}

// -------------------------------------------------------------- network

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_child_has_no_network() {
    let dir = TestDir::new();
    let m = mounts(&dir);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let host = open(&dir, &tool("t", "hostile", "", Some(&policy(&m, "")))).await;
    let code = py_probe(&[
        ("tcp4", &format!("socket.create_connection(('127.0.0.1', {port}), timeout=2)")),
        ("tcp6", "socket.socket(socket.AF_INET6, socket.SOCK_STREAM)"),
        ("udp", "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.1', 53))"),
    ]);
    let probe = call(&host, SPAWN, py(&code)).await;
    host.shutdown().await.unwrap();

    assert_eq!(stdout(&probe), "tcp4: EACCES\ntcp6: EACCES\nudp: EACCES\n");
    assert!(listener.accept().is_err(), "no connection reached the listener");
    let (calls, _) = audited(&dir.audit_db());
    assert_call(&calls[0], SPAWN, "ok", &[]);
}

// --------------------------------------------------------- process tree

fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie waiting for init is dead already.
        Ok(stat) => !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

fn wait_dead(pid: u32) -> bool {
    for _ in 0..50 {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_descendant_outlives_the_call() {
    let dir = TestDir::new();
    let m = mounts(&dir);
    let host = open(&dir, &tool("t", "hostile", "", Some(&policy(&m, "subprocess_timeout_ms = 1500")))).await;
    let t0 = std::time::Instant::now();
    let bg = call(&host, SPAWN, sh("sleep 30 & echo $!")).await;
    let fast = t0.elapsed();
    let escape = call(
        &host,
        SPAWN,
        py(&py_probe(&[
            ("setsid", "os.setsid()"),
            ("setpgid", "os.setpgid(0, 0)"),
            // unshare(CLONE_NEWUSER), ptrace(PTRACE_TRACEME) through libc.
            ("unshare", "import ctypes; c = ctypes.CDLL(None, use_errno=True)\n    if c.unshare(0x10000000) != 0: raise OSError(ctypes.get_errno(), 'unshare')"),
            ("ptrace", "import ctypes; c = ctypes.CDLL(None, use_errno=True)\n    if c.ptrace(0, 0, 0, 0) != 0: raise OSError(ctypes.get_errno(), 'ptrace')"),
        ])),
    )
    .await;
    let timed = call(&host, SPAWN, sh("sleep 31 & sleep 32")).await;
    host.shutdown().await.unwrap();

    let pid: u32 = stdout(&bg).trim().parse().unwrap();
    assert!(wait_dead(pid), "the background sleep {pid} outlived the call");
    assert!(fast < std::time::Duration::from_secs(3), "the call waited for its background child: {fast:?}");
    assert_eq!(
        stdout(&escape),
        "setsid: EPERM\nsetpgid: EPERM\nunshare: EPERM\nptrace: EPERM\n",
        "no descendant leaves the process group or the sandbox"
    );
    assert_eq!(guest_err(&timed), "timeout: the program was killed");

    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), 3);
    assert_call(&calls[0], SPAWN, "ok", &[deny("process", "kill", "sh -c sleep 30 & echo $!", "descendants outlived the program; process group killed")]);
    assert_call(&calls[1], SPAWN, "ok", &[]);
    assert_call(
        &calls[2],
        SPAWN,
        "denied",
        &[deny("process", "kill", "sh -c sleep 31 & sleep 32", "subprocess_timeout_ms: process group killed")],
    );
    // Nothing of the timed-out run is left: no `sleep 31` / `sleep 32`.
    let leftovers = || -> Vec<String> {
        let mut v = Vec::new();
        for p in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let Ok(cmd) = std::fs::read(p.path().join("cmdline")) else { continue };
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if (cmd.starts_with("sleep 31") || cmd.starts_with("sleep 32")) && alive(pid) {
                v.push(format!("{pid}: {cmd}"));
            }
        }
        v
    };
    let mut left = leftovers();
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        left = leftovers();
    }
    assert!(left.is_empty(), "left over: {left:?}");
}

// ------------------------------------------------------------ resources

const BOMB_UID: u32 = 64_123;

fn procs_of(uid: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| {
            std::fs::read_to_string(p.path().join("status"))
                .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some(&uid.to_string())))
                .unwrap_or(false)
        })
        .filter(|p| alive(p.file_name().to_str().unwrap().parse().unwrap_or(0)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_bomb_is_contained_and_the_host_keeps_serving() {
    if !is_root() {
        // RLIMIT_NPROC would count all of the test user's processes.
        eprintln!("skipped: needs root, to run the bomb as a uid of its own");
        return;
    }
    let dir = TestDir::new();
    let m = mounts(&dir);
    // A uid of its own: RLIMIT_NPROC counts every process of the uid.
    let extra = format!("subprocess_run_as = {BOMB_UID}\nsubprocess_max_processes = 16");
    let host = open(&dir, &tool("t", "hostile", "", Some(&policy(&m, &extra)))).await;
    // Bounded: at most 200 forks, each child sleeping, never forking again.
    let code = "import os, time, errno\n\
                n = 0\n\
                for i in range(200):\n\
                \x20   try:\n\
                \x20       pid = os.fork()\n\
                \x20   except OSError as e:\n\
                \x20       print('forked', n, 'then', errno.errorcode[e.errno]); break\n\
                \x20   if pid == 0:\n\
                \x20       time.sleep(30); os._exit(0)\n\
                \x20   n += 1\n\
                else:\n\
                \x20   print('forked', n)\n";
    let bomb = call(&host, SPAWN, py(code)).await;
    let after = call(&host, SPAWN, json!({"program": "true", "args": []})).await;
    // SIGKILL is delivered asynchronously: give the kernel a moment.
    let mut left = procs_of(BOMB_UID);
    for _ in 0..100 {
        if left == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        left = procs_of(BOMB_UID);
    }
    host.shutdown().await.unwrap();

    let out = stdout(&bomb);
    let n: usize = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(out.ends_with("then EAGAIN\n") && n < 16, "{out}");
    assert_eq!(stdout(&after), "", "the host keeps serving");
    assert_eq!(left, 0, "the bomb's processes are gone");

    let (calls, _) = audited(&dir.audit_db());
    assert_call(&calls[0], SPAWN, "ok", &[deny("process", "kill", &format!("{PY} -c {code}"), "descendants outlived the program; process group killed")]);
    assert_call(&calls[1], SPAWN, "ok", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_fills_memory_hits_its_address_space_limit() {
    let dir = TestDir::new();
    let m = mounts(&dir);
    let extra = "subprocess_max_memory_bytes = 268435456";
    let host = open(&dir, &tool("t", "hostile", "", Some(&policy(&m, extra)))).await;
    let code = "try:\n    b = bytearray(1 << 30)\n    print('allocated')\nexcept MemoryError:\n    print('MemoryError')\n";
    let fill = call(&host, SPAWN, py(code)).await;
    let small = call(&host, SPAWN, py("b = bytearray(16 << 20); print(len(b))")).await;
    host.shutdown().await.unwrap();

    assert_eq!(stdout(&fill), "MemoryError\n");
    assert_eq!(stdout(&small), "16777216\n");
    let (calls, _) = audited(&dir.audit_db());
    assert_call(&calls[0], SPAWN, "ok", &[]);
    assert_call(&calls[1], SPAWN, "ok", &[]);
}

// ------------------------------------------------------------- log mode

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_mode_still_confines_the_child() {
    let dir = TestDir::new();
    let m = mounts(&dir);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let extra = "sandbox_violation_action = \"log\"\nallowed_network_hosts = [\"127.0.0.1\"]";
    let host = open(&dir, &tool("t", "hostile", "", Some(&policy(&m, extra)))).await;
    let code = py_probe(&[
        ("shadow", "open('/etc/shadow').read()"),
        ("ro-write", &format!("open({:?}, 'w')", m.ro.join("x").display().to_string())),
        ("tcp4", &format!("socket.create_connection(('127.0.0.1', {port}), timeout=2)")),
    ]);
    let probe = call(&host, SPAWN, py(&code)).await;
    let bg = call(&host, SPAWN, sh("sleep 30 & echo $!")).await;
    host.shutdown().await.unwrap();

    assert_eq!(stdout(&probe), "shadow: EACCES\nro-write: EACCES\ntcp4: EACCES\n");
    let pid: u32 = stdout(&bg).trim().parse().unwrap();
    assert!(wait_dead(pid));
    let (calls, _) = audited(&dir.audit_db());
    assert_call(&calls[0], SPAWN, "ok", &[]);
    // Never `logged`: the kill is not a discovery-mode pass.
    assert_call(&calls[1], SPAWN, "ok", &[deny("process", "kill", "sh -c sleep 30 & echo $!", "descendants outlived the program; process group killed")]);
}

// ------------------------------------------------------------ allowlist

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argument_patterns_pin_argv_and_a_refused_argument_is_a_denial() {
    let dir = TestDir::new();
    let m = mounts(&dir);
    let host = open(&dir, &tool("t", "hostile", "", Some(&policy(&m, "")))).await;
    let file = m.ro.join("in.txt").display().to_string();
    let good = call(&host, SPAWN, json!({"program": "cat", "args": ["--", file]})).await;
    let bad = call(&host, SPAWN, json!({"program": "cat", "args": ["/etc/shadow"]})).await;
    let extra = call(&host, SPAWN, json!({"program": "cat", "args": ["--", file, "/etc/passwd"]})).await;
    host.shutdown().await.unwrap();

    assert_eq!(stdout(&good), "read-only data\n");
    assert_eq!(guest_err(&bad), "denied: cat: argument 1 \"/etc/shadow\" does not match \"--\"");
    assert_eq!(guest_err(&extra), "denied: cat: argument 3 \"/etc/passwd\": the allowlist entry allows 2 argument(s)");
    let (calls, _) = audited(&dir.audit_db());
    assert_call(&calls[0], SPAWN, "ok", &[]);
    assert_call(&calls[1], SPAWN, "denied", &[deny("process", "spawn", "cat /etc/shadow", "argument 1 \"/etc/shadow\" does not match \"--\"")]);
    assert_call(
        &calls[2],
        SPAWN,
        "denied",
        &[deny("process", "spawn", &format!("cat -- {file} /etc/passwd"), "argument 3 \"/etc/passwd\": the allowlist entry allows 2 argument(s)")],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_on_the_allowlist_needs_allow_shell() {
    let dir = TestDir::new();
    for (list, at) in [("[\"true\", \"python3\"]", "subprocess_allowlist[1]"), ("[\"env\"]", "subprocess_allowlist[0]"), ("[\"sh\"]", "subprocess_allowlist[0]")] {
        let p = format!("allow_subprocess = true\nsubprocess_allowlist = {list}");
        let e = open_err(&dir, &tool("t", "hostile", "", Some(&p))).await;
        assert!(e.contains(&format!("tool \"t\": policy.{at}")), "{e}");
        assert!(e.contains("is a shell or interpreter"), "{e}");
        assert!(e.contains("Fix: ") && e.contains("allow_shell = true"), "{e}");
    }
}

// ---------------------------------------------------------------- check

#[test]
fn check_prints_what_a_tools_programs_can_reach() {
    let dir = TestDir::new();
    let m = mounts(&dir);
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    open_to_all(&private, 0o700);
    let prog = private.join("prog");
    std::fs::write(&prog, "#!/bin/sh\ntrue\n").unwrap();
    open_to_all(&prog, 0o755);
    let u = format!(
        "allow_subprocess = true\nsubprocess_allowlist = [\"true\", {}]\nallowed_read_paths = [{}]",
        q(&prog),
        q(&private)
    );
    let cfg = dir.write_config(&[tool("t", "hostile", "", Some(&policy(&m, "subprocess_max_processes = 8"))), tool("u", "hostile", "", Some(&u))].concat());
    let o = common::run(common::wasmward(&dir).args(["check", "--config", cfg.to_str().unwrap()]));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}\n{}", String::from_utf8_lossy(&o.stderr));
    for want in [
        "process: each program runs confined (Landlock + seccomp + rlimits), and can reach:",
        &format!("program {PY} ({PY}), any arguments, a shell or interpreter (allow_shell)"),
        "(cat), arguments matching [\"--\", \"/[^ ]+\\\\.txt\"]",
        &format!("read-only: {} (the tool's mount /ro)", m.ro.display()),
        &format!("read-write: {} (the tool's mount /rw)", m.rw.display()),
        "read + execute: /usr, /lib",
        "network: none",
        "8 processes",
        "runs as: uid/gid 65534 when the host is root",
        "warning: policy.subprocess_allowlist[1]: sh is a shell or interpreter (allow_shell = true)",
        &format!("warning: policy.subprocess_run_as: when the host runs as root, programs run as uid 65534 and cannot use the mount {p} ({p}): it is mode 700", p = private.display()),
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let want = format!(
        "warning: policy.subprocess_allowlist[1]: when the host runs as root, programs run as uid 65534 and cannot start {}: {} is mode 700 and not searchable by it",
        prog.display(),
        private.display()
    );
    assert!(out.contains(&want), "missing {want:?} in:\n{out}");
    assert_eq!(out.matches("cannot start").count(), 1, "{out}");
    // Tool t's mounts are reachable: only tool u gets that warning.
    assert_eq!(out.matches("cannot use the mount").count(), 1, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_killed_by_its_file_size_limit_is_audited() {
    let dir = TestDir::new();
    let m = mounts(&dir);
    let host = open(&dir, &tool("t", "hostile", "", Some(&policy(&m, "subprocess_max_file_bytes = 1000000")))).await;
    // Python ignores SIGXFSZ by default; restore the default (death).
    let code = "import os, signal\n\
                signal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n\
                print('writing', flush=True)\n\
                open(os.environ['TMPDIR'] + '/big', 'wb').write(b'0' * 2000000)\n\
                print('wrote')\n";
    let big = call(&host, SPAWN, py(code)).await;
    host.shutdown().await.unwrap();

    assert_eq!(stdout(&big), "writing\n", "the write past the limit killed it");
    let (calls, _) = audited(&dir.audit_db());
    assert_call(
        &calls[0],
        SPAWN,
        "ok",
        &[deny("process", "killed", &format!("{PY} -c {code}"), "the program died of file size limit (subprocess_max_file_bytes)")],
    );
}
