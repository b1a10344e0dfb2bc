"""Drives `wasmward serve` with the official Python MCP SDK (`mcp` on PyPI).

Run by tests/mcp_python.rs, once over stdio and once over streamable HTTP:

    python session_check.py stdio --bin wasmward --config wasmward.toml --inspect inspect.json --reload-config new.toml
    python session_check.py http --url http://127.0.0.1:PORT/mcp --token TOKEN --inspect inspect.json

Checks: initialize, tools/list (schemas equal to `wasmward inspect --json`),
tools/call (structuredContent + text), typed errors (isError with code and
the JSON path), a policy denial, a guest printing fake JSON-RPC to stdout,
and (with --reload-config) notifications/tools/list_changed after a reload.
Prints one line per check; exits non-zero on the first failure.
"""

import argparse
import json
import shutil
import sys

import anyio
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def check(cond, what, detail=""):
    if not cond:
        print(f"FAIL {what}: {detail}", flush=True)
        sys.exit(1)
    print(f"ok   {what}", flush=True)


def text_of(result):
    return "\n".join(c.text for c in result.content if getattr(c, "type", None) == "text")


async def session_checks(session, args, list_changed):
    init = await session.initialize()
    check(init.server_info.name == "wasmward", "initialize", init.server_info)
    check(init.capabilities.tools is not None and init.capabilities.tools.list_changed, "tools.listChanged capability")

    tools = {t.name: t for t in (await session.list_tools()).tools}
    with open(args.inspect) as f:
        inspected = json.load(f)["functions"]
    for fn in inspected:
        # Listed under the model-API form of the canonical (dotted) name.
        t = tools.get(fn["name"].replace(".", "__"))
        check(t is not None, f"{fn['name']} listed", sorted(tools))
        check(t.input_schema == fn["input_schema"], f"{fn['name']} inputSchema matches inspect", t.input_schema)
        check(t.output_schema == fn["output_schema"], f"{fn['name']} outputSchema matches inspect", t.output_schema)
        check(bool(t.description), f"{fn['name']} has a description")

    r = await session.call_tool("text.greet", {"name": "Py"})
    check(not r.is_error, "call text.greet", text_of(r))
    check(r.structured_content == {"result": "Hello, Py!"}, "structuredContent wraps the result", r.structured_content)
    check(text_of(r) == "Hello, Py!", "text rendering", text_of(r))

    r = await session.call_tool("text.analysis.word-stats", {"text": "a b c"})
    check(r.structured_content["result"]["words"] == 3, "record result", r.structured_content)

    r = await session.call_tool("text.greet", {"name": 7})
    check(r.is_error and text_of(r).startswith("invalid_arguments: "), "typed error: invalid_arguments", text_of(r))
    check("name" in text_of(r), "the error names the argument", text_of(r))
    check(r.structured_content is None, "an error carries no structuredContent", r.structured_content)
    meta = r.meta or {}
    check(meta.get("wasmward/error", {}).get("code") == "invalid_arguments", "error code in _meta", meta)

    r = await session.call_tool("text.analysis.parse-int", {"s": "nope"})
    check(r.is_error and text_of(r).startswith("tool_error: "), "typed error: the tool's err", text_of(r))

    r = await session.call_tool("hostile.loop-forever", {})
    check(r.is_error and text_of(r).startswith("forbidden: "), "gate denial (denied_tools)", text_of(r))

    r = await session.call_tool("hostile.caps.spawn", {"program": "ls", "args": []})
    check(r.is_error and "allow_subprocess is false" in text_of(r), "sandbox denial: no process capability granted", text_of(r))

    for i in range(3):
        r = await session.call_tool("hostile.fake-jsonrpc", {})
        check(not r.is_error and r.structured_content == {"result": "ok"}, f"guest fake JSON-RPC on stdout #{i + 1}", text_of(r))
        r = await session.call_tool("text.greet", {"name": f"after{i}"})
        check(text_of(r) == f"Hello, after{i}!", f"session intact after fake JSON-RPC #{i + 1}", text_of(r))

    if args.reload_config:
        shutil.copyfile(args.reload_config, args.config)
        with anyio.fail_after(30):
            await list_changed.wait()
        check(True, "notifications/tools/list_changed after reload")
        tools = {t.name for t in (await session.list_tools()).tools}
        check("text2__greet" in tools, "reloaded tool listed", sorted(tools))
        r = await session.call_tool("text2.greet", {"name": "new"})
        check(text_of(r) == "Hello, new!", "reloaded tool callable", text_of(r))


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("transport", choices=["stdio", "http"])
    p.add_argument("--bin")
    p.add_argument("--config")
    p.add_argument("--url")
    p.add_argument("--token")
    p.add_argument("--inspect", required=True)
    p.add_argument("--reload-config")
    args = p.parse_args()

    list_changed = anyio.Event()

    async def on_message(message):
        if isinstance(message, Exception):
            print(f"transport error: {message!r}", file=sys.stderr, flush=True)
            return
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            list_changed.set()

    if args.transport == "stdio":
        params = StdioServerParameters(command=args.bin, args=["serve", "--stdio", "--config", args.config])
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write, message_handler=on_message) as session:
                await session_checks(session, args, list_changed)
    else:
        client = create_mcp_http_client(headers={"Authorization": f"Bearer {args.token}"})
        async with client:
            async with streamable_http_client(args.url, http_client=client) as streams:
                read, write = streams[0], streams[1]
                async with ClientSession(read, write, message_handler=on_message) as session:
                    await session_checks(session, args, list_changed)
    print("ALL OK", flush=True)


if __name__ == "__main__":
    anyio.run(main)
