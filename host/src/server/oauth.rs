//! OAuth 2.1 resource server, as the MCP authorization spec asks of a
//! streamable HTTP server: JWT access tokens from one configured issuer,
//! beside the `ww1` tokens.
//!
//! - `/.well-known/oauth-protected-resource` (RFC 9728, also under the
//!   resource's path) names the resource and its authorization server;
//! - a 401 carries `WWW-Authenticate: Bearer resource_metadata="…"` (and
//!   `error="invalid_token"` for a bad token), a 403 for a function outside
//!   the token's scopes `error="insufficient_scope", scope="…"` (RFC 6750);
//! - a JWT is checked against the issuer's JWKS (a file or an HTTPS URL,
//!   cached, re-read on an unknown `kid` at most once per
//!   `jwks_refresh_interval_secs`): the algorithm is the key's (pinned when
//!   the key is loaded; `none` and HMAC are never accepted), then the
//!   signature, then `iss`, `aud` (this resource), `exp`, `nbf`, `iat` with
//!   `leeway_secs`;
//! - the token's scopes map to function patterns (`[[server.oauth.scopes]]`),
//!   so a JWT caller is a [`Caller`] with the scope semantics of a `ww1`
//!   token: filters, rate limits, sessions and audit rows all apply.

use super::Server;
use crate::gate::filter::{glob_match, validate_pattern};
use crate::gate::{Caller, TokenError};
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::{IntoResponse as _, Response};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Tokens longer than this are refused unparsed.
const MAX_JWT_LEN: usize = 16 * 1024;
/// Largest JWKS document read (file or URL).
const MAX_JWKS_BYTES: usize = 1 << 20;
/// How long one JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Smallest RSA modulus accepted in a JWKS, in bytes (2048 bits).
const MIN_RSA_BYTES: usize = 256;
/// Longest `sub` / `client_id` kept for the caller's name.
const MAX_NAME: usize = 128;

/// `[server.oauth]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// This server's canonical URL (e.g. `https://mcp.example.com/mcp`):
    /// the `resource` in the metadata and the audience tokens must carry.
    pub resource: String,
    /// The authorization server: tokens' `iss`, and the metadata's
    /// `authorization_servers`.
    pub issuer: String,
    /// The issuer's public keys as a JWKS file (relative to the config file).
    pub jwks_file: Option<PathBuf>,
    /// The issuer's JWKS URL (`https://`; `http://` only on loopback).
    pub jwks_url: Option<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// The JWKS is re-read (an unknown `kid`, keys past their age) at most
    /// this often.
    #[serde(default = "default_refresh")]
    pub jwks_refresh_interval_secs: u64,
    /// Keys older than this are re-read before use; if that fails they are
    /// dropped (JWTs are refused until the JWKS can be read again).
    #[serde(default = "default_max_age")]
    pub jwks_max_age_secs: u64,
    /// What each scope grants.
    #[serde(default)]
    pub scopes: Vec<ScopeConfig>,
}

/// `[[server.oauth.scopes]]`: a scope and the functions it grants.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeConfig {
    pub scope: String,
    /// Glob patterns over canonical function names, as token `--tools`.
    #[serde(default)]
    pub functions: Vec<String>,
    /// Grants the admin endpoints (approvals), as `token issue --admin`.
    #[serde(default)]
    pub admin: bool,
}

fn default_leeway() -> u64 {
    30
}

fn default_refresh() -> u64 {
    30
}

fn default_max_age() -> u64 {
    3600
}

/// An `https://` URL, or `http://` to a loopback host.
fn check_url(key: &str, url: &str, what: &str) -> Result<http::Uri, String> {
    let bad = |why: &str| format!("[server.oauth] {key} = {url:?} {why}; write {what}");
    if url.contains('#') {
        return Err(bad("has a fragment"));
    }
    let uri: http::Uri = url.parse().map_err(|e| bad(&format!("is not a URL ({e})")))?;
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| bad("has no host"))?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(host) => Ok(uri),
        Some("http") => Err(bad("is plain HTTP to a host that is not loopback (only 127.0.0.0/8, ::1 and localhost may use http://)")),
        _ => Err(bad("is not an absolute https:// URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// RFC 6749 `scope-token`: printable ASCII but space, `"` and `\`.
fn valid_scope_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

impl OAuthConfig {
    /// Every check but reading the JWKS: URLs, ranges, scopes.
    pub fn validate(&self) -> Result<(), String> {
        check_url("resource", &self.resource, "this server's canonical URL, e.g. \"https://mcp.example.com/mcp\"")?;
        check_url("issuer", &self.issuer, "the authorization server's issuer URL, e.g. \"https://auth.example.com\"")?;
        match (&self.jwks_file, &self.jwks_url) {
            (Some(_), Some(_)) => return Err("[server.oauth] has both jwks_file and jwks_url; keep one".into()),
            (None, None) => {
                return Err("[server.oauth] needs the issuer's keys: set jwks_url = \"https://…/jwks.json\" or jwks_file = \"issuer-jwks.json\"".into())
            }
            (None, Some(u)) => {
                check_url("jwks_url", u, "the issuer's JWKS URL, e.g. \"https://auth.example.com/.well-known/jwks.json\"")?;
            }
            (Some(_), None) => {}
        }
        if self.leeway_secs > 300 {
            return Err(format!("[server.oauth] leeway_secs = {} is out of range; use 0..=300 (clock skew, in seconds)", self.leeway_secs));
        }
        if self.jwks_refresh_interval_secs == 0 || self.jwks_refresh_interval_secs > 86_400 {
            return Err(format!("[server.oauth] jwks_refresh_interval_secs = {} is out of range; use 1..=86400", self.jwks_refresh_interval_secs));
        }
        if self.jwks_max_age_secs < self.jwks_refresh_interval_secs || self.jwks_max_age_secs > 7 * 86_400 {
            return Err(format!(
                "[server.oauth] jwks_max_age_secs = {} is out of range; use {}..=604800 (at least jwks_refresh_interval_secs)",
                self.jwks_max_age_secs, self.jwks_refresh_interval_secs
            ));
        }
        if self.scopes.is_empty() {
            return Err("[server.oauth] grants nothing: add [[server.oauth.scopes]] entries, e.g. scope = \"tools:text\" with functions = [\"text.*\"]".into());
        }
        let mut seen = std::collections::HashSet::new();
        for (i, s) in self.scopes.iter().enumerate() {
            let at = format!("[[server.oauth.scopes]] #{} (scope = {:?})", i + 1, s.scope);
            if !valid_scope_token(&s.scope) {
                return Err(format!("{at}: scope must be 1-128 printable ASCII characters without spaces, quotes or backslashes, e.g. \"tools:text\""));
            }
            if !seen.insert(s.scope.as_str()) {
                return Err(format!("{at}: duplicate scope; merge the entries"));
            }
            if s.functions.is_empty() && !s.admin {
                return Err(format!("{at}: grants nothing; add functions = [\"tool.*\"] or admin = true"));
            }
            for (j, p) in s.functions.iter().enumerate() {
                validate_pattern(p).map_err(|m| format!("{at}: functions[{j}] = {p:?}: {m}"))?;
            }
        }
        Ok(())
    }

    /// [`OAuthConfig::validate`], then the JWKS file (if that is the
    /// source) is read and must hold at least one usable key.
    pub fn check(&self, base_dir: &Path) -> Result<(), String> {
        self.validate()?;
        if let Some(f) = &self.jwks_file {
            let path = resolve(base_dir, f);
            let keys = read_jwks_file(&path).map_err(|m| format!("[server.oauth] jwks_file = {:?}: {m}", f.display().to_string()))?;
            for note in &keys.skipped {
                tracing::warn!(file = %path.display(), "[server.oauth] jwks_file: {note}");
            }
        }
        Ok(())
    }

    /// The URL of this resource's metadata: the well-known path, then the
    /// resource's own path (RFC 9728 section 3.1).
    pub fn metadata_url(&self) -> String {
        let uri: http::Uri = self.resource.parse().expect("validated");
        let origin = format!("{}://{}", uri.scheme_str().unwrap_or("https"), uri.authority().map(|a| a.as_str()).unwrap_or(""));
        format!("{origin}/.well-known/oauth-protected-resource{}", self.resource_path())
    }

    /// The resource's path without a trailing `/` (`""` for the root).
    pub fn resource_path(&self) -> String {
        let uri: http::Uri = self.resource.parse().expect("validated");
        uri.path().trim_end_matches('/').to_string()
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// A verification key from the JWKS, its algorithm pinned.
pub struct VerifyKey {
    pub kid: Option<String>,
    pub alg: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyKey({:?}, {:?})", self.kid, self.alg)
    }
}

/// The keys of a JWKS document, and notes on the entries left out.
#[derive(Debug)]
pub struct KeySet {
    pub keys: Vec<VerifyKey>,
    pub skipped: Vec<String>,
}

/// The algorithm a JWK verifies, from its type, curve and `alg`: an `alg`
/// that does not fit the key leaves it out, and so does a symmetric key.
fn pin_algorithm(jwk: &Jwk) -> Result<Algorithm, String> {
    let declared = match jwk.common.key_algorithm {
        Some(a) => Some(Algorithm::try_from(a).map_err(|_| format!("alg {a} is not a signature algorithm"))?),
        None => None,
    };
    let allowed: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let modulus = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, p.n.trim_end_matches('='))
                .map_err(|_| "RSA n is not base64url".to_string())?;
            let bytes = modulus.iter().skip_while(|b| **b == 0).count();
            if bytes < MIN_RSA_BYTES {
                return Err(format!("RSA key of {} bits; at least 2048 are required", bytes * 8));
            }
            &[Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::PS384, Algorithm::PS512]
        }
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            ref c => return Err(format!("EC curve {c:?} is not supported (P-256 and P-384 are)")),
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
            ref c => return Err(format!("OKP curve {c:?} is not supported (Ed25519 is)")),
        },
        AlgorithmParameters::OctetKey(_) => return Err("symmetric (kty oct) keys are never accepted: a resource server must not hold the issuer's signing secret".into()),
        AlgorithmParameters::Other(p) => {
            let field = |k: &str| p.fields.get(k).map(Value::to_string).unwrap_or_else(|| "(none)".into());
            return Err(format!("unsupported key (kty {}, crv {}); RSA, EC P-256/P-384 and OKP Ed25519 keys are read", field("kty"), field("crv")));
        }
        _ => return Err("unsupported key parameters".into()),
    };
    match declared {
        Some(a) if allowed.contains(&a) => Ok(a),
        Some(a) => Err(format!("alg {a:?} does not fit the key type")),
        None => Ok(allowed[0]),
    }
}

/// Parses a JWKS document. Entries that cannot verify signatures are left
/// out with a note; a document without a usable key is an error.
pub fn parse_jwks(bytes: &[u8]) -> Result<KeySet, String> {
    #[derive(Deserialize)]
    struct Doc {
        keys: Vec<Value>,
    }
    let doc: Doc = serde_json::from_slice(bytes).map_err(|e| format!("not a JWKS document ({e}); expected {{\"keys\": [...]}}"))?;
    let mut out = KeySet { keys: Vec::new(), skipped: Vec::new() };
    for (i, v) in doc.keys.into_iter().enumerate() {
        let kid = v.get("kid").and_then(Value::as_str).map(str::to_string);
        let name = format!("keys[{i}]{}", kid.as_deref().map(|k| format!(" (kid {k:?})")).unwrap_or_default());
        let jwk: Jwk = match serde_json::from_value(v) {
            Ok(j) => j,
            Err(e) => {
                out.skipped.push(format!("{name} left out: not a JWK this server reads ({e})"));
                continue;
            }
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption) | Some(PublicKeyUse::Other(_))) {
            out.skipped.push(format!("{name} left out: its use is not \"sig\""));
            continue;
        }
        if jwk.common.key_operations.as_ref().is_some_and(|ops| !ops.contains(&KeyOperations::Verify)) {
            out.skipped.push(format!("{name} left out: key_ops does not include \"verify\""));
            continue;
        }
        let alg = match pin_algorithm(&jwk) {
            Ok(a) => a,
            Err(m) => {
                out.skipped.push(format!("{name} left out: {m}"));
                continue;
            }
        };
        if kid.is_some() && out.keys.iter().any(|k| k.kid == kid) {
            out.skipped.push(format!("{name} left out: a key with this kid came earlier"));
            continue;
        }
        match DecodingKey::from_jwk(&jwk) {
            Ok(key) => out.keys.push(VerifyKey { kid, alg, key }),
            Err(e) => out.skipped.push(format!("{name} left out: {e}")),
        }
    }
    if out.keys.is_empty() {
        let why = if out.skipped.is_empty() { "it has no keys".to_string() } else { out.skipped.join("; ") };
        return Err(format!("no usable signing key: {why}"));
    }
    Ok(out)
}

fn read_jwks_file(path: &Path) -> Result<KeySet, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}; fix the path (relative to the config file)", path.display()))?;
    if meta.len() > MAX_JWKS_BYTES as u64 {
        return Err(format!("{} is {} bytes, over the {MAX_JWKS_BYTES}-byte limit for a JWKS", path.display(), meta.len()));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_jwks(&bytes).map_err(|m| format!("{}: {m}", path.display()))
}

/// `aud` is a string or an array of strings (RFC 7519).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn iter(&self) -> impl Iterator<Item = &str> {
        let v: Vec<&str> = match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        };
        v.into_iter()
    }
}

/// The claims read from an access token. Types are strict: a claim of the
/// wrong JSON type makes the whole token malformed (never "absent").
#[derive(Debug, Clone, Deserialize)]
pub struct JwtClaims {
    pub iss: Option<String>,
    pub aud: Option<OneOrMany>,
    pub exp: Option<f64>,
    pub nbf: Option<f64>,
    pub iat: Option<f64>,
    pub sub: Option<String>,
    pub client_id: Option<String>,
    /// RFC 8693 / 9068: space-separated.
    pub scope: Option<String>,
    /// A common alternative spelling (string or array).
    pub scp: Option<OneOrMany>,
}

impl JwtClaims {
    /// Every scope the token carries.
    pub fn scopes(&self) -> Vec<String> {
        let mut out: Vec<String> = self.scope.iter().flat_map(|s| s.split_ascii_whitespace()).map(str::to_string).collect();
        if let Some(scp) = &self.scp {
            out.extend(scp.iter().flat_map(|s| s.split_ascii_whitespace()).map(str::to_string));
        }
        out.sort();
        out.dedup();
        out
    }
}

/// Why a JWT was refused. `Display` is safe to show the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed access token: {0}")]
    Malformed(String),
    #[error("access token algorithm refused: {0}")]
    Algorithm(String),
    #[error("access token key unknown: {0}")]
    UnknownKey(String),
    #[error("access token signature is invalid (forged, altered, or signed with another key)")]
    BadSignature,
    #[error("access token issuer {got:?} is not the configured issuer {want:?}")]
    Issuer { got: String, want: String },
    #[error("access token audience {got:?} does not include this server ({want:?}); request the token with resource={want}")]
    Audience { got: String, want: String },
    #[error("access token expired at {exp} (unix seconds); get a new one")]
    Expired { exp: u64 },
    #[error("access token is not valid before {nbf} (unix seconds)")]
    NotYetValid { nbf: u64 },
    #[error("access token was issued in the future (iat {iat}); check the clocks")]
    IssuedInFuture { iat: u64 },
    #[error("the issuer's keys are unavailable ({0}); JWT access tokens are refused until they can be read")]
    KeysUnavailable(String),
}

impl JwtError {
    /// The stable reason key (audit rows, unauthenticated counters).
    pub fn reason(&self) -> &'static str {
        match self {
            JwtError::Malformed(_) => "jwt_malformed",
            JwtError::Algorithm(_) => "jwt_algorithm",
            JwtError::UnknownKey(_) => "jwt_unknown_key",
            JwtError::BadSignature => "jwt_bad_signature",
            JwtError::Issuer { .. } => "jwt_wrong_issuer",
            JwtError::Audience { .. } => "jwt_wrong_audience",
            JwtError::Expired { .. } => "jwt_expired",
            JwtError::NotYetValid { .. } | JwtError::IssuedInFuture { .. } => "jwt_not_yet_valid",
            JwtError::KeysUnavailable(_) => "jwt_keys_unavailable",
        }
    }
}

impl From<JwtError> for TokenError {
    fn from(e: JwtError) -> TokenError {
        TokenError::Jwt { reason: e.reason(), message: e.to_string() }
    }
}

fn secs(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        v.min(u64::MAX as f64) as u64
    } else {
        0
    }
}

/// The claim checks, after the signature: `iss`, `aud`, `exp`, `nbf`,
/// `iat`, and a caller name (`sub` or `client_id`). `now` in unix seconds.
pub fn check_claims(c: &JwtClaims, cfg: &OAuthConfig, now: u64) -> Result<(), JwtError> {
    let leeway = cfg.leeway_secs;
    match &c.iss {
        Some(iss) if *iss == cfg.issuer => {}
        Some(iss) => return Err(JwtError::Issuer { got: crate::server::names::cap(iss, 200), want: cfg.issuer.clone() }),
        None => return Err(JwtError::Malformed("no iss claim".into())),
    }
    let aud = c.aud.as_ref().ok_or_else(|| JwtError::Malformed("no aud claim; request the token with the resource parameter".into()))?;
    let want = cfg.resource.trim_end_matches('/');
    if !aud.iter().any(|a| a.trim_end_matches('/') == want) {
        let got: Vec<&str> = aud.iter().collect();
        return Err(JwtError::Audience { got: crate::server::names::cap(&got.join(" "), 200), want: cfg.resource.clone() });
    }
    let exp = c.exp.ok_or_else(|| JwtError::Malformed("no exp claim".into()))?;
    if !exp.is_finite() {
        return Err(JwtError::Malformed("exp is not a number of seconds".into()));
    }
    let exp = secs(exp);
    if now >= exp.saturating_add(leeway) {
        return Err(JwtError::Expired { exp });
    }
    for (name, v) in [("nbf", c.nbf), ("iat", c.iat)] {
        if let Some(v) = v {
            if !v.is_finite() {
                return Err(JwtError::Malformed(format!("{name} is not a number of seconds")));
            }
            let t = secs(v);
            if t > now.saturating_add(leeway) {
                return Err(if name == "nbf" { JwtError::NotYetValid { nbf: t } } else { JwtError::IssuedInFuture { iat: t } });
            }
        }
    }
    if c.sub.as_deref().unwrap_or("").is_empty() && c.client_id.as_deref().unwrap_or("").is_empty() {
        return Err(JwtError::Malformed("neither sub nor client_id names the caller".into()));
    }
    Ok(())
}

/// Algorithms a token header may name at all.
const ACCEPTED_ALGS: &[&str] = &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// Verifies `token` against `keys`: header, key by `kid`, the key's pinned
/// algorithm, the signature, then [`check_claims`].
pub fn verify_with(keys: &[VerifyKey], token: &str, cfg: &OAuthConfig, now: u64) -> Result<JwtClaims, JwtError> {
    if token.len() > MAX_JWT_LEN {
        return Err(JwtError::Malformed(format!("longer than {MAX_JWT_LEN} bytes")));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed("expected header.claims.signature".into()));
    };
    let raw = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, h).map_err(|_| JwtError::Malformed("header is not base64url".into()))?;
    let header: Value = serde_json::from_slice(&raw).map_err(|_| JwtError::Malformed("header is not JSON".into()))?;
    let alg = header.get("alg").and_then(Value::as_str).ok_or_else(|| JwtError::Malformed("header has no alg".into()))?;
    if !ACCEPTED_ALGS.contains(&alg) {
        return Err(JwtError::Algorithm(format!("{:?} is not accepted; use one of {}", crate::server::names::cap(alg, 32), ACCEPTED_ALGS.join(", "))));
    }
    if header.get("crit").is_some() {
        return Err(JwtError::Malformed("header has crit extensions this server does not understand".into()));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.as_str()),
        Some(_) => return Err(JwtError::Malformed("kid is not a string".into())),
    };
    let key = match kid {
        Some(k) => keys.iter().find(|v| v.kid.as_deref() == Some(k)).ok_or_else(|| JwtError::UnknownKey(format!("no key with kid {:?} in the issuer's JWKS", crate::server::names::cap(k, 64))))?,
        None if keys.len() == 1 => &keys[0],
        None => return Err(JwtError::UnknownKey(format!("the token has no kid and the issuer's JWKS has {} keys", keys.len()))),
    };
    let header_alg: Algorithm = alg.parse().map_err(|_| JwtError::Algorithm(format!("{alg:?} is not known")))?;
    if header_alg != key.alg {
        return Err(JwtError::Algorithm(format!("the token says {alg} but key {:?} verifies {:?} only", key.kid.as_deref().unwrap_or("(no kid)"), key.alg)));
    }
    let mut v = Validation::new(key.alg);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    let data = jsonwebtoken::decode::<JwtClaims>(token, &key.key, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature | K::InvalidEcdsaKey | K::InvalidEddsaKey | K::InvalidRsaKey(_) => JwtError::BadSignature,
            K::InvalidAlgorithm => JwtError::Algorithm("the token's algorithm does not match the key".into()),
            K::Json(err) => JwtError::Malformed(format!("claims: {err}")),
            K::Base64(_) => JwtError::Malformed("a part is not base64url".into()),
            _ => JwtError::Malformed(e.to_string()),
        }
    })?;
    check_claims(&data.claims, cfg, now)?;
    Ok(data.claims)
}

/// Where the keys come from.
enum Source {
    File(PathBuf),
    Url { url: String, tls: Arc<rustls::ClientConfig> },
}

struct KeyState {
    keys: Arc<Vec<VerifyKey>>,
    /// When `keys` were read.
    loaded: Option<Instant>,
    /// The last read attempt, successful or not.
    attempted: Option<Instant>,
    /// The last read error, until a read succeeds.
    error: Option<String>,
}

/// A configured issuer: its keys (cached) and the scope map.
pub struct OAuth {
    pub cfg: OAuthConfig,
    source: Source,
    state: RwLock<KeyState>,
    /// One read at a time.
    refreshing: tokio::sync::Mutex<()>,
}

impl OAuth {
    /// Reads the keys once. A JWKS file that cannot be read is an error; a
    /// URL that cannot be fetched is logged and retried when a JWT comes
    /// (JWTs are refused meanwhile).
    pub async fn open(cfg: OAuthConfig, base_dir: &Path, tls: Option<Arc<rustls::ClientConfig>>) -> Result<OAuth, String> {
        cfg.validate()?;
        let source = match (&cfg.jwks_file, &cfg.jwks_url) {
            (Some(f), _) => Source::File(resolve(base_dir, f)),
            (None, Some(u)) => Source::Url { url: u.clone(), tls: tls.unwrap_or_else(crate::sandbox::http::default_config) },
            (None, None) => unreachable!("validated"),
        };
        let o = OAuth {
            cfg,
            source,
            state: RwLock::new(KeyState { keys: Arc::default(), loaded: None, attempted: None, error: None }),
            refreshing: tokio::sync::Mutex::new(()),
        };
        let read = o.refresh(None).await;
        if let (Err(e), Source::File(_)) = (&read, &o.source) {
            return Err(format!("[server.oauth] jwks_file: {e}"));
        }
        if let Err(e) = read {
            tracing::error!(error = %e, "[server.oauth] cannot fetch the issuer's JWKS; JWT access tokens are refused until it can be fetched");
        }
        Ok(o)
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, KeyState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a read may start now (the rate bound).
    fn may_refresh(&self, now: Instant) -> bool {
        let every = Duration::from_secs(self.cfg.jwks_refresh_interval_secs);
        self.read_state().attempted.is_none_or(|t| now.saturating_duration_since(t) >= every)
    }

    /// Reads the JWKS unless another task did since `seen` (the attempt
    /// time the caller saw): one read at a time, at most once per interval.
    async fn refresh(&self, seen: Option<Instant>) -> Result<(), String> {
        let _one = self.refreshing.lock().await;
        {
            let s = self.read_state();
            if s.attempted != seen {
                return s.error.clone().map_or(Ok(()), Err);
            }
        }
        let read = match &self.source {
            Source::File(p) => {
                let p = p.clone();
                tokio::task::spawn_blocking(move || read_jwks_file(&p)).await.map_err(|e| e.to_string()).and_then(|r| r)
            }
            Source::Url { url, tls } => fetch(url, tls.clone()).await.and_then(|b| parse_jwks(&b)).map_err(|m| format!("{url}: {m}")),
        };
        let now = Instant::now();
        let mut s = self.state.write().unwrap_or_else(|e| e.into_inner());
        s.attempted = Some(now);
        match read {
            Ok(set) => {
                for note in &set.skipped {
                    tracing::warn!("[server.oauth] JWKS: {note}");
                }
                tracing::info!(keys = set.keys.len(), "[server.oauth] read the issuer's JWKS");
                s.keys = Arc::new(set.keys);
                s.loaded = Some(now);
                s.error = None;
                Ok(())
            }
            Err(e) => {
                let max_age = Duration::from_secs(self.cfg.jwks_max_age_secs);
                if s.loaded.is_some_and(|t| now.saturating_duration_since(t) >= max_age) {
                    // Fail closed: keys past their age are not used.
                    tracing::error!(error = %e, "[server.oauth] cannot re-read the JWKS and the cached keys are past jwks_max_age_secs; dropping them");
                    s.keys = Arc::default();
                    s.loaded = None;
                } else {
                    tracing::warn!(error = %e, "[server.oauth] cannot re-read the JWKS; the cached keys stay in use");
                }
                s.error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// The keys to verify with now: re-read first if they are past their
    /// age (and the rate bound allows).
    async fn keys(&self) -> Arc<Vec<VerifyKey>> {
        let now = Instant::now();
        let (stale, attempted) = {
            let s = self.read_state();
            let max_age = Duration::from_secs(self.cfg.jwks_max_age_secs);
            (s.loaded.is_none_or(|t| now.saturating_duration_since(t) >= max_age), s.attempted)
        };
        if stale && self.may_refresh(now) {
            let _ = self.refresh(attempted).await;
        }
        self.read_state().keys.clone()
    }

    /// Verifies a JWT; an unknown `kid` re-reads the JWKS once (within the
    /// rate bound) and tries again.
    pub async fn verify(&self, token: &str, now_unix: u64) -> Result<JwtClaims, JwtError> {
        let keys = self.keys().await;
        if keys.is_empty() {
            let why = self.read_state().error.clone().unwrap_or_else(|| "no keys loaded".into());
            return Err(JwtError::KeysUnavailable(why));
        }
        match verify_with(&keys, token, &self.cfg, now_unix) {
            Err(JwtError::UnknownKey(m)) => {
                let attempted = self.read_state().attempted;
                if !self.may_refresh(Instant::now()) {
                    return Err(JwtError::UnknownKey(format!("{m} (the JWKS was read less than jwks_refresh_interval_secs ago)")));
                }
                let _ = self.refresh(attempted).await;
                let keys = self.read_state().keys.clone();
                if keys.is_empty() {
                    return Err(JwtError::UnknownKey(m));
                }
                verify_with(&keys, token, &self.cfg, now_unix)
            }
            r => r,
        }
    }

    /// The caller a verified token stands for: named by `sub` (else
    /// `client_id`), keyed (rate limits, sessions) per subject and client,
    /// with the functions of every configured scope the token carries.
    pub fn caller(&self, c: &JwtClaims) -> Caller {
        let clean = |s: &str| crate::server::names::cap(&s.chars().map(|ch| if ch.is_control() { '?' } else { ch }).collect::<String>(), MAX_NAME);
        let sub = c.sub.as_deref().filter(|s| !s.is_empty()).map(clean);
        let client = c.client_id.as_deref().filter(|s| !s.is_empty()).map(clean);
        let name = sub.clone().or_else(|| client.clone()).unwrap_or_else(|| "jwt".into());
        let id = match (&sub, &client) {
            (Some(s), Some(c)) if s != c => format!("jwt:{s}/{c}"),
            _ => format!("jwt:{name}"),
        };
        let granted = c.scopes();
        let mut functions = Vec::new();
        let mut admin = false;
        for s in self.cfg.scopes.iter().filter(|s| granted.iter().any(|g| *g == s.scope)) {
            functions.extend(s.functions.iter().cloned());
            admin |= s.admin;
        }
        functions.sort();
        functions.dedup();
        Caller { name, token_id: Some(id), scopes: Some(functions), admin, stdio_parent: false }
    }

    /// RFC 9728 metadata.
    pub fn metadata(&self) -> Value {
        json!({
            "resource": self.cfg.resource,
            "authorization_servers": [self.cfg.issuer],
            "scopes_supported": self.cfg.scopes.iter().map(|s| s.scope.as_str()).collect::<Vec<_>>(),
            "bearer_methods_supported": ["header"],
            "resource_name": "wasmward",
        })
    }

    /// Scopes that grant functions (what a client should ask for first).
    fn function_scopes(&self) -> String {
        self.cfg.scopes.iter().filter(|s| !s.functions.is_empty()).map(|s| s.scope.as_str()).collect::<Vec<_>>().join(" ")
    }

    /// The `WWW-Authenticate` value of a 401: the metadata pointer, the
    /// scopes to ask for, and `invalid_token` when a token was sent.
    pub fn unauthorized_challenge(&self, e: &TokenError) -> HeaderValue {
        let mut parts = Vec::new();
        if !matches!(e, TokenError::Missing) {
            parts.push("error=\"invalid_token\"".to_string());
            parts.push(format!("error_description=\"{}\"", quotable(&e.to_string())));
        }
        let scopes = self.function_scopes();
        if !scopes.is_empty() {
            parts.push(format!("scope=\"{scopes}\""));
        }
        parts.push(format!("resource_metadata=\"{}\"", quotable(&self.cfg.metadata_url())));
        header(&format!("Bearer {}", parts.join(", ")))
    }

    /// The `WWW-Authenticate` value of a 403 that more scope would lift.
    pub fn scope_challenge(&self, scopes: &[&str]) -> HeaderValue {
        header(&format!(
            "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{}\"",
            scopes.join(" "),
            quotable(&self.cfg.metadata_url())
        ))
    }

    /// The scopes that would let `caller` (a JWT caller) do `path`, when
    /// the caller lacks them: a call to a function the operator allows but
    /// the token's scopes do not, or an admin endpoint.
    pub fn needed_scopes(&self, server: &Server, caller: &Caller, path: &str) -> Vec<&str> {
        if !caller.token_id.as_deref().is_some_and(|id| id.starts_with("jwt:")) {
            return Vec::new();
        }
        if path.starts_with("/v1/admin") {
            return if caller.admin { Vec::new() } else { self.cfg.scopes.iter().filter(|s| s.admin).map(|s| s.scope.as_str()).collect() };
        }
        let Some(name) = path.strip_prefix("/v1/tools/").and_then(|r| r.strip_suffix("/call")) else { return Vec::new() };
        self.scopes_for_function(server, caller, name).map(|(_, s)| s).unwrap_or_default()
    }

    /// For a function (any spelling) the operator lets callers see but
    /// `caller`'s scopes do not: its canonical name and the scopes that
    /// grant it.
    fn scopes_for_function(&self, server: &Server, caller: &Caller, name: &str) -> Option<(String, Vec<&str>)> {
        let super::names::Resolved::Function(f) = server.names().resolve(name) else { return None };
        let gate = server.gate();
        let unscoped = Caller { scopes: None, ..caller.clone() };
        if gate.visible(caller, &f) || !gate.visible(&unscoped, &f) {
            return None;
        }
        let scopes: Vec<&str> = self.cfg.scopes.iter().filter(|s| s.functions.iter().any(|p| glob_match(p, &f))).map(|s| s.scope.as_str()).collect();
        (!scopes.is_empty()).then_some((f, scopes))
    }

    /// MCP step-up (MCP authorization, "insufficient scope"): a JWT
    /// caller's `tools/call` of a function that another configured scope
    /// grants is refused with 403 and `error="insufficient_scope",
    /// scope="…"` before it reaches the session, so a client can ask for
    /// the scope and retry. It is a `filter` refusal like any other (audit
    /// row, metrics). Anything else goes on unchanged.
    pub async fn mcp_step_up(&self, server: &Server, caller: &Caller, req: Request, limit: usize) -> Result<Request, Response> {
        let jwt = caller.token_id.as_deref().is_some_and(|id| id.starts_with("jwt:"));
        if !jwt || req.method() != http::Method::POST || !req.uri().path().starts_with("/mcp") {
            return Ok(req);
        }
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, limit).await {
            Ok(b) => b,
            Err(e) => {
                return Err(super::ApiError::new(
                    http::StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("request body is over [server] max_request_body_bytes = {limit} ({e})"),
                )
                .into_response())
            }
        };
        let name = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(|v| v.get("method").and_then(Value::as_str) == Some("tools/call"))
            .and_then(|v| v.pointer("/params/name").and_then(Value::as_str).map(str::to_string));
        if let Some((f, scopes)) = name.and_then(|n| self.scopes_for_function(server, caller, &n)) {
            if let Err(r) = server.gate().check_filter(caller, &f) {
                let mut resp = server.refuse(&r, &f, &caller.audit_name()).await.into_response();
                resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, self.scope_challenge(&scopes));
                return Err(resp);
            }
        }
        Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
    }

    /// `/healthz` detail.
    pub fn health(&self) -> Value {
        let s = self.read_state();
        let now = Instant::now();
        json!({
            "status": if s.keys.is_empty() { "jwks_unavailable" } else { "ok" },
            "keys": s.keys.len(),
            "jwks": match &self.source { Source::File(_) => "file", Source::Url { .. } => "url" },
            "jwks_age_secs": s.loaded.map(|t| now.saturating_duration_since(t).as_secs()),
            "jwks_error": s.error,
        })
    }
}

/// Text fit for a quoted-string in a challenge (RFC 6750 section 3).
fn quotable(s: &str) -> String {
    let mut out: String = s.chars().map(|c| if c == '"' || c == '\\' || !(' '..='~').contains(&c) { '\'' } else { c }).collect();
    out.truncate(300);
    out
}

fn header(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// The token of a request: a JWT when an issuer is configured and the
/// token is not a `ww1` one, else a `ww1` token.
pub async fn authenticate(server: &Server, token: &str, now_unix: u64) -> Result<Caller, TokenError> {
    if let Some(o) = &server.oauth {
        if !token.is_empty() && !token.starts_with("ww1.") && token.bytes().filter(|b| *b == b'.').count() == 2 {
            let claims = o.verify(token, now_unix).await?;
            return Ok(o.caller(&claims));
        }
    }
    server.tokens.verify(token, now_unix).map(|c| Caller::from_claims(&c))
}

/// GET `url` (the response body, at most [`MAX_JWKS_BYTES`]); no
/// redirects, one connection, within [`FETCH_TIMEOUT`].
async fn fetch(url: &str, tls: Arc<rustls::ClientConfig>) -> Result<Bytes, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().ok_or("no host")?.trim_start_matches('[').trim_end_matches(']').to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri.authority().map(|a| a.to_string()).unwrap_or_default();
    let path = uri.path_and_query().map(|p| p.to_string()).unwrap_or_else(|| "/".into());
    let req = http::Request::get(path)
        .header(http::header::HOST, authority)
        .header(http::header::ACCEPT, "application/jwk-set+json, application/json")
        .header(http::header::USER_AGENT, concat!("wasmward/", env!("CARGO_PKG_VERSION")))
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let work = async move {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("cannot connect: {e}"))?;
        if https {
            let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| format!("bad server name: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
            send(hyper_util::rt::TokioIo::new(stream), req).await
        } else {
            send(hyper_util::rt::TokioIo::new(tcp), req).await
        }
    };
    tokio::time::timeout(FETCH_TIMEOUT, work).await.map_err(|_| format!("no answer within {} s", FETCH_TIMEOUT.as_secs()))?
}

async fn send<T>(io: T, req: http::Request<http_body_util::Empty<Bytes>>) -> Result<Bytes, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("HTTP: {e}"))?;
    let driver = tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(|e| format!("HTTP: {e}"));
    let out = match resp {
        Ok(r) if r.status() == http::StatusCode::OK => http_body_util::Limited::new(r.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| format!("reading the body (at most {MAX_JWKS_BYTES} bytes): {e}")),
        Ok(r) => Err(format!("HTTP status {} (expected 200; redirects are not followed)", r.status())),
        Err(e) => Err(e),
    };
    driver.abort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine as _;
    use jsonwebtoken::EncodingKey;

    pub fn cfg() -> OAuthConfig {
        toml::from_str(
            r#"
resource = "https://mcp.example.com/mcp"
issuer = "https://auth.example.com"
jwks_file = "jwks.json"
[[scopes]]
scope = "tools:text"
functions = ["text.*"]
[[scopes]]
scope = "tools:all"
functions = ["*"]
[[scopes]]
scope = "admin"
admin = true
"#,
        )
        .unwrap()
    }

    /// An issuer key: how to sign, and its public JWK.
    struct Signer {
        key: EncodingKey,
        alg: Algorithm,
        jwk: Value,
    }

    fn ec_signer(kid: &str) -> Signer {
        let rng = ring::rand::SystemRandom::new();
        let der = ring::signature::EcdsaKeyPair::generate_pkcs8(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = EncodingKey::from_ec_der(der.as_ref());
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap()).unwrap();
        jwk["kid"] = json!(kid);
        Signer { key, alg: Algorithm::ES256, jwk }
    }

    fn sign(s: &Signer, header: Value, claims: Value) -> String {
        let msg = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), &s.key, s.alg).unwrap();
        format!("{msg}.{sig}")
    }

    fn good_claims(now: u64) -> Value {
        json!({"iss": "https://auth.example.com", "aud": "https://mcp.example.com/mcp", "exp": now + 300, "iat": now, "sub": "alice", "client_id": "app", "scope": "tools:text other"})
    }

    fn keyset(signers: &[&Signer]) -> Vec<VerifyKey> {
        let doc = json!({"keys": signers.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>()});
        parse_jwks(doc.to_string().as_bytes()).unwrap().keys
    }

    #[test]
    fn claims_table() {
        let c = cfg();
        let now = 1_800_000_000u64;
        let base = good_claims(now);
        let with = |f: &dyn Fn(&mut Value)| {
            let mut v = base.clone();
            f(&mut v);
            serde_json::from_value::<JwtClaims>(v).unwrap()
        };
        let cases: Vec<(&str, JwtClaims, Result<(), &str>)> = vec![
            ("good", with(&|_| {}), Ok(())),
            ("aud array", with(&|v| v["aud"] = json!(["other", "https://mcp.example.com/mcp"])), Ok(())),
            ("aud trailing slash", with(&|v| v["aud"] = json!("https://mcp.example.com/mcp/")), Ok(())),
            ("client_id only", with(&|v| { v.as_object_mut().unwrap().remove("sub"); }), Ok(())),
            ("exp within leeway", with(&|v| v["exp"] = json!(now - 10)), Ok(())),
            ("nbf within leeway", with(&|v| v["nbf"] = json!(now + 10)), Ok(())),
            ("fractional exp", with(&|v| v["exp"] = json!(now as f64 + 100.5)), Ok(())),
            ("wrong iss", with(&|v| v["iss"] = json!("https://evil.example.com")), Err("jwt_wrong_issuer")),
            ("iss with slash", with(&|v| v["iss"] = json!("https://auth.example.com/")), Err("jwt_wrong_issuer")),
            ("no iss", with(&|v| { v.as_object_mut().unwrap().remove("iss"); }), Err("jwt_malformed")),
            ("wrong aud", with(&|v| v["aud"] = json!("https://other.example.com/mcp")), Err("jwt_wrong_audience")),
            ("aud prefix", with(&|v| v["aud"] = json!("https://mcp.example.com/mcpx")), Err("jwt_wrong_audience")),
            ("empty aud array", with(&|v| v["aud"] = json!([])), Err("jwt_wrong_audience")),
            ("no aud", with(&|v| { v.as_object_mut().unwrap().remove("aud"); }), Err("jwt_malformed")),
            ("expired", with(&|v| v["exp"] = json!(now - 31)), Err("jwt_expired")),
            ("exp at leeway edge", with(&|v| v["exp"] = json!(now - 30)), Err("jwt_expired")),
            ("no exp", with(&|v| { v.as_object_mut().unwrap().remove("exp"); }), Err("jwt_malformed")),
            ("nbf future", with(&|v| v["nbf"] = json!(now + 31)), Err("jwt_not_yet_valid")),
            ("iat future", with(&|v| v["iat"] = json!(now + 3600)), Err("jwt_not_yet_valid")),
            ("negative exp", with(&|v| v["exp"] = json!(-5)), Err("jwt_expired")),
            ("no caller", with(&|v| { v.as_object_mut().unwrap().remove("sub"); v.as_object_mut().unwrap().remove("client_id"); }), Err("jwt_malformed")),
        ];
        for (what, claims, want) in cases {
            assert_eq!(check_claims(&claims, &c, now).map_err(|e| e.reason()), want, "{what}");
        }
        // Wrong JSON types are malformed, never "absent" (CVE-2026-25537).
        for bad in [json!({"exp": "9999999999"}), json!({"nbf": "1"}), json!({"aud": 5}), json!({"iss": ["x"]}), json!({"scope": ["a"]})] {
            let mut v = base.clone();
            for (k, x) in bad.as_object().unwrap() {
                v[k] = x.clone();
            }
            assert!(serde_json::from_value::<JwtClaims>(v).is_err(), "{bad}");
        }
    }

    #[test]
    fn signatures_algorithms_and_keys() {
        let c = cfg();
        let now = jsonwebtoken::get_current_timestamp();
        let a = ec_signer("a");
        let b = ec_signer("b");
        let keys = keyset(&[&a]);
        let hdr = json!({"alg": "ES256", "kid": "a", "typ": "at+jwt"});
        let good = sign(&a, hdr.clone(), good_claims(now));
        let claims = verify_with(&keys, &good, &c, now).unwrap();
        assert_eq!(claims.sub.as_deref(), Some("alice"));

        // The public key as an HMAC secret (alg confusion): refused before any MAC.
        let public_bytes = serde_json::to_vec(&a.jwk).unwrap();
        let hs = Signer { key: EncodingKey::from_secret(&public_bytes).unwrap(), alg: Algorithm::HS256, jwk: json!({}) };
        let (h_none, p) = (B64.encode(json!({"alg": "none", "kid": "a"}).to_string()), B64.encode(good_claims(now).to_string()));
        let (_, sig) = good.rsplit_once('.').unwrap();
        let tampered = {
            let mut cl = good_claims(now);
            cl["scope"] = json!("tools:all admin");
            let (h, _) = good.split_once('.').unwrap();
            format!("{h}.{}.{sig}", B64.encode(cl.to_string()))
        };
        let cases: Vec<(&str, String, &str)> = vec![
            ("other key, same kid", sign(&b, hdr.clone(), good_claims(now)), "jwt_bad_signature"),
            ("claims altered", tampered, "jwt_bad_signature"),
            ("alg none", format!("{h_none}.{p}."), "jwt_algorithm"),
            ("alg none with sig", format!("{h_none}.{p}.{sig}"), "jwt_algorithm"),
            ("HS256 with the public key", sign(&hs, json!({"alg": "HS256", "kid": "a"}), good_claims(now)), "jwt_algorithm"),
            ("ES384 header on an ES256 key", sign(&a, json!({"alg": "ES384", "kid": "a"}), good_claims(now)), "jwt_algorithm"),
            ("unknown kid", sign(&b, json!({"alg": "ES256", "kid": "b"}), good_claims(now)), "jwt_unknown_key"),
            ("kid not a string", sign(&a, json!({"alg": "ES256", "kid": 1}), good_claims(now)), "jwt_malformed"),
            ("crit", sign(&a, json!({"alg": "ES256", "kid": "a", "crit": ["exp"]}), good_claims(now)), "jwt_malformed"),
            ("two parts", "a.b".into(), "jwt_malformed"),
            ("four parts", format!("{good}.x"), "jwt_malformed"),
            ("not base64", "!!.a.b".into(), "jwt_malformed"),
            ("too long", format!("{}.a.b", "a".repeat(MAX_JWT_LEN)), "jwt_malformed"),
            ("string exp", sign(&a, hdr.clone(), json!({"iss": "https://auth.example.com", "aud": "https://mcp.example.com/mcp", "exp": "99999999999", "sub": "x"})), "jwt_malformed"),
        ];
        for (what, tok, want) in cases {
            assert_eq!(verify_with(&keys, &tok, &c, now).map(|_| ()).map_err(|e| e.reason()), Err(want), "{what}");
        }
        // No kid: fine with one key, refused with several.
        let no_kid = sign(&a, json!({"alg": "ES256"}), good_claims(now));
        assert!(verify_with(&keys, &no_kid, &c, now).is_ok());
        assert_eq!(verify_with(&keyset(&[&a, &b]), &no_kid, &c, now).unwrap_err().reason(), "jwt_unknown_key");
    }

    #[test]
    fn jwks_parsing_pins_algorithms_and_leaves_out_bad_keys() {
        let a = ec_signer("a");
        let mut b = ec_signer("b").jwk;
        b["alg"] = json!("RS256");
        let mut enc = ec_signer("enc").jwk;
        enc["use"] = json!("enc");
        let doc = json!({"keys": [
            a.jwk.clone(),
            b,
            enc,
            {"kty": "oct", "kid": "hmac", "k": B64.encode([7u8; 32]), "alg": "HS256"},
            {"kty": "RSA", "kid": "small", "n": B64.encode([0xffu8; 128]), "e": "AQAB"},
            {"kty": "EC", "kid": "k1", "crv": "secp256k1", "x": "AA", "y": "AA"},
            {"kty": "weird"},
            a.jwk.clone(),
        ]});
        let set = parse_jwks(doc.to_string().as_bytes()).unwrap();
        assert_eq!(set.keys.len(), 1, "{:?}", set.skipped);
        assert_eq!((set.keys[0].kid.as_deref(), set.keys[0].alg), (Some("a"), Algorithm::ES256));
        let notes = set.skipped.join("\n");
        for needle in ["does not fit the key type", "use is not \"sig\"", "symmetric", "1024 bits", "secp256k1", "keys[6]", "came earlier"] {
            assert!(notes.contains(needle), "{needle}: {notes}");
        }
        for bad in ["", "{}", "{\"keys\": []}", "{\"keys\": [{\"kty\": \"oct\", \"k\": \"AAAA\"}]}"] {
            assert!(parse_jwks(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes_map_to_a_caller() {
        let o = OAuthConfig { ..cfg() };
        let oauth = OAuth { cfg: o, source: Source::File("x".into()), state: RwLock::new(KeyState { keys: Arc::default(), loaded: None, attempted: None, error: None }), refreshing: Default::default() };
        let claims = |v: Value| serde_json::from_value::<JwtClaims>(v).unwrap();
        let c = oauth.caller(&claims(json!({"sub": "alice", "client_id": "app", "scope": "tools:text unknown"})));
        assert_eq!((c.name.as_str(), c.token_id.as_deref(), c.scopes.clone(), c.admin), ("alice", Some("jwt:alice/app"), Some(vec!["text.*".to_string()]), false));
        assert_eq!(c.audit_name(), "alice#jwt:alice/app");
        let c = oauth.caller(&claims(json!({"client_id": "svc", "scp": ["admin", "tools:all"]})));
        assert_eq!((c.name.as_str(), c.token_id.as_deref(), c.scopes.clone(), c.admin), ("svc", Some("jwt:svc"), Some(vec!["*".to_string()]), true));
        // No known scope: a caller that may call nothing.
        let c = oauth.caller(&claims(json!({"sub": "bob\u{7}"})));
        assert_eq!((c.name.as_str(), c.scopes.clone(), c.admin), ("bob?", Some(vec![]), false));
        let m = oauth.metadata();
        assert_eq!(m["scopes_supported"], json!(["tools:text", "tools:all", "admin"]));
        assert_eq!(oauth.cfg.metadata_url(), "https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
        let h = oauth.unauthorized_challenge(&TokenError::Missing);
        assert_eq!(h.to_str().unwrap(), "Bearer scope=\"tools:text tools:all\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\"");
        let h = oauth.unauthorized_challenge(&JwtError::Issuer { got: "a\"b".into(), want: "c".into() }.into());
        // Quotes and backslashes cannot break out of the quoted-string.
        assert_eq!(
            h.to_str().unwrap(),
            "Bearer error=\"invalid_token\", error_description=\"access token issuer 'a''b' is not the configured issuer 'c'\", scope=\"tools:text tools:all\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
        );
    }

    #[test]
    fn config_errors_name_the_key_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jwks.json"), json!({"keys": [ec_signer("a").jwk]}).to_string()).unwrap();
        assert!(cfg().check(dir.path()).is_ok());
        let cases: Vec<(&str, &dyn Fn(&mut OAuthConfig), &str)> = vec![
            ("http resource", &|c| c.resource = "http://mcp.example.com/mcp".into(), "resource = \"http://mcp.example.com/mcp\" is plain HTTP"),
            ("relative", &|c| c.resource = "/mcp".into(), "resource = \"/mcp\""),
            ("fragment", &|c| c.issuer = "https://a.example.com/#x".into(), "issuer = \"https://a.example.com/#x\" has a fragment"),
            ("both", &|c| c.jwks_url = Some("https://a.example.com/jwks".into()), "both jwks_file and jwks_url"),
            ("neither", &|c| c.jwks_file = None, "set jwks_url"),
            ("http jwks", &|c| { c.jwks_file = None; c.jwks_url = Some("http://auth.example.com/jwks".into()) }, "jwks_url = \"http://auth.example.com/jwks\" is plain HTTP"),
            ("ftp", &|c| { c.jwks_file = None; c.jwks_url = Some("ftp://auth.example.com/jwks".into()) }, "not an absolute https:// URL"),
            ("leeway", &|c| c.leeway_secs = 301, "leeway_secs = 301"),
            ("refresh", &|c| c.jwks_refresh_interval_secs = 0, "jwks_refresh_interval_secs = 0"),
            ("max age", &|c| c.jwks_max_age_secs = 5, "jwks_max_age_secs = 5"),
            ("no scopes", &|c| c.scopes.clear(), "add [[server.oauth.scopes]]"),
            ("bad scope", &|c| c.scopes[0].scope = "a b".into(), "#1 (scope = \"a b\")"),
            ("dup scope", &|c| c.scopes[1].scope = "tools:text".into(), "duplicate scope"),
            ("empty", &|c| c.scopes[0].functions.clear(), "grants nothing"),
            ("pattern", &|c| c.scopes[0].functions = vec!["text/x".into()], "functions[0] = \"text/x\""),
            ("missing file", &|c| c.jwks_file = Some("nope.json".into()), "jwks_file = \"nope.json\": cannot read"),
        ];
        for (what, f, needle) in cases {
            let mut c = cfg();
            f(&mut c);
            let e = c.check(dir.path()).unwrap_err();
            assert!(e.contains(needle) && e.contains("server.oauth"), "{what}: {e}");
        }
        // Loopback may use plain HTTP.
        for u in ["http://127.0.0.1:9/jwks", "http://[::1]:9/jwks", "http://localhost/jwks"] {
            let mut c = cfg();
            c.jwks_file = None;
            c.jwks_url = Some(u.into());
            assert!(c.validate().is_ok(), "{u}");
        }
        std::fs::write(dir.path().join("bad.json"), "{\"keys\": [{\"kty\": \"oct\", \"k\": \"AAAA\"}]}").unwrap();
        let mut c = cfg();
        c.jwks_file = Some("bad.json".into());
        let e = c.check(dir.path()).unwrap_err();
        assert!(e.contains("no usable signing key") && e.contains("symmetric"), "{e}");
        assert!(toml::from_str::<OAuthConfig>("resource = \"x\"\nissuer = \"y\"\ncolour = 1").unwrap_err().to_string().contains("unknown field"));
    }
}
