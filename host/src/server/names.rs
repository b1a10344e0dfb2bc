//! One canonical name per function, resolved once at the edge, before the
//! gate. Agents may spell a function as its canonical name
//! (`files.fs.write`), with the tool prefix doubled (`files.files.fs.write`),
//! as `tool.<bare WIT name>` (`files.write`), or in the OpenAI form
//! (`files__fs__write`). Filters, token scopes, rate limits, approvals,
//! content policy, metrics and audit rows only ever see the canonical name,
//! so no spelling gets past a rule written for another.

use super::http::openai_name;
use crate::runtime::Tool;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Longest piece of a caller's name echoed back in an error message.
pub const MAX_ECHOED_NAME: usize = 128;

/// The label audit rows and metrics use for a name that is not a function.
pub const UNKNOWN: &str = "<unknown>";

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

/// Resolves `name` against the loaded tools. The canonical name wins; an
/// alias counts only if it fits exactly one function.
pub fn resolve(tools: &BTreeMap<String, Arc<Tool>>, name: &str) -> Resolved {
    let (tool_part, rest) = name.split_once('.').unwrap_or((name, ""));
    let tool = tools.get(tool_part);
    if let Some(t) = tool {
        if t.loaded.functions.iter().any(|f| f.name == name) {
            return Resolved::Function(name.to_string());
        }
    }
    let mut found: BTreeSet<&str> = BTreeSet::new();
    if let Some(t) = tool {
        if !rest.is_empty() {
            for f in &t.loaded.functions {
                // `tool.<canonical>` and `tool.<bare WIT name>`.
                if f.name == rest || f.function == rest {
                    found.insert(&f.name);
                }
            }
        }
    }
    if name.contains("__") && !name.contains('.') {
        for t in tools.values() {
            for f in &t.loaded.functions {
                if openai_name(&f.name) == name {
                    found.insert(&f.name);
                }
            }
        }
    }
    let mut it = found.iter();
    match (it.next(), it.next()) {
        (Some(one), None) => Resolved::Function(one.to_string()),
        _ => match tool {
            Some(t) => Resolved::UnknownFunction { tool: t.name.clone(), candidates: found.iter().map(|s| s.to_string()).collect() },
            None if !found.is_empty() => {
                // An OpenAI name that fits several functions of several tools.
                let tool = found.iter().next().and_then(|n| n.split_once('.')).map_or(UNKNOWN, |(t, _)| t).to_string();
                Resolved::UnknownFunction { tool, candidates: found.iter().map(|s| s.to_string()).collect() }
            }
            None => Resolved::UnknownTool,
        },
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
}
