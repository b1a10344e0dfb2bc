#!/usr/bin/env bash
# Sets up and runs every test: builds the example tools from source (Rust,
# then Python and JS with toolchains it installs under target/lang), then the
# unit and end-to-end tests of the whole workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-tools.sh
scripts/build-lang-tools.sh
export WASMWARD_EXAMPLE_TOOLS_BUILT=1
cargo test --workspace --no-fail-fast "$@"
