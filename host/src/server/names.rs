//! One canonical name per function, resolved once at the edge, before the
//! gate. A function's canonical name is dotted (`files.fs.write`); agents
//! see it *listed* in the form the model APIs accept
//! (`^[a-zA-Z0-9_-]{1,64}$`): the dots replaced by `[server]
//! tool_name_separator` (`files__fs__write` by default), and a name longer
//! than 64 characters cut to a stable short form (a prefix plus a hash of
//! the canonical name, the same on every host and after every restart).
//!
//! Accepted spellings, best first: the canonical name; the listed name (or
//! the long form a short form stands for); then the aliases
//! `tool.<canonical>` (`files.files.fs.write`), `tool.<bare WIT name>`
//! (`files.write`) and the `__` form when the separator is another. A
//! spelling that fits more than one function is no function
//! (`unknown_function`). Filters, token scopes, rate limits, approvals,
//! content policy, metrics and audit rows only ever see the canonical name,
//! so no spelling gets past a rule written for another.

use crate::runtime::Tool;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

/// Longest piece of a caller's name echoed back in an error message.
pub const MAX_ECHOED_NAME: usize = 128;

/// The label audit rows and metrics use for a name that is not a function.
pub const UNKNOWN: &str = "<unknown>";

/// The longest name the OpenAI and Anthropic tool APIs accept.
pub const MAX_LISTED: usize = 64;

/// `[server] tool_name_separator` when unset.
pub const DEFAULT_SEPARATOR: &str = "__";

/// Hex digits of the canonical name's SHA-256 in a short form.
const HASH_DIGITS: usize = 10;

/// How a requested name resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The canonical name of exactly one loaded function.
    Function(String),
    /// No loaded tool has that name.
    UnknownTool,
    /// The tool exists (its name) but the function does not, or the
    /// spelling fits more than one function (`candidates`, canonical).
    UnknownFunction { tool: String, candidates: Vec<String> },
}

/// True when `name` is accepted by the OpenAI and Anthropic tool APIs:
/// `^[a-zA-Z0-9_-]{1,64}$`.
pub fn model_api_valid(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_LISTED && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks a `[server] tool_name_separator` value: it must keep listed names
/// inside the model APIs' alphabet.
pub fn validate_separator(sep: &str) -> Result<(), String> {
    if sep.is_empty() || sep.len() > 8 || !sep.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(format!(
            "[server] tool_name_separator = {sep:?} would make tool names the OpenAI and Anthropic APIs refuse (they accept only ^[a-zA-Z0-9_-]{{1,64}}$); use 1 to 8 of a-z, A-Z, 0-9, '_', '-', e.g. \"__\" (the default) or \"-\""
        ));
    }
    Ok(())
}

/// The long listed form of `canonical`: its dots replaced by `sep`.
pub fn long_form(canonical: &str, sep: &str) -> String {
    canonical.replace('.', sep)
}

/// The listed name of `canonical`: [`long_form`], or, past 64 characters,
/// its first 53 characters, `_` and the first 10 hex digits of the SHA-256
/// of the canonical name. Both depend only on the two strings.
pub fn listed_name(canonical: &str, sep: &str) -> String {
    let long = long_form(canonical, sep);
    if long.len() <= MAX_LISTED {
        return long;
    }
    let hash = hex::encode(Sha256::digest(canonical.as_bytes()));
    let keep = MAX_LISTED - 1 - HASH_DIGITS;
    // Listed names are ASCII (canonical names are `mcp_safe`, separators
    // are validated), but cut on a char boundary all the same.
    let mut cut = keep.min(long.len());
    while !long.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{}", &long[..cut], &hash[..HASH_DIGITS])
}

/// One function as the index sees it.
#[derive(Debug, Clone)]
pub struct FunctionName {
    /// `tool.function` or `tool.interface.function`.
    pub canonical: String,
    /// The bare WIT function name.
    pub function: String,
}

/// Every accepted spelling of every loaded function, built once per set of
/// loaded tools and separator.
#[derive(Debug, Default)]
pub struct Index {
    sep: String,
    tools: BTreeSet<String>,
    /// Canonical name → listed name.
    listed: HashMap<String, String>,
    /// Listed names and the long forms short ones stand for.
    by_listed: HashMap<String, BTreeSet<String>>,
    /// `tool.<canonical>`, `tool.<bare>`, the `__` form.
    by_alias: HashMap<String, BTreeSet<String>>,
    /// Names listed for more than one function, as messages for the operator.
    problems: Vec<String>,
}

impl Index {
    /// The index of `tools` (each tool's name and its functions) with
    /// names listed with `sep`.
    pub fn new(tools: impl IntoIterator<Item = (String, Vec<FunctionName>)>, sep: &str) -> Index {
        let mut ix = Index { sep: sep.to_string(), ..Index::default() };
        for (tool, functions) in tools {
            for f in functions {
                let listed = listed_name(&f.canonical, sep);
                let long = long_form(&f.canonical, sep);
                ix.by_listed.entry(listed.clone()).or_default().insert(f.canonical.clone());
                if long != listed {
                    ix.by_listed.entry(long).or_default().insert(f.canonical.clone());
                }
                let legacy = long_form(&f.canonical, DEFAULT_SEPARATOR);
                for alias in [format!("{tool}.{}", f.canonical), format!("{tool}.{}", f.function), legacy] {
                    ix.by_alias.entry(alias).or_default().insert(f.canonical.clone());
                }
                ix.listed.insert(f.canonical, listed);
            }
            ix.tools.insert(tool);
        }
        let mut clashes: Vec<(&String, &BTreeSet<String>)> = ix.by_listed.iter().filter(|(_, c)| c.len() > 1).collect();
        clashes.sort();
        ix.problems = clashes
            .into_iter()
            .map(|(name, c)| {
                let c: Vec<&str> = c.iter().map(String::as_str).collect();
                format!(
                    "the functions {} would all be listed to agents as {name:?} ([server] tool_name_separator = {sep:?}); rename one of the tools, or choose another tool_name_separator",
                    c.join(", ")
                )
            })
            .collect();
        ix
    }

    /// The index of loaded tools.
    pub fn of_tools<'a>(tools: impl IntoIterator<Item = &'a Tool>, sep: &str) -> Index {
        let tools = tools.into_iter().map(|t| {
            let fs = t.loaded.functions.iter().map(|f| FunctionName { canonical: f.name.clone(), function: f.function.clone() }).collect();
            (t.name.clone(), fs)
        });
        Index::new(tools, sep)
    }

    /// Names listed for more than one function (the load refuses them).
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// The separator listed names are built with.
    pub fn separator(&self) -> &str {
        &self.sep
    }

    /// The name agents see for `canonical` (MCP `tools/list`,
    /// `/v1/tools?format=openai|anthropic`).
    pub fn listed(&self, canonical: &str) -> String {
        self.listed.get(canonical).cloned().unwrap_or_else(|| listed_name(canonical, &self.sep))
    }

    /// Resolves `name`: the canonical name wins, then a listed name, then
    /// an alias that fits exactly one function.
    pub fn resolve(&self, name: &str) -> Resolved {
        if self.listed.contains_key(name) {
            return Resolved::Function(name.to_string());
        }
        for table in [&self.by_listed, &self.by_alias] {
            let Some(found) = table.get(name) else { continue };
            let mut it = found.iter();
            if let (Some(one), None) = (it.next(), it.next()) {
                return Resolved::Function(one.clone());
            }
            let candidates: Vec<String> = found.iter().cloned().collect();
            let tool = self
                .tool_of(name)
                .or_else(|| candidates.first().and_then(|c| c.split_once('.')).map(|(t, _)| t.to_string()))
                .unwrap_or_else(|| UNKNOWN.to_string());
            return Resolved::UnknownFunction { tool, candidates };
        }
        match self.tool_of(name) {
            Some(tool) => Resolved::UnknownFunction { tool, candidates: Vec::new() },
            None => Resolved::UnknownTool,
        }
    }

    /// The tool a name that is no function points at: the part before the
    /// first `.`, or the longest tool name followed by the separator (or
    /// `__`) at its start.
    fn tool_of(&self, name: &str) -> Option<String> {
        if let Some((t, _)) = name.split_once('.') {
            return self.tools.contains(t).then(|| t.to_string());
        }
        if self.tools.contains(name) {
            return Some(name.to_string());
        }
        self.tools
            .iter()
            .filter(|t| [self.sep.as_str(), DEFAULT_SEPARATOR].iter().any(|s| name.strip_prefix(t.as_str()).is_some_and(|rest| rest.starts_with(s))))
            .max_by_key(|t| t.len())
            .cloned()
    }
}

type ToolMap = BTreeMap<String, Arc<Tool>>;

/// The [`Index`] of the tools loaded now, rebuilt when the tools or the
/// separator change (a reload). Calls only take the read lock.
#[derive(Default)]
pub struct Cache {
    current: RwLock<Option<(Arc<ToolMap>, Arc<Index>)>>,
}

impl Cache {
    pub fn get(&self, tools: Arc<ToolMap>, sep: &str) -> Arc<Index> {
        let fresh = |cur: &Option<(Arc<ToolMap>, Arc<Index>)>| match cur {
            Some((t, ix)) if Arc::ptr_eq(t, &tools) && ix.sep == sep => Some(ix.clone()),
            _ => None,
        };
        if let Some(ix) = fresh(&self.current.read().unwrap_or_else(|e| e.into_inner())) {
            return ix;
        }
        let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
        if let Some(ix) = fresh(&cur) {
            return ix;
        }
        let ix = Arc::new(Index::of_tools(tools.values().map(|t| &**t), sep));
        *cur = Some((tools, ix.clone()));
        ix
    }
}

/// `s` cut to [`MAX_ECHOED_NAME`] characters, noting the original length.
pub fn capped(s: &str) -> String {
    cap(s, MAX_ECHOED_NAME)
}

/// `s` cut to `max` characters (on a char boundary), noting the original
/// length in bytes when it was cut.
pub fn cap(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((i, _)) => format!("{}… ({} bytes)", &s[..i], s.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capping_keeps_short_names_and_notes_the_length() {
        assert_eq!(capped("text.greet"), "text.greet");
        let long = "é".repeat(200);
        let c = capped(&long);
        assert!(c.starts_with(&"é".repeat(128)) && c.ends_with("(400 bytes)"), "{c}");
        assert_eq!(cap("abc", 3), "abc");
        assert_eq!(cap("abcd", 3), "abc… (4 bytes)");
    }

    fn f(canonical: &str, function: &str) -> FunctionName {
        FunctionName { canonical: canonical.into(), function: function.into() }
    }

    const LONG_TOOL: &str = "a-tool-with-a-name-long-enough-to-push-listed-names-past-64";

    fn index(sep: &str) -> Index {
        let tools = vec![
            ("files".to_string(), vec![f("files.write", "write"), f("files.fs.write", "write"), f("files.fs.read", "read")]),
            ("text".to_string(), vec![f("text.greet", "greet"), f("text.analysis.word-stats", "word-stats"), f("text.analysis.greet", "greet")]),
            ("text_x".to_string(), vec![f("text_x.run", "run")]),
            (LONG_TOOL.to_string(), vec![f(&format!("{LONG_TOOL}.analysis.word-stats"), "word-stats"), f(&format!("{LONG_TOOL}.greet"), "greet")]),
            ("empty".to_string(), vec![]),
        ];
        Index::new(tools, sep)
    }

    #[test]
    fn listed_names_fit_the_model_apis() {
        let long = format!("{LONG_TOOL}.analysis.word-stats");
        let cases: Vec<(&str, &str, String)> = vec![
            ("text.greet", "__", "text__greet".into()),
            ("text.analysis.word-stats", "__", "text__analysis__word-stats".into()),
            ("text.analysis.word-stats", "-", "text-analysis-word-stats".into()),
            ("text.analysis.word-stats", "_x_", "text_x_analysis_x_word-stats".into()),
            // 59 + 2 + 5 = 66 characters: cut to 53, `_`, 10 hex digits.
            (&long, "__", format!("{}_{}", &long_form(&long, "__")[..53], &hex::encode(Sha256::digest(long.as_bytes()))[..10])),
        ];
        for (canonical, sep, want) in cases {
            let got = listed_name(canonical, sep);
            assert_eq!(got, want, "{canonical} with {sep:?}");
            assert!(model_api_valid(&got), "{got}");
        }
        // The README's example.
        assert_eq!(
            listed_name("customer-relationship-management-connector.contacts.find-by-email", "__"),
            "customer-relationship-management-connector__contacts__e71e9cfb80"
        );
        // The short form is exactly 64 characters and depends only on the name.
        let short = listed_name(&long, "__");
        assert_eq!(short.len(), 64);
        assert_eq!(short, listed_name(&long, "__"));
        assert_ne!(short, listed_name(&format!("{LONG_TOOL}.analysis.word-stat2"), "__"));
        // Exactly 64 stays long.
        let at_limit = format!("{}.{}", "t".repeat(30), "f".repeat(32));
        assert_eq!(at_limit.replace('.', "__").len(), 64);
        assert_eq!(listed_name(&at_limit, "__"), at_limit.replace('.', "__"));
    }

    #[test]
    fn model_api_pattern() {
        let cases = [("a", true), ("text__greet", true), ("A-z_0", true), ("", false), ("text.greet", false), ("a b", false), ("é", false)];
        for (n, want) in cases {
            assert_eq!(model_api_valid(n), want, "{n:?}");
        }
        assert!(model_api_valid(&"x".repeat(64)) && !model_api_valid(&"x".repeat(65)));
    }

    #[test]
    fn separators_are_checked() {
        for ok in ["__", "-", "_", "--", "_x_", "Z9"] {
            assert!(validate_separator(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "/", " ", "__.__", "::", "é", "123456789"] {
            let e = validate_separator(bad).unwrap_err();
            assert!(e.contains("[server] tool_name_separator") && e.contains("^[a-zA-Z0-9_-]"), "{e}");
        }
    }

    #[test]
    fn every_spelling_resolves_to_one_canonical_name() {
        let ix = index("__");
        assert!(ix.problems().is_empty(), "{:?}", ix.problems());
        let long = format!("{LONG_TOOL}.analysis.word-stats");
        let short = listed_name(&long, "__");
        let fun = |n: &str| Resolved::Function(n.to_string());
        let unknown_fn = |t: &str, c: &[&str]| Resolved::UnknownFunction { tool: t.into(), candidates: c.iter().map(|s| s.to_string()).collect() };
        let cases: Vec<(String, Resolved)> = vec![
            // Canonical names win, also over another function's bare alias.
            ("files.write".into(), fun("files.write")),
            ("files.fs.write".into(), fun("files.fs.write")),
            ("text.greet".into(), fun("text.greet")),
            // Listed names.
            ("files__fs__write".into(), fun("files.fs.write")),
            ("text__analysis__word-stats".into(), fun("text.analysis.word-stats")),
            ("text_x__run".into(), fun("text_x.run")),
            (short.clone(), fun(&long)),
            (long_form(&long, "__"), fun(&long)),
            // Aliases.
            ("files.files.fs.write".into(), fun("files.fs.write")),
            ("files.read".into(), fun("files.fs.read")),
            ("text.word-stats".into(), fun("text.analysis.word-stats")),
            ("text.text.greet".into(), fun("text.greet")),
            // Nothing else.
            ("files.fs.nope".into(), unknown_fn("files", &[])),
            ("files__nope".into(), unknown_fn("files", &[])),
            ("text_x__nope".into(), unknown_fn("text_x", &[])),
            ("text".into(), unknown_fn("text", &[])),
            ("empty.x".into(), unknown_fn("empty", &[])),
            ("files__fs.write".into(), Resolved::UnknownTool),
            ("nope.greet".into(), Resolved::UnknownTool),
            ("nope__greet".into(), Resolved::UnknownTool),
            ("TEXT__GREET".into(), Resolved::UnknownTool),
            ("text.greet ".into(), unknown_fn("text", &[])),
            ("".into(), Resolved::UnknownTool),
            // `text.greet` is canonical, so `text.analysis.greet` keeps
            // only its full names; a bare alias of two functions is none.
            ("text__analysis__greet".into(), fun("text.analysis.greet")),
        ];
        for (name, want) in cases {
            assert_eq!(ix.resolve(&name), want, "{name:?}");
        }
        assert_eq!(ix.listed("files.fs.write"), "files__fs__write");
        assert_eq!(ix.listed(&long), short);
    }

    #[test]
    fn ambiguous_aliases_are_no_function() {
        let tools = vec![("t".to_string(), vec![f("t.a.run", "run"), f("t.b.run", "run")])];
        let ix = Index::new(tools, "__");
        assert_eq!(ix.resolve("t.run"), Resolved::UnknownFunction { tool: "t".into(), candidates: vec!["t.a.run".into(), "t.b.run".into()] });
        assert_eq!(ix.resolve("t__a__run"), Resolved::Function("t.a.run".into()));
    }

    #[test]
    fn other_separators_keep_the_double_underscore_form_as_an_alias() {
        let ix = index("-");
        assert!(ix.problems().is_empty(), "{:?}", ix.problems());
        let cases = [
            ("text-analysis-word-stats", "text.analysis.word-stats"),
            ("text__analysis__word-stats", "text.analysis.word-stats"),
            ("files-fs-write", "files.fs.write"),
            ("text.analysis.word-stats", "text.analysis.word-stats"),
        ];
        for (name, want) in cases {
            assert_eq!(ix.resolve(name), Resolved::Function(want.into()), "{name}");
        }
        assert_eq!(ix.listed("text.greet"), "text-greet");
        assert_eq!(ix.resolve("text-nope"), Resolved::UnknownFunction { tool: "text".into(), candidates: vec![] });
    }

    #[test]
    fn names_listed_twice_are_problems_and_resolve_to_nothing() {
        // `a__b.c` and `a.b.c` both list as `a__b__c`.
        let tools = vec![("a__b".to_string(), vec![f("a__b.c", "c")]), ("a".to_string(), vec![f("a.b.c", "c")])];
        let ix = Index::new(tools, "__");
        assert_eq!(ix.problems().len(), 1);
        let p = &ix.problems()[0];
        assert!(p.contains("a.b.c, a__b.c") && p.contains("\"a__b__c\"") && p.contains("tool_name_separator"), "{p}");
        assert!(matches!(ix.resolve("a__b__c"), Resolved::UnknownFunction { candidates, .. } if candidates.len() == 2));
        assert_eq!(ix.resolve("a.b.c"), Resolved::Function("a.b.c".into()));
        // A separator that joins kebab-case words clashes inside one tool.
        let tools = vec![("t".to_string(), vec![f("t.x-y.z", "z"), f("t.x.y-z", "y-z")])];
        let ix = Index::new(tools, "-");
        assert_eq!(ix.problems().len(), 1, "{:?}", ix.problems());
        assert!(Index::new(vec![("t".to_string(), vec![f("t.x-y.z", "z"), f("t.x.y-z", "y-z")])], "__").problems().is_empty());
    }
}
