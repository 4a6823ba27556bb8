"""What the client raises."""

from __future__ import annotations


class ApiError(Exception):
    """The API answered with an error: `status` (HTTP), `error` (a stable code) and `reason` (in words);
    `response`, the whole answer (an httpx.Response: its headers and body as sent)."""

    def __init__(self, status: int, error: str, reason: str, retry_after_s: float | None = None, *, response=None):
        super().__init__(f"HTTP {status} {error}: {reason}")
        self.status, self.error, self.reason, self.retry_after_s = status, error, reason, retry_after_s
        self.response = response


class Unavailable(Exception):
    """The API could not be reached (or answered 5xx) for longer than the client was told to retry."""


class TimedOut(Exception):
    """`wait` ran out of time before the job finished; `job` is the last view seen."""

    def __init__(self, job):
        super().__init__(f"job {job.job_id} still {job.status}")
        self.job = job
