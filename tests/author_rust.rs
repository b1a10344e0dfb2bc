//! A Rust tool author's first minutes, end to end: `wasmward new`, then the
//! scaffold README's own ```sh blocks run verbatim (only `wasmward` is
//! found on PATH as the binary under test), then the scaffold's config with
//! one granted operation and one refused: the tool tells the refusal with
//! `wasmward_sdk::is_denied` and says so in its answer, the host records
//! one denial row; a panic reaches the caller with its message and records
//! no denial.
//!
//! Slow on a cold cache (a wasm32-wasip2 release build of the SDK);
//! dependencies are kept in `target/scaffold-test` between runs.

mod author_support;
mod common;

use author_support::{assert_printed_steps_are_the_readmes, sh_blocks};
use common::{repo_root, run, TestDir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NAME: &str = "hello-rs";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(o: &Output) -> String {
    format!("status {:?}\nstdout:\n{}\nstderr:\n{}", o.status.code(), text(&o.stdout), text(&o.stderr))
}

/// Every audit row's body, oldest first.
fn audit_bodies(db: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    wasmward::audit::export_jsonl(db, &mut out).expect("export the audit log");
    text(&out).lines().map(|l| serde_json::from_str::<Value>(l).expect("a JSON line")["body"].clone()).collect()
}

struct Author {
    dir: TestDir,
    /// Holds `wasmward`, a link to the binary under test, for PATH.
    bin: PathBuf,
}

impl Author {
    fn project(&self) -> PathBuf {
        self.dir.path().join(NAME)
    }

    /// A shell command as the author types it, in `cwd`, with `wasmward`
    /// on PATH and every cache and data dir inside the test dir.
    fn sh(&self, script: &str, cwd: &Path) -> Output {
        let path = format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap_or_default());
        run(Command::new("sh")
            .args(["-e", "-c", script])
            .current_dir(cwd)
            .env("PATH", path)
            .env("WASMWARD_CACHE_DIR", self.dir.cache_dir())
            .env("XDG_DATA_HOME", self.dir.path().join("xdg-data"))
            .env("XDG_CACHE_HOME", self.dir.path().join("xdg-cache"))
            .env_remove("RUST_LOG")
            .env_remove("WASMWARD_AUDIT_KEY")
            // The author's cargo, not the one running this test.
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET"))
    }

    fn audit_db(&self) -> PathBuf {
        self.dir.path().join("xdg-data/wasmward/audit.db")
    }

    fn call(&self, function: &str, args: &str) -> Output {
        let script = format!("wasmward call --config wasmward.toml {NAME} {function} --args '{args}'");
        self.sh(&script, &self.project())
    }
}

/// The `{"error": ...}` line a failed call prints on stderr.
fn error_json(o: &Output) -> Value {
    let err = text(&o.stderr);
    let line = err.lines().find(|l| l.starts_with("{\"error\"")).unwrap_or_else(|| panic!("no JSON error line:\n{}", show(o)));
    serde_json::from_str::<Value>(line).expect("JSON")["error"].clone()
}

#[test]
fn a_rust_tool_from_wasmward_new_to_a_denial_it_recognises() {
    let dir = TestDir::new();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_wasmward"), bin.join("wasmward")).unwrap();
    let author = Author { dir, bin };

    // 1. Scaffold. The printed next steps are the README's commands.
    let o = author.sh(&format!("wasmward new {NAME}"), author.dir.path());
    assert!(o.status.success(), "{}", show(&o));
    let printed = text(&o.stdout);
    let project = author.project();
    let readme = std::fs::read_to_string(project.join("README.md")).expect("README.md");
    assert_printed_steps_are_the_readmes(&printed, NAME, &readme);
    let blocks = sh_blocks(&readme);
    assert!(blocks.len() >= 2, "a build block and a try block: {blocks:?}");
    for f in ["wasmward.toml", ".gitignore", "notes/hello.txt", "wit/world.wit", "src/lib.rs", "Cargo.toml"] {
        assert!(project.join(f).exists(), "{f} missing");
    }

    // The test's additions: a function that panics. The README's commands
    // still build and call the scaffold as shipped otherwise.
    let wit = project.join("wit/world.wit");
    let w = std::fs::read_to_string(&wit).unwrap();
    let w = w.trim_end().strip_suffix('}').expect("the world ends with }").to_string()
        + "\n    /// Panics with `msg`.\n    export boom: func(msg: string) -> string;\n}\n";
    std::fs::write(&wit, w).unwrap();
    let lib = project.join("src/lib.rs");
    let l = std::fs::read_to_string(&lib).unwrap();
    assert!(l.contains("impl Guest for Tool {"), "{l}");
    let l = l.replace("impl Guest for Tool {", "impl Guest for Tool {\n    fn boom(msg: String) -> String {\n        panic!(\"{msg}\")\n    }\n");
    std::fs::write(&lib, l).unwrap();
    // Offline and fast: the example tools' lock (same dependency versions)
    // and a shared target dir (cargo builds into ./target, a link to it).
    std::fs::copy(repo_root().join("example-tools/Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let shared = repo_root().join("target/scaffold-test");
    std::fs::create_dir_all(&shared).unwrap();
    std::os::unix::fs::symlink(&shared, project.join("target")).unwrap();

    // 2. The README's sh blocks, verbatim, in order.
    let mut outputs = String::new();
    for block in &blocks {
        let o = author.sh(block, &project);
        assert!(o.status.success(), "README block failed:\n{block}\n{}", show(&o));
        outputs.push_str(&text(&o.stdout));
    }
    assert!(outputs.contains("\"Hello, world!\""), "greet's answer: {outputs}");
    assert!(outputs.contains(&format!("Hello from {NAME}'s notes.")), "read-note's answer: {outputs}");
    let db = author.audit_db();
    let denials = |function: &str| -> Vec<Value> {
        audit_bodies(&db).into_iter().filter(|b| b["kind"] == "denial" && b["function"] == function).collect()
    };
    assert!(denials(&format!("{NAME}.read-note")).is_empty(), "the granted read records no denial");

    // 3. The granted operation works; the refused one is a denial the tool
    // recognises and reports in its own error; an ordinary failure is not.
    let o = author.call("read-note", r#"{"path":"/notes/hello.txt"}"#);
    assert!(o.status.success(), "{}", show(&o));
    let o = author.call("read-note", r#"{"path":"/etc/hostname"}"#);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let e = error_json(&o);
    assert_eq!(e["code"], "denied", "{e}");
    assert_eq!(e["cause"]["code"], "tool_error", "the tool answered: {e}");
    let answer = e["cause"]["value"].as_str().unwrap_or_default();
    assert!(answer.starts_with("denied: /etc/hostname is not granted"), "is_denied said yes: {e}");
    assert!(text(&o.stderr).contains("denied fs"), "the CLI shows the denial: {}", show(&o));
    let rows = denials(&format!("{NAME}.read-note"));
    assert_eq!(rows.len(), 1, "one denial row: {rows:?}");
    assert_eq!(rows[0]["capability"], "fs");
    assert!(rows[0]["target"].as_str().unwrap_or("").contains("/etc/hostname"), "{rows:?}");

    let o = author.call("read-note", r#"{"path":"/notes/missing.txt"}"#);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let e = error_json(&o);
    assert!(e["value"].as_str().unwrap_or("").starts_with("cannot read /notes/missing.txt"), "not a denial: {e}");
    assert_eq!(denials(&format!("{NAME}.read-note")).len(), 1, "a missing file is no denial");

    // 4. A panic: its message reaches the caller, and no denial is recorded.
    let o = author.call("boom", r#"{"msg":"the tool gave up"}"#);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let e = error_json(&o);
    assert_eq!(e["code"], "trap", "{e}");
    assert!(e["message"].as_str().unwrap_or("").contains("the tool gave up"), "{e}");
    assert!(denials(&format!("{NAME}.boom")).is_empty(), "a panic records no denial");
    let calls: Vec<Value> = audit_bodies(&db).into_iter().filter(|b| b["kind"] == "call" && b["function"] == format!("{NAME}.boom")).collect();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!((calls[0]["outcome"].as_str(), calls[0]["denials"].as_u64()), (Some("trap"), Some(0)), "{calls:?}");
}
