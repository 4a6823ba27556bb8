"""Report: what a chaos run did and found, as the table `make chaos` prints."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from .config import ChaosConfig
from .faults import Injection
from .frames import PSNR_MIN_DB


@dataclass
class Report:
    config: ChaosConfig
    problems: list[str] = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)
    injections: list[Injection] = field(default_factory=list)
    proxy_faults: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    lost: int = 0  # submitted jobs missing from the list, or not terminal at the end
    duplicates: int = 0
    duplicate_completes: int = 0
    resumes: int = 0
    attempts: int = 0
    interruptions: int = 0
    md5_identical: int = 0
    psnr_checked: int = 0
    psnr_min: float = 99.0
    agree: int = 0
    orphans: int = 0
    replays: int = 0
    bound_s: float = 0.0
    run_s: float = 0.0
    wall_s: float = 0.0
    workers_started: int = 0
    final: dict = field(default_factory=dict)  # job id -> final status

    def injected(self, kind: str) -> tuple[int, int]:
        """(injections of a kind, how many of them took effect)."""
        done = [i for i in self.injections if i.kind == kind]
        return len(done), sum(bool(i.effective) for i in done)

    @property
    def restart(self) -> Optional[Injection]:
        return next((i for i in self.injections if i.kind == "restart"), None)

    @property
    def port_kept(self) -> Optional[bool]:
        return self.restart.effective if self.restart else None

    def details(self) -> str:
        """One line per injection."""
        rows = []
        for i in self.injections:
            if i.kind == "restart":
                rows.append(f"  restart of wrangler dev ({i.note})")
            elif i.kind == "lose":
                rows.append(f"  lose  queue message of job {i.job_id[:8]} (pending): job ended "
                            f"{self.final.get(i.job_id, '?')}")
            else:
                rows.append(f"  {i.kind:<5} {i.worker:<16} job {i.job_id[:8]} checkpoint {i.checkpoint_frame:>3} "
                            f"resume_count {i.resume_count}: effective {i.effective}, claim ended by {i.ended_by}"
                            f"{'; ' + i.note if i.note else ''}")
        return "\n".join(rows)

    def table(self) -> str:
        c = self.config
        n = c.jobs
        complete = self.statuses.get("complete", 0)
        rows = [f"chaos run: {n} jobs ({', '.join(f'{v} {k}' for k, v in sorted(self.kinds.items()))}), "
                f"{c.workers} workers ({c.proxied_workers} behind the fault proxy), {self.workers_started} started, "
                f"seed {c.seed}",
                f"  {'interruption':<28}{'injected':>9}{'effective':>11}"]
        for kind, label in (("kill", "SIGKILL mid-render"), ("term", "SIGTERM (spot path)"),
                            ("spot", "spot notice (metadata URL)"), ("lose", "queue message lost"),
                            ("restart", "wrangler dev restart")):
            done, effective = self.injected(kind)
            rows.append(f"  {label:<28}{done:>9}{effective if kind not in ('restart', 'lose') else '-':>11}")
        for fault in ("delay", "drop_before", "drop_after"):
            rows.append(f"  {'proxy ' + fault.replace('_', ' '):<28}{self.proxy_faults.get(fault, 0):>9}{'-':>11}")
        restart = self.restart
        rows += [
            f"  jobs complete            {complete}/{n} ({100 * complete / max(1, n):.0f}%); "
            f"others: {dict((k, v) for k, v in self.statuses.items() if k != 'complete') or 'none'}",
            f"  lost / duplicate jobs    {self.lost} / {self.duplicates} "
            f"({self.replays} submissions answered by an idempotent replay)",
            f"  duplicate completes      {self.duplicate_completes}",
            f"  resumes / attempts / interruptions (sum of DO counters)  {self.resumes} / {self.attempts} / "
            f"{self.interruptions}",
            f"  outputs vs uninterrupted {self.md5_identical} md5-identical, {self.psnr_checked} by PSNR "
            f"(min {self.psnr_min:.1f} dB, threshold {PSNR_MIN_DB} dB)",
            f"  D1 agrees with DO        {self.agree}/{n}",
            f"  orphan checkpoint keys   {self.orphans}",
            f"  wrangler restart         {restart.note if restart else None}, port kept: {self.port_kept}",
            f"  wall time                {self.wall_s:.0f} s (jobs {self.run_s:.0f} s, bound {self.bound_s:.0f} s)",
            f"  problems                 {len(self.problems)}",
        ]
        return "\n".join(rows)
