#!/usr/bin/env bash
# Sets up and runs wasmward on the example config: builds the example tools and
# the host, checks the config, then calls tools (one allowed, one refused).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-tools.sh
cargo build --release -p wasmward
ww=target/release/wasmward
$ww check --config examples/wasmward.toml
echo "+ wasmward call text greet" >&2
$ww call --config examples/wasmward.toml text greet --args '{"name":"operator"}'
echo "+ wasmward call text analysis.word-stats" >&2
$ww call --config examples/wasmward.toml text analysis.word-stats --args '{"text":"two words\nand a line"}'
