//! Python and JS tools under a policy: the same refusals, guest-visible
//! errors and audit rows as a Rust tool.

mod lang_support;

use lang_support::*;
use serde_json::{json, Value};

/// A policy with one writable mount, one allowed host, and private IPs
/// allowed so that the local test server can be the allowed host.
fn policy(mount: &std::path::Path, allowed_host: &str) -> String {
    format!(
        "allow_eval_exec = true\nallowed_write_paths = [{:?}]\nallowed_network_hosts = [{allowed_host:?}]\nblock_private_ips = false\n",
        mount.display().to_string()
    )
}

fn tool_err(rec: &wasmward::CallRecord) -> String {
    match &rec.outcome {
        Err(wasmward::CallError::ToolError { value }) => value.as_str().unwrap_or_default().to_string(),
        Err(wasmward::CallError::Denied { cause, .. }) if matches!(cause.as_ref(), wasmward::CallError::ToolError { .. }) => {
            let wasmward::CallError::ToolError { value } = cause.as_ref() else { unreachable!() };
            value.as_str().unwrap_or_default().to_string()
        }
        other => panic!("{}: expected the tool's own error, got {other:?} (stderr: {})", rec.function, rec.stderr),
    }
}

fn one_denial<'a>(rows: &'a [Value], tool: &str, function: &str) -> &'a Value {
    let mine: Vec<&Value> = rows.iter().filter(|r| r["tool"] == tool && r["function"] == function).collect();
    assert_eq!(mine.len(), 1, "{tool}.{function}: one denial row: {rows:#?}");
    for field in ["capability", "op", "target", "rule"] {
        assert!(mine[0][field].as_str().is_some_and(|s| !s.is_empty()), "{field} is set: {}", mine[0]);
    }
    mine[0]
}

/// A local HTTP server on 127.0.0.1 answering `n` requests; returns its
/// `host:port`.
fn serve(body: &'static str, n: usize) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for _ in 0..n {
            let Ok((mut s, _)) = listener.accept() else { return };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let resp = format!("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            let _ = s.write_all(resp.as_bytes());
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn http_to_a_host_not_on_the_list_is_refused_and_audited() {
    let dir = TestDir::new();
    let mount = dir.path().join("mnt");
    std::fs::create_dir_all(&mount).expect("mount dir");
    let host = open(dir.config(&both_tools(&policy(&mount, "allowed.example.com")))).await;
    let url = "http://blocked.example.net:8080/secret";
    for t in ["py", "js"] {
        let rec = host.call(&format!("{t}.fetch"), &json!({"url": url}), "test").await;
        let err = tool_err(&rec);
        assert!(err.starts_with(&format!("fetch {url} failed:")), "{t}: {err}");
        let guest_sees = if t == "py" { "HttpRequestDenied" } else { "NetworkError" };
        assert!(err.contains(guest_sees), "{t}: the guest sees the refusal: {err}");
        assert_eq!(rec.denials.len(), 1, "{t}: {:?}", rec.denials);
    }
    host.shutdown().await.expect("shutdown");
    let rows = denials(&dir.audit_db(), "http");
    for t in ["py", "js"] {
        let row = one_denial(&rows, t, &format!("{t}.fetch"));
        assert_eq!(row["op"], "GET");
        assert!(row["target"].as_str().is_some_and(|s| s.contains("blocked.example.net")), "{row}");
        assert_eq!(row["action"], "denied");
    }
    let calls: Vec<Value> = audit_bodies(&dir.audit_db()).into_iter().filter(|b| b["kind"] == "call").collect();
    assert!(calls.iter().all(|c| c["denials"] == 1 && c["outcome"] == "denied"), "{calls:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn http_to_an_allowed_host_works_from_python_and_js() {
    let dir = TestDir::new();
    let mount = dir.path().join("mnt");
    std::fs::create_dir_all(&mount).expect("mount dir");
    let server = serve("pong", 2);
    let (ip_host, port) = server.split_once(':').expect("host:port");
    let host = open(dir.config(&both_tools(&policy(&mount, &format!("{ip_host}:{port}"))))).await;
    for t in ["py", "js"] {
        let url = format!("http://{server}/ping");
        let rec = host.call(&format!("{t}.fetch"), &json!({"url": url}), "test").await;
        match &rec.outcome {
            Ok(v) => {
                assert_eq!(v["status"], 200, "{t}: {v}");
                assert_eq!(v["body"], "pong", "{t}: {v}");
                assert_eq!(v["content-type"], "text/plain", "{t}: {v}");
            }
            Err(e) => panic!("{t}: {e} (stderr: {})", rec.stderr),
        }
        assert!(rec.denials.is_empty(), "{t}: {:?}", rec.denials);
    }
    host.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread")]
async fn writing_outside_the_mount_is_refused_and_audited() {
    let dir = TestDir::new();
    let mount = dir.path().join("mnt");
    std::fs::create_dir_all(&mount).expect("mount dir");
    let host = open(dir.config(&both_tools(&policy(&mount, "allowed.example.com")))).await;
    for t in ["py", "js"] {
        let inside = mount.join(format!("{t}.txt"));
        let rec = host
            .call(&format!("{t}.write-file"), &json!({"path": inside.display().to_string(), "contents": "hello"}), "test")
            .await;
        assert_eq!(rec.outcome.as_ref().map_err(|e| e.to_string()), Ok(&json!(5)), "{t}: write inside the mount");
        assert_eq!(std::fs::read_to_string(&inside).expect("written"), "hello", "{t}");

        let outside = dir.path().join(format!("outside-{t}.txt"));
        let rec = host
            .call(&format!("{t}.write-file"), &json!({"path": outside.display().to_string(), "contents": "x"}), "test")
            .await;
        let err = tool_err(&rec);
        assert!(err.starts_with(&format!("cannot write {}", outside.display())), "{t}: {err}");
        assert!(!outside.exists(), "{t}: nothing was written outside the mount");
        assert!(!rec.denials.is_empty(), "{t}: the refusal is recorded");
    }
    host.shutdown().await.expect("shutdown");
    let rows = denials(&dir.audit_db(), "fs");
    for t in ["py", "js"] {
        let row = one_denial(&rows, t, &format!("{t}.write-file"));
        let target = row["target"].as_str().unwrap_or_default();
        assert!(target.ends_with(&format!("outside-{t}.txt")), "{row}");
        assert!(["write", "create"].contains(&row["op"].as_str().unwrap_or_default()), "{row}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connecting_to_a_host_not_on_the_list_is_refused_and_audited() {
    let dir = TestDir::new();
    let mount = dir.path().join("mnt");
    std::fs::create_dir_all(&mount).expect("mount dir");
    let host = open(dir.config(&both_tools(&policy(&mount, "allowed.example.com")))).await;
    let args = json!({"host": "blocked.example.net", "port": 80});
    for t in ["py", "js"] {
        let rec = host.call(&format!("{t}.connect"), &args, "test").await;
        let err = tool_err(&rec);
        assert!(err.starts_with("cannot connect to blocked.example.net"), "{t}: {err}");
    }
    host.shutdown().await.expect("shutdown");
    // Python connects with wasi:sockets (name lookup refused: `net`); JS has
    // no raw sockets and connects with an HTTP request (`http`).
    for (t, capability) in [("py", "net"), ("js", "http")] {
        let rows = denials(&dir.audit_db(), capability);
        let row = one_denial(&rows, t, &format!("{t}.connect"));
        assert!(row["target"].as_str().is_some_and(|s| s.contains("blocked.example.net")), "{row}");
    }
}
