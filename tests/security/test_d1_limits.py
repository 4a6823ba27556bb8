"""Hostile input must not reach D1 in a form it refuses (that is a 500): at most D1_MAX_PARAMS bound
parameters per statement, whatever a request repeats. Checked on the SQL the Store sends."""

from __future__ import annotations

import asyncio

from controlplane.store import D1_MAX_PARAMS, Store, list_sql


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
