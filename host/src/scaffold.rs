//! `wasmward new NAME`: a tool crate from the SDK's template that builds to
//! a component with `cargo build --release --target wasm32-wasip2`.

use crate::cli::Lang;
use std::path::{Path, PathBuf};

/// The SDK directory: `$WASMWARD_SDK_DIR`, else the one this binary was
/// built from. The scaffolded crate depends on it by path.
pub fn sdk_dir() -> PathBuf {
    std::env::var_os("WASMWARD_SDK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("sdk"))
}

/// Creates the tool crate `name` in `dir` (default `./name`).
pub fn new_tool(name: &str, lang: Lang, dir: Option<&Path>) -> Result<(), String> {
    crate::config::validate_tool_name(name).map_err(|m| format!("tool name {m}"))?;
    let sdk = sdk_dir().canonicalize().map_err(|e| {
        format!("cannot find the wasmward SDK at {}: {e}; set WASMWARD_SDK_DIR to the repo's sdk/ directory", sdk_dir().display())
    })?;
    let lang_dir = match lang {
        Lang::Rust => "rust",
    };
    let template = sdk.join("template").join(lang_dir);
    let dest = dir.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(name));
    if dest.exists() && dest.read_dir().map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err(format!("{} already exists and is not empty; choose another NAME or --dir", dest.display()));
    }
    let vars = [
        ("{{name}}", name.to_string()),
        ("{{name_snake}}", name.replace('-', "_")),
        ("{{sdk_path}}", sdk.display().to_string()),
    ];
    let files = copy_template(&template, &dest, &vars)?;
    if files == 0 {
        return Err(format!("template {} is empty", template.display()));
    }
    println!("created {} ({files} files)", dest.display());
    println!("build it:  cd {} && cargo build --release --target wasm32-wasip2", dest.display());
    println!("call it:   wasmward call target/wasm32-wasip2/release/{}.wasm greet --args '{{\"name\":\"world\"}}'", name.replace('-', "_"));
    Ok(())
}

/// Copies `src` to `dest`, substituting `vars` and dropping `.tmpl`.
fn copy_template(src: &Path, dest: &Path, vars: &[(&str, String)]) -> Result<usize, String> {
    let entries = std::fs::read_dir(src).map_err(|e| format!("cannot read template {}: {e}", src.display()))?;
    std::fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let mut n = 0;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        let file_name = entry.file_name().to_string_lossy().trim_end_matches(".tmpl").to_string();
        if path.is_dir() {
            n += copy_template(&path, &dest.join(&file_name), vars)?;
            continue;
        }
        let mut text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        for (k, v) in vars {
            text = text.replace(k, v);
        }
        let out = dest.join(&file_name);
        std::fs::write(&out, text).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        n += 1;
    }
    Ok(n)
}
