"""Levelled, structured logging into the host's log (`wasmward:tool/log`).

Log lines never reach the agent's protocol stream. Keyword arguments become
fields: `log.info("fetched", url=url, status=200)`.
"""

from wit_world.imports import log as _log


def _emit(level: "_log.Level", message: str, fields: dict) -> None:
    _log.log(level, message, [(str(k), str(v)) for k, v in fields.items()])


def trace(message: str, **fields) -> None:
    _emit(_log.Level.TRACE, message, fields)


def debug(message: str, **fields) -> None:
    _emit(_log.Level.DEBUG, message, fields)


def info(message: str, **fields) -> None:
    _emit(_log.Level.INFO, message, fields)


def warn(message: str, **fields) -> None:
    _emit(_log.Level.WARN, message, fields)


def error(message: str, **fields) -> None:
    _emit(_log.Level.ERROR, message, fields)
