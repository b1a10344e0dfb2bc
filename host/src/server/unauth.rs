//! Requests refused before authentication (no token, a bad one). They cost
//! an attacker nothing, so what they make the host record is bounded:
//!
//! - per source (an IPv4 address, an IPv6 /64) and reason, the first
//!   refusal in a [`WINDOW`] is audited (with the path cut to 128
//!   characters), the rest are counted and audited as one summary row with
//!   the count when the window closes (or at shutdown);
//! - each source gets a token bucket (`[server]
//!   unauthenticated_requests_per_minute`, `unauthenticated_burst`); past it
//!   refusals are 429 with `Retry-After`, and still only counted.

use super::names;
use crate::audit::AuditEvent;
use crate::config::ServerConfig;
use crate::gate::rate::RateLimiter;
use crate::gate::{self, Stage, TokenError};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long refusals from one source for one reason share a row.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Sources tracked at once; past this, new sources share one key.
const MAX_SOURCES: usize = 4096;

/// The label recorded for the source once [`MAX_SOURCES`] are tracked.
const MANY: &str = "<many sources>";

/// The stable reason key of a token refusal.
pub fn reason_key(e: &TokenError) -> &'static str {
    match e {
        TokenError::Missing => "missing_token",
        TokenError::Malformed(_) => "malformed_token",
        TokenError::BadSignature => "bad_signature",
        TokenError::Expired { .. } => "expired_token",
        TokenError::Revoked { .. } => "revoked_token",
        TokenError::NotAdmin { .. } => "not_admin",
        TokenError::Jwt { reason, .. } => reason,
    }
}

/// The source key of a peer address: the IPv4 address, or the /64 of an
/// IPv6 one (one host holds a whole /64).
pub fn source_key(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "<unknown source>".into(),
    }
}

struct Window {
    start: Instant,
    /// The stage its rows are recorded under.
    stage: Stage,
    /// Refusals after the first, not yet recorded.
    more: u64,
}

pub struct Unauthenticated {
    limiter: RateLimiter,
    windows: Mutex<HashMap<(String, &'static str), Window>>,
}

impl Unauthenticated {
    pub fn new(cfg: &ServerConfig) -> Unauthenticated {
        Unauthenticated {
            limiter: RateLimiter::new(cfg.unauthenticated_requests_per_minute, Some(cfg.unauthenticated_burst)),
            windows: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, &'static str), Window>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one refusal from `source`'s bucket; `Err(wait)` once it is empty.
    pub fn take(&self, source: &str, now: Instant) -> Result<(), Duration> {
        self.limiter.try_take(source, now)
    }

    /// Counts one refusal and returns what to record now: a row for the
    /// first refusal of a window (`path` capped), and the summary of the
    /// window before it if that one counted more.
    pub fn note(&self, source: &str, reason: &'static str, message: &str, path: &str, now: Instant) -> Vec<AuditEvent> {
        self.note_at(Stage::Token, source, reason, message, path, now)
    }

    /// [`Unauthenticated::note`] for a refusal of another stage (the
    /// transport's `Host` check); `reason` keys the aggregation.
    pub fn note_at(&self, stage: Stage, source: &str, reason: &'static str, message: &str, path: &str, now: Instant) -> Vec<AuditEvent> {
        let mut w = self.lock();
        let mut key = (source.to_string(), reason);
        if !w.contains_key(&key) && w.len() >= MAX_SOURCES {
            let mut out = drain(&mut w, now, false);
            if w.len() >= MAX_SOURCES {
                key.0 = MANY.to_string();
            }
            out.extend(note_in(&mut w, key, stage, message, path, now));
            return out;
        }
        note_in(&mut w, key, stage, message, path, now)
    }

    /// Summary rows for windows that are over (`all`: every window, at
    /// shutdown); those windows are forgotten.
    pub fn flush(&self, now: Instant, all: bool) -> Vec<AuditEvent> {
        drain(&mut self.lock(), now, all)
    }
}

fn note_in(w: &mut HashMap<(String, &'static str), Window>, key: (String, &'static str), stage: Stage, message: &str, path: &str, now: Instant) -> Vec<AuditEvent> {
    let mut out = Vec::new();
    if let Some(win) = w.get_mut(&key) {
        if now.saturating_duration_since(win.start) < WINDOW {
            win.more += 1;
            return out;
        }
        if win.more > 0 {
            out.push(summary(&key, win.stage, win.more, now.saturating_duration_since(win.start)));
        }
    }
    w.insert(key.clone(), Window { start: now, more: 0, stage });
    let (source, reason) = (&key.0, key.1);
    tracing::info!(source = %source, reason, path = %names::capped(path), "refused an unauthenticated request (more from this source are counted for {} s)", WINDOW.as_secs());
    out.push(gate::gate_event(
        &names::capped(path),
        &format!("anonymous@{source}"),
        stage,
        "deny",
        &format!("{} [{reason}; the first from {source} in a {} s window, the rest are counted in one row]", names::cap(message, 512), WINDOW.as_secs()),
    ));
    out
}

fn drain(w: &mut HashMap<(String, &'static str), Window>, now: Instant, all: bool) -> Vec<AuditEvent> {
    let mut out = Vec::new();
    w.retain(|key, win| {
        let over = now.saturating_duration_since(win.start) >= WINDOW;
        if all || over {
            if win.more > 0 {
                out.push(summary(key, win.stage, win.more, now.saturating_duration_since(win.start)));
            }
            false
        } else {
            true
        }
    });
    out
}

fn summary(key: &(String, &'static str), stage: Stage, more: u64, span: Duration) -> AuditEvent {
    let (source, reason) = (&key.0, key.1);
    tracing::info!(source = %source, reason, count = more, "unauthenticated refusals counted");
    gate::gate_event(
        "<unauthenticated>",
        &format!("anonymous@{source}"),
        stage,
        "deny",
        &format!("count={more}: {more} more refusal(s) [{reason}] from {source} within {} ms after the first", span.as_millis()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(rate: u32, burst: u32) -> ServerConfig {
        ServerConfig { unauthenticated_requests_per_minute: rate, unauthenticated_burst: burst, ..ServerConfig::default() }
    }

    fn reason(e: &AuditEvent) -> String {
        match e {
            AuditEvent::Gate(g) => g.reason.clone(),
            _ => panic!("not a gate event"),
        }
    }

    #[test]
    fn one_row_per_source_and_reason_per_window_then_a_count() {
        let u = Unauthenticated::new(&cfg(60, 5));
        let t0 = Instant::now();
        let long = "/v1/tools/".to_string() + &"x".repeat(60_000);
        let mut rows = Vec::new();
        for i in 0..300 {
            rows.extend(u.note("10.0.0.1", "bad_signature", "token signature is invalid", &long, t0 + Duration::from_millis(i)));
        }
        assert_eq!(rows.len(), 1, "only the first is recorded at once");
        let AuditEvent::Gate(g) = &rows[0] else { panic!() };
        assert!(g.tool.len() < 200 && g.tool.ends_with("(60010 bytes)"), "{}", g.tool);
        // Another reason or source has its own row.
        assert_eq!(u.note("10.0.0.1", "missing_token", "m", "/", t0).len(), 1);
        assert_eq!(u.note("10.0.0.2", "bad_signature", "m", "/", t0).len(), 1);
        // Within the window nothing is flushed; after it, the count is.
        assert!(u.flush(t0 + Duration::from_secs(1), false).is_empty());
        let s = u.flush(t0 + WINDOW + Duration::from_secs(1), false);
        assert_eq!(s.len(), 1, "{s:?}");
        assert!(reason(&s[0]).starts_with("count=299:"), "{}", reason(&s[0]));
        // A refusal after the window starts a new one with its own row.
        assert_eq!(u.note("10.0.0.1", "bad_signature", "m", "/", t0 + WINDOW * 2).len(), 1);
        u.note("10.0.0.1", "bad_signature", "m", "/", t0 + WINDOW * 2);
        let s = u.flush(t0 + WINDOW * 2, true);
        assert_eq!(s.len(), 1);
        assert!(reason(&s[0]).starts_with("count=1:"), "{}", reason(&s[0]));
    }

    #[test]
    fn the_table_is_bounded() {
        let u = Unauthenticated::new(&cfg(60, 5));
        let t0 = Instant::now();
        for i in 0..(MAX_SOURCES + 50) {
            u.note(&format!("src{i}"), "missing_token", "m", "/", t0);
        }
        assert!(u.lock().len() <= MAX_SOURCES + 1);
        assert!(u.lock().contains_key(&(MANY.to_string(), "missing_token")));
    }

    #[test]
    fn sources_are_addresses_and_v6_slash_64s() {
        assert_eq!(source_key(Some("10.1.2.3".parse().unwrap())), "10.1.2.3");
        assert_eq!(source_key(Some("::ffff:10.1.2.3".parse().unwrap())), "10.1.2.3");
        assert_eq!(source_key(Some("2001:db8:1:2:aaaa::1".parse().unwrap())), "2001:db8:1:2::/64");
        assert_eq!(source_key(Some("2001:db8:1:2:bbbb::9".parse().unwrap())), "2001:db8:1:2::/64");
        assert_eq!(source_key(None), "<unknown source>");
    }

    #[test]
    fn each_source_has_a_bucket() {
        let u = Unauthenticated::new(&cfg(60, 3));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(u.take("a", t0).is_ok());
        }
        assert!(u.take("a", t0).is_err());
        assert!(u.take("b", t0).is_ok());
    }
}
