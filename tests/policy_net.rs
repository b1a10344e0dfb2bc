//! Network policy end to end: `wasi:sockets` (lookups, connects to every
//! private range form, raw IPs that bypass the name list, listen, UDP) and
//! `wasi:http` (host, port and scheme checks; private addresses after the
//! host's own resolution; DNS rebinding through an injected resolver).
//! Each denial test asserts what the guest saw and the audit rows; the
//! allowed cases reach real loopback servers run by the test.

mod common;
mod policy_support;

use common::TestDir;
use policy_support::*;
use serde_json::json;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use wasmward::host::Host;
use wasmward::sandbox::http::Resolver;
use wasmward::{Runtime, RuntimeOptions};

const CONNECT: &str = "hostile.caps.tcp-connect";
const RESOLVE: &str = "hostile.caps.resolve";
const LISTEN: &str = "hostile.caps.tcp-listen";
const UDP: &str = "hostile.caps.udp-send";

const EACCES: &str = "Permission denied (os error 2)";

/// The hostile tool named `name` with `policy`.
fn hostile(name: &str, policy: &str) -> String {
    tool(name, "hostile", "", Some(policy))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_to_every_private_range_form_are_denied() {
    let dir = TestDir::new();
    // block_private_ips is left at its default (true); the list names a
    // public host so that the private check is what refuses.
    let host = open(&dir, &hostile("hostile", "allowed_network_hosts = [\"example.com\", \"10.0.0.0/8:*\"]")).await;
    let cases: &[(&str, &str)] = &[
        ("127.0.0.1:80", "loopback 127.0.0.0/8"),
        ("10.1.2.3:80", "private 10.0.0.0/8"),
        ("[::1]:80", "loopback ::1/128"),
        ("[fe80::1]:80", "link-local fe80::/10"),
        ("[fc00::1]:80", "unique-local fc00::/7"),
        ("[::ffff:127.0.0.1]:80", "loopback 127.0.0.0/8 (embedded in ipv4-mapped ::ffff:0.0.0.0/96)"),
        ("[2002:7f00:1::]:80", "loopback 127.0.0.0/8 (embedded in 6to4 2002::/16)"),
        ("[64:ff9b::7f00:1]:80", "loopback 127.0.0.0/8 (embedded in nat64 64:ff9b::/96)"),
        ("100.64.0.1:80", "cgnat 100.64.0.0/10"),
        ("169.254.169.254:80", "link-local 169.254.0.0/16"),
    ];
    let mut records = Vec::new();
    for (addr, _) in cases {
        records.push(call(&host, CONNECT, json!({"addr": addr})).await);
    }
    host.shutdown().await.unwrap();

    for r in &records {
        assert_eq!(guest_err(r), format!("connect: {EACCES}"));
    }
    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), cases.len());
    for (a, (addr, range)) in calls.iter().zip(cases) {
        assert_call(a, CONNECT, "denied", &[deny("net", "connect", addr, &format!("block_private_ips: {range}"))]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_answer_only_allowed_names_and_drop_private_answers() {
    let dir = TestDir::new();
    let host = open(&dir, &hostile("hostile", "allowed_network_hosts = [\"example.com\", \"localhost\"]")).await;
    let r1 = call(&host, RESOLVE, json!({"name": "evil.example"})).await;
    let r2 = call(&host, RESOLVE, json!({"name": "sub.example.com"})).await;
    // An allowed name whose answers are all private: the guest gets none.
    let r3 = call(&host, RESOLVE, json!({"name": "localhost"})).await;
    host.shutdown().await.unwrap();

    let refused = "resolve: failed to lookup address information: Non-recoverable error";
    assert_eq!(guest_err(&r1), refused);
    assert_eq!(guest_err(&r2), refused);
    assert_eq!(ok(&r3), &json!([]));

    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), 3);
    assert_call(&calls[0], RESOLVE, "denied", &[deny("net", "lookup", "evil.example", "name is not on allowed_network_hosts")]);
    assert_call(&calls[1], RESOLVE, "denied", &[deny("net", "lookup", "sub.example.com", "name is not on allowed_network_hosts")]);
    let dropped = &calls[2];
    assert_eq!(dropped.call.outcome, "ok");
    assert!(!dropped.denials.is_empty());
    assert!(dropped.denials.iter().any(|d| Deny::from(d) == deny("net", "lookup", "localhost -> 127.0.0.1", "block_private_ips: loopback 127.0.0.0/8")), "{:?}", dropped.denials);
    for d in &dropped.denials {
        assert_eq!((d.capability.as_str(), d.op.as_str(), d.action.as_str()), ("net", "lookup", "denied"));
        assert!(d.target.starts_with("localhost -> ") && d.rule.starts_with("block_private_ips: loopback"), "{d:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_ip_connect_cannot_bypass_the_name_list() {
    let dir = TestDir::new();
    let host = open(&dir, &hostile("hostile", "allowed_network_hosts = [\"example.com\"]")).await;
    // Public addresses no allowed name resolved to in this call: refused
    // before any packet leaves.
    let r1 = call(&host, CONNECT, json!({"addr": "93.184.215.14:80"})).await;
    let r2 = call(&host, CONNECT, json!({"addr": "[2606:4700:4700::1111]:443"})).await;
    host.shutdown().await.unwrap();

    assert_eq!(guest_err(&r1), format!("connect: {EACCES}"));
    assert_eq!(guest_err(&r2), format!("connect: {EACCES}"));
    let rule = "address is neither on allowed_network_hosts nor resolved from an allowed name in this call";
    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), 2);
    assert_call(&calls[0], CONNECT, "denied", &[deny("net", "connect", "93.184.215.14:80", rule)]);
    assert_call(&calls[1], CONNECT, "denied", &[deny("net", "connect", "[2606:4700:4700::1111]:443", rule)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_without_network_grants_is_refused_everything() {
    let dir = TestDir::new();
    let host = open(&dir, &tool("hostile", "hostile", "", None)).await;
    let r1 = call(&host, CONNECT, json!({"addr": "93.184.215.14:80"})).await;
    let r2 = call(&host, RESOLVE, json!({"name": "example.com"})).await;
    host.shutdown().await.unwrap();
    assert_eq!(guest_err(&r1), format!("connect: {EACCES}"));
    assert!(guest_err(&r2).starts_with("resolve: "));
    let (calls, _) = audited(&dir.audit_db());
    // Without a network grant the socket itself is refused, before any connect.
    let no_grant = "no network grant (allowed_network_hosts is empty and allow_listen = false)";
    assert_call(&calls[0], CONNECT, "denied", &[deny("net", "create", "tcp/ipv4 socket", no_grant)]);
    assert_call(&calls[1], RESOLVE, "denied", &[deny("net", "lookup", "example.com", "allowed_network_hosts is empty")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_name_reaches_a_real_loopback_listener() {
    let server = EchoServer::start(b"pong\n").await;
    let dir = TestDir::new();
    let policy = format!("allowed_network_hosts = [\"localhost:{}\"]\nblock_private_ips = false", server.port);
    let host = open(&dir, &hostile("hostile", &policy)).await;
    let r = call(&host, CONNECT, json!({"addr": format!("localhost:{}", server.port)})).await;
    // The same listener on a port the rule does not name is refused.
    let other = call(&host, CONNECT, json!({"addr": format!("localhost:{}", server.port.wrapping_add(1).max(1))})).await;
    host.shutdown().await.unwrap();

    assert_eq!(ok(&r), &json!("pong\n"));
    assert_eq!(server.connections(), 1);
    assert_eq!(guest_err(&other), format!("connect: {EACCES}"));
    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), 2);
    assert_call(&calls[0], CONNECT, "ok", &[]);
    let other_port = server.port.wrapping_add(1).max(1);
    assert_call(
        &calls[1],
        CONNECT,
        "denied",
        &[deny("net", "connect", &format!("127.0.0.1:{other_port}"), &format!("port {other_port} is not allowed for localhost by allowed_network_hosts"))],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_and_udp_need_their_own_grants() {
    let dir = TestDir::new();
    let host = open(&dir, &hostile("hostile", "allowed_network_hosts = [\"example.com\", \"1.1.1.1:53\"]")).await;
    let r1 = call(&host, LISTEN, json!({"addr": "127.0.0.1:0"})).await;
    let r2 = call(&host, LISTEN, json!({"addr": "0.0.0.0:8080"})).await;
    let r3 = call(&host, UDP, json!({"addr": "1.1.1.1:53", "msg": "x"})).await;
    host.shutdown().await.unwrap();

    assert_eq!(guest_err(&r1), format!("listen: {EACCES}"));
    assert_eq!(guest_err(&r2), format!("listen: {EACCES}"));
    assert_eq!(guest_err(&r3), format!("bind: {EACCES}"));
    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), 3);
    assert_call(&calls[0], LISTEN, "denied", &[deny("net", "listen", "127.0.0.1:0", "allow_listen = false")]);
    assert_call(&calls[1], LISTEN, "denied", &[deny("net", "listen", "0.0.0.0:8080", "allow_listen = false")]);
    assert_call(&calls[2], UDP, "denied", &[deny("net", "create", "udp/ipv4 socket", "allow_udp = false")]);
}

// ----------------------------------------------------------------- wasi:http

const HTTP_DENIED: &str = "denied: the policy refused this request";
const IP_PROHIBITED: &str = "request failed: ErrorCode::DestinationIpProhibited";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_to_a_disallowed_host_port_or_scheme_is_denied() {
    let dir = TestDir::new();
    let tools = [
        hostile("web", "allowed_network_hosts = [\"example.com\"]"),
        hostile("tls", "allowed_network_hosts = [\"https://example.com\"]"),
    ]
    .concat();
    let host = open(&dir, &tools).await;
    let r1 = call(&host, "web.caps.http-get", json!({"url": "http://evil.example/"})).await;
    let r2 = call(&host, "web.caps.http-get", json!({"url": "http://example.com:8080/"})).await;
    let r3 = call(&host, "tls.caps.http-get", json!({"url": "http://example.com/"})).await;
    let r4 = call(&host, "web.caps.http-get", json!({"url": "http://www.example.com/"})).await;
    host.shutdown().await.unwrap();

    for r in [&r1, &r2, &r3, &r4] {
        assert_eq!(guest_err(r), HTTP_DENIED);
    }
    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), 4);
    assert_call(&calls[0], "web.caps.http-get", "denied", &[deny("http", "GET", "http://evil.example:80", "`evil.example` matches no allowed_network_hosts entry")]);
    assert_call(&calls[1], "web.caps.http-get", "denied", &[deny("http", "GET", "http://example.com:8080", "port 8080 not allowed by `example.com`")]);
    assert_call(&calls[2], "tls.caps.http-get", "denied", &[deny("http", "GET", "http://example.com:80", "scheme http not allowed by `https://example.com`")]);
    assert_call(&calls[3], "web.caps.http-get", "denied", &[deny("http", "GET", "http://www.example.com:80", "`www.example.com` matches no allowed_network_hosts entry")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_to_an_allowed_loopback_host_works_only_when_private_ips_are_allowed() {
    let server = http_server().await;
    let dir = TestDir::new();
    let entry = format!("allowed_network_hosts = [\"127.0.0.1:{}\"]", server.port);
    let tools = [hostile("lan", &format!("{entry}\nblock_private_ips = false")), hostile("guarded", &entry)].concat();
    let host = open(&dir, &tools).await;
    let url = format!("http://127.0.0.1:{}/status", server.port);
    let r1 = call(&host, "lan.caps.http-get", json!({"url": url})).await;
    let r2 = call(&host, "guarded.caps.http-get", json!({"url": url})).await;
    host.shutdown().await.unwrap();

    assert_eq!(ok(&r1), &json!(200));
    assert_eq!(guest_err(&r2), IP_PROHIBITED);
    assert_eq!(server.connections(), 1, "only the allowed request reached the server");
    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), 2);
    assert_call(&calls[0], "lan.caps.http-get", "ok", &[]);
    let target = format!("http://127.0.0.1:{} (127.0.0.1)", server.port);
    assert_call(&calls[1], "guarded.caps.http-get", "denied", &[deny("http", "GET", &target, "block_private_ips: loopback 127.0.0.0/8")]);
}

/// Answers `rebind.test` with a public address the first time and with
/// 127.0.0.1 after that; `private.test` with 10.0.0.5 only; `svc.test` with
/// 127.0.0.1. Counts every lookup.
struct ScriptedResolver {
    calls: AtomicUsize,
    rebind_calls: AtomicUsize,
}

impl Resolver for ScriptedResolver {
    fn resolve(&self, host: &str, _port: u16) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let answer: Vec<IpAddr> = match host {
            "rebind.test" => {
                if self.rebind_calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    // Public (a documentation-free global address); unreachable here.
                    vec!["2606:4700:4700::1111".parse().unwrap()]
                } else {
                    vec!["127.0.0.1".parse().unwrap()]
                }
            }
            "private.test" => vec!["10.0.0.5".parse().unwrap()],
            "svc.test" => vec!["127.0.0.1".parse().unwrap()],
            _ => return Box::pin(async { Err(std::io::Error::other("unknown name")) }),
        };
        Box::pin(async move { Ok(answer) })
    }
}

async fn host_with_resolver(dir: &TestDir, rest: &str, resolver: Arc<ScriptedResolver>) -> Host {
    let text = config_text(dir, 8, "", rest);
    let cfg = parse(dir, &text);
    let runtime = Runtime::new(RuntimeOptions { resolver, max_concurrent_calls: 8, cache_dir: Some(dir.cache_dir()) }).unwrap();
    let audit = wasmward::host::open_audit(&cfg).unwrap();
    Host::with_parts(cfg, runtime, audit).await.unwrap_or_else(|e| panic!("{e:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_rebinding_cannot_reach_a_private_address() {
    let server = http_server().await;
    let dir = TestDir::new();
    let resolver = Arc::new(ScriptedResolver { calls: AtomicUsize::new(0), rebind_calls: AtomicUsize::new(0) });
    let tools = [
        tool("rebind", "hostile", "timeout_ms = 5000", Some(&format!("allowed_network_hosts = [\"rebind.test:{}\"]", server.port))),
        hostile("private", "allowed_network_hosts = [\"private.test\"]"),
        hostile("svc", &format!("allowed_network_hosts = [\"svc.test:{}\"]\nblock_private_ips = false", server.port)),
    ]
    .concat();
    let host = host_with_resolver(&dir, &tools, resolver.clone()).await;

    // The name resolves once, to the public answer; the rebound private
    // answer is never asked for, so it is never dialed.
    let r1 = call(&host, "rebind.caps.http-get", json!({"url": format!("http://rebind.test:{}/", server.port)})).await;
    assert_eq!(resolver.rebind_calls.load(Ordering::SeqCst), 1, "the host must resolve the name exactly once");
    assert_eq!(server.connections(), 0, "the private address was dialed");
    assert!(!matches!(&r1.outcome, Ok(v) if v == &json!(200)), "{:?}", r1.outcome);

    // Only private answers: refused with the range.
    let r2 = call(&host, "private.caps.http-get", json!({"url": "http://private.test/"})).await;
    assert_eq!(guest_err(&r2), IP_PROHIBITED);

    // The injected resolver is what the host dials through: an allowed name
    // resolving to the test's server works when private IPs are allowed.
    let r3 = call(&host, "svc.caps.http-get", json!({"url": format!("http://svc.test:{}/", server.port)})).await;
    assert_eq!(ok(&r3), &json!(200));
    assert_eq!(server.connections(), 1);
    assert_eq!(resolver.calls.load(Ordering::SeqCst), 3, "one lookup per request");
    host.shutdown().await.unwrap();

    let (calls, _) = audited(&dir.audit_db());
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].call.function, "rebind.caps.http-get");
    assert!(calls[0].denials.iter().all(|d| !d.target.contains("127.0.0.1")), "{:?}", calls[0].denials);
    assert_call(&calls[1], "private.caps.http-get", "denied", &[deny("http", "GET", "http://private.test:80 (10.0.0.5)", "block_private_ips: private 10.0.0.0/8")]);
    assert_call(&calls[2], "svc.caps.http-get", "ok", &[]);
}
