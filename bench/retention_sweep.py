"""The retention sweep (the Cron Trigger) over 1,000 finished jobs on a real local stack: each job left
checkpoint segments and a manifest in R2 and has an input upload past its TTL; half are complete with an
output past expires_at. Times runs through wrangler's scheduled-event endpoint until nothing is left,
next to the sweep's own figure, and checks that everything it should delete is gone.

usage: .venv/bin/python -m bench.retention_sweep [--jobs 1000] [--segments 2]
"""

import argparse
import json
import re
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.latency import OVERLAY_JOB
from gpu_worker.storage import R2
from scripts.gpu_worker_proc import r2_config
from scripts.localstack import LocalStack, wrangler


def job_row(i: int, now: float) -> str:
    job_id, done = f"bench{i:06d}", i % 2 == 0
    spec = json.dumps({**OVERLAY_JOB, "input_video_key": f"videos/raw/bench/u{i:06d}/in.mp4"})
    values = [f"'{job_id}'", "'bench'", "'overlay'", "'complete'" if done else "'error'", f"'{spec}'",
              repr(now - 3600), repr(now - 60), repr(now - 60) if done else "NULL",
              repr(now - 1) if done else "NULL", f"'videos/output/{job_id}.mp4'" if done else "NULL"]
    return "(" + ", ".join(values) + ")"


def objects(i: int, segments: int) -> list[str]:
    job_id = f"bench{i:06d}"
    keys = [f"checkpoints/{job_id}/seg-{s:05d}.mp4" for s in range(segments)] + [f"checkpoints/{job_id}/manifest.json",
                                                                                 f"videos/raw/bench/u{i:06d}/in.mp4"]
    return keys + ([f"videos/output/{job_id}.mp4"] if i % 2 == 0 else [])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--segments", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, \
            LocalStack(persist_dir=Path(tmp), vars={"UPLOAD_TTL_S": "1"}) as stack:
        sql = Path(tmp) / "seed.sql"
        now = time.time()
        rows = [job_row(i, now) for i in range(args.jobs)]
        sql.write_text("".join("INSERT INTO jobs (id, user_id, type, status, spec, created_at, updated_at,"
                               " completed_at, expires_at, output_key) VALUES " + ", ".join(rows[i:i + 100]) + ";\n"
                               for i in range(0, len(rows), 100)))
        wrangler("d1", "execute", "DB", "--local", "--persist-to", str(stack.persist_dir), "-c",
                 str(stack.config_path), "--file", str(sql), capture_output=True)
        r2 = R2(r2_config(stack))
        keys = [k for i in range(args.jobs) for k in objects(i, args.segments)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: r2.write(k, b"x" * 256, "application/octet-stream"), keys))
        seeded = sum(1 for _ in r2.keys(""))
        time.sleep(1.5)  # the uploads pass UPLOAD_TTL_S=1
        runs = []
        while True:
            since = stack.log_path.stat().st_size
            start = time.perf_counter()
            stack.run_cron("17 * * * *")
            wall = (time.perf_counter() - start) * 1000
            line = next(json.loads(m) for m in re.findall(r'^\{"event": "retention_sweep".*$',
                                                          stack.log_path.read_bytes()[since:].decode(), re.M))
            runs.append((wall, line))
            if not any(line[k] for k in ("uploads_deleted", "outputs_deleted", "checkpoints_deleted")) or len(runs) > 10:
                break
        left = sum(1 for _ in r2.keys(""))
    print(f"retention sweep over {args.jobs} finished jobs ({seeded} objects: {args.segments} segments + manifest and "
          f"an input each, an output for half)")
    for n, (wall, line) in enumerate(runs, 1):
        print(f"  run {n}: {wall:.0f} ms wall (sweep's own {line['ms']:.0f} ms): uploads {line['uploads_deleted']}, "
              f"outputs {line['outputs_deleted']}, checkpoints {line['checkpoints_deleted']}")
    print(f"  objects left: {left}")


if __name__ == "__main__":
    main()
