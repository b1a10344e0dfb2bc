//! Filesystem policy end to end: the `hostile` tool attempts every escape
//! (outside the mounts, writes to a read-only mount, `..`, symlinks, rename
//! out, listing `/`, removing in a read-only mount). Each test asserts what
//! the guest saw and the audit rows (capability, op, guest path, rule,
//! action, call_id ↔ call row, denial count), and that the host disk is
//! untouched. Allowed accesses work unchanged, including a mount given as
//! `{ host, guest, mode }`.

mod common;
mod policy_support;

use common::TestDir;
use policy_support::*;
use serde_json::json;
use std::fs;
use std::path::{Path, PathBuf};

/// A temp dir with `ro/` (holding `a.txt`), `rw/` (holding `f.txt`),
/// `mapped/` and `secret.txt` beside them, outside every mount.
struct Fixture {
    dir: TestDir,
    /// Canonical (symlink-free) root, as the guest sees the mounts.
    root: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = TestDir::new();
        let root = dir.path().canonicalize().unwrap();
        for d in ["ro", "rw", "mapped", "mapped-ro"] {
            fs::create_dir(root.join(d)).unwrap();
        }
        fs::write(root.join("ro/a.txt"), "read me").unwrap();
        fs::write(root.join("rw/f.txt"), "movable").unwrap();
        fs::write(root.join("mapped-ro/m.txt"), "mapped ro").unwrap();
        fs::write(root.join("secret.txt"), "top secret").unwrap();
        Fixture { dir, root }
    }

    fn p(&self, rel: &str) -> String {
        self.root.join(rel).display().to_string()
    }

    fn host_path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The hostile tool with `ro/` read-only and `rw/` read-write at their
    /// own paths, `mapped/` read-write at `/data` and `mapped-ro/`
    /// read-only at `/ro-data`.
    fn tools(&self) -> String {
        let policy = format!(
            "allowed_read_paths = [{ro}, {{ host = {mro}, guest = \"/ro-data\", mode = \"ro\" }}]\n\
             allowed_write_paths = [{rw}, {{ host = {mapped}, guest = \"/data\", mode = \"rw\" }}]\n\
             allow_symlinks = true",
            ro = q(&self.root.join("ro")),
            rw = q(&self.root.join("rw")),
            mro = q(&self.root.join("mapped-ro")),
            mapped = q(&self.root.join("mapped")),
        );
        tool("hostile", "hostile", "", Some(&policy))
    }

    async fn host(&self) -> wasmward::host::Host {
        open(&self.dir, &self.tools()).await
    }

    fn db(&self) -> PathBuf {
        self.dir.audit_db()
    }
}

const WRITE: &str = "hostile.caps.write-file";
const READ: &str = "hostile.caps.read-file";
const REMOVE: &str = "hostile.caps.remove-file";
const MKDIR: &str = "hostile.caps.make-dir";
const RENAME: &str = "hostile.caps.rename";
const SYMLINK: &str = "hostile.caps.symlink-escape";
const LIST: &str = "hostile.caps.list-dir";

const EACCES: &str = "Permission denied (os error 2)";
const EROFS: &str = "Read-only file system (os error 69)";

fn no_such(p: &Path) -> bool {
    fs::symlink_metadata(p).is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_outside_every_mount_is_denied_and_audited() {
    let f = Fixture::new();
    let host = f.host().await;
    // A host-writable place outside the mounts, and a system path.
    let outside = f.p("outside.txt");
    let r1 = call(&host, WRITE, json!({"path": outside, "contents": "x"})).await;
    let r2 = call(&host, WRITE, json!({"path": "/etc/wasmward-test", "contents": "x"})).await;
    let r3 = call(&host, WRITE, json!({"path": f.p("secret.txt"), "contents": "overwritten"})).await;
    host.shutdown().await.unwrap();

    assert_eq!(guest_err(&r1), format!("write: {EACCES}"));
    assert_eq!(guest_err(&r2), format!("write: {EACCES}"));
    assert_eq!(guest_err(&r3), format!("write: {EACCES}"));
    assert!(no_such(&f.host_path("outside.txt")));
    assert!(no_such(Path::new("/etc/wasmward-test")));
    assert_eq!(fs::read_to_string(f.host_path("secret.txt")).unwrap(), "top secret");

    let (calls, load) = audited(&f.db());
    assert!(load.is_empty());
    assert_eq!(calls.len(), 3);
    assert_call(&calls[0], WRITE, "denied", &[deny("fs", "create", &outside, "outside every mount")]);
    assert_call(&calls[1], WRITE, "denied", &[deny("fs", "create", "/etc/wasmward-test", "outside every mount")]);
    assert_call(&calls[2], WRITE, "denied", &[deny("fs", "create", &f.p("secret.txt"), "outside every mount")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_and_remove_in_a_read_only_mount_are_denied() {
    let f = Fixture::new();
    let host = f.host().await;
    let new = f.p("ro/new.txt");
    let existing = f.p("ro/a.txt");
    let r1 = call(&host, WRITE, json!({"path": new, "contents": "x"})).await;
    let r2 = call(&host, WRITE, json!({"path": existing, "contents": "clobbered"})).await;
    let r3 = call(&host, REMOVE, json!({"path": existing})).await;
    let r4 = call(&host, MKDIR, json!({"path": f.p("ro/sub")})).await;
    // The table-form read-only mount, at its guest path.
    let r5 = call(&host, WRITE, json!({"path": "/ro-data/m.txt", "contents": "clobbered"})).await;
    host.shutdown().await.unwrap();

    assert_eq!(guest_err(&r1), format!("write: {EROFS}"));
    assert_eq!(guest_err(&r2), format!("write: {EROFS}"));
    assert_eq!(guest_err(&r3), format!("remove: {EROFS}"));
    assert_eq!(guest_err(&r4), format!("mkdir: {EROFS}"));
    assert_eq!(guest_err(&r5), format!("write: {EROFS}"));
    assert!(no_such(&f.host_path("ro/new.txt")));
    assert!(no_such(&f.host_path("ro/sub")));
    assert_eq!(fs::read_to_string(f.host_path("ro/a.txt")).unwrap(), "read me");
    assert_eq!(fs::read_to_string(f.host_path("mapped-ro/m.txt")).unwrap(), "mapped ro");

    let ro = format!("read-only mount {}", f.p("ro"));
    let (calls, _) = audited(&f.db());
    assert_eq!(calls.len(), 5);
    assert_call(&calls[0], WRITE, "denied", &[deny("fs", "create", &new, &ro)]);
    assert_call(&calls[1], WRITE, "denied", &[deny("fs", "create", &existing, &ro)]);
    assert_call(&calls[2], REMOVE, "denied", &[deny("fs", "remove", &existing, &ro)]);
    assert_call(&calls[3], MKDIR, "denied", &[deny("fs", "create", &f.p("ro/sub"), &ro)]);
    assert_call(&calls[4], WRITE, "denied", &[deny("fs", "create", "/ro-data/m.txt", "read-only mount /ro-data")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_dot_cannot_climb_out_of_a_mount() {
    let f = Fixture::new();
    let host = f.host().await;
    let to_secret = format!("{}/../secret.txt", f.p("rw"));
    let to_other_mount = format!("{}/../ro/a.txt", f.p("rw"));
    let from_mapped = "/data/../../etc/passwd";
    let r1 = call(&host, READ, json!({"path": to_secret})).await;
    let r2 = call(&host, READ, json!({"path": to_other_mount})).await;
    let r3 = call(&host, READ, json!({"path": from_mapped})).await;
    let r4 = call(&host, WRITE, json!({"path": format!("{}/../planted.txt", f.p("rw")), "contents": "x"})).await;
    host.shutdown().await.unwrap();

    for r in [&r1, &r2, &r3] {
        let e = guest_err(r);
        assert!(e.starts_with("read: "), "{e}");
        assert!(!e.contains("top secret") && !e.contains("root:"), "{e}");
    }
    assert!(guest_err(&r4).starts_with("write: "));
    assert!(no_such(&f.host_path("planted.txt")));

    let (calls, _) = audited(&f.db());
    assert_eq!(calls.len(), 4);
    for (a, func) in calls.iter().zip([READ, READ, READ, WRITE]) {
        assert_eq!(a.call.function, func);
        assert_eq!(a.call.outcome, "denied");
        assert_eq!(a.denials.len(), 1, "{a:?}");
        let d = &a.denials[0];
        assert_eq!((d.capability.as_str(), d.action.as_str()), ("fs", "denied"));
        assert!(d.rule.contains("`..` climbs out of mount"), "{d:?}");
    }
    assert_eq!(calls[0].denials[0].op, "read");
    assert_eq!(calls[0].denials[0].target, to_secret);
    assert_eq!(calls[0].denials[0].rule, format!("`..` climbs out of mount {}", f.p("rw")));
    assert_eq!(calls[1].denials[0].target, to_other_mount);
    assert_eq!(calls[2].denials[0].target, from_mapped);
    assert_eq!(calls[2].denials[0].rule, "`..` climbs out of mount /data");
    assert_eq!(calls[3].denials[0].op, "create");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlink_escapes_are_refused_at_creation() {
    let f = Fixture::new();
    let host = f.host().await;
    let rel_link = f.p("rw/rel-link");
    let abs_link = f.p("rw/abs-link");
    let deep_link = f.p("rw/deep-link");
    let r1 = call(&host, SYMLINK, json!({"link-path": rel_link, "target": "../secret.txt"})).await;
    let r2 = call(&host, SYMLINK, json!({"link-path": abs_link, "target": "/etc/passwd"})).await;
    let r3 = call(&host, SYMLINK, json!({"link-path": deep_link, "target": "../../../../../../../../etc/passwd"})).await;
    // A symlink that stays inside its mount is allowed and works.
    let r4 = call(&host, SYMLINK, json!({"link-path": f.p("rw/inside-link"), "target": "f.txt"})).await;
    host.shutdown().await.unwrap();

    for r in [&r1, &r2, &r3] {
        let e = guest_err(r);
        assert!(e.starts_with("symlink: "), "the guest must fail at symlink creation: {e}");
        assert!(!e.contains("top secret") && !e.contains("root:"), "{e}");
    }
    assert_eq!(ok(&r4), &json!("movable"));
    for l in ["rw/rel-link", "rw/abs-link", "rw/deep-link"] {
        assert!(no_such(&f.host_path(l)), "{l} was created on the host");
    }
    assert_eq!(fs::read_link(f.host_path("rw/inside-link")).unwrap(), Path::new("f.txt"));

    let (calls, _) = audited(&f.db());
    assert_eq!(calls.len(), 4);
    let want = [(&rel_link, "../secret.txt"), (&abs_link, "/etc/passwd"), (&deep_link, "../../../../../../../../etc/passwd")];
    for (a, (link, target)) in calls.iter().zip(want) {
        assert_eq!(a.call.function, SYMLINK);
        assert_eq!(a.denials.len(), 1, "{a:?}");
        let d = &a.denials[0];
        assert_eq!((d.capability.as_str(), d.op.as_str(), d.action.as_str()), ("fs", "create", "denied"), "{d:?}");
        assert_eq!(&d.target, link);
        assert!(d.rule.starts_with("symlink target") && d.rule.contains(target) && d.rule.contains("leaves its mount"), "{d:?}");
    }
    assert_call(&calls[3], SYMLINK, "ok", &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_out_of_a_mount_is_denied() {
    let f = Fixture::new();
    let host = f.host().await;
    let from = f.p("rw/f.txt");
    let to_outside = f.p("moved.txt");
    let to_ro = f.p("ro/moved.txt");
    let r1 = call(&host, RENAME, json!({"from": from, "to": to_outside})).await;
    let r2 = call(&host, RENAME, json!({"from": from, "to": to_ro})).await;
    // Moving something in: the source is outside every mount.
    let r3 = call(&host, RENAME, json!({"from": f.p("secret.txt"), "to": f.p("rw/stolen.txt")})).await;
    host.shutdown().await.unwrap();

    assert_eq!(guest_err(&r1), format!("rename: {EACCES}"));
    assert!(guest_err(&r2).starts_with("rename: "));
    assert_eq!(guest_err(&r3), format!("rename: {EACCES}"));
    assert_eq!(fs::read_to_string(f.host_path("rw/f.txt")).unwrap(), "movable");
    assert!(no_such(&f.host_path("moved.txt")) && no_such(&f.host_path("ro/moved.txt")) && no_such(&f.host_path("rw/stolen.txt")));
    assert_eq!(fs::read_to_string(f.host_path("secret.txt")).unwrap(), "top secret");

    let (calls, _) = audited(&f.db());
    assert_eq!(calls.len(), 3);
    assert_call(&calls[0], RENAME, "denied", &[deny("fs", "create", &to_outside, "outside every mount")]);
    assert_call(&calls[1], RENAME, "denied", &[deny("fs", "create", &to_ro, &format!("read-only mount {}", f.p("ro")))]);
    assert_call(&calls[2], RENAME, "denied", &[deny("fs", "remove", &f.p("secret.txt"), "outside every mount")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_the_root_reveals_nothing() {
    let f = Fixture::new();
    let host = f.host().await;
    let r1 = call(&host, LIST, json!({"path": "/"})).await;
    let r2 = call(&host, LIST, json!({"path": "/etc"})).await;
    let r3 = call(&host, READ, json!({"path": "/etc/passwd"})).await;
    host.shutdown().await.unwrap();

    assert_eq!(guest_err(&r1), format!("readdir: {EACCES}"));
    assert_eq!(guest_err(&r2), format!("readdir: {EACCES}"));
    assert_eq!(guest_err(&r3), format!("read: {EACCES}"));

    let (calls, _) = audited(&f.db());
    assert_eq!(calls.len(), 3);
    assert_call(&calls[0], LIST, "denied", &[deny("fs", "read", "/", "outside every mount")]);
    assert_call(&calls[1], LIST, "denied", &[deny("fs", "read", "/etc", "outside every mount")]);
    assert_call(&calls[2], READ, "denied", &[deny("fs", "read", "/etc/passwd", "outside every mount")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_reads_and_writes_work_unchanged() {
    let f = Fixture::new();
    let host = f.host().await;
    let out = f.p("rw/out.txt");
    let mut results = Vec::new();
    results.push(call(&host, WRITE, json!({"path": out, "contents": "hello, host"})).await);
    results.push(call(&host, READ, json!({"path": out})).await);
    results.push(call(&host, READ, json!({"path": f.p("ro/a.txt")})).await);
    results.push(call(&host, MKDIR, json!({"path": f.p("rw/sub")})).await);
    results.push(call(&host, RENAME, json!({"from": f.p("rw/f.txt"), "to": f.p("rw/sub/g.txt")})).await);
    results.push(call(&host, LIST, json!({"path": f.p("rw")})).await);
    results.push(call(&host, LIST, json!({"path": f.p("ro")})).await);
    results.push(call(&host, REMOVE, json!({"path": f.p("rw/sub/g.txt")})).await);
    // `.` and `..` that stay inside the mount are fine.
    results.push(call(&host, READ, json!({"path": format!("{}/./sub/../out.txt", f.p("rw"))})).await);
    host.shutdown().await.unwrap();

    let want = [
        json!(null),
        json!("hello, host"),
        json!("read me"),
        json!(null),
        json!(null),
        json!(["out.txt", "sub"]),
        json!(["a.txt"]),
        json!(null),
        json!("hello, host"),
    ];
    for (r, w) in results.iter().zip(&want) {
        assert_eq!(ok(r), w, "{}", r.function);
        assert!(r.denials.is_empty(), "{:?}", r.denials);
    }
    assert_eq!(fs::read_to_string(f.host_path("rw/out.txt")).unwrap(), "hello, host");
    assert!(f.host_path("rw/sub").is_dir());
    assert!(no_such(&f.host_path("rw/f.txt")) && no_such(&f.host_path("rw/sub/g.txt")));

    let (calls, _) = audited(&f.db());
    assert_eq!(calls.len(), want.len());
    assert!(calls.iter().all(|a| a.call.outcome == "ok" && a.denials.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_mount_works_at_its_guest_path_only() {
    let f = Fixture::new();
    let host = f.host().await;
    let r1 = call(&host, WRITE, json!({"path": "/data/x.txt", "contents": "via guest path"})).await;
    let r2 = call(&host, READ, json!({"path": "/data/x.txt"})).await;
    let r3 = call(&host, LIST, json!({"path": "/data"})).await;
    let r4 = call(&host, READ, json!({"path": "/ro-data/m.txt"})).await;
    // The host path of a remapped mount is not visible inside.
    let host_side = f.p("mapped/x.txt");
    let r5 = call(&host, READ, json!({"path": host_side})).await;
    host.shutdown().await.unwrap();

    assert_eq!(ok(&r1), &json!(null));
    assert_eq!(ok(&r2), &json!("via guest path"));
    assert_eq!(ok(&r3), &json!(["x.txt"]));
    assert_eq!(ok(&r4), &json!("mapped ro"));
    assert_eq!(guest_err(&r5), format!("read: {EACCES}"));
    assert_eq!(fs::read_to_string(f.host_path("mapped/x.txt")).unwrap(), "via guest path");

    let (calls, _) = audited(&f.db());
    assert_eq!(calls.len(), 5);
    for a in &calls[..4] {
        assert_call(a, &a.call.function.clone(), "ok", &[]);
    }
    assert_call(&calls[4], READ, "denied", &[deny("fs", "read", &host_side, "outside every mount")]);
}
