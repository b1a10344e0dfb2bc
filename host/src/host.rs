//! Assembles a runtime from the operator's config: every tool loaded and
//! checked before any is served.

use crate::config::Config;
use crate::runtime::{Runtime, RuntimeOptions, Tool};
use crate::sandbox::SandboxPlan;
use std::path::Path;
use std::time::Instant;

/// Builds a runtime with the options of `cfg` (tools not loaded yet).
pub fn runtime_for(cfg: &Config) -> anyhow::Result<Runtime> {
    let cache_dir = cfg
        .runtime
        .cache_dir
        .as_ref()
        .map(|p| cfg.resolve_path(p))
        .or_else(crate::component::cache::CompileCache::default_dir);
    Runtime::new(RuntimeOptions { max_concurrent_calls: cfg.runtime.max_concurrent_calls, cache_dir })
}

/// Loads every tool of `cfg`, with a progress line per tool. Any failure
/// fails the whole set, naming the tool, so a bad config is never half
/// served.
pub fn load_tools(rt: &Runtime, cfg: &Config) -> anyhow::Result<Vec<Tool>> {
    let total = cfg.tools.len();
    let mut tools = Vec::with_capacity(total);
    for (i, tc) in cfg.tools.iter().enumerate() {
        let started = Instant::now();
        let limits = tc
            .limits
            .resolve(&cfg.defaults.limits, &format!("tool {:?}.limits", tc.name))
            .map_err(|m| anyhow::anyhow!("{}: {m}", cfg.source))?;
        let plan = SandboxPlan { tool: tc.name.clone(), limits, ..Default::default() };
        let path = cfg.resolve_path(&tc.path);
        tracing::info!(tool = %tc.name, path = %path.display(), "loading tool {}/{total}", i + 1);
        let mut tool = rt
            .load_tool(plan, &path, tc.sha256.as_deref())
            .map_err(|e| anyhow::anyhow!("{}: tool {:?}: {e}", cfg.source, tc.name))?;
        if let Some(d) = &tc.description {
            for f in &mut tool.loaded.functions {
                f.description.get_or_insert_with(|| d.clone());
            }
        }
        tracing::info!(
            tool = %tc.name,
            functions = tool.loaded.functions.len(),
            cache = ?tool.loaded.cache,
            ms = started.elapsed().as_millis() as u64,
            "loaded tool {}/{total}", i + 1
        );
        tools.push(tool);
    }
    Ok(tools)
}

/// A runtime holding one component given by path, with the default
/// (deny-everything) sandbox: what `wasmward call FILE.wasm` uses.
pub fn runtime_for_file(path: &Path, cfg: &Config) -> anyhow::Result<(Runtime, String)> {
    let rt = runtime_for(cfg)?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("tool");
    let name: String = stem
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .collect();
    let limits = cfg.defaults.limits.resolve(&Default::default(), "defaults.limits").map_err(|m| anyhow::anyhow!(m))?;
    let plan = SandboxPlan { tool: name.clone(), limits, ..Default::default() };
    let tool = rt.load_tool(plan, path, None)?;
    rt.set_tools(vec![tool]);
    Ok((rt, name))
}
