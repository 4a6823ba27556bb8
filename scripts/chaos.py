"""Chaos run: export jobs through a local stack while GPU workers are killed, spot-stopped and cut
off and the control plane itself restarts; then proof that no job was lost, duplicated or leaked.

    .venv/bin/python -m scripts.chaos --jobs 50          (`make chaos`; `N=...` to change the count)

What happens, all on 127.0.0.1:
- `wrangler dev` (LocalStack, --persist-to kept) with a short lease and a high MAX_ATTEMPTS, so the
  injected faults do not exhaust attempts; small generated clips (256x144, 2-4 s, with audio).
- N jobs of mixed types (overlay, framing without and with Real-ESRGAN, multi_clip) from two users,
  half up front, the rest while the faults happen (Idempotency-Key, retried through the restart).
- several `python -m gpu_worker` processes with small checkpoints; some reach the control plane
  through a fault proxy that delays requests and drops connections (before or after forwarding).
- injected: SIGKILL of a worker mid-render (its lease must expire), SIGTERM (spot path), a spot
  notice from the metadata URL each worker polls (IMDSv2: a session token is required), a pending
  job's queue message taken and acked unread (lost: the job's DO must send another), and one restart
  of `wrangler dev` itself. Each signal targets a worker that the job's Durable Object confirms holds
  the lease of a job with a stored checkpoint; dead workers are replaced.
- every job is watched over its WebSocket: the DO's own event stream (seq, who holds the lease).

Checked at the end (each failure is a line in Report.problems):
- every job terminal within a bound derived from the config and the measured reference render time;
  every job complete; the D1 list holds exactly the submitted jobs, one per Idempotency-Key;
- every output in R2 decodes (PyAV) to exactly the reference's frame count, and matches an
  uninterrupted render of the same spec (gpu_worker.render.render + DirectoryStore): md5 of every
  decoded frame when each resume started on a segment boundary (x264 is deterministic); otherwise
  md5 up to the segment of the first off-boundary resume and, after it, PSNR >= 32 dB per frame with
  each frame closer to its own reference frame than to its neighbours by 1 dB (two crf-20 encodes of
  the same frames measure >= 36 dB, neighbouring frames of these clips <= 33 dB);
- exactly one accepted `complete` per job (workers' logs + the fault proxy's view), at most one
  `complete` event from the DO;
- resume counts: for every effective interruption i of job J (J's DO confirmed the signalled
  worker held the lease with a checkpoint, at resume_count r_i, and the claim did not complete J),
  resume_count(J) >= r_i + 1, and resume_count(J) >= the number of such interruptions; a SIGKILL
  costs an attempt (the lease expires): attempts(J) >= effective kills; an effective SIGTERM / spot
  notice is an accepted `interrupted` report: interruptions(J) >= their number. A job no fault
  touched has resume_count = attempts = interruptions = 0;
- D1 (GET /api/jobs) and the DO (GET /api/jobs/{id}) agree on every job;
- nothing under checkpoints/ once all jobs finished, outputs only for complete jobs;
- no worker crashed (exit status other than 0 or SIGKILL).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Optional

from tests.chaos.harness import ChaosConfig, run_chaos


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=50)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--proxied-workers", type=int, default=1)
    p.add_argument("--kills", type=int)
    p.add_argument("--terms", type=int)
    p.add_argument("--spots", type=int)
    p.add_argument("--losses", type=int)
    p.add_argument("--no-restart", action="store_true")
    p.add_argument("--upscale-jobs", type=int, default=2)
    p.add_argument("--checkpoint-frames", type=int, default=15)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", type=Path, help="default: .cache/chaos")
    p.add_argument("--keep", action="store_true", help="keep the stack's state, logs and outputs")
    args = p.parse_args(argv)
    # Stop cleanly (stack, workers) on SIGTERM, and on SIGINT even when started in the background.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cfg = ChaosConfig(jobs=args.jobs, workers=args.workers, proxied_workers=args.proxied_workers, kills=args.kills,
                      terms=args.terms, spots=args.spots, losses=args.losses, restart=not args.no_restart,
                      upscale_jobs=args.upscale_jobs, checkpoint_frames=args.checkpoint_frames, seed=args.seed,
                      workdir=args.workdir, keep=args.keep)
    report = run_chaos(cfg)
    print()
    print(report.details())
    print(report.table())
    for problem in report.problems:
        print("PROBLEM:", problem)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
