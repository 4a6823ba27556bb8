"""GPU cost accounting: what the exports cost, from the control plane's `/health`.

    gpu-export --url https://export.example.com cost [--instance g4dn.2xlarge] [--json]

Pods report the wall time they held the GPU for each job (`gpu_seconds`, on complete, fail and
interrupted); the control plane sums it over all jobs and `/health` returns the sum with the counts by
status. This module prices that time with a per-instance table and divides by the completed jobs, so
the cost per job includes the time spent on jobs that failed, were cancelled or were interrupted.

Not in `gpu_seconds`, so not in these numbers: pods idle between jobs, node start-up and image pull,
and the autoscaler's cool-down before scaling to zero. The cloud bill (node-hours) is higher by that.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from jobspec import Health

# USD per instance-hour (one GPU each), the seed design's spot prices. Spot prices move: override them
# with --price-per-hour, --prices FILE or $GPU_WORKER_PRICES (a JSON object, or a path to one).
DEFAULT_PRICES: dict[str, float] = {
    "g4dn.xlarge": 0.16,
    "g4dn.2xlarge": 0.23,
    "g4dn.4xlarge": 0.36,
    "g5.xlarge": 0.30,
}
DEFAULT_INSTANCE = "g4dn.2xlarge"
# The design's estimate for one export job, USD.
DESIGN_COST_PER_JOB_USD = 0.00026
PRICES_ENV = "GPU_WORKER_PRICES"


class CostError(ValueError):
    pass


def _validated(table: Mapping) -> dict[str, float]:
    if not isinstance(table, Mapping) or not table:
        raise CostError("a price table is a non-empty JSON object: instance type -> USD per hour")
    out = {}
    for name, price in table.items():
        if isinstance(price, bool) or not isinstance(price, (int, float)) or not price >= 0 or price == float("inf"):
            raise CostError(f"price for {name!r} must be a finite number >= 0, not {price!r}")
        out[str(name)] = float(price)
    return out


def load_prices(source: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> dict[str, float]:
    """The default table updated with `source` (a JSON file path, or JSON text), else $GPU_WORKER_PRICES."""
    env = os.environ if env is None else env
    source = source if source is not None else env.get(PRICES_ENV) or None
    prices = dict(DEFAULT_PRICES)
    if source is None:
        return prices
    text = str(source)
    if not text.lstrip().startswith("{"):
        try:
            text = Path(source).read_text()
        except OSError as e:
            raise CostError(f"cannot read the price table {source}: {e}") from None
    try:
        table = json.loads(text)
    except json.JSONDecodeError as e:
        raise CostError(f"price table is not JSON: {e}") from None
    prices.update(_validated(table))
    return prices


def price_for(instance: str, prices: Mapping[str, float]) -> float:
    try:
        return prices[instance]
    except KeyError:
        raise CostError(f"no price for {instance!r}; known: {', '.join(sorted(prices))}"
                        " (add it with --prices or --price-per-hour)") from None


@dataclass(frozen=True)
class CostReport:
    instance: str
    price_per_hour_usd: float
    gpu_seconds: float
    gpu_hours: float
    total_usd: float
    jobs_by_status: dict
    completed_jobs: int
    cost_per_completed_job_usd: float | None
    gpu_seconds_per_completed_job: float | None
    design_cost_per_job_usd: float
    design_gpu_seconds_per_job: float | None  # what the design's per-job cost buys at this price
    ratio_to_design: float | None  # measured / design; > 1 means over the estimate
    control_plane_estimate_usd: float  # /health's own figure (GPU_PRICE_PER_HOUR in wrangler.toml)


def summarize(health: Health, price_per_hour: float, instance: str = DEFAULT_INSTANCE,
              design_per_job: float = DESIGN_COST_PER_JOB_USD) -> CostReport:
    """The cost figures for one `/health` answer at `price_per_hour` USD."""
    if not price_per_hour >= 0:
        raise CostError(f"price per hour must be >= 0, not {price_per_hour!r}")
    gpu_seconds = health.gpu_seconds
    if gpu_seconds < 0:
        raise CostError(f"gpu_seconds is negative: {gpu_seconds}")
    by_status = dict(health.by_status)
    completed = by_status.get("complete", 0)
    hours = gpu_seconds / 3600
    total = hours * price_per_hour
    per_job = total / completed if completed else None
    return CostReport(
        instance=instance,
        price_per_hour_usd=price_per_hour,
        gpu_seconds=gpu_seconds,
        gpu_hours=hours,
        total_usd=total,
        jobs_by_status=by_status,
        completed_jobs=completed,
        cost_per_completed_job_usd=per_job,
        gpu_seconds_per_completed_job=gpu_seconds / completed if completed else None,
        design_cost_per_job_usd=design_per_job,
        design_gpu_seconds_per_job=design_per_job / price_per_hour * 3600 if price_per_hour else None,
        ratio_to_design=per_job / design_per_job if per_job is not None and design_per_job else None,
        control_plane_estimate_usd=health.estimated_gpu_cost_usd,
    )


def _usd(x: float | None) -> str:
    return "n/a" if x is None else f"${x:,.6f}" if x < 1 else f"${x:,.2f}"


def render(r: CostReport) -> str:
    jobs = ", ".join(f"{k} {v}" for k, v in sorted(r.jobs_by_status.items())) or "none"
    lines = [
        f"GPU time:            {r.gpu_seconds:,.1f} s ({r.gpu_hours:,.4f} h) over all jobs",
        f"price:               {_usd(r.price_per_hour_usd)}/h ({r.instance})",
        f"total:               {_usd(r.total_usd)}",
        f"jobs:                {jobs}",
        f"per completed job:   {_usd(r.cost_per_completed_job_usd)}"
        + (f" ({r.gpu_seconds_per_completed_job:,.1f} GPU-s)" if r.gpu_seconds_per_completed_job is not None else ""),
        f"design estimate:     {_usd(r.design_cost_per_job_usd)} per job"
        + (f" (= {r.design_gpu_seconds_per_job:,.1f} GPU-s at this price)"
           if r.design_gpu_seconds_per_job is not None else ""),
    ]
    if r.ratio_to_design is not None:
        verdict = "over" if r.ratio_to_design > 1 else "within"
        lines.append(f"vs design:           {r.ratio_to_design:,.2f}x ({verdict} the estimate)")
    else:
        lines.append("vs design:           n/a (no completed job yet)")
    lines.append(f"control plane says:  {_usd(r.control_plane_estimate_usd)} (its GPU_PRICE_PER_HOUR)")
    lines.append("not counted: idle pods, node start-up, scale-down cool-down (see the cloud bill)")
    return "\n".join(lines)
