"""Control-plane latency on a real local stack: time to first answer after `wrangler dev` starts, the
first API request, and job-create latency p50/p99 at 20 concurrent clients (the API client, gpu_export).

usage: .venv/bin/python -m bench.create_latency [--clients 20] [--jobs 200]
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bench.latency import OVERLAY_JOB, percentile
from gpu_export import AsyncClient
from scripts.localstack import LocalStack
from tests.clips import make_clip


async def measure(url: str, clip: Path, clients: int, jobs: int) -> tuple[float, list[float], float]:
    async with AsyncClient(url, timeout_s=60) as api:
        t = time.perf_counter()
        await api.sign_up_anonymous()
        first_api = time.perf_counter() - t
        key = await api.upload(clip)  # the Worker reads an input's first bytes: a real video
        job = {**OVERLAY_JOB, "input_video_key": key}
        slots = asyncio.Semaphore(clients)

        async def create() -> float:
            async with slots:
                start = time.perf_counter()
                await api.create(job)
                return (time.perf_counter() - start) * 1000

        await asyncio.gather(*(create() for _ in range(clients)))  # warm-up
        t = time.perf_counter()
        latencies = await asyncio.gather(*(create() for _ in range(jobs)))
        return first_api, latencies, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # One user makes every job: its limits are raised out of the way (the limiter still runs on each create).
        stack = LocalStack(persist_dir=Path(tmp), vars={"RATE_JOBS_PER_USER": "100000/60",
                                                        "MAX_ACTIVE_JOBS_PER_USER": "100000"})
        t0 = time.perf_counter()
        with stack:
            ready = time.perf_counter() - t0
            clip = make_clip(Path(tmp) / "clip.mp4", 1)
            first_api, latencies, wall = asyncio.run(measure(stack.url, clip, args.clients, args.jobs))
    print(f"wrangler dev start -> first /health 200: {ready:6.1f} s")
    print(f"first API request:                       {first_api * 1000:6.0f} ms")
    print(f"job create, {args.clients} concurrent clients, {args.jobs} jobs:")
    print(f"  p50 {statistics.median(latencies):6.0f} ms   p99 {percentile(latencies, 99):6.0f} ms   "
          f"max {max(latencies):6.0f} ms   throughput {args.jobs / wall:5.1f} jobs/s")


if __name__ == "__main__":
    main()
