"""python-text: the wasmward example tool in Python (see wit/world.wit)."""

# componentize-py bundles only the modules imported while it builds, so
# import here what the standard library would import lazily at call time.
import encodings.idna  # noqa: F401  (socket.getaddrinfo)
import heapq  # noqa: F401  (Counter.most_common)
import socket
from collections import Counter

import wit_world
from componentize_py_types import Err
from wit_world import CaseStyle, Page, Shape_Circle, Shape_Point, Shape_Rectangle, Stats

from wasmward_sdk import http, log


class WitWorld(wit_world.WitWorld):
    def greet(self, name: str) -> str:
        return f"Hello, {name}!"

    def word_stats(self, text: str) -> Stats:
        words = text.split()
        longest = None
        for w in words:
            if longest is None or len(w) > len(longest):
                longest = w
        common = Counter(w.lower() for w in words).most_common(1)
        return Stats(
            words=len(words),
            lines=len(text.splitlines()),
            chars=len(text),
            longest_word=longest,
            most_common=(common[0][0], common[0][1]) if common else None,
        )

    def change_case(self, words: list[str], style: CaseStyle) -> list[str]:
        change = {CaseStyle.UPPER: str.upper, CaseStyle.LOWER: str.lower, CaseStyle.TITLE: str.title}[style]
        return [change(w) for w in words]

    def area(self, s) -> float:
        if isinstance(s, Shape_Point):
            return 0.0
        if isinstance(s, Shape_Circle):
            if s.value < 0:
                raise Err(f"negative radius {s.value}")
            return 3.141592653589793 * s.value * s.value
        if isinstance(s, Shape_Rectangle):
            w, h = s.value
            if w < 0 or h < 0:
                raise Err(f"negative size {w} x {h}")
            return w * h
        raise Err(f"unknown shape {s!r}")

    def fetch(self, url: str, max_bytes: int | None) -> Page:
        try:
            resp = http.get(url, max_bytes=65536 if max_bytes is None else max_bytes)
        except http.HttpError as e:
            raise Err(f"fetch {url} failed: {e}")
        log.info("fetched", url=url, status=resp.status)
        return Page(status=resp.status, content_type=resp.header("content-type"),
                    body=resp.text(), truncated=resp.truncated)

    def write_file(self, path: str, contents: str) -> int:
        data = contents.encode()
        try:
            with open(path, "wb") as f:
                return f.write(data)
        except OSError as e:
            raise Err(f"cannot write {path}: {e.strerror or e}")

    def connect(self, host: str, port: int) -> str:
        try:
            with socket.create_connection((host, port), timeout=5) as s:
                peer = s.getpeername()
                return f"connected to {peer[0]}:{peer[1]}"
        except OSError as e:
            raise Err(f"cannot connect to {host}:{port}: {e.strerror or e}")
