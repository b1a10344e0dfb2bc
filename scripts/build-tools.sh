#!/usr/bin/env bash
# Builds the example tools from source into example-tools/target/wasm32-wasip2/release/.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
echo "building example tools (wasm32-wasip2)..." >&2
cargo build --release --target wasm32-wasip2 --manifest-path example-tools/Cargo.toml
