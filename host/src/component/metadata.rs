//! What a component's bytes say about it, read without compiling: the
//! producers section, custom sections, core module names and exports,
//! initial memory sizes and the embedded WIT docs.

use std::collections::BTreeSet;
use wasmparser::{ComponentName, KnownCustom, Name, Parser, Payload};

/// Facts read from a component binary.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Metadata {
    /// `field: name version` triples from every producers section.
    pub producers: BTreeSet<(String, String, String)>,
    pub custom_sections: BTreeSet<String>,
    pub core_module_names: BTreeSet<String>,
    #[serde(skip)]
    pub core_exports: BTreeSet<String>,
    /// Module names core imports are taken from (`env`,
    /// `libpython3.14.so`, ...): structural, unlike the name sections.
    #[serde(skip)]
    pub core_import_modules: BTreeSet<String>,
    pub core_modules: usize,
    /// Sum of the initial sizes of all defined linear memories.
    pub min_memory_bytes: u64,
    /// Interpreter byte markers (see `eval::BYTE_MARKERS`) found anywhere.
    pub markers: BTreeSet<String>,
    /// WIT source embedded by the SDK (`wasmward-docs`).
    #[serde(skip)]
    pub docs_wit: Option<String>,
}

impl Metadata {
    /// Languages named in producers sections (`language` field).
    pub fn languages(&self) -> Vec<String> {
        self.producers
            .iter()
            .filter(|(f, _, _)| f == "language")
            .map(|(_, n, v)| if v.is_empty() { n.clone() } else { format!("{n} {v}") })
            .collect()
    }

    pub fn has_producer(&self, field: &str, name: &str) -> bool {
        self.producers.iter().any(|(f, n, _)| f == field && n == name)
    }
}

/// Reads metadata; a malformed binary is an error naming the offset.
pub fn read(bytes: &[u8]) -> Result<Metadata, String> {
    let mut m = Metadata::default();
    for (_, needle) in super::eval::BYTE_MARKERS {
        if memchr::memmem::find(bytes, needle.as_bytes()).is_some() {
            m.markers.insert(needle.to_string());
        }
    }
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| format!("not a valid WebAssembly component: {e}"))?;
        match payload {
            Payload::ModuleSection { .. } => m.core_modules += 1,
            Payload::ExportSection(r) => {
                for e in r.into_iter().flatten() {
                    m.core_exports.insert(e.name.to_string());
                }
            }
            Payload::ImportSection(r) => {
                for imp in r.into_imports().flatten() {
                    m.core_import_modules.insert(imp.module.to_string());
                }
            }
            Payload::MemorySection(r) => {
                for mem in r.into_iter().flatten() {
                    let page = 1u64 << mem.page_size_log2.unwrap_or(16);
                    m.min_memory_bytes = m.min_memory_bytes.saturating_add(mem.initial.saturating_mul(page));
                }
            }
            Payload::CustomSection(c) => {
                m.custom_sections.insert(c.name().to_string());
                match c.as_known() {
                    KnownCustom::Producers(r) => {
                        for field in r.into_iter().flatten() {
                            for v in field.values.into_iter().flatten() {
                                m.producers.insert((field.name.into(), v.name.into(), v.version.into()));
                            }
                        }
                    }
                    KnownCustom::Name(r) => {
                        for n in r.into_iter().flatten() {
                            if let Name::Module { name, .. } = n {
                                m.core_module_names.insert(name.to_string());
                            }
                        }
                    }
                    KnownCustom::ComponentName(r) => {
                        for n in r.into_iter().flatten() {
                            if let ComponentName::CoreModules(map) = n {
                                for naming in map.into_iter().flatten() {
                                    m.core_module_names.insert(naming.name.to_string());
                                }
                            }
                        }
                    }
                    _ if c.name() == "wasmward-docs" => {
                        let text = String::from_utf8_lossy(c.data()).into_owned();
                        m.docs_wit = Some(match m.docs_wit.take() {
                            Some(prev) => prev + "\n" + &text,
                            None => text,
                        });
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(m)
}

/// The top-level import names of a component (`wasi:cli/stdout@0.2.6`),
/// read without compiling; empty if the bytes do not parse.
pub fn import_names(bytes: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(Payload::Version { .. }) => depth += 1,
            Ok(Payload::End(_)) => depth = depth.saturating_sub(1),
            Ok(Payload::ComponentImportSection(r)) if depth == 1 => {
                names.extend(r.into_iter().flatten().map(|i| i.name.name.to_string()));
            }
            Ok(_) => {}
            Err(_) => return Vec::new(),
        }
    }
    names
}
