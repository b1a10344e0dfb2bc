#!/usr/bin/env bash
# Sets up and runs every test: builds the example tools from source (Rust,
# then Python and JS with toolchains it installs under target/lang), then the
# unit and end-to-end tests of the whole workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
# The TLS test makes its CA with the openssl command line.
if ! command -v openssl >/dev/null; then
  echo "installing openssl (Debian package) for the TLS test..." >&2
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq openssl >/dev/null
fi
# The process sandbox tests run Debian's python3 (/usr/bin/python3).
if [ ! -x /usr/bin/python3 ]; then
  echo "installing python3 (Debian package) for the process sandbox tests..." >&2
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq python3 >/dev/null
fi
# The JS tools (componentize-js) and the MCP conformance test (the official
# TypeScript SDK) need Node.js >= 18 with npm; the Python SDK tests need venv.
if ! command -v node >/dev/null || ! command -v npm >/dev/null \
  || [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 18 ]; then
  echo "installing nodejs and npm (Debian packages) for the JS tools and the MCP conformance test..." >&2
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq nodejs npm >/dev/null
fi
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  echo "installing python3-venv (Debian package) for the MCP SDK tests..." >&2
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq python3-venv >/dev/null
fi
scripts/build-tools.sh
scripts/build-lang-tools.sh
export WASMWARD_EXAMPLE_TOOLS_BUILT=1
cargo test --workspace --no-fail-fast "$@"
