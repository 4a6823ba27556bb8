"""Control-plane latency on a real local stack: time to first answer after `wrangler dev` starts, the
first API request (it loads pydantic), and job-create latency p50/p99 at 20 concurrent clients.

usage: .venv/bin/python bench/create_latency.py [--clients 20] [--jobs 200]
"""

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from localstack import LocalStack  # noqa: E402

JOB = {"type": "overlay", "params": {"highlight_regions": [{"keyframes": [{"t": 0, "x": 0.5, "y": 0.5, "rx": 0.2, "ry": 0.2}]}]}}


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


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
        stack.start()
        ready = time.perf_counter() - t0
        t1 = time.perf_counter()
        token = httpx.post(f"{stack.url}/api/auth/anonymous").json()["token"]
        first_api = time.perf_counter() - t1
        try:
            run(stack, token, args, ready, first_api)
        finally:
            stack.stop()


def run(stack, token, args, ready, first_api):
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=stack.url, headers=headers, timeout=60) as http:
        info = http.post("/api/videos/upload-url", json={"filename": "b.mp4", "content_type": "video/mp4",
                                                          "size_bytes": 1000}).json()
        httpx.put(info["upload_url"], content=b"b" * 1000, headers=info["headers"]).raise_for_status()
    body = {**JOB, "input_video_key": info["video_key"]}

    def create(_):
        with httpx.Client(base_url=stack.url, headers=headers, timeout=60) as http:
            start = time.perf_counter()
            r = http.post("/api/jobs", json=body)
            assert r.status_code == 202, r.text
            return (time.perf_counter() - start) * 1000

    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(create, range(args.clients)))  # warm-up
        t = time.perf_counter()
        latencies = list(pool.map(create, range(args.jobs)))
        wall = time.perf_counter() - t
    print(f"wrangler dev start -> first /health 200: {ready:6.1f} s")
    print(f"first API request (loads pydantic):      {first_api * 1000:6.0f} ms")
    print(f"job create, {args.clients} concurrent clients, {args.jobs} jobs:")
    print(f"  p50 {statistics.median(latencies):6.0f} ms   p99 {percentile(latencies, 99):6.0f} ms   "
          f"max {max(latencies):6.0f} ms   throughput {args.jobs / wall:5.1f} jobs/s")


if __name__ == "__main__":
    main()
