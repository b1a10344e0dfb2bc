#!/usr/bin/env python3
"""Groups a callgrind profile's self (exclusive) instruction counts into the
stages of one call, by function name. Usage: callgrind-stages.py DUMP CALLS

Exclusive counts add up to the total, so the stages do too; shared helpers
(malloc, memcpy, SHA-256) are split out under their own rows, with the
callers that spend most of them named by the inclusive profile."""
import re, subprocess, sys
from collections import defaultdict

dump, calls = sys.argv[1], int(sys.argv[2])
out = subprocess.run(["callgrind_annotate", "--threshold=100", dump], capture_output=True, text=True).stdout
# (stage, pattern) in order; the first match wins.
STAGES = [
    ("audit (writer thread, SQLite, HMAC chain, redaction)", r"wasmward::audit::|sqlite3|rusqlite|^wal|walIndex|walChecksum|^yy|pager|btree|Vdbe|regex|redact|hex::|unixWrite|unixSync|pcache|sqlite|whereP|^where|Expr|Parse|Token|^exprAnalyze|^lookupName|^resolve|^select|^vdbe|^memjrnl|^balance"),
    ("token check (HMAC, base64, claims JSON, revocation stat)", r"gate::tokens|hmac|base64|digest::"),
    ("gate, names, metrics", r"wasmward::gate|wasmward::server::names|wasmward::server::metrics|glob_match"),
    ("wasmtime instantiate + call + teardown, sandbox state", r"wasmtime|cranelift|wasmward::sandbox|wasmward::runtime|cap_std|cap_primitives|wasi|^0x|fiber|rustix::|mprotect|madvise"),
    ("JSON <-> Val conversion, JSON bodies", r"wasmward::component::convert|serde_json|serde_core|serde::"),
    ("HTTP transport (hyper, axum, tower, middleware)", r"hyper|httparse|axum|tower|http::|wasmward::server::http|bytes::|mime|percent_encoding|matchit|form_urlencoded"),
    ("tokio scheduler, timers, I/O driver", r"tokio|mio::|parking_lot|futures|std::sync|std::thread|epoll"),
    ("sha256 (audit chain, args digest, token MAC)", r"sha2::"),
    ("malloc/free/memcpy/memset (all stages)", r"malloc|free|memcpy|memmove|memset|alloc|realloc|calloc|__rustc|memcmp|strlen|_int_"),
    ("server call path (Server::call, Host::call)", r"wasmward::server|wasmward::host"),
]
rx = re.compile(r"^\s*([\d,]+)\s+\([ \d.]+%\)\s+(.*)$")
agg, other = defaultdict(int), defaultdict(int)
total = 0
started = False
for line in out.splitlines():
    if "file:function" in line:
        started = True
        continue
    m = rx.match(line) if started else None
    if not m:
        continue
    n = int(m.group(1).replace(",", ""))
    fn = m.group(2).split(":", 1)[-1] if "???:" in m.group(2) or m.group(2).startswith("./") else m.group(2)
    fn = fn.split(" [")[0]
    total += n
    for stage, pat in STAGES:
        if re.search(pat, fn):
            agg[stage] += n
            break
    else:
        other[fn] += n
        agg["other"] += n
print(f"| stage (self instructions by function name) | instructions per call | share |")
print(f"|---|---|---|")
for stage, n in sorted(agg.items(), key=lambda kv: -kv[1]):
    print(f"| {stage} | {n / calls:,.0f} | {100 * n / total:.1f}% |")
print(f"| **total** | **{total / calls:,.0f}** | 100% |")
if "-v" in sys.argv:
    for fn, n in sorted(other.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  other: {n / calls:8.0f} {fn[:150]}", file=sys.stderr)
