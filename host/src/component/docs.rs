//! Descriptions for tools and parameters from WIT doc comments.
//!
//! cargo + wit-bindgen components carry no WIT docs, so the SDK embeds the
//! tool's WIT source in a `wasmward-docs` custom section; `package-docs`
//! is read too where a toolchain writes it. Only the tool's own package is
//! parsed (unresolved), so its `use` of other packages does not matter.

use std::collections::HashMap;

/// Docs of every function in the tool's WIT, keyed by
/// (interface name or "" for world-level, function name).
#[derive(Debug, Clone, Default)]
pub struct WitDocs {
    funcs: HashMap<(String, String), String>,
}

impl WitDocs {
    /// Parses WIT source text; unparsable text yields no docs and a warning.
    pub fn parse(wit: &str) -> WitDocs {
        let group = match wit_parser::UnresolvedPackageGroup::parse("wasmward-docs.wit", wit) {
            Ok(g) => g,
            Err((_, e)) => {
                tracing::warn!(error = %e, "embedded WIT docs do not parse; descriptions omitted");
                return WitDocs::default();
            }
        };
        let mut funcs = HashMap::new();
        for pkg in std::iter::once(&group.main).chain(&group.nested) {
            for (_, iface) in pkg.interfaces.iter() {
                let name = iface.name.clone().unwrap_or_default();
                for (fname, f) in &iface.functions {
                    if let Some(d) = &f.docs.contents {
                        funcs.insert((name.clone(), fname.clone()), d.trim().to_string());
                    }
                }
            }
            for (_, world) in pkg.worlds.iter() {
                for (key, item) in &world.exports {
                    if let (wit_parser::WorldKey::Name(_), wit_parser::WorldItem::Function(f)) = (key, item) {
                        if let Some(d) = &f.docs.contents {
                            funcs.insert((String::new(), f.name.clone()), d.trim().to_string());
                        }
                    }
                }
            }
        }
        WitDocs { funcs }
    }

    /// The doc comment of `function` in `interface` ("" at world level).
    /// `interface` may be a full export name (`pkg:name/iface@1.0`).
    pub fn function(&self, interface: &str, function: &str) -> Option<&str> {
        let short = super::interface_short_name(interface);
        self.funcs.get(&(short.to_string(), function.to_string())).map(String::as_str)
    }
}

/// Splits a function doc into the summary and per-parameter docs. A line
/// `name: text` or `- name: text` (name optionally in backticks) documents
/// the parameter `name`; every other line belongs to the summary.
pub fn split_param_docs(doc: &str, params: &[&str]) -> (String, HashMap<String, String>) {
    let mut summary = Vec::new();
    let mut per_param = HashMap::new();
    for line in doc.lines() {
        let t = line.trim().trim_start_matches(['-', '*']).trim_start();
        let hit = t.split_once(':').and_then(|(name, rest)| {
            let name = name.trim().trim_matches('`');
            params.contains(&name).then(|| (name.to_string(), rest.trim().to_string()))
        });
        match hit {
            Some((name, text)) if !text.is_empty() => {
                per_param.insert(name, text);
            }
            _ => summary.push(line.trim_end()),
        }
    }
    (summary.join("\n").trim().to_string(), per_param)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIT: &str = r#"
package example:demo;

interface analysis {
    /// Counts words.
    /// - text: the input text
    word-stats: func(text: string) -> u32;
    undocumented: func();
}

world demo {
    /// Says hello.
    export greet: func(name: string) -> string;
    export greet2: func(name: string) -> string;
    export analysis;
}
"#;

    #[test]
    fn finds_docs_for_world_and_interface_functions() {
        let docs = WitDocs::parse(WIT);
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("analysis", "word-stats", Some("Counts words.\n- text: the input text")),
            ("example:demo/analysis@0.1.0", "word-stats", Some("Counts words.\n- text: the input text")),
            ("analysis", "undocumented", None),
            ("", "greet", Some("Says hello.")),
            ("", "greet2", None),
            ("", "missing", None),
        ];
        for (iface, func, want) in cases {
            assert_eq!(docs.function(iface, func), *want, "{iface}/{func}");
        }
    }

    #[test]
    fn unparsable_wit_yields_no_docs() {
        assert!(WitDocs::parse("this is not wit").function("", "x").is_none());
    }

    #[test]
    fn param_lines_are_split_from_the_summary() {
        let cases: &[(&str, &[&str], &str, &[(&str, &str)])] = &[
            ("Adds.\n- a: left\n- b: right", &["a", "b"], "Adds.", &[("a", "left"), ("b", "right")]),
            ("Adds.\n`a`: left", &["a"], "Adds.", &[("a", "left")]),
            ("Note: not a param", &["a"], "Note: not a param", &[]),
            ("Plain.", &[], "Plain.", &[]),
        ];
        for (doc, params, summary, want) in cases {
            let (s, p) = split_param_docs(doc, params);
            assert_eq!(s, *summary);
            let mut got: Vec<_> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            got.sort();
            assert_eq!(got, *want);
        }
    }
}
