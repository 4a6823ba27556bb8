"""Waiting for something the system does in its own time."""

from __future__ import annotations

import time


def wait_until(condition, timeout: float, what, interval: float = 0.2):
    """Call `condition` until it returns something true, and return that; fail after `timeout` s, saying
    `what` was waited for (a string, or a function that says it as things are then)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what() if callable(what) else what}: not after {timeout} s"
        time.sleep(interval)
    return value
