"""run_chaos: a whole chaos run, in order. Inputs and references while wrangler dev starts; half the
jobs up front and the rest while the faults happen; the faults, each when it can interrupt a render;
then the workers stop and the verifier checks everything."""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from gpu_worker.runner import CLAIM_VISIBILITY_MS
from scripts.localstack import LocalStack

from ...metadata import MetadataServer
from .config import MAX_RETRIES, ChaosConfig
from .faults import Target, inject
from .fleet import Fleet
from .inputs import job_specs, kind_of, make_clips, placeholder_key, render_reference, with_keys
from .proxy import FaultProxy
from .report import Report
from .users import Submission, User
from .verify import verify
from .watch import JobWatch, claim_end

ROOT = Path(__file__).resolve().parents[3]


def run_chaos(cfg: ChaosConfig) -> Report:
    t0 = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - t0:7.1f}s] {text}", flush=True)

    report = Report(cfg)
    rng = random.Random(cfg.seed)
    workdir = _workdir(cfg)
    clips = make_clips(workdir / "clips")
    specs = job_specs(cfg.jobs, cfg.upscale_jobs, rng)
    stack = LocalStack(persist_dir=workdir / "state", vars=cfg.stack_vars())
    starter = _Starter(stack)
    log(f"rendering {len(specs)} uninterrupted references; starting wrangler dev on {stack.url}")
    refs = _references(specs, {placeholder_key(i): str(p) for i, p in enumerate(clips)}, workdir, cfg)
    for i, ((spec, expected), ref) in enumerate(zip(specs, refs)):
        if ref["frames"] != expected:
            report.problems.append(f"reference {i} ({spec['type']}): {ref['frames']} frames, expected {expected}")
    ref_seconds = sum(r["seconds"] for r in refs)
    stack_start_s = starter.join()
    log(f"references done ({ref_seconds:.1f} s of rendering); stack up")

    spot = MetadataServer()
    proxy = FaultProxy(stack.url, random.Random(cfg.seed + 1), cfg.proxy_delay_rate, cfg.proxy_drop_rate,
                       cfg.proxy_max_faults)
    users: list[User] = []
    fleet = None
    try:
        users = [User.sign_up(stack.url, retry_for_s=120 + 3 * stack_start_s) for _ in range(2)]
        keys = [{placeholder_key(i): u.api.upload(p) for i, p in enumerate(clips)} for u in users]
        subs = [Submission(users[i % 2], with_keys(spec, keys[i % 2]), kind_of(spec), expected, ref)
                for i, ((spec, expected), ref) in enumerate(zip(specs, refs))]
        report.kinds = Counter(s.kind for s in subs)
        watches: dict[str, JobWatch] = {}
        first_wave = max(1, cfg.jobs // 2)
        for sub in subs[:first_wave]:
            _submit(sub, watches)
        fleet = Fleet(stack, workdir / "workers", cfg, proxy, spot)
        log(f"{first_wave} jobs submitted, {cfg.workers} workers started")
        feeder = _Feeder(subs[first_wave:], watches, 2 * cfg.workers)
        target = Target(stack, fleet, spot, proxy, watches, Counter())
        report.run_s = _inject_until_done(report, target, feeder, ref_seconds, stack_start_s, log)
        log(f"jobs done after {report.run_s:.1f} s; stopping workers")
        feeder.stop()
        fleet.stop(grace_s=30 + 2 * cfg.lease_timeout_s)
        for w in list(watches.values()):
            w.join(5)
        report.problems += feeder.errors
        report.workers_started = len(fleet.every)
        report.lost += sum(s.job_id is None for s in subs)  # never accepted
        verify(report, stack, [s for s in subs if s.job_id], watches, fleet, proxy, workdir, log)
    finally:
        if fleet is not None:
            fleet.stop(grace_s=5)
        for user in users:
            user.close()
        proxy.stop()
        spot.stop()
        stack.stop()
    report.wall_s = time.monotonic() - t0
    return report


def _workdir(cfg: ChaosConfig) -> Path:
    workdir = Path(cfg.workdir or ROOT / ".cache/chaos").resolve()
    if workdir.exists() and not cfg.keep:
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


class _Starter(threading.Thread):
    """wrangler dev starting in the background; join() gives how long it took."""

    def __init__(self, stack: LocalStack):
        super().__init__(daemon=True)
        self.stack, self.seconds, self.error = stack, 0.0, None
        self.start()

    def run(self) -> None:
        began = time.monotonic()
        try:
            self.stack.start()
        except Exception as e:  # raised by join()
            self.error = f"{type(e).__name__}: {e}"
        self.seconds = time.monotonic() - began

    def join(self, timeout=None) -> float:
        super().join(timeout)
        if self.error:
            raise RuntimeError(f"wrangler dev did not start: {self.error}")
        return self.seconds


def _references(specs, inputs: dict[str, str], workdir: Path, cfg: ChaosConfig) -> list[dict]:
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(render_reference, [s for s, _ in specs], [inputs] * len(specs),
                             [str(workdir / "refs" / str(i)) for i in range(len(specs))],
                             [cfg.checkpoint_frames] * len(specs)))


def _submit(sub: Submission, watches: dict[str, JobWatch]) -> None:
    sub.submit()
    watches[sub.job_id] = JobWatch(sub.user.api, sub.job_id, sub.user.probe)
    watches[sub.job_id].start()


class _Feeder(threading.Thread):
    """Submits the rest of the jobs while the faults happen, keeping about `waiting` unfinished."""

    def __init__(self, subs: list[Submission], watches: dict[str, JobWatch], waiting: int):
        super().__init__(name="submitter", daemon=True)
        self.subs, self.watches, self.waiting = subs, watches, waiting
        self.errors: list[str] = []
        self._halt = threading.Event()
        self.start()

    def run(self) -> None:
        try:
            for sub in self.subs:
                while sum(not w.terminal for w in list(self.watches.values())) >= self.waiting:
                    if self._halt.wait(0.2):
                        return
                _submit(sub, self.watches)
        except Exception as e:
            self.errors.append(f"submission failed: {type(e).__name__}: {e}")

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def _plan(cfg: ChaosConfig, rng: random.Random) -> list[str]:
    plan = ["kill"] * cfg.kills + ["term"] * cfg.terms + ["spot"] * cfg.spots
    rng.shuffle(plan)
    if cfg.restart:
        plan.insert(len(plan) // 2, "restart")
    return ["lose"] * cfg.losses + plan  # lost messages while jobs still wait in the queue


def _inject_until_done(report: Report, target: Target, feeder: _Feeder, ref_seconds: float, stack_start_s: float,
                       log) -> float:
    """Inject the planned faults while the jobs run; the seconds until every job finished (or the bound)."""
    cfg = report.config
    plan = _plan(cfg, random.Random(cfg.seed + 2))
    retried: Counter = Counter()
    extra = 0  # retries at the front of the plan: best effort, not a problem if no victim comes
    last_injection = 0.0
    started = time.monotonic()
    while True:
        target.fleet.supervise()
        # A signal that landed after the render's last frame interrupted nothing: another, at most
        # MAX_RETRIES times per kind.
        for inj in report.injections:
            if inj.kind in ("kill", "term", "spot") and not inj.settled:
                end = claim_end(target.watches[inj.job_id].by_seq(), inj.confirm_seq)
                if end is not None or time.time() - inj.at > 2 * cfg.lease_timeout_s + 30:
                    inj.settled = True
                    if end and end["type"] == "complete" and retried[inj.kind] < MAX_RETRIES:
                        retried[inj.kind] += 1
                        plan.insert(0, inj.kind)
                        extra += 1
                        log(f"job {inj.job_id[:8]} finished before the {inj.kind} landed: one more {inj.kind}")
        all_submitted = not feeder.is_alive()
        open_jobs = [j for j, w in list(target.watches.items()) if not w.terminal]
        if plan and time.monotonic() - last_injection > 0.5:
            injection = inject(plan[0], target, log)
            if injection is not None:
                report.injections.append(injection)
                plan.pop(0)
                extra = max(0, extra - 1)
                last_injection = time.monotonic()
            elif all_submitted and not open_jobs:
                log(f"no victim left for {len(plan)} planned injection(s): {plan}")
                if plan[extra:]:
                    report.problems.append(f"planned injections not done (no job was running): {plan[extra:]}")
                plan = []
        if all_submitted and not open_jobs and not plan:
            return time.monotonic() - started
        report.bound_s = _bound(cfg, ref_seconds, stack_start_s, report, target)
        if time.monotonic() - started > report.bound_s:
            stuck = {j: w.state() for j, w in list(target.watches.items()) if not w.terminal}
            report.problems.append(f"{len(stuck)} job(s) not terminal within the bound of {report.bound_s:.0f} s: "
                                   f"{stuck}")
            return time.monotonic() - started
        time.sleep(0.1)


def _bound(cfg: ChaosConfig, ref_seconds: float, stack_start_s: float, report: Report, target: Target) -> float:
    """How long the jobs may take, from the configuration and what was measured on this machine:
    the uninterrupted references' render time with an 8x slack (workers share the CPUs, download,
    mux, upload), a lease timeout and two heartbeats for each fault that happened, three first-start
    times of wrangler dev for the restart, twice the claim visibility timeout (a message whose claim
    got no answer comes back after it), and three measured start-ups per worker process started."""
    cpus = max(1, min(cfg.workers, os.cpu_count() or 1))
    faults = len([i for i in report.injections if i.kind not in ("restart", "lose")]) + sum(target.proxy.faults.values())
    fault_cost = cfg.lease_timeout_s + 2 * cfg.heartbeat_s + cfg.requeue_delay_s * 2 ** cfg.max_attempts
    lost = len([i for i in report.injections if i.kind == "lose"]) + cfg.restart  # messages lost (restart: some)
    fleet = target.fleet
    return (8 * ref_seconds / cpus + faults * fault_cost + (3 * stack_start_s if cfg.restart else 0)
            + lost * 2 * cfg.redispatch_s + 2 * CLAIM_VISIBILITY_MS / 1000 + 3 * fleet.startup_s() * len(fleet.every))
