"""The chaos run: export jobs through a local stack while GPU workers are killed, spot-stopped and cut
off and the control plane itself restarts; then proof that no job was lost, duplicated or leaked.

    config    ChaosConfig: how many jobs, workers and faults of each kind
    inputs    the generated clips, the mixed job specs, their uninterrupted reference renders
    proxy     FaultProxy: delays and drops some workers' requests to the control plane
    fleet     Fleet: the GPU worker processes, replaced when they die
    watch     JobWatch: each job's own event stream from its Durable Object
    faults    choosing a victim and injecting SIGKILL, SIGTERM, a spot notice, a lost message, a restart
    verify    the checks at the end, one function each
    report    Report: what happened, as a table
    run       run_chaos: all of it in order

`scripts/chaos.py` (`make chaos`) is the command line; `tests/chaos/test_chaos.py` runs it small.
"""

from .config import ChaosConfig
from .report import Report
from .run import run_chaos

__all__ = ["ChaosConfig", "Report", "run_chaos"]
