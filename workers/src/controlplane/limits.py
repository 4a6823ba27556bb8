"""Rate limits and quotas: how much one client address or one user may ask for. Each refusal is a 429
with Retry-After and a reason naming the limit.

- Rates are token buckets: a bucket holds `count` requests and refills `count` per `period_s`, so a
  burst of `count` passes, then one request every period_s / count. Sign-ups are counted per client
  address (CF-Connecting-IP), job creations and upload grants per user.
- Quotas: jobs pending or processing per user (counted by D1 in the insert itself, so concurrent
  creates cannot overshoot), and bytes of uploads granted per user per UTC day (a grant signs the exact
  length, so the grants bound what is stored).

Counters live in one UsageCounter Durable Object per address or user: exact and global, with limits
read from [vars], so each deployment (and each test stack) sets its own. Cloudflare's rate-limiting
binding was the alternative: it counts per Cloudflare location, only over 10 or 60 s, with limits
fixed in wrangler.toml, and it cannot hold a daily byte quota.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Awaitable, Callable, Optional

from controlplane.http import Call, HttpError

DAY_S = 86400.0
ACTIVE_JOBS_RETRY_AFTER_S = 30  # when one of the user's jobs will finish is unknown; ask again soon


@dataclass(frozen=True)
class Rate:
    count: int
    period_s: float

    @classmethod
    def parse(cls, text: str) -> Optional["Rate"]:
        """"<count>/<seconds>", or "off"."""
        if text.strip().lower() == "off":
            return None
        count, _, period = text.partition("/")
        rate = cls(int(count), float(period))
        if rate.count < 1 or not 0 < rate.period_s < math.inf:
            raise ValueError(f"rate {text!r}: use <count>/<seconds> with both positive, or off")
        return rate

    def __str__(self) -> str:
        return f"{self.count} per {self.period_s:g} s"


# name -> (variable, default, what is counted): the rates routes.py applies. "off" turns one off.
RATES = {
    "signups": ("RATE_SIGNUPS_PER_IP", "20/60", "sign-ups from one address"),
    "jobs": ("RATE_JOBS_PER_USER", "60/60", "job creations per user"),
    "uploads": ("RATE_UPLOADS_PER_USER", "60/60", "upload grants per user"),
}


def _quota(text: str) -> Optional[int]:
    return None if text.strip().lower() == "off" else int(text)


@dataclass(frozen=True)
class Limits:
    rates: dict  # name -> Rate, or None when off
    max_active_jobs: Optional[int]  # jobs pending or processing per user
    max_upload_bytes_per_day: Optional[int]

    @classmethod
    def read(cls, var: Callable[[str, str], str]) -> "Limits":
        """From the variables, var(name, default) giving each one's value."""
        return cls(rates={name: Rate.parse(var(variable, default)) for name, (variable, default, _) in RATES.items()},
                   max_active_jobs=_quota(var("MAX_ACTIVE_JOBS_PER_USER", "20")),
                   max_upload_bytes_per_day=_quota(var("MAX_UPLOAD_BYTES_PER_DAY", str(25 << 30))))


# ------------------------------------------------------------------ the arithmetic (pure)


def take(tokens: float, at: float, rate: Rate, now: float) -> tuple[float, float]:
    """One request from a token bucket that held `tokens` at time `at`: (tokens left, seconds to wait).
    A wait of 0 means the request passes. A bucket never seen before is full."""
    tokens = min(rate.count, tokens + max(0.0, now - at) * rate.count / rate.period_s)
    if tokens >= 1:
        return tokens - 1, 0.0
    return tokens, (1 - tokens) * rate.period_s / rate.count


def spend(used: float, window_start: float, amount: float, limit: float, window_s: float,
          now: float) -> tuple[float, float, float]:
    """`amount` from a quota of `limit` per fixed window (a UTC day: windows start at multiples of
    window_s): (used, window start, seconds to wait). A wait of 0 means the amount was spent."""
    start = now - now % window_s
    if window_start != start:
        used = 0.0
    if used + amount > limit:
        return used, start, start + window_s - now
    return used + amount, start, 0.0


# ------------------------------------------------------------------ refusals and the Worker's side


def too_many(code: str, reason: str, wait_s: float) -> HttpError:
    retry = max(1, math.ceil(wait_s))
    return HttpError(429, code, f"{reason}; retry in {retry} s", {"retry-after": str(retry)})


def _counter(call: Call, subject: str):
    return call.env.USAGE.getByName(subject)


def limited(name: str, subject: Callable[[Call], Awaitable[str]], handler):
    """`handler`, behind the rate `name` counted per subject(call) ("ip:..." or "user:...")."""
    async def wrapped(call: Call):
        rate = call.settings.limits.rates[name]
        if rate is not None:
            wait = await _counter(call, await subject(call)).take(name, rate.count, rate.period_s)
            if wait > 0:
                raise too_many("rate_limited", f"too many {RATES[name][2]}: at most {rate}", wait)
        return await handler(call)
    return wrapped


async def spend_upload_bytes(call: Call, user_id: str, size: int) -> None:
    """Count an upload grant against the user's daily quota, or refuse it."""
    limit = call.settings.limits.max_upload_bytes_per_day
    if limit is None:
        return
    wait = await _counter(call, f"user:{user_id}").spend("upload_bytes", size, limit, DAY_S)
    if wait > 0:
        raise too_many("quota_exceeded", f"uploads of {size} bytes would pass this user's {limit} bytes a day "
                                         "(counted by UTC day)", wait)


def active_jobs_exceeded(limit: int) -> HttpError:
    return too_many("quota_exceeded", f"{limit} jobs are already pending or processing, the most one user may "
                                      "have: wait for one to finish or cancel one", ACTIVE_JOBS_RETRY_AFTER_S)
