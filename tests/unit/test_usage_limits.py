import pytest

from controlplane import limits
from controlplane.limits import Limits, Rate


def test_a_bucket_lets_a_burst_through_then_one_request_per_refill():
    rate = Rate(3, 30.0)  # a burst of 3, then one every 10 s
    tokens, at, waits = 3.0, 0.0, []
    for now in (0.0, 0.0, 0.0, 0.0, 5.0, 10.0, 10.0):
        tokens, wait = limits.take(tokens, at, rate, now)
        at = now
        waits.append(round(wait, 6))
    assert waits == [0, 0, 0, 10.0, 5.0, 0, 10.0]
    tokens, wait = limits.take(0.0, 0.0, rate, 1000.0)  # a long quiet spell refills to the burst, no more
    assert wait == 0 and tokens == 2


def test_a_daily_quota_resets_at_the_window_boundary():
    day = limits.DAY_S
    used, start, wait = limits.spend(0, 0, 6, 10, day, 3 * day + 100)
    assert (used, start, wait) == (6, 3 * day, 0)
    used, start, wait = limits.spend(used, start, 5, 10, day, 3 * day + 200)
    assert used == 6 and wait == day - 200  # refused until the next UTC day
    assert limits.spend(used, start, 4, 10, day, 3 * day + 300)[::2] == (10, 0)
    assert limits.spend(10, 3 * day, 5, 10, day, 4 * day + 1)[::2] == (5, 0)


def test_limits_come_from_the_variables():
    values = {"RATE_JOBS_PER_USER": "5/10", "MAX_UPLOAD_BYTES_PER_DAY": "off", "RATE_SIGNUPS_PER_IP": "off"}
    read = Limits.read(lambda name, default: values.get(name, default))
    assert read.rates == {"signups": None, "jobs": Rate(5, 10.0), "uploads": Rate(60, 60.0)}
    assert read.max_active_jobs == 20 and read.max_upload_bytes_per_day is None
    for bad in ("0/10", "5/0", "5", "x/10", "5/inf"):
        with pytest.raises(ValueError):
            Rate.parse(bad)


def test_a_refusal_says_when_to_come_back():
    e = limits.too_many("rate_limited", "too many job creations per user: at most 5 per 10 s", 0.2)
    assert e.status == 429 and e.headers == {"retry-after": "1"} and e.reason.endswith("retry in 1 s")
    assert limits.too_many("quota_exceeded", "x", 3600.5).headers["retry-after"] == "3601"
