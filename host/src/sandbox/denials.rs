//! The one sink every capability reports its refusals to. The runtime turns
//! the collected denials into audit events after the call; capabilities
//! never write the audit log themselves.
//!
//! The sink is bounded, whatever the guest does: a tool looping on a refused
//! operation must not turn one call into thousands of audit rows, log lines
//! or megabytes of host memory.
//!
//! - The first [`MAX_FULL_DENIALS`] denials of a call are kept in full.
//! - Past them only a count is kept per (kind, op, action), with the target
//!   and rule of the last one seen: a [`DenialSummary`], audited as one
//!   denial row with `count` set.
//! - Every kept target and rule is cut to [`MAX_DENIAL_TEXT_BYTES`], with
//!   the original length noted (`…[truncated, 1048576 bytes]`).
//! - The first [`MAX_TRACED_DENIALS`] denials of a call are logged one line
//!   each; the rest are counted in one line when the call ends.
//!
//! Memory is bounded by 32 full denials of at most 2 kB of text each plus
//! one summary per distinct (kind, op, action), and ops are host literals.

use crate::policy::{DenialKind, ViolationAction};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Denials of one call kept one by one; later ones are only counted.
pub const MAX_FULL_DENIALS: usize = 32;
/// Longest target or rule kept for a denial, in bytes (before the note).
pub const MAX_DENIAL_TEXT_BYTES: usize = 1024;
/// Denials of one call logged one line each; later ones are summed up.
pub const MAX_TRACED_DENIALS: u64 = 8;

/// One refused (or, in `log` mode, allowed-but-recorded) capability use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Denial {
    pub kind: DenialKind,
    /// What was attempted: `read`, `write`, `create`, `remove`, `connect`, ...
    pub op: String,
    /// The guest path, `host:port`, address or program.
    pub target: String,
    /// Why: the rule that refused it.
    pub rule: String,
    /// `denied`, or `logged` under `sandbox_violation_action = "log"`.
    pub action: &'static str,
}

impl Denial {
    /// A denial whose `action` records what `action` did: refused
    /// (`denied`) or let through in discovery mode (`logged`).
    pub fn new(kind: DenialKind, op: &str, target: String, rule: String, action: ViolationAction) -> Denial {
        let action = match action {
            ViolationAction::Deny => "denied",
            ViolationAction::Log => "logged",
        };
        Denial { kind, op: op.into(), target, rule, action }
    }
}

impl std::fmt::Display for Denial {
    /// `denied fs write /data/x: read-only mount /data`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {} {}: {}", self.action, self.kind.as_str(), self.op, self.target, self.rule)
    }
}

/// Denials of one (kind, op, action) past the first [`MAX_FULL_DENIALS`]
/// of a call: how many, and the last one's target and rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DenialSummary {
    pub kind: DenialKind,
    pub op: String,
    pub action: &'static str,
    pub count: u64,
    pub last_target: String,
    pub last_rule: String,
}

/// Everything a call's sink collected, taken once at the end of the call.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DenialLog {
    /// The first [`MAX_FULL_DENIALS`] denials, in order.
    pub full: Vec<Denial>,
    /// The rest, counted per (kind, op, action), in that order.
    pub summarized: Vec<DenialSummary>,
    /// Every denial of the call: `full.len()` plus the summaries' counts.
    pub total: u64,
}

/// `s` cut to at most `max` bytes (on a character boundary) followed by
/// `…[truncated, N bytes]`, N the original length; unchanged if it fits.
pub fn truncate_text(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[truncated, {} bytes]", &s[..end], s.len())
}

#[derive(Debug, Default)]
struct Inner {
    full: Vec<Denial>,
    summarized: BTreeMap<(&'static str, String, &'static str), DenialSummary>,
    total: u64,
}

/// Shared per-call sink of denials; cheap to clone into host closures.
#[derive(Debug, Clone, Default)]
pub struct Denials(Arc<Mutex<Inner>>);

impl Denials {
    pub fn record(&self, mut d: Denial) {
        d.target = truncate_text(&d.target, MAX_DENIAL_TEXT_BYTES);
        d.rule = truncate_text(&d.rule, MAX_DENIAL_TEXT_BYTES);
        let mut inner = self.0.lock().unwrap_or_else(|e| e.into_inner());
        inner.total += 1;
        let n = inner.total;
        if n <= MAX_TRACED_DENIALS {
            tracing::warn!(kind = d.kind.as_str(), op = %d.op, target = %d.target, rule = %d.rule, action = d.action, "capability refused");
        } else if n == MAX_TRACED_DENIALS + 1 {
            tracing::warn!(
                "more capabilities refused in this call; further ones are counted, not logged one by one (the call's audit row has the total)"
            );
        }
        if inner.full.len() < MAX_FULL_DENIALS {
            inner.full.push(d);
            return;
        }
        let key = (d.kind.as_str(), d.op.clone(), d.action);
        let s = inner.summarized.entry(key).or_insert_with(|| DenialSummary {
            kind: d.kind,
            op: d.op,
            action: d.action,
            count: 0,
            last_target: String::new(),
            last_rule: String::new(),
        });
        s.count += 1;
        s.last_target = d.target;
        s.last_rule = d.rule;
    }

    /// Everything recorded so far; the sink is empty afterwards.
    pub fn take(&self) -> DenialLog {
        let inner = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        if inner.total > MAX_TRACED_DENIALS {
            tracing::warn!(
                total = inner.total,
                not_logged = inner.total - MAX_TRACED_DENIALS,
                "capabilities refused in this call: {} in all, {} not logged one by one",
                inner.total,
                inner.total - MAX_TRACED_DENIALS
            );
        }
        DenialLog { full: inner.full, summarized: inner.summarized.into_values().collect(), total: inner.total }
    }

    /// Every denial recorded so far (kept or only counted).
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).total as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(kind: DenialKind, op: &str, target: &str) -> Denial {
        Denial::new(kind, op, target.into(), "rule".into(), ViolationAction::Deny)
    }

    #[test]
    fn texts_are_cut_at_a_char_boundary_with_the_original_length() {
        let cases: &[(&str, usize, &str)] = &[
            ("short", 10, "short"),
            ("exactly10!", 10, "exactly10!"),
            ("abcdefghijk", 4, "abcd…[truncated, 11 bytes]"),
            // `é` is two bytes: a cut inside it backs off to before it.
            ("aé", 2, "a…[truncated, 3 bytes]"),
            ("", 0, ""),
        ];
        for (s, max, want) in cases {
            assert_eq!(truncate_text(s, *max), *want, "{s:?} at {max}");
        }
    }

    #[test]
    fn the_first_32_are_kept_and_the_rest_counted_per_kind_and_op() {
        // (denials recorded as (kind, op, target), full kept, summaries (kind, op, count, last target), total)
        type Case = (Vec<(DenialKind, &'static str, String)>, usize, Vec<(&'static str, &'static str, u64, String)>, u64);
        let many = |n: usize, kind, op: &'static str| (0..n).map(move |i| (kind, op, format!("/t{i}"))).collect::<Vec<_>>();
        let cases: Vec<Case> = vec![
            (vec![], 0, vec![], 0),
            (many(1, DenialKind::Fs, "read"), 1, vec![], 1),
            (many(32, DenialKind::Fs, "read"), 32, vec![], 32),
            (many(33, DenialKind::Fs, "read"), 32, vec![("fs", "read", 1, "/t32".into())], 33),
            (many(10_000, DenialKind::Fs, "read"), 32, vec![("fs", "read", 9968, "/t9999".into())], 10_000),
            (
                [many(40, DenialKind::Fs, "read"), many(5, DenialKind::Net, "connect"), many(3, DenialKind::Fs, "create")].concat(),
                32,
                vec![("fs", "create", 3, "/t2".into()), ("fs", "read", 8, "/t39".into()), ("net", "connect", 5, "/t4".into())],
                48,
            ),
        ];
        for (input, full, summaries, total) in cases {
            let sink = Denials::default();
            for (k, op, t) in &input {
                sink.record(d(*k, op, t));
            }
            assert_eq!(sink.len() as u64, total);
            let log = sink.take();
            assert_eq!(log.full.len(), full);
            assert_eq!(log.total, total);
            let got: Vec<_> = log.summarized.iter().map(|s| (s.kind.as_str(), s.op.as_str(), s.count, s.last_target.clone())).collect();
            assert_eq!(got, summaries);
            assert_eq!(log.full.len() as u64 + log.summarized.iter().map(|s| s.count).sum::<u64>(), total);
            assert!(sink.is_empty(), "take empties the sink");
        }
    }

    /// Log lines written while `f` runs on this thread.
    fn logged_lines(f: impl FnOnce()) -> Vec<String> {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || out.clone()).with_ansi(false).finish();
        tracing::subscriber::with_default(subscriber, || {
            // A callsite first hit on another test thread (no subscriber
            // there) may have cached "never"; ask again under this one.
            tracing::callsite::rebuild_interest_cache();
            f()
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn only_the_first_denials_are_logged_one_by_one_then_one_summary_line() {
        // (denials recorded, lines one by one, summary lines)
        let cases = [(0u64, 0usize, 0usize), (3, 3, 0), (8, 8, 0), (9, 8, 2), (5000, 8, 2)];
        for (n, single, summary) in cases {
            let lines = logged_lines(|| {
                let sink = Denials::default();
                for i in 0..n {
                    sink.record(d(DenialKind::Fs, "read", &format!("/t{i}")));
                }
                sink.take();
            });
            let one_by_one = lines.iter().filter(|l| l.contains("capability refused")).count();
            let summed = lines.iter().filter(|l| l.contains("not logged one by one") || l.contains("counted, not logged")).count();
            assert_eq!((one_by_one, summed, lines.len()), (single, summary, single + summary), "{n} denials: {lines:#?}");
            if n == 5000 {
                assert!(lines.last().unwrap().contains("5000 in all, 4992 not logged one by one"), "{lines:#?}");
            }
        }
    }

    #[test]
    fn long_targets_and_rules_are_truncated_when_recorded() {
        let sink = Denials::default();
        for _ in 0..40 {
            sink.record(Denial::new(DenialKind::Fs, "read", "a".repeat(1 << 20), "r".repeat(5000), ViolationAction::Deny));
        }
        let log = sink.take();
        let note = "…[truncated, 1048576 bytes]";
        for kept in &log.full {
            assert_eq!(kept.target, format!("{}{note}", "a".repeat(MAX_DENIAL_TEXT_BYTES)));
            assert_eq!(kept.rule, format!("{}…[truncated, 5000 bytes]", "r".repeat(MAX_DENIAL_TEXT_BYTES)));
        }
        assert_eq!(log.summarized[0].count, 8);
        assert!(log.summarized[0].last_target.ends_with(note) && log.summarized[0].last_target.len() < 1100);
    }
}
