"""The official Python SDK (`mcp`) waiting for an approval.

Run by tests/approvals.rs against a real `wasmward serve`: calls a function
under approval with a `progress_callback` (so the request carries a
progressToken), prints every progress notification as a `PROGRESS {json}`
line while the test decides the call, then the result as `RESULT {json}`.
"""

import argparse
import json

import anyio
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--args", required=True)
    a = p.parse_args()

    async def on_progress(progress, total, message):
        print("PROGRESS " + json.dumps({"progress": progress, "total": total, "message": message}), flush=True)

    client = create_mcp_http_client(headers={"Authorization": f"Bearer {a.token}"})
    async with client:
        async with streamable_http_client(a.url, http_client=client) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                with anyio.fail_after(60):
                    r = await session.call_tool(a.name, json.loads(a.args), progress_callback=on_progress)
    text = [c.text for c in r.content if getattr(c, "type", None) == "text"]
    print("RESULT " + json.dumps({"is_error": bool(r.is_error), "structured_content": r.structured_content, "text": text}), flush=True)


if __name__ == "__main__":
    anyio.run(main)
