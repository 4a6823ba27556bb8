import json
import time

import pytest

from controlplane import safe_json
from jobspec import MAX_REQUEST_BYTES


@pytest.mark.parametrize("text, depth", [
    ("1", 0), ("[]", 1), ('{"a": [1, {"b": []}]}', 4), ('"[[[["', 0), ('["]]]", "\\"[[["]', 1),
    ('{"a": "\\\\"}', 1), ('"unterminated [[', 2), ("]]]", 0),
])
def test_depth_counts_brackets_outside_strings(text, depth):
    assert safe_json.depth(text) == depth


def test_too_deep_too_large_and_malformed_are_refused_before_parsing():
    assert safe_json.loads("[" * 32 + "]" * 32, 100) == json.loads("[" * 32 + "]" * 32)
    for text, limit, code in [("[" * 33 + "]" * 33, 1000, "too_deep"), ("[" * 100_000, 10**6, "too_deep"),
                              ('"' + "é" * 60 + '"', 100, "too_large"), ("{", 100, "malformed_json"),
                              ("1" * 5000, 10**4, "malformed_json")]:  # beyond int's digit limit
        with pytest.raises(safe_json.Refused) as refused:
            safe_json.loads(text, limit)
        assert refused.value.code == code and refused.value.reason


def test_measuring_the_largest_body_is_cheap():
    widest = "[" + ",".join(["[]"] * (MAX_REQUEST_BYTES // 3 - 1)) + "]"
    strings = json.dumps(["x\\\"[" * 10] * (MAX_REQUEST_BYTES // 60))
    for text in (widest, strings):
        started = time.perf_counter()
        assert safe_json.depth(text) <= 2
        assert time.perf_counter() - started < 0.5
