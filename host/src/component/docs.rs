//! Descriptions for tools and parameters from WIT doc comments.
//!
//! cargo + wit-bindgen components carry no WIT docs, so the SDK embeds the
//! tool's WIT source in a `wasmward-docs` custom section; `package-docs`
//! is read too where a toolchain writes it. Only the tool's own package is
//! parsed (unresolved), so its `use` of other packages does not matter.

use std::collections::HashMap;

/// Docs of every function in the tool's WIT, keyed by
/// (interface name or "" for world-level, function name), and of its
/// records, variants, enums and flags.
#[derive(Debug, Clone, Default)]
pub struct WitDocs {
    funcs: HashMap<(String, String), String>,
    pub types: TypeDocs,
}

/// Docs of a type and of each of its fields or cases, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShapeDocs {
    pub doc: Option<String>,
    pub members: Vec<Option<String>>,
}

impl ShapeDocs {
    fn is_empty(&self) -> bool {
        self.doc.is_none() && self.members.iter().all(Option::is_none)
    }

    /// The doc of member `i` (a field or case), if any.
    pub fn member(&self, i: usize) -> Option<&str> {
        self.members.get(i)?.as_deref()
    }
}

/// `///` docs of record fields, variant and enum cases and flags.
///
/// Component types carry no type names, only the names of fields and
/// cases, so a type is found by those: the record `{x, y}` is the WIT
/// record whose fields are `x, y` in that order. When two types of the
/// same kind share the member names but differ in docs, neither's docs
/// are used (an ambiguous doc is worse than none).
#[derive(Debug, Clone, Default)]
pub struct TypeDocs {
    by_members: HashMap<(Kind, Vec<String>), Option<ShapeDocs>>,
}

/// The kind of type a [`TypeDocs`] entry describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Record,
    Variant,
    Enum,
    Flags,
}

fn doc_text(d: &wit_parser::Docs) -> Option<String> {
    d.contents.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_string)
}

impl TypeDocs {
    fn add(&mut self, kind: Kind, names: Vec<String>, docs: ShapeDocs) {
        use std::collections::hash_map::Entry;
        match self.by_members.entry((kind, names)) {
            Entry::Vacant(v) => {
                v.insert(Some(docs));
            }
            Entry::Occupied(mut o) => {
                let merged = match o.get() {
                    None => None,
                    Some(prev) if *prev == docs || docs.is_empty() => Some(prev.clone()),
                    Some(prev) if prev.is_empty() => Some(docs),
                    // Same names, different docs: ambiguous, so none.
                    Some(_) => None,
                };
                o.insert(merged);
            }
        }
    }

    /// The docs of the `kind` type whose fields or cases are `names`.
    pub fn get(&self, kind: Kind, names: &[&str]) -> Option<&ShapeDocs> {
        let key = (kind, names.iter().map(|n| n.to_string()).collect());
        self.by_members.get(&key)?.as_ref().filter(|d| !d.is_empty())
    }

    fn collect(&mut self, pkg: &wit_parser::UnresolvedPackage) {
        use wit_parser::TypeDefKind;
        for (_, t) in pkg.types.iter() {
            let doc = doc_text(&t.docs);
            let (kind, names, members): (Kind, Vec<String>, Vec<Option<String>>) = match &t.kind {
                TypeDefKind::Record(r) => {
                    (Kind::Record, r.fields.iter().map(|f| f.name.clone()).collect(), r.fields.iter().map(|f| doc_text(&f.docs)).collect())
                }
                TypeDefKind::Variant(v) => {
                    (Kind::Variant, v.cases.iter().map(|c| c.name.clone()).collect(), v.cases.iter().map(|c| doc_text(&c.docs)).collect())
                }
                TypeDefKind::Enum(e) => {
                    (Kind::Enum, e.cases.iter().map(|c| c.name.clone()).collect(), e.cases.iter().map(|c| doc_text(&c.docs)).collect())
                }
                TypeDefKind::Flags(f) => {
                    (Kind::Flags, f.flags.iter().map(|c| c.name.clone()).collect(), f.flags.iter().map(|c| doc_text(&c.docs)).collect())
                }
                _ => continue,
            };
            self.add(kind, names, ShapeDocs { doc, members });
        }
    }
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
        let mut types = TypeDocs::default();
        for pkg in std::iter::once(&group.main).chain(&group.nested) {
            types.collect(pkg);
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
        WitDocs { funcs, types }
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

    const TYPES_WIT: &str = r#"
package example:types;

interface shapes {
    /// A point on the plane.
    record point {
        /// Distance from the left edge, in pixels.
        x: u32,
        y: u32,
    }
    /// How to scale.
    variant scale {
        /// Keep the size.
        none,
        /// Multiply by this factor.
        factor(u8),
    }
    enum style {
        /// ALL CAPITALS
        upper,
        lower,
    }
    flags perms {
        /// May read.
        read,
        write,
    }
    // Same member names as `point`, different docs: ambiguous.
    record twin-a {
        /// a's doc
        left: u8,
    }
    record twin-b {
        /// b's doc
        left: u8,
    }
    // Same member names, no docs: does not hide `point2`'s.
    record point2 { /// documented once
        z: u8 }
    record point2-bare { z: u8 }
}
"#;

    #[test]
    fn finds_docs_of_fields_and_cases_by_member_names() {
        let d = WitDocs::parse(TYPES_WIT).types;
        let point = d.get(Kind::Record, &["x", "y"]).expect("point");
        assert_eq!(point.doc.as_deref(), Some("A point on the plane."));
        assert_eq!((point.member(0), point.member(1)), (Some("Distance from the left edge, in pixels."), None));
        assert!(d.get(Kind::Record, &["y", "x"]).is_none(), "field order matters");
        assert!(d.get(Kind::Variant, &["x", "y"]).is_none(), "kind matters");
        let scale = d.get(Kind::Variant, &["none", "factor"]).expect("scale");
        assert_eq!((scale.doc.as_deref(), scale.member(0), scale.member(1)), (Some("How to scale."), Some("Keep the size."), Some("Multiply by this factor.")));
        assert_eq!(d.get(Kind::Enum, &["upper", "lower"]).and_then(|e| e.member(0)), Some("ALL CAPITALS"));
        assert_eq!(d.get(Kind::Flags, &["read", "write"]).and_then(|e| e.member(0)), Some("May read."));
        assert!(d.get(Kind::Record, &["left"]).is_none(), "ambiguous twins give no docs");
        assert_eq!(d.get(Kind::Record, &["z"]).and_then(|e| e.member(0)), Some("documented once"));
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
