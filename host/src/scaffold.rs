//! `wasmward new NAME [--lang rust|python|js]`: a tool from the SDK's
//! templates that builds to a component with one command. Python and JS
//! tools get a copy of wasmward's WIT (under `wit/deps`) and of the SDK's
//! build helpers, so they build on their own.

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
        Lang::Python => "python",
        Lang::Js => "js",
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
    let mut files = copy_template(&template, &dest, &vars)?;
    if files == 0 {
        return Err(format!("template {} is empty", template.display()));
    }
    if lang != Lang::Rust {
        files += copy_guest_support(&sdk, lang, &dest)?;
    }
    let shown = dest.display();
    println!("created {shown} ({files} files)");
    match lang {
        Lang::Rust => {
            println!("build it:  cd {shown} && cargo build --release --target wasm32-wasip2");
            println!("call it:   wasmward call target/wasm32-wasip2/release/{}.wasm greet --args '{{\"name\":\"world\"}}'", name.replace('-', "_"));
        }
        Lang::Python => {
            println!("set up:    cd {shown} && python3 -m venv .venv && .venv/bin/pip install 'componentize-py==0.25.*'");
            println!("build it:  .venv/bin/python build.py        # writes {name}.wasm");
        }
        Lang::Js => {
            println!("set up:    cd {shown} && npm install");
            println!("build it:  npm run build                    # writes {name}.wasm");
        }
    }
    if lang != Lang::Rust {
        println!("it embeds an interpreter: give it `allow_eval_exec = true` in its [tool.policy] (see sdk/{lang_dir}/README.md)");
    }
    Ok(())
}

/// wasmward's WIT into `wit/deps/` and the SDK's build helpers: what a
/// Python or JS tool needs besides its template. Returns the file count.
fn copy_guest_support(sdk: &Path, lang: Lang, dest: &Path) -> Result<usize, String> {
    let wit = sdk.join("..").join("wit");
    let deps = dest.join("wit").join("deps");
    let mut copies = vec![(wit.join("tool.wit"), deps.join("wasmward-tool.wit"))];
    let vendored = std::fs::read_dir(wit.join("deps")).map_err(|e| format!("cannot read {}: {e}", wit.join("deps").display()))?;
    for entry in vendored {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|x| x == "wit") {
            copies.push((path.clone(), deps.join(path.file_name().expect("a file name"))));
        }
    }
    match lang {
        Lang::Python => {
            copies.push((sdk.join("python/build.py"), dest.join("build.py")));
            for module in ["__init__.py", "http.py", "log.py", "process.py"] {
                copies.push((sdk.join("python/wasmward_sdk").join(module), dest.join("wasmward_sdk").join(module)));
            }
        }
        Lang::Js => {
            for file in ["build.mjs", "wasmward.js", "package-lock.json"] {
                copies.push((sdk.join("js").join(file), dest.join(file)));
            }
        }
        Lang::Rust => {}
    }
    for (from, to) in &copies {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::copy(from, to).map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    }
    Ok(copies.len())
}

/// Copies `src` to `dest`, substituting `vars` and dropping `.tmpl`. A
/// template `gitignore` becomes `.gitignore` (a real `.gitignore` in the SDK
/// would apply to the SDK's own tree).
fn copy_template(src: &Path, dest: &Path, vars: &[(&str, String)]) -> Result<usize, String> {
    let entries = std::fs::read_dir(src).map_err(|e| format!("cannot read template {}: {e}", src.display()))?;
    std::fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let mut n = 0;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        let file_name = match entry.file_name().to_string_lossy().trim_end_matches(".tmpl") {
            "gitignore" => ".gitignore".to_string(),
            other => other.to_string(),
        };
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
