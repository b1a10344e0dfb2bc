"""Helpers for wasmward tools written in Python (componentize-py).

The modules import the bindings componentize-py generates for a world that
includes `wasmward:tool/imports@0.1.0`, so they work in any such tool:

- `wasmward_sdk.http`: outgoing HTTP over `wasi:http` (blocking, no asyncio);
- `wasmward_sdk.log`: levelled logging into the host's log.

Files, environment, clocks and randomness need no helper: use the standard
library (`open`, `os.environ`, `time`, `random`). What works is decided by
the operator's policy on each call.
"""
