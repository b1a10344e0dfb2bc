//! The floor for the HTTP API benchmark, and a fixed-count client for
//! profiling (used by `scripts/bench.sh`; not a test, prints no ratio itself).
//!
//! - `http_floor --floor [ADDR]`: a trivial axum server on the same stack as
//!   `wasmward serve` (tokio multi-thread runtime, axum 0.8, hyper 1) with
//!   one route, `POST /v1/tools/{name}/call`, that checks for a bearer token,
//!   parses the JSON body and answers `{"result": <the arguments>}`. What wrk
//!   measures against it is the transport + JSON floor: no gate, no sandbox,
//!   no audit. Prints `listening on http://ADDR` on stderr, like `serve`.
//! - `http_floor --client URL TOKEN N [BODY]`: N sequential keep-alive POSTs
//!   of `BODY` (default `{"name":"bench"}`), each of which must answer 200;
//!   prints the count and the mean latency. Used to drive a server under
//!   `valgrind --tool=callgrind` or `strace -c` for an exact number of calls.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::time::Instant;

async fn echo(Path(_name): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let authed = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, tok)| scheme.eq_ignore_ascii_case("bearer") && !tok.trim().is_empty());
    if !authed {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"code": "unauthorized", "message": "no bearer token"}}))).into_response();
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(args) => Json(json!({ "result": args })).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({"error": {"code": "invalid_json", "message": e.to_string()}}))).into_response(),
    }
}

fn floor(addr: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"));
        eprintln!("http_floor: listening on http://{}", listener.local_addr().expect("local address"));
        let app = Router::new().route("/v1/tools/{name}/call", post(echo));
        axum::serve(listener, app).await.expect("serve");
    });
}

fn client(url: &str, token: &str, n: usize, body: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async {
        let c = reqwest::Client::builder().pool_max_idle_per_host(1).build().expect("client");
        let started = Instant::now();
        for i in 0..n {
            let r = c
                .post(url)
                .bearer_auth(token)
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap_or_else(|e| panic!("request {i}: {e}"));
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            assert!(status.is_success(), "request {i}: HTTP {status}: {text}");
        }
        let took = started.elapsed();
        println!("{n} calls, mean {:.1} µs", took.as_secs_f64() * 1e6 / n.max(1) as f64);
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--floor") => floor(args.get(2).map_or("127.0.0.1:0", String::as_str)),
        Some("--client") if args.len() >= 5 => {
            let n: usize = args[4].parse().expect("N: a number of calls");
            client(&args[2], &args[3], n, args.get(5).map_or("{\"name\":\"bench\"}", String::as_str));
        }
        // `cargo bench` / `cargo test --benches` run bench binaries with
        // `--bench` or probe them with `--list`: nothing to do here.
        _ => eprintln!("usage: http_floor --floor [ADDR] | --client URL TOKEN N [BODY]  (driven by scripts/bench.sh)"),
    }
}
