"""Property: whatever a client sends to the public API, the answer is never a 5xx, and every 4xx is a
JSON {"error": str, "reason": str}. Random JSON (NaN, infinities, huge integers, deep nesting), random
bytes, random query strings, valid requests with one part mutated, and structure: bodies and socket
messages of any depth (to 20,000 levels), width (to 120,000 items) and size (around the limit).
Bounded and derandomized, so a run takes about a minute and a failure reproduces."""

from __future__ import annotations

import json
import math

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane import safe_json
from controlplane.safe_json import MAX_DEPTH
from gpu_export import Client
from jobspec import MAX_REQUEST_BYTES
from tests.api_helpers import overlay_job, video_bytes

from .conftest import is_error, user_token

EXAMPLES = 150
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**52, max_value=2**80)
           | st.floats() | st.text(max_size=30) | st.sampled_from(["", "..", "../../x", "videos/raw/", "\x00", "NaN"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=6)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=6), max_leaves=25)

POST_PATHS = ["/api/jobs", "/api/videos/upload-url", "/api/videos/multipart", "/api/videos/multipart/complete",
              "/api/videos/multipart/abort", "/api/videos/view-url", "/api/exports/seen"]
FIELDS = ["type", "input_video_key", "params", "project_id", "highlight_regions", "keyframes", "crop_keyframes",
          "clips", "t", "x", "y", "rx", "ry", "w", "h", "easing", "dim", "feather", "output_width", "output_height",
          "upscale_model", "start_s", "end_s", "title", "filename", "content_type", "size_bytes", "key",
          "upload_id", "parts", "part_number", "etag", "job_ids"]


def check(r) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:500])
    if r.status_code >= 400:
        assert is_error(r, r.status_code), r.text[:500]


def dumps(value) -> str:
    return json.dumps(value, allow_nan=True)  # NaN / Infinity literals, as a sloppy client sends


@pytest.fixture(scope="module")
def user(stack):
    with Client(stack.url, user_token(stack)) as api:
        yield api


@pytest.fixture(scope="module")
def key(user) -> str:
    """One upload of the user's."""
    return user.upload(video_bytes(bytes(200)))


@pytest.fixture(scope="module")
def fuzzer(stack, user):
    """The user's requests as they are sent, whatever they are: a plain HTTP session with its token (the
    client checks a request before it sends it)."""
    with httpx.Client(base_url=stack.url, timeout=30, headers={"authorization": f"Bearer {user.token}"}) as http:
        yield http


@SETTINGS
@given(path=st.sampled_from(POST_PATHS), body=json_values | st.binary(max_size=200).map(lambda b: b"\xff" + b))
def test_random_bodies(fuzzer, path, body):
    content = body if isinstance(body, bytes) else dumps(body)
    check(fuzzer.post(path, content=content, headers={"content-type": "application/json"}))


@SETTINGS
@given(params=st.dictionaries(st.sampled_from(["status", "limit", "cursor", "redirect", "x"]),
                              st.text(max_size=40) | st.integers().map(str) | st.floats().map(str), max_size=4),
       job_id=st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="/?#%"),
                      min_size=1, max_size=40))
def test_random_queries_and_ids(fuzzer, params, job_id):
    check(fuzzer.get("/api/jobs", params=params))
    check(fuzzer.get("/api/exports/active", params=params))
    for path in (f"/api/jobs/{job_id}", f"/api/jobs/{job_id}/download"):
        check(fuzzer.get(path, params=params))


def valid_bodies(key: str) -> dict:
    kf = {"t": 0, "x": 0.5, "y": 0.5, "rx": 0.2, "ry": 0.2, "easing": "linear"}
    crop = {"t": 0, "x": 0.1, "y": 0, "w": 0.5, "h": 1}
    return {
        "/api/jobs": [
            {"type": "overlay", "input_video_key": key, "project_id": 3,
             "params": {"highlight_regions": [{"keyframes": [kf, {**kf, "t": 1}], "dim": 0.5, "feather": 0.02}]}},
            {"type": "framing", "input_video_key": key, "params": {
                "crop_keyframes": [crop], "output_width": 144, "output_height": 256, "upscale_model": "none"}},
            {"type": "multi_clip", "params": {"clips": [
                {"input_video_key": key, "start_s": 0, "end_s": 1, "title": "a"},
                {"input_video_key": key, "framing": {"crop_keyframes": [crop], "upscale_model": "none"}}]}},
        ],
        "/api/videos/upload-url": [{"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 100}],
        "/api/videos/multipart/abort": [{"key": key, "upload_id": "u"}],
        "/api/videos/view-url": [{"key": key}],
        "/api/videos/multipart/complete": [{"key": key, "upload_id": "u", "parts": [{"part_number": 1, "etag": "e"}]}],
        "/api/exports/seen": [{"job_ids": ["a", "b"]}],
    }


def mutate(value, path: list, replacement, drop: bool):
    """`value` with the node at `path` replaced (or dropped from its container)."""
    if not path:
        return replacement
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = dict(value)
        if drop and not rest:
            out.pop(head, None)
        else:
            out[head] = mutate(value[head], rest, replacement, drop)
        return out
    out = list(value)
    if drop and not rest:
        del out[head]
    else:
        out[head] = mutate(value[head], rest, replacement, drop)
    return out


def paths(value, prefix=()):
    yield list(prefix)
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, prefix + (i,))


@SETTINGS
@given(data=st.data())
def test_valid_requests_with_one_part_mutated(fuzzer, key, data):
    bodies = valid_bodies(key)
    path = data.draw(st.sampled_from(sorted(bodies)))
    body = data.draw(st.sampled_from(bodies[path]))
    where = data.draw(st.sampled_from(list(paths(body))))
    how = data.draw(st.sampled_from(["replace", "drop", "extra"]))
    if how == "extra":
        target = data.draw(st.sampled_from([p for p in paths(body) if _at(body, p).__class__ is dict]))
        mutated = mutate(body, target, {**_at(body, target), data.draw(st.sampled_from(FIELDS)): data.draw(json_values)},
                         False)
    else:
        mutated = mutate(body, where, data.draw(json_values | st.sampled_from([math.nan, -1, 0, 2**53, "x" * 300])),
                         how == "drop" and bool(where))
    check(fuzzer.post(path, content=dumps(mutated), headers={"content-type": "application/json"}))


def _at(value, path):
    for p in path:
        value = value[p]
    return value


# ---------------------------------------------------------------- structure: depth, width, size
# Values alone never reach the parser's limits: an ~8,000-deep body once took the whole runtime down.

STRUCTURE_EXAMPLES = 60
STRUCTURE = settings(SETTINGS, max_examples=STRUCTURE_EXAMPLES)


def nested_text(depth: int, seed: int, leaf: str = "0") -> str:
    """Arrays and objects mixed (seeded), `depth` levels around `leaf`."""
    kinds = [bool(seed >> (i % 32) & 1) for i in range(depth)]
    return ("".join('{"k": ' if obj else "[" for obj in kinds) + leaf
            + "".join("}" if obj else "]" for obj in reversed(kinds)))


def wide_text(width: int, item: str) -> str:
    return "[" + ",".join([item] * width) + "]"


shapes = st.one_of(
    st.tuples(st.just("deep"), st.integers(1, 20_000), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("deep"), st.integers(MAX_DEPTH - 3, MAX_DEPTH + 3), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("wide"), st.integers(0, 120_000), st.sampled_from(["0", "{}", "[]", '"x"', "null", "1e308"])),
    st.tuples(st.just("keys"), st.integers(0, 30_000), st.just("")),
    st.tuples(st.just("string"), st.integers(MAX_REQUEST_BYTES - 64, MAX_REQUEST_BYTES + 64), st.sampled_from("x[{\\")),
)


def shaped(shape) -> str:
    kind, n, extra = shape
    if kind == "deep":
        return nested_text(n, extra)
    if kind == "wide":
        return wide_text(n, extra)
    if kind == "keys":
        return "{" + ",".join(f'"k{i}": {i}' for i in range(n)) + "}"
    return json.dumps(extra * (n // len(json.dumps(extra))))


def expect_structure_refusal(r, text: str) -> None:
    check(r)
    size, depth = len(text.encode()), safe_json.depth(text)
    if size > MAX_REQUEST_BYTES:
        assert is_error(r, 413, "too_large"), (size, r.text[:300])
    elif depth > MAX_DEPTH:
        assert is_error(r, 400, "too_deep"), (depth, r.text[:300])


@STRUCTURE
@given(path=st.sampled_from(POST_PATHS), field=st.sampled_from(["params", "job_ids", "filename", "parts", None]),
       shape=shapes)
def test_bodies_of_any_depth_width_and_size(fuzzer, path, field, shape):
    inner = shaped(shape)
    text = inner if field is None else f'{{"type": "overlay", "{field}": {inner}}}'
    r = fuzzer.post(path, content=text, headers={"content-type": "application/json"})
    expect_structure_refusal(r, text)


@pytest.fixture(scope="module")
def socket(user, key):
    import websockets.sync.client as ws_client

    url = user.create(overlay_job(key)).websocket_url
    with ws_client.connect(url, open_timeout=20, max_size=None) as ws:
        ws.recv(timeout=20)  # snapshot
        yield ws


@settings(STRUCTURE, max_examples=40)
@given(shape=shapes)
def test_socket_messages_of_any_depth_width_and_size(socket, shape):
    socket.send(shaped(shape))
    reply = json.loads(socket.recv(timeout=20))
    assert reply["type"] == "error" and reply["error"], reply
    socket.send('{"type": "ping"}')  # the same socket still answers
    assert json.loads(socket.recv(timeout=20))["type"] == "pong"
