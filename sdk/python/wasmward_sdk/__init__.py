"""Helpers for wasmward tools written in Python (componentize-py).

The modules import the bindings componentize-py generates for a world that
includes `wasmward:tool/imports@0.1.0`, so they work in any such tool:

- `wasmward_sdk.http`: outgoing HTTP over `wasi:http` (blocking, no asyncio);
- `wasmward_sdk.process`: run a program the operator allowlisted;
- `wasmward_sdk.log`: levelled logging into the host's log;
- `wasmward_sdk.is_denied(exc)`: whether an exception is the sandbox's refusal.

Files, environment, clocks and randomness need no helper: use the standard
library (`open`, `os.environ`, `time`, `random`). What works is decided by
the operator's policy on each call.
"""

import errno as _errno

__all__ = ["is_denied"]

# The errnos the sandbox answers a refused file or socket operation with:
# wasi `access` (EACCES), `read-only` (EROFS), `not-permitted` (EPERM), and
# wasi:sockets `access-denied` (EACCES).
_DENIED_ERRNOS = frozenset({_errno.EACCES, _errno.EROFS, _errno.EPERM})


def is_denied(exc: BaseException) -> bool:
    """True when `exc` is the sandbox refusing an operation under the
    operator's policy, False for an ordinary failure.

    - files and sockets: `PermissionError`, or an `OSError` whose errno is
      EACCES, EROFS or EPERM;
    - HTTP: `wasmward_sdk.http.HttpError` with code `HttpRequestDenied` or
      `DestinationIpProhibited` (a private address under `block_private_ips`);
    - programs: `wasmward_sdk.process.ProcessError` of kind `denied`;
    - the raw bindings' `componentize_py_types.Err` carrying one of those
      cases (`ErrorCode_HttpRequestDenied`, `ErrorCode_DestinationIpProhibited`, `Error_Denied`,
      `ErrorCode.ACCESS_DENIED`).

    The host writes an audit row for each refusal. A host file permission
    inside a granted mount also fails with EACCES, so it counts here too:
    the sandbox cannot be told from the host's own permissions from inside.
    """
    if isinstance(exc, OSError):
        return isinstance(exc, PermissionError) or exc.errno in _DENIED_ERRNOS
    denied = getattr(exc, "denied", None)
    if isinstance(denied, bool) and type(exc).__module__.startswith("wasmward_sdk."):
        return denied
    try:
        from componentize_py_types import Err
    except ImportError:  # not inside a componentize-py component
        return False
    if isinstance(exc, Err):
        case = exc.value
        name = type(case).__name__
        if name in ("ErrorCode_HttpRequestDenied", "ErrorCode_DestinationIpProhibited", "Error_Denied"):
            return True
        return getattr(case, "name", None) == "ACCESS_DENIED"  # wasi:sockets error-code
    return False
