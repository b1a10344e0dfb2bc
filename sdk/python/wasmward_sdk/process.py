"""Run a program the operator allowlisted (`wasmward:tool/process`).

    from wasmward_sdk import process
    out = process.run("git", ["status", "--short"])
    out.status, out.stdout.decode(), out.truncated

There is no shell: `program` is resolved against the policy's
`subprocess_allowlist` and `args` become argv[1..]. Every call is refused
unless the operator granted `allow_subprocess`; a refused call raises
`ProcessError` with `kind == "denied"` (`is_denied(e)` is True), and the
host records a denial.
"""

from typing import Sequence

from componentize_py_types import Err
from wit_world.imports import process as _host

Output = _host.Output


class ProcessError(Exception):
    """A program that did not run to completion.

    `kind` is "denied" (the policy refused it; `detail` names the rule),
    "spawn-failed" or "timeout"; `denied` is True for the first.
    """

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail

    @property
    def denied(self) -> bool:
        return self.kind == "denied"


def run(program: str, args: Sequence[str] = (), stdin: bytes = b"") -> "Output":
    """Runs `program` with `args`, feeding it `stdin`, and waits for it to exit."""
    try:
        return _host.run(program, list(args), bytes(stdin))
    except Err as e:
        case = e.value
        if isinstance(case, _host.Error_Denied):
            raise ProcessError("denied", case.value) from None
        if isinstance(case, _host.Error_SpawnFailed):
            raise ProcessError("spawn-failed", case.value) from None
        raise ProcessError("timeout", "the program ran past the policy's timeout and was killed") from None
