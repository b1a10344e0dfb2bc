"""Outgoing HTTP over `wasi:http/outgoing-handler`, blocking.

    from wasmward_sdk import http
    resp = http.get("https://api.example.com/v1/items", max_bytes=65536)
    resp.status, resp.header("content-type"), resp.text()

Only hosts on the tool's `allowed_network_hosts` are reachable; a refused
request raises `HttpError` whose `code` is "HttpRequestDenied" and whose
`denied` is True (`wasmward_sdk.is_denied(e)` is True), and the host
records a denial.
"""

from dataclasses import dataclass, field
from typing import List, Optional, Tuple
from urllib.parse import urlsplit

from componentize_py_types import Err
from wit_world.imports import outgoing_handler
from wit_world.imports import streams
from wit_world.imports import wasi_http_types as t

DEFAULT_MAX_BYTES = 1 << 20
DENIED = "HttpRequestDenied"
# A private address refused under `block_private_ips` (audited as a denial).
PROHIBITED = "DestinationIpProhibited"
_CHUNK = 64 * 1024
_METHODS = {
    "GET": t.Method_Get, "HEAD": t.Method_Head, "POST": t.Method_Post,
    "PUT": t.Method_Put, "DELETE": t.Method_Delete, "OPTIONS": t.Method_Options,
    "PATCH": t.Method_Patch, "TRACE": t.Method_Trace, "CONNECT": t.Method_Connect,
}


class HttpError(Exception):
    """A request that failed; `code` is the wasi:http error-code case name
    (`HttpRequestDenied` when the policy refused the host,
    `DestinationIpProhibited` when it refused a private address: then
    `denied` is True)."""

    def __init__(self, code: str, detail: str = ""):
        if code == DENIED and not detail:
            detail = "the policy refused this request (see the audit log for the rule)"
        elif code == PROHIBITED and not detail:
            detail = "the policy refused this private address (block_private_ips; see the audit log)"
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code

    @property
    def denied(self) -> bool:
        return self.code in (DENIED, PROHIBITED)


@dataclass
class Response:
    status: int
    headers: List[Tuple[str, bytes]] = field(default_factory=list)
    body: bytes = b""
    truncated: bool = False

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v.decode("utf-8", "replace")
        return None

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def _error(e: object) -> HttpError:
    name = type(e).__name__.removeprefix("ErrorCode_")
    value = getattr(e, "value", None)
    return HttpError(name, "" if value is None else repr(value))


def get(url: str, headers: List[Tuple[str, str]] = (), max_bytes: int = DEFAULT_MAX_BYTES) -> Response:
    return request("GET", url, headers=headers, max_bytes=max_bytes)


def request(method: str, url: str, headers: List[Tuple[str, str]] = (), body: Optional[bytes] = None,
            max_bytes: int = DEFAULT_MAX_BYTES) -> Response:
    """Sends one request and reads at most `max_bytes` of the response body."""
    u = urlsplit(url)
    if u.scheme not in ("http", "https") or not u.netloc:
        raise HttpError("HttpRequestUriInvalid", f"{url!r}: use an absolute http or https URL")
    req = t.OutgoingRequest(t.Fields.from_list([(k, v.encode()) for k, v in headers]))
    m = method.upper()
    req.set_method(_METHODS[m]() if m in _METHODS else t.Method_Other(m))
    req.set_scheme(t.Scheme_Https() if u.scheme == "https" else t.Scheme_Http())
    req.set_authority(u.netloc)
    req.set_path_with_query((u.path or "/") + (f"?{u.query}" if u.query else ""))
    out = req.body() if body is not None else None
    try:
        future = outgoing_handler.handle(req, None)
    except Err as e:
        raise _error(e.value) from None
    if out is not None:
        _write_body(out, body)
    with future:
        got = None
        while got is None:
            with future.subscribe() as ready:
                ready.block()
            got = future.get()
    if isinstance(got, Err):
        raise HttpError("InternalError", "the response was already taken")
    if isinstance(got.value, Err):
        raise _error(got.value.value)
    return _read(got.value.value, max_bytes)


def _write_body(out: "t.OutgoingBody", data: bytes) -> None:
    with out.write() as stream:
        for i in range(0, len(data), 4096):
            stream.blocking_write_and_flush(data[i:i + 4096])
    t.OutgoingBody.finish(out, None)


def _read(resp: "t.IncomingResponse", max_bytes: int) -> Response:
    with resp:
        with resp.headers() as h:
            result = Response(status=resp.status(), headers=h.entries())
        chunks, size = [], 0
        with resp.consume() as body:
            with body.stream() as stream:
                while size < max_bytes:
                    try:
                        chunk = stream.blocking_read(min(_CHUNK, max_bytes - size))
                    except Err as e:
                        if isinstance(e.value, streams.StreamError_Closed):
                            break
                        raise HttpError("HttpProtocolError", "body read failed") from None
                    chunks.append(chunk)
                    size += len(chunk)
                else:
                    try:
                        result.truncated = len(stream.blocking_read(1)) > 0
                    except Err:
                        result.truncated = False
    result.body = b"".join(chunks)
    return result
