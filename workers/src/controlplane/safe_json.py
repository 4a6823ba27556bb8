"""JSON from outside, parsed only once it is known to be small and shallow enough.

Python's json parser recurses once per nesting level. In Pyodide a text about 8,000 levels deep (16 KB)
overflows the JavaScript stack, and workerd then aborts the whole isolate: every request in flight and
every WebSocket on it fails. So the raw text is measured first, without recursion: its size in bytes,
and its nesting depth counted over the brackets outside string literals (a regular expression and
`accumulate` do the counting in C: about 10 ms for the largest body accepted, on CPython).
"""

from __future__ import annotations

import json
import re
from itertools import accumulate, repeat

# The deepest document the API takes nests 9 levels (a multi-clip job's keyframe); this leaves room.
MAX_DEPTH = 32

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class Refused(ValueError):
    """Text that is not parsed: `code` names why (too_large, too_deep, malformed_json)."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


def depth(text: str) -> int:
    """How deep arrays and objects nest in `text` (brackets inside strings do not count)."""
    return max(accumulate(map(_STEP.get, _STRING.sub("", text), repeat(0)), initial=0))


def loads(text: str, max_bytes: int, max_depth: int = MAX_DEPTH, what: str = "request body"):
    """json.loads for text from outside; raises Refused instead of parsing what is too big or too deep."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise Refused("too_large", f"{what} is larger than {max_bytes} bytes")
    if depth(text) > max_depth:
        raise Refused("too_deep", f"{what} nests arrays and objects more than {max_depth} levels deep")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise Refused("malformed_json", f"{what} is not valid JSON: {e}") from None
