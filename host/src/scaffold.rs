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
    validate_new_name(name)?;
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
    let abs = std::path::absolute(&dest).map_err(|e| format!("cannot resolve {}: {e}", dest.display()))?;
    let vars = [
        ("{{name}}", name.to_string()),
        ("{{name_snake}}", name.replace('-', "_")),
        ("{{sdk_path}}", sdk.display().to_string()),
        // The project's absolute path: policy host paths must be absolute.
        ("{{dir}}", abs.display().to_string()),
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
    // The same steps as the scaffold's README (tests/author_*.rs run those).
    let build: &[&str] = match lang {
        Lang::Rust => &["cargo build --release --target wasm32-wasip2"],
        Lang::Python => &["python3 -m venv .venv && .venv/bin/pip install 'componentize-py==0.25.*'", ".venv/bin/python build.py"],
        Lang::Js => &["npm install", "npm run build"],
    };
    println!("next steps (also in {shown}/README.md):");
    println!("  cd {shown}");
    for step in build {
        println!("  {step}");
    }
    println!("  wasmward call --config wasmward.toml {name} greet --args '{{\"name\":\"world\"}}'");
    if lang != Lang::Rust {
        println!("it embeds an interpreter: its wasmward.toml sets `allow_eval_exec = true` (see sdk/{lang_dir}/README.md)");
    }
    Ok(())
}

/// WIT keywords (wit-parser's lexer): a package or world cannot be named
/// one without a `%` escape.
const WIT_KEYWORDS: &[&str] = &[
    "use", "type", "func", "u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64", "f32", "f64", "float32", "float64",
    "char", "resource", "own", "borrow", "record", "flags", "variant", "enum", "bool", "string", "option", "result",
    "future", "stream", "error-context", "list", "map", "as", "from", "static", "interface", "tuple", "world", "import",
    "export", "package", "constructor", "include", "with", "async",
];

/// Rust keywords and the names of the standard crates: a crate (the Rust
/// template's package and library) cannot take them.
const RUST_RESERVED: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "static", "struct",
    "super", "trait", "true", "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final",
    "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen", "std", "core", "alloc", "test",
    "proc_macro", "proc-macro",
];

/// The rule a `wasmward new` NAME follows, for messages.
pub const NEW_NAME_RULE: &str = "lowercase kebab-case words (a-z, 0-9) separated by single '-', each word starting \
with a letter, at most 64 characters, not a WIT or Rust keyword: it becomes the tool's name, its WIT package \
(`local:NAME`) and world, and the crate or package name";

/// Checks a `wasmward new` NAME: a tool name that is also a valid WIT
/// package and world name and crate name, so the scaffold builds. An
/// error states the rule and suggests a name that follows it.
pub fn validate_new_name(name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        Some("is empty".to_string())
    } else if name.len() > 64 {
        Some("is longer than 64 characters".to_string())
    } else if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        Some(format!("contains {c:?}"))
    } else if name.split('-').any(str::is_empty) {
        Some("has an empty word (a leading, trailing or doubled '-')".to_string())
    } else if let Some(w) = name.split('-').find(|w| !w.starts_with(|c: char| c.is_ascii_lowercase())) {
        Some(format!("has a word starting with a digit ({w:?})"))
    } else if WIT_KEYWORDS.contains(&name) || RUST_RESERVED.contains(&name) {
        Some("is a WIT or Rust keyword".to_string())
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(why) => Err(format!(
            "tool name {name:?} {why}; `wasmward new` needs {NEW_NAME_RULE}. Try: wasmward new {}",
            suggest_new_name(name)
        )),
    }
}

/// A name close to `name` that [`validate_new_name`] accepts:
/// `my_tool` -> `my-tool`, `1tool` -> `tool1`, `string` -> `string-tool`.
pub fn suggest_new_name(name: &str) -> String {
    let cleaned: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' })
        .collect();
    let mut words: Vec<String> = Vec::new();
    for w in cleaned.split('-').filter(|w| !w.is_empty()) {
        if w.starts_with(|c: char| c.is_ascii_lowercase()) {
            words.push(w.to_string());
        } else if let Some(last) = words.last_mut() {
            // `v-2` -> `v2`: a word cannot start with a digit.
            last.push_str(w);
        } else {
            // Leading digits move to the end: `1tool` -> `tool1`.
            let digits: String = w.chars().take_while(char::is_ascii_digit).collect();
            let rest = &w[digits.len()..];
            words.push(if rest.is_empty() { format!("tool{digits}") } else { format!("{rest}{digits}") });
        }
    }
    let mut out = if words.is_empty() { "my-tool".to_string() } else { words.join("-") };
    if WIT_KEYWORDS.contains(&out.as_str()) || RUST_RESERVED.contains(&out.as_str()) {
        out.push_str("-tool");
    }
    if out.len() > 64 {
        out.truncate(64);
        while out.ends_with('-') {
            out.pop();
        }
    }
    out
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
