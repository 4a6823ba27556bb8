"""The chaos run's checks (tests/chaos/harness/verify.py) and what they read, on made-up evidence: no
stack, no workers."""

from __future__ import annotations

from types import SimpleNamespace

from gpu_export import ApiError
from scripts.gpu_worker_proc import GpuWorker

from .harness.config import ChaosConfig
from .harness.report import Report
from .harness.users import Submission
from .harness.verify import COMPARED, Evidence, check_listing
from .harness.watch import JobWatch


class RefusingApi:
    """A user's client whose job list has the job, and whose wait is refused (a 4xx)."""

    def __init__(self, rows: list[dict]):
        self.rows = rows

    def jobs(self):
        return [SimpleNamespace(model_dump=lambda mode, row=row: row) for row in self.rows]

    def wait(self, job_id, on_event=None):
        raise ApiError(403, "forbidden", "not your job")


def test_a_watch_that_died_is_reported_with_its_error():
    job = {f: None for f in COMPARED} | {"job_id": "job-1", "status": "pending", "resume_count": 0, "attempts": 0,
                                         "interruptions": 0, "error": None}
    api = RefusingApi([job])
    sub = Submission(SimpleNamespace(api=api, probe=api), {}, "overlay", 30, job_id="job-1")
    watch = JobWatch(api, "job-1", api)
    watch.run()  # in this thread: the wait is refused at once
    report = Report(ChaosConfig(jobs=1))
    check_listing(report, Evidence([sub], {"job-1": watch}, None, None, {"job-1": job}, {}))
    assert "job job-1: watch ended: ApiError: HTTP 403 forbidden: not your job" in report.problems


def test_a_log_line_being_written_is_left_out_alone(tmp_path):
    worker = GpuWorker.__new__(GpuWorker)  # only its log: no process
    worker.log_path = tmp_path / "pod.log"
    worker.log_path.write_bytes(b'{"msg": "worker started"}\nnot json\n{"msg": "claimed"}\n{"msg": "compl')
    assert worker.lines() == [{"msg": "worker started"}, {"msg": "claimed"}]
    assert worker.messages() == ["worker started", "claimed"]
