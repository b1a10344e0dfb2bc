//! A Python tool author's first session, end to end: `wasmward new NAME
//! --lang python`, then the generated README's own ```sh blocks run
//! verbatim (set up, build, inspect, a call, a refused call and its audit
//! row), then the app changed to do one allowed and one refused write under
//! the config (plus a refused program and socket), each answering
//! `wasmward_sdk.is_denied(e)`, and uncaught exceptions that must reach the
//! error with their message and leave no denial row in the audit SQLite.
//!
//! Only the `wasmward` binary is substituted: a `wasmward` symlink to the
//! one under test comes first on PATH. The README's `pip install` runs as
//! written but offline: `PIP_NO_INDEX=1` and `PIP_FIND_LINKS` point pip at
//! the componentize-py wheel that scripts/build-lang-tools.sh keeps in
//! target/lang/wheels (it installs target/lang/venv from the same wheel).
//! `WASMWARD_CACHE_DIR` points the compile cache at the tests' shared one.

mod author_support;
mod lang_support;

use author_support::{assert_printed_steps_are_the_readmes, sh_blocks};
use lang_support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NAME: &str = "pyauthor";

struct Author {
    dir: TestDir,
    bin_dir: PathBuf,
}

impl Author {
    fn new() -> Author {
        let _ = lang_tool("python-text"); // scripts/build-lang-tools.sh ran: toolchain and wheel
        let wheels = repo_root().join("target/lang/wheels");
        let has_wheel = std::fs::read_dir(&wheels).map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("componentize_py-0.25."))).unwrap_or(false);
        assert!(has_wheel, "no componentize-py 0.25 wheel in {}; run scripts/build-lang-tools.sh", wheels.display());
        let dir = TestDir::new();
        let bin_dir = dir.path().join("bin");
        std::fs::create_dir(&bin_dir).expect("bin dir");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_wasmward"), bin_dir.join("wasmward")).expect("link wasmward");
        Author { dir, bin_dir }
    }

    fn tool_dir(&self) -> PathBuf {
        self.dir.path().join(NAME)
    }

    /// `bash -e -c script` in `cwd`, as an author's shell would run it.
    fn sh(&self, cwd: &Path, script: &str) -> Output {
        let path = format!("{}:{}", self.bin_dir.display(), std::env::var("PATH").unwrap_or_default());
        Command::new("bash")
            .args(["-e", "-c", script])
            .current_dir(cwd)
            .env("PATH", path)
            .env("PIP_NO_INDEX", "1")
            .env("PIP_FIND_LINKS", repo_root().join("target/lang/wheels"))
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("WASMWARD_CACHE_DIR", shared_cache())
            .env_remove("RUST_LOG")
            .env_remove("VIRTUAL_ENV")
            .output()
            .unwrap_or_else(|e| panic!("cannot run bash: {e}"))
    }

    fn sh_ok(&self, cwd: &Path, script: &str) -> (String, String) {
        let out = self.sh(cwd, script);
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        assert!(out.status.success(), "`{}` failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}", script.trim(), out.status);
        (stdout, stderr)
    }

    /// `wasmward call --config wasmward.toml NAME FUNCTION --args ARGS`, as the README writes it.
    fn call(&self, function: &str, args: &Value) -> Output {
        let args = args.to_string().replace('\'', r"'\''");
        self.sh(&self.tool_dir(), &format!("wasmward call --config wasmward.toml {NAME} {function} --args '{args}'"))
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(self.tool_dir().join("audit.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open the audit SQLite")
    }

    /// The last call row's id and the denial rows recorded under it.
    fn last_call_denials(&self) -> (String, Vec<Value>) {
        let db = self.db();
        let call_id: String = db
            .query_row("SELECT call_id FROM events WHERE kind = 'call' ORDER BY seq DESC LIMIT 1", [], |r| r.get(0))
            .expect("a call row");
        let mut stmt = db.prepare("SELECT body FROM events WHERE kind = 'denial' AND call_id = ?1 ORDER BY seq").expect("query");
        let rows = stmt
            .query_map([&call_id], |r| r.get::<_, String>(0))
            .expect("denial rows")
            .map(|b| serde_json::from_str(&b.expect("a body")).expect("a JSON body"))
            .collect();
        (call_id, rows)
    }

    fn total_denials(&self) -> i64 {
        self.db().query_row("SELECT count(*) FROM events WHERE kind = 'denial'", [], |r| r.get(0)).expect("count")
    }
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The `{"error": ...}` object `wasmward call` prints on stderr.
fn error_json(stderr: &str) -> Value {
    let line = stderr.lines().find(|l| l.starts_with("{\"error\"")).unwrap_or_else(|| panic!("no error JSON on stderr:\n{stderr}"));
    serde_json::from_str::<Value>(line).expect("error JSON")["error"].clone()
}

/// The app after the author's change: one write allowed and one refused
/// under the config, a refused program and socket, each answering
/// `is_denied`, and exceptions nobody catches. The imports go on top; the
/// methods continue the template's `WitWorld` class, the file's last lines.
const APP_IMPORTS: &str = r#"import encodings.idna  # noqa: F401  (socket.getaddrinfo imports it lazily)
import socket

from wasmward_sdk import is_denied, process


def _answer(op, e):
    return f"{op}: denied={is_denied(e)} {type(e).__name__}: {e}"

"#;

const APP_METHODS: &str = r#"
    def write_file(self, path: str, text: str) -> str:
        try:
            with open(path, "w") as f:
                return f"wrote {f.write(text)} bytes"
        except OSError as e:
            return _answer("write", e)

    def run_program(self, program: str) -> str:
        try:
            return f"ran: status {process.run(program, ['--version']).status}"
        except process.ProcessError as e:
            return _answer("run", e)

    def connect(self, host: str, port: int) -> str:
        try:
            with socket.socket() as s:  # by address: a refused name lookup is a resolver error
                s.settimeout(2)
                s.connect((host, port))
            return "connected"
        except OSError as e:
            return _answer("connect", e)

    def boom(self, kind: str) -> str:
        def lookup(key):
            table = {"a": 1}
            if kind == "chained":
                try:
                    return table[key]
                except KeyError as e:
                    raise ValueError(f"no entry for {key!r}") from e
            if kind == "import":
                import heapq  # noqa: F401  (not imported at build time: not in the component)
            if kind == "group":
                raise ExceptionGroup("two failures", [LookupError("first"), KeyError("second")])
            raise LookupError(f"nested boom: {key}")
        return str(lookup("missing"))
"#;

const WIT_ADDITIONS: &str = r#"
    /// Write `text` to `path`; says whether a failure was a denial.
    export write-file: func(path: string, text: string) -> string;
    /// Run `program --version`; says whether a failure was a denial.
    export run-program: func(program: string) -> string;
    /// Connect to an IP address over TCP; says whether a failure was a denial.
    export connect: func(host: string, port: u16) -> string;
    /// Raise an exception nobody catches (`kind`: nested, chained, import, group).
    export boom: func(kind: string) -> string;
"#;

#[test]
fn a_python_author_goes_from_wasmward_new_to_sandboxed_calls_with_the_readme_alone() {
    let author = Author::new();
    let (stdout, _) = author.sh_ok(author.dir.path(), &format!("wasmward new {NAME} --lang python"));
    assert!(stdout.contains(&format!("created {NAME}")), "{stdout}");
    let tool = author.tool_dir();
    for f in ["wasmward.toml", "README.md", ".gitignore", "app.py", "build.py", "wasmward_sdk/__init__.py", "wasmward_sdk/process.py"] {
        assert!(tool.join(f).exists(), "the scaffold has {f}");
    }

    // The README's commands, verbatim and in order.
    let readme = std::fs::read_to_string(tool.join("README.md")).expect("README.md");
    assert_printed_steps_are_the_readmes(&stdout, NAME, &readme);
    let blocks = sh_blocks(&readme);
    assert_eq!(blocks.len(), 4, "set up, build, try, refused (update this test with the README):\n{readme}");
    let outputs: Vec<(String, String)> = blocks.iter().map(|b| author.sh_ok(&tool, b)).collect();
    assert!(blocks[0].contains("pip install 'componentize-py==0.25.*'"), "{}", blocks[0]);
    assert!(tool.join(".venv/bin/componentize-py").exists(), "the README's set-up installed componentize-py");
    assert!(blocks[1].contains("build.py") && tool.join(format!("{NAME}.wasm")).exists(), "the README's build wrote {NAME}.wasm");
    let (try_out, _) = &outputs[2];
    assert!(try_out.contains("embeds interpreter CPython"), "inspect: {try_out}");
    assert!(try_out.contains("\"Hello, world!\""), "the README's call line: {try_out}");
    let (refused_out, refused_err) = &outputs[3];
    assert!(refused_out.contains("exit status 1"), "the refused call exits 1: {refused_out}\n{refused_err}");
    assert!(refused_err.contains("refused by the policy"), "the tool recognised the refusal with is_denied: {refused_err}");
    let (_, http_denials) = author.last_call_denials();
    assert_eq!(http_denials.len(), 1, "{http_denials:?}");
    assert_eq!(http_denials[0]["capability"], "http");
    assert!(refused_out.contains("\"kind\":\"denial\"") && refused_out.contains("example.org"), "audit tail shows the denial: {refused_out}");

    // The author's change: a writable mount in the config, and the app's
    // new functions; rebuilt with the README's build block.
    let out = author.dir.path().join("out");
    std::fs::create_dir(&out).expect("out dir");
    let config = std::fs::read_to_string(tool.join("wasmward.toml")).expect("wasmward.toml");
    let grant = format!("allowed_write_paths = [{{ host = {:?}, guest = \"/out\" }}]\n", out.display().to_string());
    std::fs::write(tool.join("wasmward.toml"), config.replace("[tool.policy]", &format!("[tool.policy]\n{grant}"))).expect("write config");
    let app = std::fs::read_to_string(tool.join("app.py")).expect("app.py");
    assert!(app.trim_end().ends_with("raise Err(f\"{url}: {e}\")"), "the template's class ends the file:\n{app}");
    std::fs::write(tool.join("app.py"), format!("{APP_IMPORTS}{}\n{APP_METHODS}", app.trim_end())).expect("write app.py");
    let wit = std::fs::read_to_string(tool.join("wit/world.wit")).expect("world.wit");
    let end = wit.rfind('}').expect("the world's closing brace");
    std::fs::write(tool.join("wit/world.wit"), format!("{}{WIT_ADDITIONS}{}", &wit[..end], &wit[end..])).expect("write world.wit");
    author.sh_ok(&tool, &blocks[1]);

    let answer = |function: &str, args: Value| {
        let out = author.call(function, &args);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{function} {args}: {stderr}");
        let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{function}: not JSON ({e}): {stdout}"));
        v.as_str().expect("a string").to_string()
    };
    let denials_before = author.total_denials();
    assert_eq!(answer("write-file", serde_json::json!({"path": "/out/a.txt", "text": "hello"})), "wrote 5 bytes");
    assert_eq!(std::fs::read_to_string(out.join("a.txt")).expect("written on the host"), "hello");
    assert!(author.last_call_denials().1.is_empty(), "the allowed write is not a denial");

    let refused = answer("write-file", serde_json::json!({"path": "/elsewhere/a.txt", "text": "hello"}));
    assert!(refused.starts_with("write: denied=True PermissionError"), "{refused}");
    let (_, rows) = author.last_call_denials();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0]["capability"].as_str(), rows[0]["target"].as_str()), (Some("fs"), Some("/elsewhere/a.txt")), "{rows:?}");

    let ran = answer("run-program", serde_json::json!({"program": "ls"}));
    assert!(ran.starts_with("run: denied=True ProcessError: denied"), "{ran}");
    assert_eq!(author.last_call_denials().1.first().map(|r| r["capability"].clone()), Some("process".into()));

    let connected = answer("connect", serde_json::json!({"host": "127.0.0.1", "port": 9}));
    assert!(connected.starts_with("connect: denied=True PermissionError"), "{connected}");
    assert!(!author.last_call_denials().1.is_empty(), "the refused connect is audited");
    let denials_after_refusals = author.total_denials();
    assert!(denials_after_refusals >= denials_before + 3);

    // Uncaught exceptions: the message reaches the error, and the traceback
    // (source lines included) is printed without a single filesystem access.
    for (kind, want, source_line) in [
        ("nested", "LookupError: nested boom: missing", "raise LookupError(f\"nested boom: {key}\")"),
        ("chained", "ValueError: no entry for 'missing'", "raise ValueError(f\"no entry for {key!r}\") from e"),
        ("import", "ModuleNotFoundError: No module named 'heapq'", "import heapq"),
        ("group", "ExceptionGroup: two failures (2 sub-exceptions)", "raise ExceptionGroup("),
    ] {
        let out = author.call("boom", &serde_json::json!({ "kind": kind }));
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{kind}: {stderr}");
        let err = error_json(&stderr);
        assert_eq!(err["code"], "trap", "{kind}: a trap, not a denial: {err}");
        let message = err["message"].as_str().unwrap_or_default();
        assert!(message.contains(&format!("(guest {want})")), "{kind}: the exception line is in the error: {message}");
        assert!(stderr.contains(source_line), "{kind}: the traceback shows the source line:\n{stderr}");
        let (call_id, rows) = author.last_call_denials();
        assert!(rows.is_empty(), "{kind}: no denial rows for call {call_id}: {rows:?}");
    }
    assert_eq!(author.total_denials(), denials_after_refusals, "the exceptions added no denial rows");
}
