//! Detects components that embed a general-purpose interpreter, which is
//! the only way a Wasm tool can run code it did not ship with (Wasm cannot
//! generate code at run time). Structural markers are checked as well as
//! the producers section, which can be stripped.

use super::metadata::Metadata;

/// One interpreter and the evidence for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Interpreter {
    pub runtime: &'static str,
    pub evidence: Vec<String>,
}

impl Interpreter {
    /// The language the tool itself is written in, as an author would say
    /// it (the runtime's own code is usually Rust or C).
    pub fn language(&self) -> &'static str {
        match self.runtime {
            "CPython" => "Python",
            "SpiderMonkey (StarlingMonkey)" | "QuickJS" => "JavaScript",
            "Lua" => "Lua",
            "Ruby" => "Ruby",
            _ => "unknown",
        }
    }

    /// The toolchain that embedded the runtime, where the evidence names
    /// it or the runtime has one usual toolchain.
    pub fn toolchain(&self) -> Option<&'static str> {
        match self.runtime {
            "CPython" => Some("componentize-py"),
            "SpiderMonkey (StarlingMonkey)" => Some("componentize-js"),
            _ => None,
        }
    }

    /// One line: `CPython (componentize-py)`. The evidence is for
    /// `wasmward inspect`.
    pub fn summary(&self) -> String {
        match self.toolchain() {
            Some(t) => format!("{} ({t})", self.runtime.replace(" (StarlingMonkey)", "/StarlingMonkey")),
            None => self.runtime.to_string(),
        }
    }
}

/// Byte strings found in interpreter runtimes' code and data.
pub const BYTE_MARKERS: &[(&str, &str)] = &[
    ("CPython", "Py_GetBuildInfo"),
    ("CPython", "componentize_py_runtime"),
    ("CPython", "libpython3."),
    ("SpiderMonkey (StarlingMonkey)", "StarlingMonkey"),
    ("SpiderMonkey (StarlingMonkey)", "SpiderMonkey"),
    ("SpiderMonkey (StarlingMonkey)", "js::frontend::"),
    ("QuickJS", "QuickJS"),
    ("QuickJS", "JS_NewContext"),
    ("Lua", "lua_pcallk"),
    ("Ruby", "ruby_run_node"),
];

/// The interpreter a component embeds, if any.
pub fn detect(m: &Metadata) -> Option<Interpreter> {
    let mut found: Vec<(&'static str, String)> = Vec::new();
    for (field, name, _) in &m.producers {
        let runtime = match (field.as_str(), name.as_str()) {
            ("language", "JavaScript") => Some("SpiderMonkey (StarlingMonkey)"),
            ("processed-by", n) if n.eq_ignore_ascii_case("ComponentizeJS") => Some("SpiderMonkey (StarlingMonkey)"),
            ("language", "Python") => Some("CPython"),
            ("processed-by", n) if n.starts_with("componentize-py") => Some("CPython"),
            _ => None,
        };
        if let Some(r) = runtime {
            found.push((r, format!("producers {field}: {name}")));
        }
    }
    for name in &m.core_module_names {
        if is_python_module(name) {
            found.push(("CPython", format!("core module `{name}`")));
        }
    }
    // Structural: these survive the removal of every custom section.
    for name in &m.core_import_modules {
        if is_python_module(name) {
            found.push(("CPython", format!("core imports from `{name}`")));
        }
    }
    for export in ["Py_Initialize", "Py_GetBuildInfo", "PyRun_StringFlags"] {
        if m.core_exports.contains(export) {
            found.push(("CPython", format!("core export `{export}`")));
        }
    }
    let spidermonkey = ["StarlingMonkey", "SpiderMonkey", "js::frontend::"];
    for export in ["wizer.resume", "wizer.initialize"] {
        if m.core_exports.contains(export) && m.markers.iter().any(|k| spidermonkey.contains(&k.as_str())) {
            found.push(("SpiderMonkey (StarlingMonkey)", format!("core export `{export}`")));
        }
    }
    for marker in &m.markers {
        if let Some((runtime, needle)) = BYTE_MARKERS.iter().find(|(_, n)| n == marker) {
            found.push((runtime, format!("embedded `{needle}`")));
        }
    }
    let runtime = found.first()?.0;
    let evidence = found.into_iter().filter(|(r, _)| *r == runtime).map(|(_, e)| e).collect();
    Some(Interpreter { runtime, evidence })
}

fn is_python_module(name: &str) -> bool {
    name.starts_with("libpython") || name.contains("componentize_py")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(producers: &[(&str, &str)], modules: &[&str], markers: &[&str]) -> Metadata {
        let mut m = Metadata::default();
        for (f, n) in producers {
            m.producers.insert((f.to_string(), n.to_string(), String::new()));
        }
        for n in modules {
            m.core_module_names.insert(n.to_string());
        }
        for k in markers {
            m.markers.insert(k.to_string());
        }
        m
    }

    fn with_import(mut m: Metadata, module: &str) -> Metadata {
        m.core_import_modules.insert(module.to_string());
        m
    }

    fn with_export(mut m: Metadata, name: &str) -> Metadata {
        m.core_exports.insert(name.to_string());
        m
    }

    #[test]
    fn interpreters_are_found_by_any_marker() {
        let cases: Vec<(Metadata, Option<&str>)> = vec![
            (meta(&[("language", "Rust")], &[], &[]), None),
            (meta(&[("processed-by", "wit-component")], &["wit-component:adapter"], &[]), None),
            (meta(&[("language", "Python")], &[], &[]), Some("CPython")),
            (meta(&[("processed-by", "componentize-py")], &[], &[]), Some("CPython")),
            (meta(&[], &["libpython3.14.so"], &[]), Some("CPython")),
            (meta(&[], &[], &["Py_GetBuildInfo"]), Some("CPython")),
            (meta(&[("language", "JavaScript")], &[], &[]), Some("SpiderMonkey (StarlingMonkey)")),
            (meta(&[("processed-by", "ComponentizeJS")], &[], &[]), Some("SpiderMonkey (StarlingMonkey)")),
            (meta(&[], &[], &["StarlingMonkey"]), Some("SpiderMonkey (StarlingMonkey)")),
            (meta(&[], &[], &["QuickJS"]), Some("QuickJS")),
            (with_import(meta(&[], &[], &[]), "libpython3.14.so"), Some("CPython")),
            (with_import(meta(&[], &[], &[]), "env"), None),
            (with_export(meta(&[], &[], &["StarlingMonkey"]), "wizer.resume"), Some("SpiderMonkey (StarlingMonkey)")),
            (with_export(meta(&[], &[], &[]), "wizer.resume"), None),
            (with_export(meta(&[], &[], &[]), "Py_Initialize"), Some("CPython")),
            (meta(&[], &[], &["lua_pcallk"]), Some("Lua")),
        ];
        for (m, want) in cases {
            assert_eq!(detect(&m).map(|i| i.runtime), want, "{m:?}");
        }
    }

    #[test]
    fn the_summary_is_one_line_naming_runtime_and_toolchain() {
        let cases = [
            ("CPython", "CPython (componentize-py)", "Python"),
            ("SpiderMonkey (StarlingMonkey)", "SpiderMonkey/StarlingMonkey (componentize-js)", "JavaScript"),
            ("QuickJS", "QuickJS", "JavaScript"),
            ("Lua", "Lua", "Lua"),
        ];
        for (runtime, summary, language) in cases {
            let i = Interpreter { runtime, evidence: vec!["a".into(), "b".into()] };
            assert_eq!((i.summary().as_str(), i.language()), (summary, language), "{runtime}");
        }
    }
}
