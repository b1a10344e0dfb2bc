#!/usr/bin/env bash
# Quick start: builds the example tools and the host, issues a bearer token,
# then runs `wasmward serve` on the example config (MCP at /mcp, HTTP API at
# /v1, loopback only). Extra arguments go to `serve`, e.g. `--stdio`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-tools.sh
cargo build --release -p wasmward
ww=target/release/wasmward
config=examples/wasmward.toml
$ww check --config "$config" >/dev/null
if [[ " $* " != *" --stdio "* ]]; then
    token=$($ww token issue --config "$config" --name quickstart --tools '*' --ttl 8h)
    listen=$(sed -n 's/^listen *= *"\(.*\)"/\1/p' "$config" | head -n1)
    listen=${listen:-127.0.0.1:8080}
    cat >&2 <<MSG
token (8h, all tools): $token
try:
  curl -s -H "Authorization: Bearer $token" http://$listen/v1/tools
  curl -s -H "Authorization: Bearer $token" -d '{"name":"operator"}' http://$listen/v1/tools/text.greet/call
MSG
fi
exec $ww --log-level info serve --config "$config" "$@"
