//! `wasmward token issue|revoke|list` and `wasmward approve list|allow|deny`.
//! Approvals go through the running server's admin endpoint; without
//! `--token` (or `WASMWARD_ADMIN_TOKEN`) a 5-minute admin token is minted
//! with the key named by the config, so holding the key is what makes one
//! an approver.

use crate::cli::{usage, Failure};
use crate::config::Config;
use crate::gate::tokens::{now_secs, parse_ttl};
use crate::gate::TokenKey;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Subcommand, Debug)]
pub enum TokenAction {
    /// Issue a signed bearer token and print it (only once: it is not stored).
    Issue {
        #[arg(long, default_value = "wasmward.toml")]
        config: PathBuf,
        /// Who holds it (appears in the audit log).
        #[arg(long)]
        name: String,
        /// Comma-separated glob patterns over function names, e.g. 'text.*,fetch.get'.
        #[arg(long, default_value = "*")]
        tools: String,
        /// Lifetime: 90s, 15m, 1h, 7d.
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// May decide approvals over the admin endpoint.
        #[arg(long)]
        admin: bool,
        /// Print the claims as JSON with the token.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id; running servers refuse it from the next request.
    Revoke {
        #[arg(long, default_value = "wasmward.toml")]
        config: PathBuf,
        id: String,
    },
    /// List issued tokens (claims only).
    List {
        #[arg(long, default_value = "wasmward.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct AdminArgs {
    #[arg(long, default_value = "wasmward.toml")]
    pub config: PathBuf,
    /// Server base URL (default: http://<[server] listen>).
    #[arg(long)]
    pub url: Option<String>,
    /// Admin token (default: minted from the config's token key).
    #[arg(long, env = "WASMWARD_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum ApproveAction {
    /// Show calls waiting for approval.
    List {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        json: bool,
    },
    /// Let a pending call run.
    Allow {
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Refuse a pending call.
    Deny {
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

fn key_for(config: &Path) -> Result<(Config, TokenKey), Failure> {
    let cfg = Config::load(config).map_err(usage)?;
    let key = TokenKey::open_or_create(&cfg.resolve_path(&cfg.gate.token_key)).map_err(usage)?;
    Ok((cfg, key))
}

pub fn token(action: TokenAction) -> Result<(), Failure> {
    match action {
        TokenAction::Issue { config, name, tools, ttl, admin, json } => {
            if name.trim().is_empty() || name.len() > 128 {
                return Err(usage("--name must be 1-128 characters"));
            }
            let ttl = parse_ttl(&ttl).map_err(usage)?;
            let scopes: Vec<String> = tools.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
            for (i, s) in scopes.iter().enumerate() {
                crate::gate::filter::validate_pattern(s).map_err(|m| usage(format!("--tools pattern #{} {s:?}: {m}", i + 1)))?;
            }
            let (_, key) = key_for(&config)?;
            let (tok, claims) = key.issue(&name, scopes, ttl, admin).map_err(usage)?;
            if json {
                println!("{}", json!({"token": tok, "claims": claims}));
            } else {
                println!("{tok}");
                eprintln!("token {} for {:?}: tools {:?}{}, expires in {} s", claims.id, claims.name, claims.tools, if admin { ", admin" } else { "" }, ttl);
            }
            Ok(())
        }
        TokenAction::Revoke { config, id } => {
            let (_, key) = key_for(&config)?;
            let known = key.list().map_err(usage)?.iter().any(|(c, _)| c.id == id);
            key.revoke(&id).map_err(usage)?;
            if !known {
                eprintln!("warning: no token with id {id} was issued with this key; revoked anyway");
            }
            eprintln!("revoked {id}");
            Ok(())
        }
        TokenAction::List { config, json } => {
            let (_, key) = key_for(&config)?;
            let now = now_secs();
            let rows: Vec<Value> = key
                .list()
                .map_err(usage)?
                .into_iter()
                .map(|(c, revoked)| {
                    let state = if revoked { "revoked" } else if now >= c.exp { "expired" } else { "active" };
                    json!({"id": c.id, "name": c.name, "tools": c.tools, "admin": c.admin, "iat": c.iat, "exp": c.exp, "state": state})
                })
                .collect();
            if json {
                println!("{}", Value::Array(rows));
            } else {
                for r in rows {
                    println!("{}  {:8}  {}  tools {}{}", r["id"].as_str().unwrap_or(""), r["state"].as_str().unwrap_or(""), r["name"].as_str().unwrap_or(""), r["tools"], if r["admin"] == true { "  admin" } else { "" });
                }
            }
            Ok(())
        }
    }
}

pub async fn approve(action: ApproveAction) -> Result<(), Failure> {
    let (admin, method, path) = match &action {
        ApproveAction::List { admin, .. } => (admin, "GET", "/v1/admin/approvals".to_string()),
        ApproveAction::Allow { id, admin } => (admin, "POST", format!("/v1/admin/approvals/{id}/allow")),
        ApproveAction::Deny { id, admin } => (admin, "POST", format!("/v1/admin/approvals/{id}/deny")),
    };
    let (cfg, key) = key_for(&admin.config)?;
    let token = match &admin.token {
        Some(t) => t.clone(),
        None => key.issue(&format!("approve-cli@{}", whoami()), vec![], 300, true).map_err(usage)?.0,
    };
    let url = admin.url.clone().unwrap_or_else(|| format!("http://{}", cfg.server.listen));
    let (status, body) = http_request(&url, method, &path, &token).await.map_err(|m| Failure { status: 1, message: m })?;
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::String(body.clone()));
    if !(200..300).contains(&status) {
        let msg = v["error"]["message"].as_str().map(String::from).unwrap_or(body);
        return Err(Failure { status: 1, message: format!("{url}{path}: HTTP {status}: {msg}") });
    }
    match action {
        ApproveAction::List { json: true, .. } => println!("{v}"),
        ApproveAction::List { .. } => {
            let pending = v["pending"].as_array().cloned().unwrap_or_default();
            if pending.is_empty() {
                eprintln!("no calls pending approval");
            }
            for p in pending {
                for line in pending_lines(&p) {
                    println!("{line}");
                }
            }
        }
        _ => println!("{} {} ({})", v["decision"].as_str().unwrap_or(""), v["decided"]["id"].as_str().unwrap_or(""), v["decided"]["tool"].as_str().unwrap_or("")),
    }
    Ok(())
}

/// One pending call for a person to decide: what, who, why, the
/// (redacted) arguments, the function's description and its policy.
fn pending_lines(p: &Value) -> Vec<String> {
    let s = |k: &str| p[k].as_str().unwrap_or("").to_string();
    let left = p["expires_ms"].as_u64().unwrap_or(0).saturating_sub(super::now_ms()).div_ceil(1000);
    let mut out = vec![format!("{}  {}  caller {}  ({} s left)", s("id"), s("tool"), s("caller"), left), format!("  why:       {}", s("reason"))];
    if let Some(d) = p["description"].as_str() {
        let mut lines = d.lines();
        out.push(format!("  does:      {}", lines.next().unwrap_or("")));
        out.extend(lines.map(|l| format!("             {l}")));
    }
    let args = serde_json::to_string_pretty(&p["arguments"]).unwrap_or_default();
    let mut args = args.lines();
    out.push(format!("  arguments: {}", args.next().unwrap_or("")));
    out.extend(args.map(|l| format!("             {l}")));
    if let Ok(policy) = serde_json::from_value::<crate::gate::PolicySummary>(p["policy"].clone()) {
        out.extend(policy.lines().into_iter().map(|l| format!("  policy {l}")));
    }
    out.push(format!("  decide:    wasmward approve allow {id}   |   wasmward approve deny {id}", id = s("id")));
    out
}

fn whoami() -> String {
    std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "operator".into())
}

/// A minimal HTTP/1.1 client for the admin endpoint (plain http; put the
/// admin endpoint on loopback or behind your TLS proxy).
async fn http_request(url: &str, method: &str, path: &str, token: &str) -> Result<(u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("--url {url:?}: only http:// URLs are supported by this client"))?;
    let (authority, prefix) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let prefix = prefix.trim_end_matches('/');
    let full_path = if prefix.is_empty() { path.to_string() } else { format!("/{prefix}{path}") };
    let mut stream = tokio::time::timeout(std::time::Duration::from_secs(10), tokio::net::TcpStream::connect(authority))
        .await
        .map_err(|_| format!("connecting to {authority} timed out"))?
        .map_err(|e| format!("cannot connect to {authority}: {e}; is `wasmward serve` running there? (--url)"))?;
    let req = format!("{method} {full_path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.map_err(|e| format!("sending to {authority}: {e}"))?;
    let mut raw = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .map_err(|_| "the server did not answer within 30 s".to_string())?
        .map_err(|e| format!("reading from {authority}: {e}"))?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<(u16, String), String> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("malformed HTTP response (no header end)")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status: u16 = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("malformed HTTP status line")?;
    let body = &raw[split + 4..];
    let chunked = head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.to_ascii_lowercase().contains("chunked"));
    let body = if chunked { dechunk(body)? } else { body.to_vec() };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n").ok_or("malformed chunked body")?;
        let size_str = String::from_utf8_lossy(&b[..line_end]);
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16).map_err(|_| "malformed chunk size")?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 {
            return Err("truncated chunked body".into());
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        let (s, b) = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((s, b.as_str()), (200, "{}"));
        let (s, b) = parse_response(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!((s, b.as_str()), (404, "abcde"));
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nab").is_err());
    }
}
