//! OAuth 2.1 resource server (`[server.oauth]`) against a real `wasmward
//! serve`: RFC 9728 metadata, 401/403 challenges, JWT access tokens signed
//! by a local issuer (RSA, P-256 and Ed25519 keys generated here, no
//! network) over `/v1` and MCP (rmcp), every kind of bad token refused and
//! audited, `ww1` tokens beside JWTs, and a JWKS served over HTTP on
//! loopback: refreshed on an unknown `kid` at a bounded rate, failing closed
//! while it cannot be read.

mod serve_common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use reqwest::StatusCode;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, ServiceExt};
use serde_json::{json, Value};
use serve_common::{TestConfig, TestServer};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct Client;

impl ClientHandler for Client {}

const RESOURCE: &str = "https://mcp.example.test/mcp";
const ISSUER: &str = "https://issuer.example.test";
const METADATA: &str = "https://mcp.example.test/.well-known/oauth-protected-resource/mcp";

/// One of the issuer's signing keys.
struct Key {
    kid: String,
    alg: Algorithm,
    enc: EncodingKey,
    jwk: Value,
    /// The public key as PEM (RSA only): what an alg-confusion attacker uses
    /// as an HMAC secret.
    public_pem: Option<String>,
}

fn finish(kid: &str, alg: Algorithm, enc: EncodingKey, public_pem: Option<String>) -> Key {
    let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&enc, alg).unwrap()).unwrap();
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    Key { kid: kid.into(), alg, enc, jwk, public_pem }
}

fn rsa_key(kid: &str) -> Key {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::EncodePublicKey;
    let private = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap();
    let der = private.to_pkcs1_der().unwrap();
    let pem = private.to_public_key().to_public_key_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    finish(kid, Algorithm::RS256, EncodingKey::from_rsa_der(der.as_bytes()), Some(pem))
}

fn ec_key(kid: &str) -> Key {
    let rng = ring::rand::SystemRandom::new();
    let der = ring::signature::EcdsaKeyPair::generate_pkcs8(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    finish(kid, Algorithm::ES256, EncodingKey::from_ec_der(der.as_ref()), None)
}

fn ed_key(kid: &str) -> Key {
    let mut seed = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed).unwrap();
    // PKCS#8 v1 for an Ed25519 seed (RFC 8410).
    let mut der = hex_bytes("302e020100300506032b657004220420");
    der.extend_from_slice(&seed);
    finish(kid, Algorithm::EdDSA, EncodingKey::from_ed_der(&der), None)
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn jwks(keys: &[&Key]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// Claims a good token for `sub` carries.
fn claims(sub: &str, scope: &str) -> Value {
    json!({"iss": ISSUER, "aud": RESOURCE, "sub": sub, "client_id": "test-client", "scope": scope, "iat": now(), "exp": now() + 600, "jti": sub})
}

fn sign_raw(enc: &EncodingKey, alg: Algorithm, header: &Value, claims: &Value) -> String {
    let msg = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), enc, alg).unwrap();
    format!("{msg}.{sig}")
}

fn jwt(k: &Key, claims: &Value) -> String {
    sign_raw(&k.enc, k.alg, &json!({"alg": format!("{:?}", k.alg), "kid": k.kid, "typ": "at+jwt"}), claims)
}

/// `[server]` and `[server.oauth]` with the scopes the tests use.
fn oauth_toml(jwks_line: &str) -> String {
    format!(
        r#"
[server]
unauthenticated_burst = 500

[server.oauth]
resource = "{RESOURCE}"
issuer = "{ISSUER}"
{jwks_line}
jwks_refresh_interval_secs = 1

[[server.oauth.scopes]]
scope = "tools:text"
functions = ["text.*"]

[[server.oauth.scopes]]
scope = "tools:hostile"
functions = ["hostile.*"]

[[server.oauth.scopes]]
scope = "approvals"
admin = true
"#
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap()
}

async fn post(s: &TestServer, token: Option<&str>, path: &str, body: Value) -> (StatusCode, Option<String>, Value) {
    send(client().post(s.url(path)).json(&body), token).await
}

async fn get(s: &TestServer, token: Option<&str>, path: &str) -> (StatusCode, Option<String>, Value) {
    send(client().get(s.url(path)), token).await
}

/// Sends with the bearer token, if any: the status, `WWW-Authenticate` and the JSON body.
async fn send(mut r: reqwest::RequestBuilder, token: Option<&str>) -> (StatusCode, Option<String>, Value) {
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let st = r.status();
    let h = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    (st, h, r.json().await.unwrap_or(Value::Null))
}

async fn greet(s: &TestServer, token: &str, name: &str) -> (StatusCode, Option<String>, Value) {
    post(s, Some(token), "/v1/tools/text.greet/call", json!({"name": name})).await
}

fn gate_rows(events: &[Value], stage: &str) -> Vec<Value> {
    events.iter().filter(|e| e["kind"] == "gate" && e["stage"] == stage).cloned().collect()
}

#[tokio::test]
async fn metadata_and_challenges_without_a_token() {
    let cfg = TestConfig::new("");
    let k = ec_key("ec-1");
    std::fs::write(cfg.dir.path().join("jwks.json"), jwks(&[&k])).unwrap();
    cfg.rewrite(&oauth_toml("jwks_file = \"jwks.json\""));
    let s = TestServer::start(&cfg);

    let want = json!({
        "resource": RESOURCE,
        "authorization_servers": [ISSUER],
        "scopes_supported": ["tools:text", "tools:hostile", "approvals"],
        "bearer_methods_supported": ["header"],
        "resource_name": "wasmward",
    });
    for path in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"] {
        let (st, _, v) = get(&s, None, path).await;
        assert_eq!((st, v), (StatusCode::OK, want.clone()), "{path}");
    }
    let (st, _, v) = get(&s, None, "/.well-known/oauth-protected-resource/other").await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));

    // No token: 401, the documented body, and where to find the metadata.
    let challenge = format!("Bearer scope=\"tools:text tools:hostile\", resource_metadata=\"{METADATA}\"");
    let (st, h, v) = post(&s, None, "/v1/tools/text.greet/call", json!({"name": "x"})).await;
    assert_eq!((st, h.as_deref(), v["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some(challenge.as_str()), Some("unauthorized")), "{v}");
    let (st, h, _) = get(&s, None, "/v1/tools").await;
    assert_eq!((st, h.as_deref()), (StatusCode::UNAUTHORIZED, Some(challenge.as_str())));
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let r = client().post(s.url("/mcp")).header("accept", "application/json, text/event-stream").json(&init).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers().get("www-authenticate").unwrap().to_str().unwrap(), challenge);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "unauthorized");

    // /healthz shows the keys.
    let (_, _, h) = get(&s, None, "/healthz").await;
    assert_eq!((h["status"].as_str(), h["oauth"]["status"].as_str(), h["oauth"]["keys"].as_u64()), (Some("ok"), Some("ok"), Some(1)), "{h}");
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
    let rows = gate_rows(&cfg.audit_events(), "token");
    assert!(rows.iter().any(|r| r["reason"].as_str().unwrap().contains("[missing_token;")), "{rows:#?}");
}

#[tokio::test]
async fn jwt_callers_list_and_call_over_v1_and_mcp_beside_ww1_tokens() {
    let cfg = TestConfig::new("");
    let (rsa, ec, ed) = (rsa_key("rsa-1"), ec_key("ec-1"), ed_key("ed-1"));
    std::fs::write(cfg.dir.path().join("jwks.json"), jwks(&[&rsa, &ec, &ed])).unwrap();
    cfg.rewrite(&oauth_toml("jwks_file = \"jwks.json\""));
    let (st, out, err) = cfg.cli(&["check"]);
    assert_eq!(st, 0, "{out}{err}");
    assert!(out.contains("[server.oauth] resource https://mcp.example.test/mcp, issuer https://issuer.example.test") && out.contains("3 scope(s)"), "{out}");
    let s = TestServer::start(&cfg);

    // Every key type signs a token the server takes.
    for k in [&rsa, &ec, &ed] {
        let tok = jwt(k, &claims(&format!("user-{}", k.kid), "tools:text"));
        let (st, _, v) = greet(&s, &tok, k.kid.as_str()).await;
        assert_eq!((st, v["result"].as_str()), (StatusCode::OK, Some(format!("Hello, {}!", k.kid).as_str())), "{}: {v}", k.kid);
        let (st, _, v) = get(&s, Some(&tok), "/v1/tools").await;
        assert_eq!(st, StatusCode::OK);
        let names: Vec<&str> = v["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert!(!names.is_empty() && names.iter().all(|n| n.starts_with("text")), "the scope's functions only: {names:?}");
    }

    // A function outside the token's scopes: 403 and the scope that grants it.
    let alice = jwt(&rsa, &claims("alice", "tools:text"));
    let (st, h, v) = post(&s, Some(&alice), "/v1/tools/hostile.loop-forever/call", json!({})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{v}");
    assert_eq!(h.as_deref(), Some(format!("Bearer error=\"insufficient_scope\", scope=\"tools:hostile\", resource_metadata=\"{METADATA}\"").as_str()));
    // The admin endpoint wants the admin scope; a token with it gets in.
    let (st, h, _) = get(&s, Some(&alice), "/v1/admin/approvals").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(h.unwrap().starts_with("Bearer error=\"insufficient_scope\", scope=\"approvals\""));
    let approver = jwt(&ed, &claims("carol", "approvals"));
    let (st, _, v) = get(&s, Some(&approver), "/v1/admin/approvals").await;
    assert_eq!((st, v["pending"].clone()), (StatusCode::OK, json!([])));
    // A token with no scope this server knows may call nothing.
    let nobody = jwt(&ec, &claims("dave", "openid profile"));
    let (st, _, v) = get(&s, Some(&nobody), "/v1/tools").await;
    assert_eq!((st, v["tools"].clone()), (StatusCode::OK, json!([])));
    let (st, h, _) = greet(&s, &nobody, "x").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(h.unwrap().contains("scope=\"tools:text\""));

    // MCP over streamable HTTP with the JWT as the bearer token.
    let mcp_tok = jwt(&ec, &claims("bob", "tools:text"));
    let config = StreamableHttpClientTransportConfig::with_uri(s.url("/mcp")).auth_header(mcp_tok.clone());
    let mcp = Client.serve(StreamableHttpClientTransport::from_config(config)).await.expect("MCP initialize with a JWT");
    let tools = mcp.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name.contains("greet")) && tools.iter().all(|t| t.name.starts_with("text")), "{:?}", tools.iter().map(|t| t.name.to_string()).collect::<Vec<_>>());
    let call = |name: &str, args: Value| {
        let p = CallToolRequestParams::new(name.to_string()).with_arguments(args.as_object().cloned().unwrap_or_default());
        let fut = mcp.call_tool(p);
        async move { tokio::time::timeout(Duration::from_secs(60), fut).await.unwrap().unwrap() }
    };
    let r: CallToolResult = call("text.greet", json!({"name": "mcp"})).await;
    assert_eq!((r.is_error, r.structured_content.clone()), (Some(false), Some(json!({"result": "Hello, mcp!"}))));
    let r = call("nope.x", json!({})).await;
    let text: String = r.content.iter().filter_map(|c| c.as_text()).map(|t| t.text.clone()).collect();
    assert_eq!(r.is_error, Some(true));
    assert!(text.starts_with("unknown_tool: "), "{text}");
    // A function another scope grants: 403 with the scope to ask for, before
    // the session sees it (MCP step-up), in any spelling of its name.
    for name in ["hostile.loop-forever", "hostile__loop-forever"] {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": {}}});
        let r = client().post(s.url("/mcp")).bearer_auth(&mcp_tok).header("accept", "application/json, text/event-stream").json(&body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}");
        let h = r.headers().get("www-authenticate").unwrap().to_str().unwrap().to_string();
        assert_eq!(h, format!("Bearer error=\"insufficient_scope\", scope=\"tools:hostile\", resource_metadata=\"{METADATA}\""));
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "forbidden");
    }
    mcp.cancel().await.unwrap();
    // An MCP client without a token is refused.
    let plain = StreamableHttpClientTransportConfig::with_uri(s.url("/mcp"));
    assert!(Client.serve(StreamableHttpClientTransport::from_config(plain)).await.is_err());

    // A ww1 token works beside the JWTs.
    let legacy = cfg.token("legacy", "hostile.*,text.greet", &[]);
    let (st, _, v) = greet(&s, &legacy, "ww1").await;
    assert_eq!((st, v["result"].as_str()), (StatusCode::OK, Some("Hello, ww1!")));
    let (st, h, _) = post(&s, Some(&legacy), "/v1/tools/text.analysis.word-stats/call", json!({"text": "a"})).await;
    assert_eq!((st, h), (StatusCode::FORBIDDEN, None), "no OAuth challenge for a ww1 token");

    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
    let events = cfg.audit_events();
    let calls: Vec<&Value> = events.iter().filter(|e| e["kind"] == "call" && e["function"] == "text.greet" && e["outcome"] == "ok").collect();
    let callers: Vec<&str> = calls.iter().map(|e| e["caller"].as_str().unwrap()).collect();
    for want in ["user-rsa-1#jwt:user-rsa-1/test-client", "user-ec-1#jwt:user-ec-1/test-client", "user-ed-1#jwt:user-ed-1/test-client", "bob#jwt:bob/test-client"] {
        assert!(callers.contains(&want), "{want} in {callers:?}");
    }
    assert!(callers.iter().any(|c| c.starts_with("legacy#")), "{callers:?}");
    let filter = gate_rows(&events, "filter");
    let denied = |caller: &str, tool: &str| filter.iter().any(|r| r["caller"] == caller && r["tool"] == tool && r["decision"] == "deny");
    assert!(denied("alice#jwt:alice/test-client", "hostile.loop-forever"), "{filter:#?}");
    assert!(denied("bob#jwt:bob/test-client", "hostile.loop-forever"), "{filter:#?}");
    assert!(denied("dave#jwt:dave/test-client", "text.greet"), "{filter:#?}");
    let token = gate_rows(&events, "token");
    assert!(token.iter().any(|r| r["caller"] == "alice#jwt:alice/test-client" && r["reason"].as_str().unwrap().contains("not an admin")), "{token:#?}");
}

#[tokio::test]
async fn bad_jwts_are_refused_with_invalid_token_and_audited() {
    let cfg = TestConfig::new("");
    let (rsa, ec) = (rsa_key("rsa-1"), ec_key("ec-1"));
    let (other_rsa, stranger) = (rsa_key("rsa-1"), ec_key("nobody-knows"));
    std::fs::write(cfg.dir.path().join("jwks.json"), jwks(&[&rsa, &ec])).unwrap();
    cfg.rewrite(&oauth_toml("jwks_file = \"jwks.json\"\nleeway_secs = 5"));
    let s = TestServer::start(&cfg);
    let good = claims("mallory", "tools:text tools:hostile approvals");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        c
    };
    let body = |c: &Value| B64.encode(c.to_string());
    let hs_secret = EncodingKey::from_secret(rsa.public_pem.as_ref().unwrap().as_bytes()).unwrap();
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("wrong audience", jwt(&rsa, &with(&|c| c["aud"] = json!("https://other.example.test/mcp"))), "jwt_wrong_audience", "does not include this server"),
        ("wrong issuer", jwt(&rsa, &with(&|c| c["iss"] = json!("https://evil.example.test"))), "jwt_wrong_issuer", "is not the configured issuer"),
        ("expired", jwt(&ec, &with(&|c| c["exp"] = json!(now() - 60))), "jwt_expired", "expired at"),
        ("not yet valid", jwt(&ec, &with(&|c| c["nbf"] = json!(now() + 600))), "jwt_not_yet_valid", "not valid before"),
        ("bad signature", jwt(&other_rsa, &good), "jwt_bad_signature", "signature is invalid"),
        ("alg none", format!("{}.{}.", B64.encode(json!({"alg": "none", "kid": "rsa-1"}).to_string()), body(&good)), "jwt_algorithm", "\"none\" is not accepted"),
        ("HS256 with the RSA public key", sign_raw(&hs_secret, Algorithm::HS256, &json!({"alg": "HS256", "kid": "rsa-1"}), &good), "jwt_algorithm", "\"HS256\" is not accepted"),
        ("RS256 header on the EC key", sign_raw(&rsa.enc, Algorithm::RS256, &json!({"alg": "RS256", "kid": "ec-1"}), &good), "jwt_algorithm", "verifies ES256 only"),
        ("unknown kid", jwt(&stranger, &good), "jwt_unknown_key", "no key with kid \"nobody-knows\""),
        ("string exp", jwt(&ec, &with(&|c| c["exp"] = json!("99999999999"))), "jwt_malformed", "claims"),
        ("not a JWT", "eyJhbGciOi.nope.nope".to_string(), "jwt_malformed", "malformed access token"),
    ];
    for (what, tok, reason, needle) in &cases {
        let (st, h, v) = greet(&s, tok, "x").await;
        assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")), "{what}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{what}: {msg}");
        let h = h.unwrap_or_default();
        assert!(h.starts_with("Bearer error=\"invalid_token\", error_description=\"") && h.ends_with(&format!("resource_metadata=\"{METADATA}\"")), "{what}: {h}");
        // Nor does MCP take it.
        let r = client().post(s.url("/mcp")).bearer_auth(tok).header("accept", "application/json, text/event-stream").json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what} over MCP");
        let _ = reason;
    }
    // The same token, untouched, is fine.
    let (st, _, v) = greet(&s, &jwt(&rsa, &good), "ok").await;
    assert_eq!(st, StatusCode::OK, "{v}");

    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
    // Per reason: a row for the first refusal (its message), then one row
    // counting the rest; every refusal (over /v1 and MCP) is accounted for.
    let rows = gate_rows(&cfg.audit_events(), "token");
    let mut reasons: Vec<&str> = cases.iter().map(|c| c.2).collect();
    reasons.dedup();
    for reason in reasons {
        let (what, _, _, needle) = cases.iter().find(|c| c.2 == reason).unwrap();
        let first: Vec<&Value> = rows.iter().filter(|r| r["reason"].as_str().unwrap().contains(&format!("[{reason};"))).collect();
        assert_eq!(first.len(), 1, "{what}: {rows:#?}");
        assert_eq!((first[0]["decision"].as_str(), first[0]["caller"].as_str()), (Some("deny"), Some("anonymous@127.0.0.1")), "{what}");
        assert!(first[0]["reason"].as_str().unwrap().contains(needle), "{what}: {}", first[0]);
        let more: u64 = rows
            .iter()
            .filter_map(|r| r["reason"].as_str().unwrap().strip_prefix("count=").filter(|rest| rest.contains(&format!("[{reason}]"))))
            .map(|rest| rest.split(':').next().unwrap().parse::<u64>().unwrap())
            .sum();
        let sent = 2 * cases.iter().filter(|c| c.2 == reason).count() as u64;
        assert_eq!(1 + more, sent, "{reason}: every refusal counted: {rows:#?}");
    }
}

/// A JWKS endpoint on loopback whose answer the test sets.
#[derive(Clone)]
struct JwksServer {
    answer: Arc<Mutex<(u16, String)>>,
    fetches: Arc<AtomicUsize>,
}

async fn jwks_server() -> (JwksServer, String) {
    let st = JwksServer { answer: Arc::new(Mutex::new((500, "down".into()))), fetches: Arc::default() };
    let handler = {
        let st = st.clone();
        move || {
            let st = st.clone();
            async move {
                st.fetches.fetch_add(1, Ordering::SeqCst);
                let (code, body) = st.answer.lock().unwrap().clone();
                (axum::http::StatusCode::from_u16(code).unwrap(), [("content-type", "application/json")], body)
            }
        }
    };
    let app = axum::Router::new().route("/jwks.json", axum::routing::get(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (st, url)
}

// Multi-threaded: the JWKS server must answer while the test thread blocks
// (starting the server, `wasmward token issue`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_url_on_loopback_fails_closed_then_refreshes_on_a_new_kid_at_a_bounded_rate() {
    let (jwks_srv, url) = jwks_server().await;
    let (k1, k2) = (ec_key("k1"), ed_key("k2"));
    let cfg = TestConfig::new("");
    cfg.rewrite(&oauth_toml(&format!("jwks_url = \"{url}\"")));
    let s = TestServer::start(&cfg);

    // The JWKS cannot be read: JWTs are refused (503), ww1 tokens still work.
    let t1 = jwt(&k1, &claims("erin", "tools:text"));
    let (st, _, v) = greet(&s, &t1, "x").await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("oauth_unavailable")), "{v}");
    let (_, _, h) = get(&s, None, "/healthz").await;
    assert_eq!(h["oauth"]["status"], "jwks_unavailable", "{h}");
    assert!(h["oauth"]["jwks_error"].as_str().unwrap().contains("500"), "{h}");
    let legacy = cfg.token("legacy", "text.*", &[]);
    assert_eq!(greet(&s, &legacy, "x").await.0, StatusCode::OK);

    // It comes back: the next JWT after the refresh interval reads it.
    *jwks_srv.answer.lock().unwrap() = (200, jwks(&[&k1]));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (st, _, v) = greet(&s, &t1, "back").await;
    assert_eq!((st, v["result"].as_str()), (StatusCode::OK, Some("Hello, back!")), "{v}");
    let (_, _, h) = get(&s, None, "/healthz").await;
    assert_eq!((h["oauth"]["status"].as_str(), h["oauth"]["keys"].as_u64(), h["oauth"]["jwks_error"].clone()), (Some("ok"), Some(1), Value::Null), "{h}");

    // The issuer rotates in a new key: a token with its kid re-reads the JWKS.
    *jwks_srv.answer.lock().unwrap() = (200, jwks(&[&k1, &k2]));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let t2 = jwt(&k2, &claims("frank", "tools:text"));
    let (st, _, v) = greet(&s, &t2, "rotated").await;
    assert_eq!((st, v["result"].as_str()), (StatusCode::OK, Some("Hello, rotated!")), "{v}");

    // A flood of unknown kids does not become a flood of fetches.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let before = jwks_srv.fetches.load(Ordering::SeqCst);
    let stranger = ec_key("k3");
    let t3 = jwt(&stranger, &claims("grace", "tools:text"));
    let started = std::time::Instant::now();
    for _ in 0..30 {
        let (st, h, _) = greet(&s, &t3, "x").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        assert!(h.unwrap().starts_with("Bearer error=\"invalid_token\""));
    }
    let fetched = jwks_srv.fetches.load(Ordering::SeqCst) - before;
    let allowed = 1 + started.elapsed().as_secs() as usize + 1;
    assert!(fetched >= 1 && fetched <= allowed, "{fetched} fetches for 30 unknown-kid tokens in {:?} (at most one per second)", started.elapsed());

    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
    let rows = gate_rows(&cfg.audit_events(), "token");
    for reason in ["[jwt_keys_unavailable;", "[jwt_unknown_key;"] {
        assert!(rows.iter().any(|r| r["reason"].as_str().unwrap().contains(reason)), "{reason}: {rows:#?}");
    }
}

#[tokio::test]
async fn check_refuses_a_bad_oauth_section_naming_the_key() {
    let cfg = TestConfig::new("");
    let k = ec_key("a");
    std::fs::write(cfg.dir.path().join("jwks.json"), jwks(&[&k])).unwrap();
    std::fs::write(cfg.dir.path().join("hmac.json"), json!({"keys": [{"kty": "oct", "k": B64.encode([1u8; 32])}]}).to_string()).unwrap();
    let cases = [
        ("jwks_file = \"hmac.json\"", "[server.oauth] jwks_file = \"hmac.json\""),
        ("jwks_file = \"missing.json\"", "cannot read"),
        ("jwks_url = \"http://auth.example.test/jwks\"", "jwks_url = \"http://auth.example.test/jwks\" is plain HTTP"),
        ("jwks_file = \"jwks.json\"\njwks_url = \"https://auth.example.test/jwks\"", "both jwks_file and jwks_url"),
        ("jwks_file = \"jwks.json\"\naudience = \"x\"", "unknown field `audience`"),
    ];
    for (line, needle) in cases {
        cfg.rewrite(&oauth_toml(line));
        let (st, out, err) = cfg.cli(&["check"]);
        assert_ne!(st, 0, "{line}: {out}");
        assert!(err.contains(needle), "{line}: {err}");
    }
}

#[tokio::test]
async fn rate_limits_key_a_jwt_caller_by_subject_and_client_not_by_token() {
    let cfg = TestConfig::new("");
    let k = ec_key("ec-1");
    std::fs::write(cfg.dir.path().join("jwks.json"), jwks(&[&k])).unwrap();
    cfg.rewrite(&format!("{}\n[gate]\nrequests_per_minute = 1\nburst_size = 2\n", oauth_toml("jwks_file = \"jwks.json\"")));
    let s = TestServer::start(&cfg);
    let first = jwt(&k, &claims("alice", "tools:text"));
    for _ in 0..2 {
        assert_eq!(greet(&s, &first, "x").await.0, StatusCode::OK);
    }
    // A freshly minted token (new jti, iat) for the same subject and client
    // draws from the same bucket.
    let mut again = claims("alice", "tools:text");
    again["jti"] = json!("another");
    again["iat"] = json!(now() - 1);
    let (st, _, v) = greet(&s, &jwt(&k, &again), "x").await;
    assert_eq!((st, v["error"]["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")), "{v}");
    // Another subject has its own bucket.
    assert_eq!(greet(&s, &jwt(&k, &claims("bob", "tools:text")), "x").await.0, StatusCode::OK);
    let (code, log) = s.stop();
    assert_eq!(code, Some(0), "{log}");
    let rows = gate_rows(&cfg.audit_events(), "rate_limit");
    assert!(rows.iter().any(|r| r["caller"] == "alice#jwt:alice/test-client" && r["tool"] == "text.greet"), "{rows:#?}");
}
