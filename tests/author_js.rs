//! A JavaScript tool author's path, end to end (issue 17, "Done when"):
//! `wasmward new NAME --lang js`, then the generated README's fenced ```sh
//! blocks run verbatim (only the `wasmward` at the start of a line becomes
//! this build's binary path) up to a first call under the scaffold's own
//! `wasmward.toml`; then the app is changed to make one allowed request (a
//! loopback server the config grants) and one refused one (a host it does
//! not), to hit an allowed port nobody listens on, and to run a program, and
//! to return what the SDK's `isDenied` says of each: the refusals are
//! recognised inside the tool and audited, the plain failure is not a
//! denial. Last, an uncaught `throw new TypeError("kaboom")` fails the call
//! with its message and the tool's own stack frame, and leaves zero denial
//! rows in the real audit SQLite.
//!
//! `npm install` runs as the README writes it, with npm offline
//! (`npm_config_offline=true`) and its cache set to `target/lang/npm-cache`,
//! the cache `scripts/build-lang-tools.sh` fills when it installs the same
//! `sdk/js/package-lock.json` (the scaffold's lock is a copy of it). So the
//! install resolves the scaffold's own lock into the tool's own
//! `node_modules`, without the network; nothing is linked or copied in.
//! The CLI's audit log and compile cache go to the test's temp dir
//! (`XDG_DATA_HOME`, `XDG_CACHE_HOME`): the scaffold's config leaves both at
//! their defaults.

mod author_support;
mod lang_support;

use author_support::{assert_printed_steps_are_the_readmes, sh_blocks};
use lang_support::{audit_bodies, lang_tool, repo_root, TestDir};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NAME: &str = "authjs";

struct Author {
    dir: TestDir,
    tool: PathBuf,
}

impl Author {
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.current_dir(&self.tool)
            .env("npm_config_offline", "true")
            .env("npm_config_cache", repo_root().join("target/lang/npm-cache"))
            .env("npm_config_audit", "false")
            .env("npm_config_fund", "false")
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env_remove("RUST_LOG");
        c
    }

    /// Runs one README block with bash, `set -e`, `wasmward` replaced by
    /// this build's binary at the start of each line.
    fn run_block(&self, block: &str) -> Output {
        let bin = env!("CARGO_BIN_EXE_wasmward");
        let script: String = block
            .lines()
            .map(|l| match l.strip_prefix("wasmward ") {
                Some(rest) => format!("{bin} {rest}\n"),
                None => format!("{l}\n"),
            })
            .collect();
        let out = self.cmd("bash").args(["-euo", "pipefail", "-c", &script]).output().expect("run bash");
        assert!(
            out.status.success(),
            "README block failed ({}):\n{script}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn call(&self, function: &str, args: &str) -> Output {
        self.cmd(env!("CARGO_BIN_EXE_wasmward"))
            .args(["call", "--config", "wasmward.toml", NAME, function, "--args", args])
            .output()
            .expect("run wasmward call")
    }

    fn audit_db(&self) -> PathBuf {
        self.dir.path().join("data/wasmward/audit.db")
    }
}

/// A loopback HTTP server answering every request `200 hello`.
fn serve_hello() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello");
        }
    });
    port
}

/// A loopback port nobody listens on (bound, then released).
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn edit(path: &Path, f: impl FnOnce(String) -> String) {
    let before = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let after = f(before.clone());
    assert_ne!(before, after, "{} unchanged", path.display());
    std::fs::write(path, after).expect("write");
}

const PROBES_WIT: &str = r#"
    /// Probe the sandbox: one allowed request, one refused, one to a dead port, one program.
    export probe: func(allowed: string, refused: string, dead: string) -> result<string, string>;

    /// Throw an uncaught TypeError.
    export boom: func() -> string;
}
"#;

const PROBES_JS: &str = r#"
import { run } from 'wasmward:tool/process@0.1.0';

async function outcome(f) {
  try {
    return { ok: await f() };
  } catch (e) {
    return { denied: isDenied(e), message: String(e?.message ?? e) };
  }
}

export async function probe(allowed, refused, dead) {
  const get = (url) => async () => (await request(url)).text();
  return JSON.stringify({
    allowed: await outcome(get(allowed)),
    refused: await outcome(get(refused)),
    dead: await outcome(get(dead)),
    process: await outcome(() => run('ls', [], new Uint8Array())),
  });
}

function inner() {
  throw new TypeError('kaboom');
}

export function boom() {
  inner();
  return 'unreachable';
}
"#;

#[test]
fn a_js_tool_goes_from_scaffold_to_a_recognised_denial_following_its_readme() {
    let _ = lang_tool("js-text"); // the toolchain and its npm cache are installed
    let dir = TestDir::new();
    let out = Command::new(env!("CARGO_BIN_EXE_wasmward"))
        .current_dir(dir.path())
        .args(["new", NAME, "--lang", "js"])
        .output()
        .expect("run wasmward new");
    assert!(out.status.success(), "wasmward new: {}", String::from_utf8_lossy(&out.stderr));
    let author = Author { tool: dir.path().join(NAME), dir };

    // The README's own commands, verbatim.
    let readme = std::fs::read_to_string(author.tool.join("README.md")).expect("README.md");
    assert_printed_steps_are_the_readmes(&String::from_utf8_lossy(&out.stdout), NAME, &readme);
    let blocks = sh_blocks(&readme);
    assert_eq!(blocks.len(), 2, "a build block and a try block: {blocks:?}");
    assert!(blocks[0].contains("npm install") && blocks[0].contains("npm run build"), "{}", blocks[0]);
    let call_line = format!("wasmward call --config wasmward.toml {NAME} greet --args '{{\"name\":\"world\"}}'");
    assert!(blocks[1].contains(&call_line), "the exact call line: {}", blocks[1]);
    let (_, build_err) = text(&author.run_block(&blocks[0]));
    assert!(!build_err.contains("ERESOLVE"), "npm install warns: {build_err}");
    assert!(author.tool.join("node_modules/@bytecodealliance/componentize-js").is_dir(), "installed into the tool's node_modules");
    assert!(author.tool.join(format!("{NAME}.wasm")).is_file(), "{NAME}.wasm built");
    let (stdout, _) = text(&author.run_block(&blocks[1]));
    assert!(stdout.contains("\"Hello, world!\""), "the first call greets: {stdout}");
    assert!(stdout.contains("status-of"), "inspect lists the functions: {stdout}");

    // The app, changed: one allowed and one refused request under the
    // scaffold's config, with a loopback server granted in it.
    let port = serve_hello();
    let dead = dead_port();
    edit(&author.tool.join("wasmward.toml"), |t| {
        t.replace(
            r#"allowed_network_hosts = ["example.com"]"#,
            &format!("allowed_network_hosts = [\"127.0.0.1:{port}\", \"127.0.0.1:{dead}\"]\nblock_private_ips = false"),
        )
    });
    edit(&author.tool.join("wit/world.wit"), |t| {
        let end = t.rfind('}').expect("the world's closing brace");
        format!("{}{PROBES_WIT}", &t[..end])
    });
    edit(&author.tool.join("app.js"), |t| t + PROBES_JS);
    author.run_block(&blocks[0]);

    let args = serde_json::json!({
        "allowed": format!("http://127.0.0.1:{port}/"),
        "refused": "http://refused.invalid/",
        "dead": format!("http://127.0.0.1:{dead}/"),
    });
    let out = author.call("probe", &args.to_string());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "probe: {stderr}");
    let result: Value = serde_json::from_str(stdout.trim()).expect("a JSON string on stdout");
    let seen: Value = serde_json::from_str(result.as_str().expect("the tool's string")).expect("the tool's JSON");
    assert_eq!(seen["allowed"]["ok"], "hello", "the granted server answers: {seen}");
    assert_eq!(seen["refused"]["denied"], true, "the refusal is recognised in the tool: {seen}");
    assert!(seen["refused"]["message"].as_str().is_some_and(|m| m.contains("HTTP-request-denied")), "{seen}");
    assert_eq!(seen["dead"]["denied"], false, "a refused connection is not a denial: {seen}");
    assert!(seen["dead"]["message"].as_str().is_some_and(|m| m.contains("connection-refused")), "{seen}");
    assert_eq!(seen["process"]["denied"], true, "the process denial is recognised: {seen}");

    let bodies = audit_bodies(&author.audit_db());
    let rows = |f: &str, kind: &str| -> Vec<Value> {
        let function = format!("{NAME}.{f}");
        bodies.iter().filter(|b| b["kind"] == kind && b["function"] == function.as_str()).cloned().collect()
    };
    let probe_denials = rows("probe", "denial");
    let caps: Vec<&str> = probe_denials.iter().filter_map(|d| d["capability"].as_str()).collect();
    assert_eq!(caps, ["http", "process"], "each refusal is audited once: {probe_denials:?}");
    assert!(probe_denials[0]["target"].as_str().is_some_and(|t| t.contains("refused.invalid")), "{probe_denials:?}");
    assert_eq!(rows("probe", "call")[0]["denials"], 2, "the call row counts them");

    // An uncaught exception: its message and the tool's frame in the error,
    // and no denial rows.
    let out = author.call("boom", "{}");
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "boom fails: {stderr}");
    let error_line = stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(error_line.contains("TypeError: kaboom"), "the message, with its name: {error_line}");
    assert!(error_line.contains("inner@app.js:") && error_line.contains("boom@app.js:"), "the tool's frames: {error_line}");
    assert!(!error_line.contains("initializer.js") && !error_line.contains("mozalloc_abort"), "no runtime noise: {error_line}");
    let bodies = audit_bodies(&author.audit_db());
    let boom_calls: Vec<&Value> = bodies.iter().filter(|b| b["kind"] == "call" && b["function"] == "authjs.boom").collect();
    assert_eq!(boom_calls.len(), 1, "the failed call is audited");
    assert_eq!(boom_calls[0]["outcome"], "trap", "{:?}", boom_calls[0]);
    assert_eq!(boom_calls[0]["denials"], 0);
    assert!(boom_calls[0]["error"].as_str().is_some_and(|e| e.contains("TypeError: kaboom")), "{:?}", boom_calls[0]);
    let boom_denials = bodies.iter().filter(|b| b["kind"] == "denial" && b["function"] == "authjs.boom").count();
    assert_eq!(boom_denials, 0, "one exception, zero denial rows");
}
