//! Scrubs PII and secrets from anything recorded: each match becomes
//! `[REDACTED:<kind>]`.
//!
//! ```
//! use wasmward::audit::Redactor;
//! let r = Redactor::new(&["acct-\\d+".to_string()]).unwrap();
//! assert_eq!(r.redact_str("mail bob@example.com re acct-42"),
//!            "mail [REDACTED:email] re [REDACTED:custom]");
//! assert_eq!(r.redact_str("nothing here"), "nothing here");
//! ```
//!
//! Card numbers need a Luhn-valid 13–19 digit run starting 2–6 (the issuer
//! ranges), so timestamps and ids are left alone. Bare 10-digit numbers are
//! not treated as phones (too many false positives); US numbers need
//! separators or parentheses. IPv4 is opt-in (`redact_ipv4`).

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::{Captures, Regex, RegexSet};
use serde_json::Value;

use super::error::{AuditError, Result};

struct Rule {
    kind: &'static str,
    re: Regex,
    /// Extra check on the whole match; a failing match is left as is.
    check: Option<fn(&str) -> bool>,
    /// Keep capture group 1 (the context, e.g. `aws_secret_access_key=`).
    keep_prefix: bool,
}

impl Rule {
    fn apply<'a>(&self, s: &'a str) -> Cow<'a, str> {
        // Near-misses (a Luhn failure) must not cost an allocation.
        if let Some(check) = self.check {
            if !self.re.find_iter(s).any(|m| check(m.as_str())) {
                return Cow::Borrowed(s);
            }
        }
        self.re.replace_all(s, |caps: &Captures| {
            let whole = &caps[0];
            if self.check.is_some_and(|check| !check(whole)) {
                return whole.to_string();
            }
            let prefix = if self.keep_prefix {
                caps.get(1).map_or("", |m| m.as_str())
            } else {
                ""
            };
            format!("{prefix}[REDACTED:{}]", self.kind)
        })
    }
}

struct Builtin {
    rules: Vec<Rule>,
    set: RegexSet,
    ipv4: Rule,
}

/// (kind, pattern, extra check, keep group 1)
type Spec = (&'static str, &'static str, Option<fn(&str) -> bool>, bool);

// Order matters: multi-line and prefixed secrets first, so that a token is
// not half-eaten by a generic rule (sk-ant- before sk-, PEM before anything).
const BUILTIN: &[Spec] = &[
    (
        "private_key",
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
        None,
        false,
    ),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
        None,
        false,
    ),
    (
        "github_token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,})",
        None,
        false,
    ),
    (
        "aws_access_key",
        r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
        None,
        false,
    ),
    (
        "aws_secret",
        r#"(?i)(aws_secret_access_key["']?\s*[=:]\s*["']?)[A-Za-z0-9/+=]{40}"#,
        None,
        true,
    ),
    (
        "slack_token",
        r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
        None,
        false,
    ),
    ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_-]{20,}", None, false),
    (
        "openai_key",
        r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
        Some(has_digit),
        false,
    ),
    (
        "stripe_key",
        r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}",
        None,
        false,
    ),
    (
        "email",
        r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
        None,
        false,
    ),
    ("card", r"\b\d(?:[ -]?\d){12,18}\b", Some(card_ok), false),
    ("ssn", r"\b\d{3}-\d{2}-\d{4}\b", Some(ssn_ok), false),
    ("phone", r"\+[1-9]\d{7,14}\b", None, false),
    (
        "phone",
        r"\+[1-9]\d{0,2}[ .-]\(?\d{1,4}\)?(?:[ .-]\d{2,4}){2,3}\b",
        None,
        false,
    ),
    (
        "phone",
        r"(?:\b1[-. ])?(?:\(\d{3}\) ?|\b\d{3}[-.])\d{3}[-.]\d{4}\b",
        None,
        false,
    ),
];

const IPV4: &str =
    r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b";

fn builtin() -> &'static Builtin {
    static B: OnceLock<Builtin> = OnceLock::new();
    B.get_or_init(|| {
        let rules: Vec<Rule> = BUILTIN
            .iter()
            .map(|&(kind, pat, check, keep_prefix)| Rule {
                kind,
                re: Regex::new(pat).expect("built-in redaction regex"),
                check,
                keep_prefix,
            })
            .collect();
        let set = RegexSet::new(BUILTIN.iter().map(|r| r.1)).expect("built-in redaction set");
        let ipv4 = Rule {
            kind: "ipv4",
            re: Regex::new(IPV4).unwrap(),
            check: None,
            keep_prefix: false,
        };
        Builtin { rules, set, ipv4 }
    })
}

fn has_digit(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit())
}

fn card_ok(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    let issuer = matches!(digits.first(), Some(2..=6));
    let all_same = digits.iter().all(|d| *d == digits[0]);
    issuer && !all_same && (13..=19).contains(&digits.len()) && luhn(&digits)
}

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn ssn_ok(s: &str) -> bool {
    // `\d` also matches non-ASCII digits, whose bytes the split below
    // would cut through.
    if !s.is_ascii() {
        return true;
    }
    let (area, rest) = s.split_at(3);
    let (group, serial) = (&rest[1..3], &rest[4..]);
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

/// Whether any built-in rule (or the IPv4 one) could match somewhere in
/// `s`; `false` only when none can, so the regexes are skipped for the
/// short plain strings most rows are made of (names, hex ids, outcomes).
///
/// Derived from the patterns in [`BUILTIN`] and [`IPV4`]; a test checks it
/// against the regexes themselves. Any non-ASCII text goes to the regexes
/// (`\d` and `\b` are Unicode-aware). In ASCII text:
/// - every rule needs an ASCII digit, `@`, `-` or `_`, except `jwt`
///   (`eyJ`) and `aws_access_key` (`AKIA`/`ASIA`);
/// - in text of letters and digits only (no punctuation, so `\b` holds only
///   at its ends) with a digit, only `aws_access_key` and `card` (the whole
///   text 13–19 digits) can match.
fn may_match_builtin(s: &str) -> bool {
    let b = s.as_bytes();
    let (mut digits, mut punct) = (0usize, false);
    for (i, &c) in b.iter().enumerate() {
        if c.is_ascii_digit() {
            digits += 1;
        } else if c.is_ascii_alphabetic() {
            // The tail of `eyJ`, `AKIA`, `ASIA`.
            let before = &b[..=i];
            if (c == b'J' && before.ends_with(b"eyJ"))
                || (c == b'A' && (before.ends_with(b"AKIA") || before.ends_with(b"ASIA")))
            {
                return true;
            }
        } else if !c.is_ascii() || matches!(c, b'@' | b'-' | b'_') {
            return true;
        } else {
            punct = true;
        }
    }
    if digits == 0 {
        return false;
    }
    // (IPv4 needs dots: punctuation.)
    punct || (digits == b.len() && (13..=19).contains(&digits))
}

/// Built-in rules plus the operator's `redact_patterns`. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    extra: Vec<Regex>,
    ipv4: bool,
}

impl Redactor {
    /// Compiles `extra_patterns`; a bad one is an error naming its index and text.
    pub fn new(extra_patterns: &[String]) -> Result<Redactor> {
        let extra = extra_patterns
            .iter()
            .enumerate()
            .map(|(index, p)| {
                Regex::new(p).map_err(|source| AuditError::BadPattern {
                    index,
                    pattern: p.clone(),
                    source,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Redactor { extra, ipv4: false })
    }

    /// Also redact dotted IPv4 addresses.
    pub fn with_ipv4(mut self, on: bool) -> Redactor {
        self.ipv4 = on;
        self
    }

    /// `s` with every match replaced; borrowed when nothing matched.
    pub fn redact_str<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(s);
        if may_match_builtin(s) {
            out = self.redact_builtin(s);
        }
        for re in &self.extra {
            if let Cow::Owned(n) = re.replace_all(&out, "[REDACTED:custom]") {
                out = Cow::Owned(n);
            }
        }
        out
    }

    /// The built-in rules (and IPv4 when enabled) over `s`.
    fn redact_builtin<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let b = builtin();
        let mut out = Cow::Borrowed(s);
        // One pass of the set picks the few rules worth running.
        let hits = b.set.matches(s);
        let rules = hits
            .iter()
            .map(|i| &b.rules[i])
            .chain(self.ipv4.then_some(&b.ipv4));
        for rule in rules {
            if let Cow::Owned(n) = rule.apply(&out) {
                out = Cow::Owned(n);
            }
        }
        out
    }

    /// Redacts every string in `v`, recursively, object keys included.
    pub fn redact_json(&self, v: &mut Value) {
        match v {
            Value::String(s) => {
                if let Cow::Owned(n) = self.redact_str(s) {
                    *s = n;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.redact_json(i)),
            Value::Object(map) => {
                if map
                    .keys()
                    .any(|k| matches!(self.redact_str(k), Cow::Owned(_)))
                {
                    let old = std::mem::take(map);
                    for (k, val) in old {
                        map.insert(self.redact_str(&k).into_owned(), val);
                    }
                }
                map.values_mut().for_each(|i| self.redact_json(i));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// (input, expected) with IPv4 redaction off.
    const CASES: &[(&str, &str)] = &[
        // email
        ("contact alice.smith+x@mail.example.co.uk now", "contact [REDACTED:email] now"),
        ("a@b.io", "[REDACTED:email]"),
        ("user@localhost", "user@localhost"),
        ("not an @ email", "not an @ email"),
        // phone
        ("call +14155550100.", "call [REDACTED:phone]."),
        ("call +44 20 7946 0958", "call [REDACTED:phone]"),
        ("call (415) 555-0100", "call [REDACTED:phone]"),
        ("call 415-555-0100 or 415.555.0100", "call [REDACTED:phone] or [REDACTED:phone]"),
        ("call 1-800-555-0199", "call [REDACTED:phone]"),
        ("date 2024-01-15", "date 2024-01-15"),
        ("version 1.2.3", "version 1.2.3"),
        ("id 4155550100", "id 4155550100"),
        // ssn
        ("ssn 123-45-6789", "ssn [REDACTED:ssn]"),
        ("ssn 000-45-6789", "ssn 000-45-6789"),
        ("ssn 666-45-6789", "ssn 666-45-6789"),
        ("ssn 123-00-6789", "ssn 123-00-6789"),
        // cards
        ("card 4111111111111111", "card [REDACTED:card]"),
        ("card 4111 1111 1111 1111 exp", "card [REDACTED:card] exp"),
        ("card 5500-0000-0000-0004", "card [REDACTED:card]"),
        ("amex 378282246310005", "amex [REDACTED:card]"),
        ("luhn fails 4111111111111112", "luhn fails 4111111111111112"),
        ("ts 1700000000000", "ts 1700000000000"),
        ("zeros 0000000000000000", "zeros 0000000000000000"),
        ("too long 41111111111111111111111", "too long 41111111111111111111111"),
        // GitHub
        ("tok ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123", "tok [REDACTED:github_token]"),
        ("gho_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123", "[REDACTED:github_token]"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv", "[REDACTED:github_token]"),
        ("ghp_short", "ghp_short"),
        // AWS
        ("key AKIAIOSFODNN7EXAMPLE end", "key [REDACTED:aws_access_key] end"),
        ("ASIAY34FZKBOKMUTVV7A", "[REDACTED:aws_access_key]"),
        ("AKIA-not-a-key", "AKIA-not-a-key"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key = [REDACTED:aws_secret]",
        ),
        (
            "\"AWS_SECRET_ACCESS_KEY\": \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"",
            "\"AWS_SECRET_ACCESS_KEY\": \"[REDACTED:aws_secret]\"",
        ),
        // Slack, OpenAI, Anthropic, Stripe
        ("xoxb-1234567890-abcdefghij", "[REDACTED:slack_token]"),
        ("xoxz-1234567890-abcdefghij", "xoxz-1234567890-abcdefghij"),
        ("sk-abcdefghijklmnop1234567890ABCD", "[REDACTED:openai_key]"),
        ("sk-proj-abc123DEF456ghi789JKL012mno345", "[REDACTED:openai_key]"),
        ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345", "[REDACTED:anthropic_key]"),
        ("pip install sk-learn-something-else-entirely", "pip install sk-learn-something-else-entirely"),
        ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "[REDACTED:stripe_key]"),
        ("rk_live_4eC39HqLyjWDarjtT1zdp7dc", "[REDACTED:stripe_key]"),
        ("pk_live_4eC39HqLyjWDarjtT1zdp7dc", "[REDACTED:stripe_key]"),
        ("sk_dead_4eC39HqLyjWDarjtT1zdp7dc", "sk_dead_4eC39HqLyjWDarjtT1zdp7dc"),
        // JWT
        (
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "Bearer [REDACTED:jwt]",
        ),
        ("eyJhbGciOiJIUzI1NiJ9 alone", "eyJhbGciOiJIUzI1NiJ9 alone"),
        // PEM
        (
            "x -----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY----- y",
            "x [REDACTED:private_key] y",
        ),
        ("-----BEGIN PRIVATE KEY-----\nMIIEvg truncated", "[REDACTED:private_key]"),
        ("-----BEGIN CERTIFICATE-----\nMIIB", "-----BEGIN CERTIFICATE-----\nMIIB"),
        // IPv4 is off by default
        ("connect 10.0.0.1:80", "connect 10.0.0.1:80"),
        // plain words and paths
        ("the quick brown fox", "the quick brown fox"),
        ("/home/user/data/report-2024.csv", "/home/user/data/report-2024.csv"),
        ("", ""),
    ];

    #[test]
    fn builtin_table() {
        let r = Redactor::new(&[]).unwrap();
        for (input, want) in CASES {
            assert_eq!(r.redact_str(input), *want, "input: {input:?}");
        }
    }

    #[test]
    fn unchanged_strings_are_borrowed() {
        let r = Redactor::new(&[]).unwrap();
        for (input, want) in CASES.iter().filter(|(i, w)| i == w) {
            assert!(matches!(r.redact_str(input), Cow::Borrowed(_)), "{want}");
        }
    }

    /// `may_match_builtin` may skip the regexes only where they would
    /// change nothing: checked on the table, on every cut of it, and on
    /// random strings over an alphabet of the characters the rules use.
    #[test]
    fn prefilter_skips_only_strings_no_rule_changes() {
        let plain = Redactor::new(&[]).unwrap();
        let ipv4 = Redactor::new(&[]).unwrap().with_ipv4(true);
        let check = |s: &str| {
            for r in [&plain, &ipv4] {
                if !may_match_builtin(s) {
                    assert!(matches!(r.redact_builtin(s), Cow::Borrowed(_)), "prefilter skipped {s:?}");
                }
            }
        };
        let mut skipped = 0;
        for (input, _) in CASES {
            check(input);
            for (i, _) in input.char_indices() {
                check(&input[i..]);
                check(&input[..i]);
            }
        }
        let alphabet: Vec<char> = "0123456789abcdefgAKISxyJeEhpou_-.@+( ): /=\"'\nk٤١".chars().collect();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200_000 {
            let len = (next() % 24) as usize;
            let s: String = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            skipped += usize::from(!may_match_builtin(&s));
            check(&s);
        }
        // Digit runs, hex ids and AWS-like keys around the edges.
        for s in ["4111111111111111", "0123456789abcdef0123456789abcdef", "AKIAIOSFODNN7EXAMPLE", "x4111111111111111", "1234567890123456789"] {
            check(s);
        }
        assert!(skipped > 1000, "the prefilter should skip something: {skipped}");
        for s in ["bench", "text", "ok", "0123456789abcdef0123456789abcdef", &"ab".repeat(32)] {
            assert!(!may_match_builtin(s), "{s}");
        }
    }

    #[test]
    fn non_ascii_digits_in_an_ssn_shape_do_not_panic() {
        let r = Redactor::new(&[]).unwrap();
        assert_eq!(r.redact_str("ssn ١٢٣-٤٥-٦٧٨٩"), "ssn [REDACTED:ssn]");
    }

    #[test]
    fn ipv4_only_when_enabled() {
        let cases = [
            ("connect 10.0.0.1:80", "connect [REDACTED:ipv4]:80"),
            ("169.254.169.254", "[REDACTED:ipv4]"),
            ("999.1.1.1", "999.1.1.1"),
            ("1.2.3", "1.2.3"),
        ];
        let r = Redactor::new(&[]).unwrap().with_ipv4(true);
        for (input, want) in cases {
            assert_eq!(r.redact_str(input), want, "input: {input:?}");
        }
    }

    #[test]
    fn custom_patterns_and_errors() {
        let r = Redactor::new(&["acct-\\d+".into(), "(?i)secret-word".into()]).unwrap();
        assert_eq!(
            r.redact_str("acct-1 SECRET-WORD"),
            "[REDACTED:custom] [REDACTED:custom]"
        );
        let err = Redactor::new(&["fine".into(), "[z-a]".into()]).unwrap_err();
        assert!(
            matches!(err, AuditError::BadPattern { index: 1, ref pattern, .. } if pattern == "[z-a]")
        );
    }

    #[test]
    fn json_strings_and_keys_redacted_recursively() {
        let r = Redactor::new(&[]).unwrap();
        let mut v = json!({
            "to": "bob@example.com",
            "n": 4111111111111111u64,
            "list": ["x", {"deep": "ssn 123-45-6789"}],
            "carol@example.com": true,
        });
        r.redact_json(&mut v);
        assert_eq!(
            v,
            json!({
                "to": "[REDACTED:email]",
                "n": 4111111111111111u64,
                "list": ["x", {"deep": "ssn [REDACTED:ssn]"}],
                "[REDACTED:email]": true,
            })
        );
    }
}
