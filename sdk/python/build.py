#!/usr/bin/env python3
"""Builds a wasmward tool written in Python into a component.

    python build.py [--world NAME] [--app app] [--out NAME.wasm] [DIR]

DIR (default: this file's directory) holds `app.py`, `wit/world.wit` and
`wit/deps/`. Runs `componentize-py` from the same environment as this
Python, then appends the tool's WIT source to the component in a
`wasmward-docs` custom section, from which wasmward takes the function and
parameter descriptions agents see (componentize-py drops WIT doc comments).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path


def leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def custom_section(name: str, data: bytes) -> bytes:
    """A custom section (id 0): valid anywhere at a component's top level."""
    payload = leb128(len(name.encode())) + name.encode() + data
    return b"\x00" + leb128(len(payload)) + payload


def world_name(wit: str) -> str:
    names = re.findall(r"^\s*world\s+([a-z][a-z0-9-]*)\s*\{", wit, re.M)
    if len(names) != 1:
        sys.exit(f"error: wit/world.wit defines {len(names)} worlds; pass --world NAME")
    return names[0]


def componentize_py() -> str:
    here = Path(sys.executable).parent / "componentize-py"
    found = str(here) if here.exists() else shutil.which("componentize-py")
    if not found:
        sys.exit("error: componentize-py is not installed; run `pip install 'componentize-py==0.25.*'` in this environment")
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", default=Path(__file__).resolve().parent, type=Path)
    ap.add_argument("--world")
    ap.add_argument("--app", default="app")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--python-path", action="append", default=[], help="extra module directory (repeatable)")
    args = ap.parse_args()
    src = args.dir.resolve()
    wit_file = src / "wit" / "world.wit"
    wit = wit_file.read_text()
    world = args.world or world_name(wit)
    out = (args.out or src / f"{world}.wasm").resolve()
    tmp = out.with_name(out.name + ".tmp")
    cmd = [componentize_py(), "-q", "-d", str(src / "wit"), "-w", world, "componentize", args.app, "-p", str(src)]
    for p in args.python_path:
        cmd += ["-p", str(Path(p).resolve())]
    cmd += ["-o", str(tmp)]
    done = subprocess.run(cmd, cwd=src)
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        sys.exit(f"error: componentize-py failed with status {done.returncode}")
    with open(tmp, "ab") as f:
        f.write(custom_section("wasmward-docs", wit.encode()))
    os.replace(tmp, out)
    print(f"built {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
