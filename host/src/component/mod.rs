//! Loading tools: digest pin, metadata, compile through the on-disk cache,
//! and the exported functions with their JSON Schemas.

pub mod cache;
pub mod convert;
pub mod docs;
pub mod eval;
pub mod metadata;
pub mod schema;
pub mod wit_type;

use cache::{CacheOutcome, CompileCache};
use docs::{split_param_docs, WitDocs};
use metadata::Metadata;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::{Duration, Instant};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex};
use wasmtime::Engine;
use wit_type::WitType;

/// Export instances that are runtime plumbing, not tools (componentize-py
/// adds `exports` with `init`).
const PLUMBING_EXPORTS: &[&str] = &["exports"];

/// One exported function, callable as a tool.
#[derive(Debug, Clone, Serialize)]
pub struct ToolFunction {
    /// Stable MCP-valid name: `tool.function` or `tool.interface.function`.
    pub name: String,
    /// Full export name of the enclosing interface, if any.
    pub interface: Option<String>,
    pub function: String,
    pub description: Option<String>,
    #[serde(skip)]
    pub params: Vec<(String, WitType)>,
    #[serde(skip)]
    pub result: Option<WitType>,
    pub input_schema: Value,
    pub output_schema: Value,
    #[serde(skip)]
    pub export: ComponentExportIndex,
}

/// An export that is not offered as a tool, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub export: String,
    pub reason: String,
}

/// A compiled, introspected component.
pub struct LoadedComponent {
    pub digest: String,
    pub component: Component,
    pub metadata: Metadata,
    pub functions: Vec<ToolFunction>,
    pub skipped: Vec<Skipped>,
    /// WIT import names (`wasi:filesystem/types@0.2.6`, ...).
    pub imports: Vec<String>,
    pub cache: CacheOutcome,
    pub load_time: Duration,
}

/// Why a component could not be loaded. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read tool file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("sha256 mismatch for {path}: the config pins {expected} but the file has {actual}; rebuild the expected file or update `sha256` in the config")]
    DigestMismatch { path: String, expected: String, actual: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: does not compile: {message}")]
    Compile { path: String, message: String },
}

/// sha256 of the bytes, lowercase hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads, pins, compiles (through the cache) and introspects a component.
pub fn load(
    engine: &Engine,
    cache: &CompileCache,
    tool_name: &str,
    path: &Path,
    pinned_sha256: Option<&str>,
) -> Result<LoadedComponent, LoadError> {
    let started = Instant::now();
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read { path: shown.clone(), source })?;
    let read_at = started.elapsed();
    if !wasmparser::Parser::is_component(&bytes) {
        let hint = if wasmparser::Parser::is_core_wasm(&bytes) {
            "this is a core WebAssembly module, not a component; build with `--target wasm32-wasip2`"
        } else {
            "not a WebAssembly component"
        };
        return Err(LoadError::Invalid { path: shown, message: hint.into() });
    }
    // Hash and scan at once: for a 15 MB Python or JS runtime each takes
    // about as long as a cache hit.
    let (digest, metadata) = std::thread::scope(|s| {
        let hashing = s.spawn(|| digest(&bytes));
        let metadata = metadata::read(&bytes);
        (hashing.join().expect("the digest thread does not panic"), metadata)
    });
    if let Some(expected) = pinned_sha256 {
        if !expected.eq_ignore_ascii_case(&digest) {
            return Err(LoadError::DigestMismatch { path: shown, expected: expected.to_lowercase(), actual: digest });
        }
    }
    let metadata = metadata.map_err(|message| LoadError::Invalid { path: shown.clone(), message })?;
    let metadata_at = started.elapsed();
    let (component, cache_outcome) = cache
        .load(engine, &digest, &bytes)
        .map_err(|e| LoadError::Compile { path: shown.clone(), message: format!("{e:#}") })?;
    tracing::debug!(
        path = %shown,
        read_ms = read_at.as_secs_f64() * 1e3,
        digest_and_metadata_ms = (metadata_at - read_at).as_secs_f64() * 1e3,
        compile_or_cache_ms = (started.elapsed() - metadata_at).as_secs_f64() * 1e3,
        cache = ?cache_outcome,
        "component load phases"
    );
    let docs = metadata.docs_wit.as_deref().map(WitDocs::parse).unwrap_or_default();
    let (functions, skipped) = exported_functions(engine, &component, tool_name, &docs);
    let imports = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    Ok(LoadedComponent {
        digest,
        component,
        metadata,
        functions,
        skipped,
        imports,
        cache: cache_outcome,
        load_time: started.elapsed(),
    })
}

/// Restricts a name to MCP's tool-name alphabet `[A-Za-z0-9_.-]`.
pub fn mcp_safe(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' { c } else { '_' })
        .collect()
}

/// The short name of an exported interface: `pkg:ns/iface@1.0` → `iface`.
pub fn interface_short_name(export: &str) -> &str {
    let s = export.rsplit('/').next().unwrap_or(export);
    s.split('@').next().unwrap_or(s)
}

fn exported_functions(engine: &Engine, component: &Component, tool: &str, docs: &WitDocs) -> (Vec<ToolFunction>, Vec<Skipped>) {
    let mut funcs = Vec::new();
    let mut skipped = Vec::new();
    let ty = component.component_type();
    for (export_name, item) in ty.exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(f) => {
                let Some(idx) = component.get_export_index(None, export_name) else { continue };
                match describe(tool, None, export_name, &f, idx, docs) {
                    Ok(tf) => funcs.push(tf),
                    Err(reason) => skipped.push(Skipped { export: export_name.to_string(), reason }),
                }
            }
            ComponentItem::ComponentInstance(inst) if PLUMBING_EXPORTS.contains(&export_name) => {
                skipped.push(Skipped {
                    export: export_name.to_string(),
                    reason: "language-runtime plumbing, not a tool".into(),
                });
                let _ = inst;
            }
            ComponentItem::ComponentInstance(inst) => {
                let Some(inst_idx) = component.get_export_index(None, export_name) else { continue };
                for (fname, item) in inst.exports(engine) {
                    let item = item.ty;
                    let full = format!("{export_name}#{fname}");
                    let ComponentItem::ComponentFunc(f) = item else {
                        if !matches!(item, ComponentItem::Type(_) | ComponentItem::Resource(_)) {
                            skipped.push(Skipped { export: full, reason: "not a function".into() });
                        }
                        continue;
                    };
                    let Some(idx) = component.get_export_index(Some(&inst_idx), fname) else { continue };
                    match describe(tool, Some(export_name), fname, &f, idx, docs) {
                        Ok(tf) => funcs.push(tf),
                        Err(reason) => skipped.push(Skipped { export: full, reason }),
                    }
                }
            }
            _ => skipped.push(Skipped { export: export_name.to_string(), reason: "not a function or interface".into() }),
        }
    }
    dedupe_names(&mut funcs);
    (funcs, skipped)
}

fn describe(
    tool: &str,
    interface: Option<&str>,
    function: &str,
    f: &wasmtime::component::types::ComponentFunc,
    export: ComponentExportIndex,
    docs: &WitDocs,
) -> Result<ToolFunction, String> {
    if f.async_() {
        return Err("is an async function, which tools cannot export yet".into());
    }
    let mut params = Vec::new();
    for (name, ty) in f.params() {
        let wt = WitType::from_wasmtime(&ty).map_err(|r| format!("parameter `{name}` {r}"))?;
        params.push((name.to_string(), wt));
    }
    let mut results = f.results();
    let result = match results.len() {
        0 => None,
        1 => Some(WitType::from_wasmtime(&results.next().expect("one result")).map_err(|r| format!("result {r}"))?),
        n => return Err(format!("returns {n} values; only one result is supported")),
    };
    let name = match interface {
        Some(i) => format!("{tool}.{}.{function}", interface_short_name(i)),
        None => format!("{tool}.{function}"),
    };
    let param_names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    let (description, param_docs) = match docs.function(interface.unwrap_or(""), function) {
        Some(d) => {
            let (summary, per_param) = split_param_docs(d, &param_names);
            (Some(summary).filter(|s| !s.is_empty()), per_param)
        }
        None => (None, Default::default()),
    };
    let input_schema = schema::input_schema_documented(&params, &|p| param_docs.get(p).cloned(), &docs.types);
    let output_schema = schema::output_schema_documented(result.as_ref(), &docs.types);
    Ok(ToolFunction {
        name: mcp_safe(&name),
        interface: interface.map(str::to_string),
        function: function.to_string(),
        description,
        params,
        result,
        input_schema,
        output_schema,
        export,
    })
}

/// Makes names unique in export order: a later duplicate gets `_2`, `_3`...
fn dedupe_names(funcs: &mut [ToolFunction]) {
    let mut seen = std::collections::HashSet::new();
    for f in funcs.iter_mut() {
        let base = f.name.clone();
        let mut n = 1;
        while !seen.insert(f.name.clone()) {
            n += 1;
            f.name = format!("{base}_{n}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_restricted_to_the_mcp_alphabet() {
        let cases = [
            ("text.greet", "text.greet"),
            ("text.word-stats", "text.word-stats"),
            ("a b/c:d@1", "a_b_c_d_1"),
            ("ünï", "_n_"),
        ];
        for (input, want) in cases {
            assert_eq!(mcp_safe(input), want);
        }
    }

    #[test]
    fn interface_short_names_drop_package_and_version() {
        let cases = [
            ("example:text/analysis@0.1.0", "analysis"),
            ("example:text/analysis", "analysis"),
            ("analysis", "analysis"),
        ];
        for (input, want) in cases {
            assert_eq!(interface_short_name(input), want);
        }
    }
}
