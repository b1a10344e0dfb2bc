//! Content policy: patterns refused in arguments, patterns stripped from or
//! blocking results, and size caps. The regex crate's engine runs in time
//! linear in the input, so a pattern cannot be made to backtrack forever.

use super::config::OutputAction;
use regex::{Regex, RegexBuilder};
use serde_json::Value;

/// What stripped text is replaced with.
pub const FILTERED: &str = "[FILTERED]";

/// Compiled size cap per pattern, so a config cannot exhaust memory.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// Compiles `[gate] {key}`; an invalid pattern is a config error naming
/// its index and the regex error.
pub fn compile_patterns(patterns: &[String], key: &str) -> Result<Vec<Regex>, String> {
    patterns
        .iter()
        .enumerate()
        .map(|(i, p)| {
            RegexBuilder::new(p).size_limit(PATTERN_SIZE_LIMIT).build().map_err(|e| {
                format!("[gate] {key}[{i}] = {p:?} is not a valid regex: {e}\nfix: correct the pattern (Rust regex syntax; no look-around or backreferences)")
            })
        })
        .collect()
}

/// Why content was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentRefusal {
    /// An argument string matched `blocked_input_patterns[index]`.
    InputPattern { path: String, index: usize },
    InputTooLarge { size: usize, limit: usize },
    /// What goes back to the agent (`what`: "result" or "error") matched
    /// `blocked_output_patterns[index]` under `block`.
    OutputPattern { what: &'static str, path: String, index: usize },
    OutputTooLarge { what: &'static str, size: usize, limit: usize },
}

impl std::fmt::Display for ContentRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContentRefusal::InputPattern { path, index } => {
                write!(f, "argument {path} matches [gate] blocked_input_patterns[{index}]")
            }
            ContentRefusal::InputTooLarge { size, limit } => {
                write!(f, "arguments are {size} bytes of JSON, over [gate] max_input_bytes = {limit}")
            }
            ContentRefusal::OutputPattern { what, path, index } => {
                write!(f, "{what} {path} matches [gate] blocked_output_patterns[{index}] (output_action = \"block\")")
            }
            ContentRefusal::OutputTooLarge { what, size, limit } => {
                write!(f, "{what} is {size} bytes of JSON, over [gate] max_output_bytes = {limit}")
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct ContentPolicy {
    input: Vec<Regex>,
    output: Vec<Regex>,
    action: OutputAction,
    max_input_bytes: Option<usize>,
    max_output_bytes: Option<usize>,
}

impl ContentPolicy {
    pub fn new(cfg: &super::GateConfig) -> Result<ContentPolicy, String> {
        Ok(ContentPolicy {
            input: compile_patterns(&cfg.blocked_input_patterns, "blocked_input_patterns")?,
            output: compile_patterns(&cfg.blocked_output_patterns, "blocked_output_patterns")?,
            action: cfg.output_action,
            max_input_bytes: cfg.max_input_bytes,
            max_output_bytes: cfg.max_output_bytes,
        })
    }

    /// Size cap, then every string and object key against every pattern.
    pub fn check_input(&self, args: &Value) -> Result<(), ContentRefusal> {
        if let Some(limit) = self.max_input_bytes {
            let size = json_len(args);
            if size > limit {
                return Err(ContentRefusal::InputTooLarge { size, limit });
            }
        }
        if self.input.is_empty() {
            return Ok(());
        }
        let mut found = None;
        walk(args, &mut String::from("$"), &mut |path, s| {
            if found.is_none() {
                if let Some(index) = self.input.iter().position(|r| r.is_match(s)) {
                    found = Some(ContentRefusal::InputPattern { path: path.to_string(), index });
                }
            }
        });
        found.map_or(Ok(()), Err)
    }

    /// Strips or blocks output patterns, then applies the size cap to what
    /// would be returned. Returns the value and how many strings changed.
    pub fn filter_output(&self, value: Value) -> Result<(Value, usize), ContentRefusal> {
        self.filter_value(value, "result")
    }

    /// [`ContentPolicy::filter_output`] for anything returned to the agent;
    /// `what` ("result", "error") names it in refusals.
    pub fn filter_value(&self, mut value: Value, what: &'static str) -> Result<(Value, usize), ContentRefusal> {
        let mut changed = 0;
        if !self.output.is_empty() {
            match self.action {
                OutputAction::Block => {
                    let mut found = None;
                    walk(&value, &mut String::from("$"), &mut |path, s| {
                        if found.is_none() {
                            if let Some(index) = self.output.iter().position(|r| r.is_match(s)) {
                                found = Some(ContentRefusal::OutputPattern { what, path: path.to_string(), index });
                            }
                        }
                    });
                    if let Some(f) = found {
                        return Err(f);
                    }
                }
                OutputAction::Strip => strip(&mut value, &self.output, &mut changed),
            }
        }
        if let Some(limit) = self.max_output_bytes {
            let size = json_len(&value);
            if size > limit {
                return Err(ContentRefusal::OutputTooLarge { what, size, limit });
            }
        }
        Ok((value, changed))
    }

    /// `text` with every `blocked_output_patterns` match replaced, whatever
    /// `output_action` says: for text that is logged, not returned.
    pub fn redact_text(&self, text: &str) -> String {
        let mut v = Value::String(text.to_string());
        strip(&mut v, &self.output, &mut 0);
        match v {
            Value::String(s) => s,
            _ => String::new(),
        }
    }
}

fn json_len(v: &Value) -> usize {
    serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX)
}

/// Calls `f(json_path, string)` for every string and object key, depth
/// first, with an explicit stack (no recursion on untrusted depth).
fn walk(v: &Value, root: &mut String, f: &mut dyn FnMut(&str, &str)) {
    let mut stack: Vec<(String, &Value)> = vec![(std::mem::take(root), v)];
    while let Some((path, v)) = stack.pop() {
        match v {
            Value::String(s) => f(&path, s),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate().rev() {
                    stack.push((format!("{path}[{i}]"), item));
                }
            }
            Value::Object(map) => {
                for (k, item) in map.iter().rev() {
                    let child = format!("{path}.{k}");
                    f(&child, k);
                    stack.push((child, item));
                }
            }
            _ => {}
        }
    }
}

fn strip(v: &mut Value, patterns: &[Regex], changed: &mut usize) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => {
                let mut out = std::borrow::Cow::Borrowed(s.as_str());
                for r in patterns {
                    if r.is_match(&out) {
                        out = std::borrow::Cow::Owned(r.replace_all(&out, FILTERED).into_owned());
                    }
                }
                if let std::borrow::Cow::Owned(o) = out {
                    *s = o;
                    *changed += 1;
                }
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            Value::Object(map) => stack.extend(map.values_mut()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::GateConfig;
    use serde_json::json;

    fn policy(input: &[&str], output: &[&str], action: OutputAction, max_in: Option<usize>, max_out: Option<usize>) -> ContentPolicy {
        let cfg = GateConfig {
            blocked_input_patterns: input.iter().map(|s| s.to_string()).collect(),
            blocked_output_patterns: output.iter().map(|s| s.to_string()).collect(),
            output_action: action,
            max_input_bytes: max_in,
            max_output_bytes: max_out,
            ..GateConfig::default()
        };
        ContentPolicy::new(&cfg).unwrap()
    }

    #[test]
    fn input_patterns_reach_every_string_with_its_path() {
        let p = policy(&[r"(?i)drop\s+table", r"\.\./"], &[], OutputAction::Strip, None, None);
        let cases: &[(Value, Option<(&str, usize)>)] = &[
            (json!({"q": "select 1"}), None),
            (json!({"q": "DROP  TABLE x"}), Some(("$.q", 0))),
            (json!({"a": {"b": ["ok", "../etc"]}}), Some(("$.a.b[1]", 1))),
            (json!({"../k": 1}), Some(("$.../k", 1))),
            (json!({"n": 5, "b": true, "z": null}), None),
            (json!("drop table"), Some(("$", 0))),
        ];
        for (args, want) in cases {
            let got = p.check_input(args);
            match want {
                None => assert_eq!(got, Ok(()), "{args}"),
                Some((path, index)) => {
                    assert_eq!(got, Err(ContentRefusal::InputPattern { path: path.to_string(), index: *index }), "{args}")
                }
            }
        }
    }

    #[test]
    fn input_size_cap() {
        let p = policy(&[], &[], OutputAction::Strip, Some(10), None);
        assert!(p.check_input(&json!({"a": 1})).is_ok());
        assert_eq!(p.check_input(&json!({"a": "0123456789"})), Err(ContentRefusal::InputTooLarge { size: 18, limit: 10 }));
    }

    #[test]
    fn output_strip_replaces_every_match() {
        let p = policy(&[], &[r"sk-[A-Za-z0-9]{8}", "secret"], OutputAction::Strip, None, None);
        let (v, n) = p.filter_output(json!({"a": "key sk-ABCDEFGH and sk-12345678", "b": ["a secret", "fine"], "c": 3})).unwrap();
        assert_eq!(v, json!({"a": "key [FILTERED] and [FILTERED]", "b": ["a [FILTERED]", "fine"], "c": 3}));
        assert_eq!(n, 2);
        let (v, n) = p.filter_output(json!("nothing here")).unwrap();
        assert_eq!((v, n), (json!("nothing here"), 0));
    }

    #[test]
    fn errors_are_named_and_logged_text_is_redacted() {
        let p = policy(&[], &["SECRET-[0-9]+"], OutputAction::Block, None, Some(20));
        let e = p.filter_value(json!({"message": "x SECRET-1"}), "error").unwrap_err();
        assert_eq!(e.to_string(), "error $.message matches [gate] blocked_output_patterns[0] (output_action = \"block\")");
        let e = p.filter_value(json!({"message": "y".repeat(30)}), "error").unwrap_err();
        assert!(e.to_string().starts_with("error is 44 bytes"), "{e}");
        // Logged text is stripped whatever output_action says.
        assert_eq!(p.redact_text("a SECRET-42 b\nSECRET-7"), "a [FILTERED] b\n[FILTERED]");
    }

    #[test]
    fn output_block_names_the_path() {
        let p = policy(&[], &["secret"], OutputAction::Block, None, None);
        assert_eq!(
            p.filter_output(json!({"x": ["ok", "my secret"]})),
            Err(ContentRefusal::OutputPattern { what: "result", path: "$.x[1]".into(), index: 0 })
        );
        assert!(p.filter_output(json!({"x": "ok"})).is_ok());
    }

    #[test]
    fn output_size_cap_applies_after_stripping() {
        let p = policy(&[], &["y+"], OutputAction::Strip, None, Some(12));
        assert_eq!(p.filter_output(json!("yyyyyyyyyyyyyyyyyyyy")).unwrap().0, json!("[FILTERED]"));
        assert!(matches!(p.filter_output(json!("xxxxxxxxxxxxxxxxx")), Err(ContentRefusal::OutputTooLarge { .. })));
    }

    #[test]
    fn invalid_patterns_are_config_errors() {
        let e = compile_patterns(&["ok".into(), "(unclosed".into()], "blocked_input_patterns").unwrap_err();
        assert!(e.contains("blocked_input_patterns[1]") && e.contains("(unclosed") && e.contains("fix:"), "{e}");
        let e = compile_patterns(&[r"(a)\1".into()], "blocked_output_patterns").unwrap_err();
        assert!(e.contains("blocked_output_patterns[0]"), "{e}");
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let mut v = json!("drop table");
        // Request JSON is parsed with serde_json's depth limit (128), so
        // this is deeper than any argument can be.
        for _ in 0..1000 {
            v = Value::Array(vec![v]);
        }
        let p = policy(&["drop table"], &[], OutputAction::Strip, None, None);
        assert!(p.check_input(&v).is_err());
    }
}
