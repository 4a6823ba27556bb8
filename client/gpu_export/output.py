"""What the command line prints: progress bars on a terminal (rich), one JSON object per line otherwise."""

from __future__ import annotations

import json
import sys
import threading
from typing import Callable

from jobspec import JobEvent, JobView

JSON_PROGRESS_STEP = 0.1  # in JSON lines, a transfer's progress every 10 %


class Output:
    def __init__(self, json_lines: bool):
        self.json = json_lines
        self._bars = None  # rich.progress.Progress, started on first use
        self._render_task = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ results

    def result(self, kind: str, **fields) -> None:
        if self.json:
            self._line({"event": kind, **fields})
        else:
            self._print(f"{kind}: " + ", ".join(f"{k} {v}" for k, v in fields.items() if v is not None))

    def job(self, job: JobView) -> None:
        if self.json:
            self._line({"event": "job", **job.model_dump(mode="json")})
        else:
            self._print(_summary(job))

    def fail(self, code: int, error: str, reason: str, **extra) -> int:
        self.close()
        if self.json:
            print(json.dumps({"event": "error", "error": error, "reason": reason, **extra}), file=sys.stderr, flush=True)
        else:
            print(f"gpu-export: {reason}", file=sys.stderr, flush=True)
        return code

    def close(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None

    # ------------------------------------------------------------------ progress

    def bar(self, label: str) -> Callable[[int, int], None]:
        """A transfer's progress callback (bytes done, bytes in all)."""
        if self.json:
            reported = [-1.0]

            def step(done: int, total: int) -> None:
                fraction = done / total if total else 1.0
                if fraction >= 1.0 or fraction - reported[0] >= JSON_PROGRESS_STEP:
                    reported[0] = fraction
                    self._line({"event": "transfer", "what": label, "bytes": done, "total_bytes": total})
            return step
        task = self._progress().add_task(label, total=None, detail="")
        return lambda done, total: self._bars.update(task, completed=done, total=total or None,
                                                     detail=f"{done / 1e6:.1f}/{total / 1e6:.1f} MB")

    def event(self, event: JobEvent) -> None:
        """A job event (from `wait`): a line in JSON, the render bar and its notes on a terminal."""
        if self.json:
            self._line({"event": "job_event", **event.model_dump(mode="json", exclude_none=True)})
            return
        job = event.job
        with self._lock:
            if self._render_task is None:
                self._render_task = self._progress().add_task(f"render {job.job_id[:8]}", total=100, detail="")
        self._bars.update(self._render_task, completed=job.progress, description=_describe(event))
        if event.type in ("requeued", "resumed", "error"):
            self._print(_summary(job) + (f" ({event.reason})" if event.reason else ""))

    def done(self, job: JobView) -> None:
        if self.json:
            self._line({"event": "finished", **job.model_dump(mode="json")})
            return
        if self._render_task is not None:
            self._bars.update(self._render_task, completed=job.progress, description=f"render {job.status}")
        self._print(_summary(job))

    # ------------------------------------------------------------------ plumbing

    def _progress(self):
        if self._bars is None:
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

            self._bars = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                  TextColumn("{task.fields[detail]}"))
            self._bars.start()
        return self._bars

    def _print(self, text: str) -> None:
        (self._bars.console.print if self._bars is not None else print)(text)

    def _line(self, data: dict) -> None:
        with self._lock:
            print(json.dumps(data, default=str), flush=True)


def _describe(event: JobEvent) -> str:
    job = event.job
    eta = f", {job.eta_s:.0f} s left" if job.eta_s else ""
    return f"render {job.status}{eta}"


def _summary(job: JobView) -> str:
    parts = [f"{job.job_id}", job.type, job.status, f"{job.progress:.0f}%"]
    if job.resume_count:
        parts.append(f"resumed {job.resume_count}x")
    if job.error:
        parts.append(f"error: {job.error}")
    return "  ".join(parts)

