#!/usr/bin/env bash
# Builds the Python and JavaScript example tools from source into
# example-tools/target/lang/{python-text,js-text}.wasm.
#
# Installs the toolchains itself: componentize-py 0.25.x into a venv under
# target/lang/venv (from its wheel, kept in target/lang/wheels), componentize-js 0.23.x from sdk/js's committed
# package.json and lock file into target/lang/js (JS tools are built with
# sdk/js/build.mjs). Each tool is rebuilt only when a hash of its inputs
# (sources, the repo's WIT, the SDK helpers, the toolchain version) changed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$root/target/lang
out=$root/example-tools/target/lang
mkdir -p "$work" "$out"

need() { command -v "$1" >/dev/null || { echo "build-lang-tools: $1 is required ($2)" >&2; exit 1; }; }
need python3 "Python >= 3.10 with venv"
need node "Node.js >= 18"
need npm "npm"

# --- toolchains -------------------------------------------------------------
# The wheel is kept in target/lang/wheels: tests/author_python.rs runs a
# scaffold's own `pip install` from it, offline.
venv=$work/venv
wheels=$work/wheels
if ! "$venv/bin/componentize-py" --version 2>/dev/null | grep -q '^componentize-py 0\.25\.'; then
  echo "installing componentize-py 0.25.x into $venv..." >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  rm -f "$wheels"/componentize_py-*.whl
fi
if ! ls "$wheels"/componentize_py-0.25.*.whl >/dev/null 2>&1; then
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --dest "$wheels" 'componentize-py==0.25.*'
fi
if ! "$venv/bin/componentize-py" --version 2>/dev/null | grep -q '^componentize-py 0\.25\.'; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-index --find-links "$wheels" 'componentize-py==0.25.*'
fi
pyver=$("$venv/bin/componentize-py" --version)

js=$work/js
# npm's download cache for this lock, kept in target/lang/npm-cache: a
# scaffolded tool's `npm install` can then run offline from it (the JS
# author test, tests/author_js.rs, does).
export npm_config_cache=$work/npm-cache
lock_hash=$(cat sdk/js/package.json sdk/js/package-lock.json | sha256sum | cut -d' ' -f1)
if [ "$(cat "$js/node_modules/.wasmward-lock" 2>/dev/null)" != "$lock_hash" ] || [ ! -d "$npm_config_cache" ]; then
  echo "installing componentize-js from sdk/js/package-lock.json into $js..." >&2
  rm -rf "$js" && mkdir -p "$js"
  cp sdk/js/package.json sdk/js/package-lock.json "$js/"
  # `npm ci` refuses a lock that lacks the optional per-platform packages a
  # registry mirror does not carry; `npm install` then resolves the same
  # pinned versions from the lock.
  (cd "$js" && { npm ci --no-audit --no-fund --loglevel=error 2>/dev/null \
    || npm install --no-audit --no-fund --loglevel=error; })
  echo "$lock_hash" > "$js/node_modules/.wasmward-lock"
fi
cjs=$js/node_modules/@bytecodealliance/componentize-js
jsver="componentize-js $(node -p "require('$cjs/package.json').version")"

# --- staging and builds -----------------------------------------------------
# The guest toolchains read one WIT directory: the tool's world.wit plus
# deps/ holding wasmward:tool and the WASI packages it includes.
stage() { # stage TOOL FILES... -> prints the staging dir
  local tool=$1; shift
  local dir=$work/stage/$tool
  rm -rf "$dir" && mkdir -p "$dir/wit/deps"
  cp example-tools/"$tool"/wit/world.wit "$dir/wit/"
  cp wit/deps/*.wit "$dir/wit/deps/"
  cp wit/tool.wit "$dir/wit/deps/wasmward-tool.wit"
  for f in "$@"; do cp -r "$f" "$dir/"; done
  echo "$dir"
}

inputs_hash() { # inputs_hash VERSION PATHS...
  local ver=$1; shift
  { echo "$ver"; find "$@" -type f ! -path '*/__pycache__/*' ! -path '*/node_modules/*' -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -d' ' -f1
}

fresh() { # fresh TOOL HASH: true when the built file matches the hash
  [ -f "$out/$1.wasm" ] && [ "$(cat "$out/$1.wasm.inputs" 2>/dev/null)" = "$2" ]
}

tool=python-text
h=$(inputs_hash "$pyver" example-tools/$tool wit sdk/python)
if fresh $tool "$h"; then
  echo "$tool: up to date" >&2
else
  echo "building $tool with $pyver..." >&2
  dir=$(stage $tool example-tools/$tool/app.py sdk/python/wasmward_sdk)
  "$venv/bin/python" sdk/python/build.py "$dir" --out "$out/$tool.wasm"
  echo "$h" > "$out/$tool.wasm.inputs"
fi

tool=js-text
h=$(inputs_hash "$jsver" example-tools/$tool wit sdk/js/build.mjs sdk/js/wasmward.js sdk/js/package-lock.json)
if fresh $tool "$h"; then
  echo "$tool: up to date" >&2
else
  echo "building $tool with $jsver..." >&2
  # The SDK's build.mjs, as a scaffolded tool runs it (`npm run build`).
  dir=$(stage $tool example-tools/$tool/app.js sdk/js/build.mjs sdk/js/wasmward.js)
  ln -s "$js/node_modules" "$dir/node_modules"
  (cd "$dir" && node build.mjs app.js --world $tool --out "$out/$tool.wasm.tmp" >/dev/null)
  mv "$out/$tool.wasm.tmp" "$out/$tool.wasm"
  echo "built $out/$tool.wasm ($(stat -c %s "$out/$tool.wasm") bytes)" >&2
  echo "$h" > "$out/$tool.wasm.inputs"
fi
