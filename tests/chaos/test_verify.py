"""The chaos run's checks (tests/chaos/harness/verify.py) and what they read, on made-up evidence: no
stack, no workers."""

from __future__ import annotations

from scripts.gpu_worker_proc import GpuWorker



def test_a_log_line_being_written_is_left_out_alone(tmp_path):
    worker = GpuWorker.__new__(GpuWorker)  # only its log: no process
    worker.log_path = tmp_path / "pod.log"
    worker.log_path.write_bytes(b'{"msg": "worker started"}\nnot json\n{"msg": "claimed"}\n{"msg": "compl')
    assert worker.lines() == [{"msg": "worker started"}, {"msg": "claimed"}]
    assert worker.messages() == ["worker started", "claimed"]
