"""Drives `wasmward serve` with the official Python MCP SDK (`mcp>=2.3,<3`).

Run by tests/mcp_conformance.rs, the Python twin of ts_client.cjs:

    python py_client.py --plan plan.json stdio --bin wasmward --config wasmward.toml [--listen ADDR]
    python py_client.py --plan plan.json http --url http://127.0.0.1:PORT/mcp --token T [--bad-token]

It lists the tools, calls every call of the plan through
ClientSession.call_tool (which validates a successful result's
structuredContent against the listed outputSchema and raises when they
disagree), checks each result itself as well (jsonschema, draft 2020-12),
and prints one JSON line per event for the Rust test to assert on. Tools
are called by the name the listing returns (see ts_client.cjs).
"""

import argparse
import json
import sys

import anyio
import jsonschema
from mcp import ClientSession, types
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def key(name):
    return name.lower().replace(".", "").replace("_", "")


def compile_schema(schema):
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
        return jsonschema.Draft202012Validator(schema), None
    except Exception as e:  # noqa: BLE001 - reported, not judged
        return None, f"{type(e).__name__}: {e}"


def check(compiled, value):
    validator, error = compiled
    if validator is None:
        return f"schema does not compile: {error}"
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
    return "; ".join(f"{list(e.path)}: {e.message}" for e in errors) or None


async def run(session, args, plan):
    init = await session.initialize()
    from importlib.metadata import version

    emit({"event": "initialized", "sdk": f"python {version('mcp')}", "server": init.server_info.model_dump(mode="json")})

    tools = []
    cursor = None
    while True:
        page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor)) if cursor else await session.list_tools()
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    by_key, schemas = {}, {}
    for t in tools:
        inp = compile_schema(t.input_schema)
        out = compile_schema(t.output_schema) if t.output_schema is not None else (None, "no outputSchema")
        schemas[t.name] = (inp, out)
        by_key.setdefault(key(t.name), []).append(t.name)
        emit({"event": "tool", "name": t.name, "input_schema_error": inp[1], "output_schema_error": out[1]})

    called = set()
    for c in plan["calls"]:
        name = c["name"]
        if not c.get("verbatim"):
            found = by_key.get(key(c["name"]), [])
            if len(found) != 1:
                emit({"event": "call", "plan": c["name"], "id": c.get("id"), "client_error": f"the listing has {len(found)} tools for {c['name']}"})
                continue
            name = found[0]
            called.add(name)
        s = schemas.get(name)
        out = {"event": "call", "plan": c["name"], "id": c.get("id"), "listed": name, "args_error": check(s[0], c["args"]) if s else None}
        if c.get("decide"):
            emit({"event": "await_approval", "decision": c["decide"], "plan": c["name"], "id": c.get("id")})
        try:
            r = await session.call_tool(name, c["args"], read_timeout_seconds=120)
            out["is_error"] = bool(r.is_error)
            out["text"] = "\n".join(b.text for b in r.content if getattr(b, "type", None) == "text")
            out["has_structured"] = "structured_content" in r.model_fields_set and r.structured_content is not None
            out["structured"] = r.structured_content
            out["meta"] = dict(r.meta) if r.meta else None
            if not r.is_error:
                if s is None:
                    out["own_schema_error"] = "not listed"
                elif not out["has_structured"]:
                    out["own_schema_error"] = "no structuredContent"
                else:
                    out["own_schema_error"] = check(s[1], r.structured_content)
        except Exception as e:  # noqa: BLE001 - the Rust test judges it
            out["client_error"] = f"{type(e).__name__}: {e}"
        emit(out)
    emit({"event": "coverage", "uncalled": [t.name for t in tools if t.name not in called]})


async def bad_token(args):
    client = create_mcp_http_client(headers={"Authorization": "Bearer ww1.not-a-token"})
    # The SDK reports a non-JSON-RPC error status only as "Server returned an
    # error response"; the statuses are recorded here.
    statuses = []

    async def record(response):
        statuses.append(response.status_code)

    client.event_hooks["response"].append(record)
    try:
        with anyio.fail_after(30):
            async with client:
                async with streamable_http_client(args.url, http_client=client) as streams:
                    async with ClientSession(streams[0], streams[1]) as session:
                        await session.initialize()
                        await session.list_tools()
        emit({"event": "unauthorized", "error": None, "statuses": statuses})
    except BaseException as e:  # noqa: BLE001 - an ExceptionGroup from the task group
        emit({"event": "unauthorized", "error": f"{type(e).__name__}: {describe(e)}", "statuses": statuses})


def describe(e):
    if isinstance(e, BaseExceptionGroup):
        return "; ".join(describe(x) for x in e.exceptions)
    text = f"{type(e).__name__}: {e}"
    error = getattr(e, "error", None)  # an MCPError's JSON-RPC error
    if error is not None:
        text += f" (error {error!r})"
    if e.__cause__ is not None:
        text += f" <- {describe(e.__cause__)}"
    return text


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--plan", required=True)
    p.add_argument("transport", choices=["stdio", "http"])
    p.add_argument("--bin")
    p.add_argument("--config")
    p.add_argument("--listen")
    p.add_argument("--url")
    p.add_argument("--token")
    p.add_argument("--bad-token", action="store_true")
    args = p.parse_args()
    with open(args.plan) as f:
        plan = json.load(f)

    if args.transport == "stdio":
        cmd = ["serve", "--stdio", "--config", args.config] + (["--listen", args.listen] if args.listen else [])
        params = StdioServerParameters(command=args.bin, args=cmd)
        with open("/dev/null", "w") as devnull:
            async with stdio_client(params, errlog=devnull) as (read, write):
                async with ClientSession(read, write) as session:
                    await run(session, args, plan)
    else:
        client = create_mcp_http_client(headers={"Authorization": f"Bearer {args.token}"})
        async with client:
            async with streamable_http_client(args.url, http_client=client) as streams:
                async with ClientSession(streams[0], streams[1]) as session:
                    await run(session, args, plan)
        if args.bad_token:
            await bad_token(args)
    emit({"event": "done"})


if __name__ == "__main__":
    try:
        anyio.run(main)
    except BaseException as e:  # noqa: BLE001
        emit({"event": "fatal", "error": describe(e)})
        sys.exit(1)
