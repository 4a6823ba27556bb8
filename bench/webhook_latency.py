"""Webhook delivery latency on a real local stack: from a pod's `complete` being answered to the
receiver getting the signed delivery (the job's DO stores it with the state change and its alarm sends
it). Prints p50, p90 and the worst of N jobs, next to the `complete` request's own time.

usage: .venv/bin/python -m bench.webhook_latency [--jobs 30]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.latency import OVERLAY_JOB, percentile
from gpu_export import Client
from gpu_worker.control import ControlPlane
from scripts.localstack import LocalStack
from tests.webhook_receiver import Receiver


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Receiver() as receiver, \
            LocalStack(persist_dir=Path(tmp), vars={"WEBHOOK_ALLOW_LOOPBACK": "true"}) as stack, \
            Client(stack.url) as api:
        api.sign_up_anonymous()
        api.new_webhook_secret()
        key = api.upload(b"\x00\x00\x00\x18ftypmp42" + b"b" * 1000)  # the Worker reads an input's first bytes
        pod = ControlPlane(stack.url, stack.vars["WORKER_SECRET"], pod_id="bench-pod")
        latency, complete_ms = [], []
        for _ in range(args.jobs):
            job_id = api.create({**OVERLAY_JOB, "input_video_key": key}, webhook_url=receiver.url).job_id
            grant = pod.claim(job_id)
            before = len(receiver.received)
            start = time.time()
            pod.report(job_id, "complete", grant.lease_id, output_key=grant.output_key, frames=10, size_bytes=10)
            answered = time.time()
            got = receiver.wait_for(before + 1, 30)[-1]
            complete_ms.append((answered - start) * 1000)
            latency.append((got.at - answered) * 1000)
        print(f"webhook delivery after `complete` was answered, {args.jobs} jobs: p50 {statistics.median(latency):.0f} ms,"
              f" p90 {percentile(latency, 90):.0f} ms, worst {max(latency):.0f} ms"
              f" (the `complete` request itself: p50 {statistics.median(complete_ms):.0f} ms)")


if __name__ == "__main__":
    main()
