"""Offline render: python -m gpu_worker.render_cli SPEC.json --input KEY=PATH ... --workdir DIR --store DIR

Checkpoints go to the --store directory; run the same command again to resume. SIGINT/SIGTERM
(or --interrupt-at FRAME) stop cleanly at the next frame with a checkpoint: exit status 75.
Prints the result as one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys

from jobspec import JOB_SPEC

from .media import CorruptInput
from .render import Hooks, Interrupted, render
from .segments import DirectoryStore

EXIT_INTERRUPTED = 75  # EX_TEMPFAIL: run again to resume
EXIT_CORRUPT = 65  # EX_DATAERR


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with open(args.spec) as f:
        spec = JOB_SPEC.validate_json(f.read())
    inputs = dict(pair.split("=", 1) for pair in args.input)
    stop = _StopSwitch(args.interrupt_at)
    hooks = Hooks(should_stop=stop.poll, on_resumed=stop.resumed_at,
                  on_progress=lambda f, t, fps: print(f"frame {f}/{t} {fps:.1f} fps", file=sys.stderr))
    try:
        result = render(spec, inputs, args.workdir, DirectoryStore(args.store), hooks, job_id=args.job_id,
                        codec=args.codec, quality=args.quality, segment_frames=args.segment_frames)
    except Interrupted as e:
        print(json.dumps({"interrupted_at": e.frame}))
        return EXIT_INTERRUPTED
    except CorruptInput as e:
        print(json.dumps({"corrupt_input": str(e)}))
        return EXIT_CORRUPT
    print(json.dumps(dataclasses.asdict(result)))
    return 0


class _StopSwitch:
    """should_stop for the CLI: "interrupt" on a signal, or before frame `at` is encoded."""

    def __init__(self, at: int | None):
        self.at, self.frame, self.signalled = at, 0, False
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        self.signalled = True

    def resumed_at(self, frame: int) -> None:
        self.frame = frame

    def poll(self) -> str | None:
        """Called once per frame, just before it is encoded."""
        hit = self.signalled or self.frame == self.at
        self.frame += 1
        return "interrupt" if hit else None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gpu_worker.render_cli", description=__doc__.splitlines()[0])
    p.add_argument("spec", help="job spec JSON file")
    p.add_argument("--input", action="append", default=[], metavar="KEY=PATH", help="local file for an input key")
    p.add_argument("--workdir", required=True)
    p.add_argument("--store", required=True, help="checkpoint directory")
    p.add_argument("--job-id", default="local")
    p.add_argument("--codec", choices=["libx264", "h264_nvenc"], help="default: h264_nvenc if it works")
    p.add_argument("--quality", type=int, help="crf (libx264) or cq (nvenc)")
    p.add_argument("--segment-frames", type=int, default=300)
    p.add_argument("--interrupt-at", type=int, metavar="FRAME", help="stop before encoding this frame")
    return p


if __name__ == "__main__":
    sys.exit(main())
