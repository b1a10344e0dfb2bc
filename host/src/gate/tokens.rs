//! Bearer tokens: `ww1.<claims>.<mac>`, both parts base64url. The MAC is
//! HMAC-SHA256 over `ww1.<claims>`, so every claim (id, name, scopes,
//! admin, issued-at, expiry) is signed; it is checked in constant time
//! before the claims are parsed. Revocations are a file beside the key
//! (`<key>.revoked`), re-read whenever it changes, so `wasmward token
//! revoke` takes effect on a running server. Issued tokens are logged
//! (claims only, never the token) in `<key>.issued` for `token list`.
//!
//! A token whose signature checked is remembered (the exact token string →
//! its claims, at most [`MAX_VERIFIED`]), so an agent's next request skips
//! the MAC, base64 and JSON work. Expiry and revocation are still checked
//! on every request, against the clock and the revocation file as before:
//! only what cannot change (the signed bytes under this key) is cached.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

const PREFIX: &str = "ww1.";
/// Tokens longer than this are refused unparsed.
const MAX_TOKEN_LEN: usize = 8192;

/// Verified tokens remembered at once; past this the memory is cleared
/// (only tokens signed with this key get in, so it stays small).
pub const MAX_VERIFIED: usize = 1024;

/// What a token says, all of it signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub id: String,
    pub name: String,
    /// Glob patterns over full function names.
    pub tools: Vec<String>,
    /// May use the admin endpoints (approvals).
    #[serde(default)]
    pub admin: bool,
    /// Unix seconds.
    pub iat: u64,
    pub exp: u64,
}

/// Why a token was refused. `Display` is safe to show the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("missing bearer token; send `Authorization: Bearer <token>` (issue one with `wasmward token issue`)")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("token signature is invalid (forged, altered, or signed with another key)")]
    BadSignature,
    #[error("token {id} expired at {exp} (unix seconds); issue a new one")]
    Expired { id: String, exp: u64 },
    #[error("token {id} is revoked")]
    Revoked { id: String },
    #[error("token {id} is not an admin token; issue one with `wasmward token issue --admin` (for a JWT: a scope with admin = true in [[server.oauth.scopes]])")]
    NotAdmin { id: String },
    /// A JWT access token refused (`[server.oauth]`); `reason` is the
    /// stable key (`jwt_expired`, `jwt_wrong_audience`, ...).
    #[error("{message}")]
    Jwt { reason: &'static str, message: String },
}

pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The signing key and the revocation list beside it.
pub struct TokenKey {
    /// The HMAC keyed once (its inner and outer pads), cloned per use.
    keyed: Hmac<Sha256>,
    path: PathBuf,
    /// `<key>.revoked`.
    revoked_path: PathBuf,
    revoked: Mutex<Revoked>,
    /// Tokens whose signature checked → their claims.
    verified: Mutex<HashMap<String, Claims>>,
}

#[derive(Default)]
struct Revoked {
    stamp: Option<(SystemTime, u64)>,
    ids: HashSet<String>,
}

impl TokenKey {
    /// Reads the key at `path`, creating it (32 random bytes, hex, mode
    /// 0600) if it does not exist.
    pub fn open_or_create(path: &Path) -> Result<TokenKey, String> {
        if !path.exists() {
            let key: [u8; 32] = rand::random();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            write_private(path, hex::encode(key).as_bytes())
                .map_err(|e| format!("cannot create the token key {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "created a new token signing key");
        }
        TokenKey::open(path)
    }

    /// Reads an existing key.
    pub fn open(path: &Path) -> Result<TokenKey, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!("cannot read the token key {}: {e}; set [gate] token_key or run `wasmward token issue` to create it", path.display())
        })?;
        let key = hex::decode(text.trim())
            .ok()
            .filter(|k| k.len() >= 32)
            .ok_or_else(|| format!("token key {} is not at least 32 hex-encoded bytes; delete it to create a new one (this invalidates every token)", path.display()))?;
        let keyed = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes keys of any length");
        let revoked_path = sidecar(path, "revoked");
        Ok(TokenKey { keyed, path: path.to_path_buf(), revoked_path, revoked: Mutex::default(), verified: Mutex::default() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn mac(&self) -> Hmac<Sha256> {
        self.keyed.clone()
    }

    /// Signs `claims` into a token string.
    pub fn sign(&self, claims: &Claims) -> String {
        let body = format!("{PREFIX}{}", B64.encode(serde_json::to_vec(claims).expect("claims serialize")));
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        format!("{body}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    /// Issues a token, logs its claims in `<key>.issued`, and returns it.
    pub fn issue(&self, name: &str, tools: Vec<String>, ttl_secs: u64, admin: bool) -> Result<(String, Claims), String> {
        let iat = now_secs();
        let claims = Claims {
            id: hex::encode(rand::random::<[u8; 8]>()),
            name: name.to_string(),
            tools,
            admin,
            iat,
            exp: iat.saturating_add(ttl_secs),
        };
        let line = serde_json::to_string(&claims).map_err(|e| e.to_string())?;
        append_line(&self.sidecar("issued"), &line)?;
        Ok((self.sign(&claims), claims))
    }

    /// Checks signature (constant time), then expiry, then revocation. A
    /// token seen before skips the signature check (see the module docs);
    /// expiry and revocation are checked every time.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed("too long"));
        }
        let known = self.verified.lock().unwrap_or_else(|e| e.into_inner()).get(token).cloned();
        let claims = match known {
            Some(c) => c,
            None => {
                let c = self.check_signature(token)?;
                let mut v = self.verified.lock().unwrap_or_else(|e| e.into_inner());
                if v.len() >= MAX_VERIFIED {
                    v.clear();
                }
                v.insert(token.to_string(), c.clone());
                c
            }
        };
        if now >= claims.exp {
            return Err(TokenError::Expired { id: claims.id, exp: claims.exp });
        }
        if self.is_revoked(&claims.id) {
            return Err(TokenError::Revoked { id: claims.id });
        }
        Ok(claims)
    }

    /// The claims of a well-formed token signed with this key.
    fn check_signature(&self, token: &str) -> Result<Claims, TokenError> {
        let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed("does not start with ww1."))?;
        let (claims_b64, mac_b64) = rest.split_once('.').ok_or(TokenError::Malformed("expected ww1.<claims>.<signature>"))?;
        let sig = B64.decode(mac_b64).map_err(|_| TokenError::Malformed("signature is not base64url"))?;
        let mut mac = self.mac();
        mac.update(PREFIX.as_bytes());
        mac.update(claims_b64.as_bytes());
        mac.verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
        let raw = B64.decode(claims_b64).map_err(|_| TokenError::Malformed("claims are not base64url"))?;
        serde_json::from_slice(&raw).map_err(|_| TokenError::Malformed("claims are not valid JSON"))
    }

    /// Adds `id` to the revocation file.
    pub fn revoke(&self, id: &str) -> Result<(), String> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("{id:?} is not a token id; `wasmward token list` shows them"));
        }
        append_line(&self.sidecar("revoked"), id)
    }

    pub fn is_revoked(&self, id: &str) -> bool {
        let path = &self.revoked_path;
        let stamp = std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
        let mut r = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
        if stamp != r.stamp {
            match std::fs::read_to_string(path) {
                Ok(text) => r.ids = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => r.ids.clear(),
                // Fail closed: an unreadable revocation list refuses every token.
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cannot read the token revocation list; refusing tokens");
                    return true;
                }
            }
            r.stamp = stamp;
        }
        r.ids.contains(id)
    }

    /// Every issued token's claims, oldest first, with revocation status.
    pub fn list(&self) -> Result<Vec<(Claims, bool)>, String> {
        let path = self.sidecar("issued");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let c: Claims = serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
            let revoked = self.is_revoked(&c.id);
            out.push((c, revoked));
        }
        Ok(out)
    }

    fn sidecar(&self, ext: &str) -> PathBuf {
        sidecar(&self.path, ext)
    }
}

/// `<path>.<ext>`.
fn sidecar(path: &Path, ext: &str) -> PathBuf {
    let mut p = path.to_path_buf().into_os_string();
    p.push(format!(".{ext}"));
    PathBuf::from(p)
}

fn append_line(path: &Path, line: &str) -> Result<(), String> {
    let mut f = open_private(path, true).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    writeln!(f, "{line}").and_then(|_| f.sync_all()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = open_private(path, false)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn open_private(path: &Path, append: bool) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true);
    if append {
        o.append(true);
    } else {
        o.write(true).create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// Parses a TTL such as `90s`, `15m`, `1h`, `7d` or a number of seconds.
pub fn parse_ttl(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("--ttl {s:?}: expected a number with an optional unit s, m, h or d (e.g. 1h)"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("--ttl {s:?}: unknown unit {unit:?}; use s, m, h or d")),
    };
    match n.checked_mul(mult) {
        Some(0) => Err("--ttl must be more than 0".into()),
        Some(v) if v <= 366 * 86_400 => Ok(v),
        _ => Err(format!("--ttl {s:?} is over a year; issue shorter-lived tokens")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (tempfile::TempDir, TokenKey) {
        let dir = tempfile::tempdir().unwrap();
        let k = TokenKey::open_or_create(&dir.path().join("k")).unwrap();
        (dir, k)
    }

    #[test]
    fn issue_verify_and_every_refusal() {
        let (dir, k) = key();
        let (tok, claims) = k.issue("agent-1", vec!["text.*".into()], 3600, false).unwrap();
        let now = now_secs();
        assert_eq!(k.verify(&tok, now).unwrap(), claims);

        // Another key's token is forged.
        let other = TokenKey::open_or_create(&dir.path().join("other")).unwrap();
        let (foreign, _) = other.issue("x", vec!["*".into()], 3600, true).unwrap();
        // Every claim is signed: widening scopes, admin or expiry breaks it.
        let tamper = |f: &dyn Fn(&mut Claims)| {
            let mut c = claims.clone();
            f(&mut c);
            let forged = other.sign(&c);
            let (body, _) = forged.rsplit_once('.').unwrap();
            let (_, sig) = tok.rsplit_once('.').unwrap();
            format!("{body}.{sig}")
        };
        let cases: Vec<(String, u64, TokenError)> = vec![
            (String::new(), now, TokenError::Missing),
            ("Bearer x".into(), now, TokenError::Malformed("does not start with ww1.")),
            ("ww1.abc".into(), now, TokenError::Malformed("expected ww1.<claims>.<signature>")),
            ("ww1.abc.!!".into(), now, TokenError::Malformed("signature is not base64url")),
            (foreign, now, TokenError::BadSignature),
            (tamper(&|c| c.tools = vec!["*".into()]), now, TokenError::BadSignature),
            (tamper(&|c| c.admin = true), now, TokenError::BadSignature),
            (tamper(&|c| c.exp += 10_000), now, TokenError::BadSignature),
            (tamper(&|c| c.name = "root".into()), now, TokenError::BadSignature),
            (format!("{}x", tok), now, TokenError::BadSignature),
            (tok.clone(), claims.exp, TokenError::Expired { id: claims.id.clone(), exp: claims.exp }),
            ("ww1.".to_string() + &"a".repeat(MAX_TOKEN_LEN), now, TokenError::Malformed("too long")),
        ];
        for (t, at, want) in cases {
            assert_eq!(k.verify(&t, at), Err(want), "{t:.60}");
        }
    }

    #[test]
    fn revocation_is_persistent_and_seen_by_other_handles() {
        let (dir, k) = key();
        let (tok, c) = k.issue("a", vec!["*".into()], 60, false).unwrap();
        let (tok2, _) = k.issue("b", vec!["*".into()], 60, false).unwrap();
        assert!(k.verify(&tok, now_secs()).is_ok());
        // A second handle (another process: the CLI) revokes it.
        let cli = TokenKey::open(&dir.path().join("k")).unwrap();
        cli.revoke(&c.id).unwrap();
        assert_eq!(k.verify(&tok, now_secs()), Err(TokenError::Revoked { id: c.id.clone() }));
        assert!(k.verify(&tok2, now_secs()).is_ok());
        let listed = cli.list().unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed[0].1 && !listed[1].1);
        assert!(cli.revoke("not hex!").is_err());
    }

    #[test]
    fn a_remembered_token_is_still_checked_for_expiry_and_revocation() {
        let (dir, k) = key();
        let (tok, c) = k.issue("a", vec!["*".into()], 60, false).unwrap();
        let now = now_secs();
        // Seen once: remembered.
        assert_eq!(k.verify(&tok, now).unwrap(), c);
        assert!(k.verified.lock().unwrap().contains_key(&tok));
        // Expiry is against the clock of each request.
        assert_eq!(k.verify(&tok, c.exp), Err(TokenError::Expired { id: c.id.clone(), exp: c.exp }));
        assert!(k.verify(&tok, now).is_ok());
        // A revocation by another process applies at the next request.
        TokenKey::open(&dir.path().join("k")).unwrap().revoke(&c.id).unwrap();
        assert_eq!(k.verify(&tok, now), Err(TokenError::Revoked { id: c.id.clone() }));
        // An altered copy of a remembered token is checked in full.
        let (body, sig) = tok.rsplit_once('.').unwrap();
        let mut bad = sig.to_string();
        bad.replace_range(0..1, if sig.starts_with('A') { "B" } else { "A" });
        assert_eq!(k.verify(&format!("{body}.{bad}"), now), Err(TokenError::BadSignature));
        assert_eq!(k.verify(&format!("{tok}x"), now), Err(TokenError::BadSignature));
        // Refused tokens are not remembered; the memory is bounded.
        assert_eq!(k.verified.lock().unwrap().len(), 1);
        for i in 0..(MAX_VERIFIED + 10) {
            let c = Claims { id: format!("{i:x}"), name: "n".into(), tools: vec![], admin: false, iat: 0, exp: now + 60 };
            assert!(k.verify(&k.sign(&c), now).is_ok());
        }
        assert!(k.verified.lock().unwrap().len() <= MAX_VERIFIED);
        // Another key's handle remembers nothing of this one's tokens.
        let other = TokenKey::open_or_create(&dir.path().join("other")).unwrap();
        assert_eq!(other.verify(&tok, now), Err(TokenError::BadSignature));
    }

    #[test]
    fn key_file_is_private_and_validated() {
        let (dir, k) = key();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(k.path()).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(dir.path().join("short"), "abcd").unwrap();
        let e = TokenKey::open(&dir.path().join("short")).err().unwrap();
        assert!(e.contains("32 hex-encoded bytes"), "{e}");
        assert!(TokenKey::open(&dir.path().join("missing")).err().unwrap().contains("token issue"));
    }

    #[test]
    fn ttls() {
        for (s, want) in [("90", Ok(90)), ("90s", Ok(90)), ("15m", Ok(900)), ("1h", Ok(3600)), ("7d", Ok(604_800))] {
            assert_eq!(parse_ttl(s), want, "{s}");
        }
        for bad in ["", "h", "1y", "0", "400d", "-1h", "99999999999999999999"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
