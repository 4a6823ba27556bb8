"""Hostile input must not reach D1 in a form it refuses (that is a 500): at most D1_MAX_PARAMS bound
parameters per statement, whatever a request repeats (checked on the SQL the Store sends), and no
integer a JavaScript number cannot hold (checked on the schema)."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from controlplane.store import D1_MAX_PARAMS, Store, list_sql
from jobspec import JOB_SPEC, MAX_D1_INTEGER

KEY = "videos/raw/usr_a/up1/a.mp4"
KEYFRAME = {"t": 0, "x": 0.5, "y": 0.5, "rx": 0.1, "ry": 0.1}


class RecordingD1:
    def __init__(self):
        self.statements: list[tuple[str, tuple]] = []

    async def run(self, sql, *params):
        assert sql.count("?") == len(params)
        self.statements.append((sql, params))
        return len(params) - 2


def test_a_repeated_status_filter_binds_each_status_once():
    sql, params = list_sql("usr_a", ["pending"] * 150 + ["complete"] * 150, 20, None)
    assert len(params) <= D1_MAX_PARAMS and params.count("pending") == 1 and params.count("complete") == 1


def test_marking_many_jobs_seen_stays_under_the_parameter_limit():
    d1 = RecordingD1()
    ids = [f"job{i}" for i in range(200)] + ["job0"]
    marked = asyncio.run(Store(d1).mark_seen("usr_a", ids, 1.0))
    assert marked == 200 and all(len(params) <= D1_MAX_PARAMS for _, params in d1.statements)
    assert sorted(p for _, params in d1.statements for p in params[2:]) == sorted(set(ids))


@pytest.mark.parametrize("body", [
    {"type": "overlay", "input_video_key": KEY, "params": {"highlight_regions": [{"keyframes": [KEYFRAME]}]}},
    {"type": "multi_clip", "params": {"clips": [{"input_video_key": KEY}]}},
])
def test_a_project_id_is_a_number_d1_can_store(body):
    assert JOB_SPEC.validate_python({**body, "project_id": MAX_D1_INTEGER}).project_id == MAX_D1_INTEGER
    for too_big in (MAX_D1_INTEGER + 1, 2**63, 10**30):
        with pytest.raises(ValidationError, match="less than or equal"):
            JOB_SPEC.validate_python({**body, "project_id": too_big})
