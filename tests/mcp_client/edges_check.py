"""The official Python SDK (`mcp`) against wasmward's protocol edges: a
streamable-HTTP session that is closed (DELETE) must not make the SDK warn
`Session termination failed`. Prints every warning the SDK logged, then
"ALL OK" when there was none about the session.

With `--slow-call MS`, it instead calls edges.deny-then-sleep for MS
milliseconds (the test sends SIGTERM meanwhile) and prints the result.

usage: edges_check.py --url URL --token TOKEN [--slow-call MS]
"""

import argparse
import logging

import anyio

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(f"{record.name}: {record.getMessage()}")


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--slow-call", type=int)
    args = p.parse_args()

    warnings = Collect()
    logging.getLogger().addHandler(warnings)
    logging.getLogger().setLevel(logging.DEBUG)

    client = create_mcp_http_client(headers={"Authorization": f"Bearer {args.token}"})
    async with client:
        async with streamable_http_client(args.url, http_client=client, terminate_on_close=True) as streams:
            read, write = streams[0], streams[1]
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = await session.list_tools()
                assert tools.tools, "no tools listed"
                # Call by the listed names: the SDK checks a result against
                # the outputSchema it listed under that name, and lists again
                # (one more request) for a name it has not seen.
                listed = lambda suffix: next(t.name for t in tools.tools if t.name.endswith(suffix))
                if args.slow_call is not None:
                    print("CALLING", flush=True)
                    args_ = {"path": "/etc/wasmward-py-edges", "ms": args.slow_call}
                    r = await session.call_tool(listed("deny-then-sleep"), args_)
                    print("RESULT", "error" if r.is_error else "ok", r.content[0].text, flush=True)
                    print("ALL OK", flush=True)
                    return
                r = await session.call_tool(listed("greet"), {"name": "py"})
                assert not r.is_error, r
                print("called:", r.content[0].text, flush=True)
    for m in warnings.messages:
        print("WARNING", m, flush=True)
    bad = [m for m in warnings.messages if "termination" in m.lower() or "session" in m.lower()]
    assert not bad, bad
    print("ALL OK", flush=True)


if __name__ == "__main__":
    anyio.run(main)
