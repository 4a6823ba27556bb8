"""Segmented, checkpointed encoding: the output video as independently encoded segments.

Each segment is a fresh encoder process (a closed GOP starting with an IDR frame), so segments
can be joined losslessly and a render can resume at the first frame no segment holds yet.
A checkpoint is: the finished segment stored first, then the manifest that lists it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Optional, Protocol

import numpy as np
from jobspec import CheckpointManifest, EncoderSettings, SegmentRecord

from .media import BGR, Encoder, FrameFormat, encoder_args


class CheckpointStore(Protocol):
    """Where checkpoints survive the machine. put_segment must complete before the put_manifest
    that lists the segment, so a stored manifest never points at a missing segment."""

    def load_manifest(self) -> Optional[CheckpointManifest]: ...
    def put_segment(self, local_path: str, record: SegmentRecord) -> None: ...
    def put_manifest(self, manifest: CheckpointManifest) -> None: ...
    def fetch_segment(self, record: SegmentRecord, local_path: str) -> None: ...
    def delete_all(self) -> None: ...


class DirectoryStore:
    """A CheckpointStore on a local directory; record.key is the file name inside it."""

    MANIFEST = "manifest.json"

    def __init__(self, path: str):
        self.path = path
        os.makedirs(path, exist_ok=True)

    def load_manifest(self) -> Optional[CheckpointManifest]:
        try:
            with open(os.path.join(self.path, self.MANIFEST)) as f:
                return CheckpointManifest.model_validate_json(f.read())
        except FileNotFoundError:
            return None

    def put_segment(self, local_path: str, record: SegmentRecord) -> None:
        self._atomic_copy(local_path, os.path.join(self.path, record.key))

    def put_manifest(self, manifest: CheckpointManifest) -> None:
        tmp = os.path.join(self.path, self.MANIFEST + ".tmp")
        with open(tmp, "w") as f:
            f.write(manifest.model_dump_json(indent=1))
        os.replace(tmp, os.path.join(self.path, self.MANIFEST))

    def fetch_segment(self, record: SegmentRecord, local_path: str) -> None:
        self._atomic_copy(os.path.join(self.path, record.key), local_path)

    def delete_all(self) -> None:
        for name in os.listdir(self.path):
            os.remove(os.path.join(self.path, name))

    @staticmethod
    def _atomic_copy(src: str, dst: str) -> None:
        shutil.copyfile(src, dst + ".tmp")
        os.replace(dst + ".tmp", dst)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def segment_key(index: int) -> str:
    return f"seg_{index:05d}.mp4"


def resume(store: CheckpointStore, workdir: str, job_id: str, total_frames: int,
           settings: EncoderSettings, segment_frames: int) -> CheckpointManifest:
    """The manifest to continue from, with its segments verified (sha256) in workdir.

    A checkpoint of a different render (other frame count, size or rate) is discarded. A segment
    that fails verification is dropped with every later one: the render redoes those frames."""
    os.makedirs(workdir, exist_ok=True)
    manifest = store.load_manifest()
    if manifest is None or not _same_render(manifest, total_frames, settings):
        if manifest is not None:
            store.delete_all()
        return CheckpointManifest(job_id=job_id, frame=0, total_frames=total_frames, segment_frames=segment_frames)
    for i, record in enumerate(manifest.segments):
        if not _have_segment(store, record, os.path.join(workdir, record.key)):
            manifest.segments = manifest.segments[:i]
            manifest.frame = record.first_frame
            break
    if manifest.frame:
        manifest.resume_count += 1
    return manifest


def _same_render(manifest: CheckpointManifest, total_frames: int, s: EncoderSettings) -> bool:
    return manifest.total_frames == total_frames and all(
        (r.encoder.width, r.encoder.height, r.encoder.fps_num, r.encoder.fps_den)
        == (s.width, s.height, s.fps_num, s.fps_den) for r in manifest.segments)


def _have_segment(store: CheckpointStore, record: SegmentRecord, path: str) -> bool:
    if os.path.exists(path) and sha256_file(path) == record.sha256:
        return True
    try:
        store.fetch_segment(record, path)
    except Exception:  # any store failure: redo the frames rather than fail the job
        return False
    return sha256_file(path) == record.sha256


@dataclass
class _Segment:
    encoder: Encoder
    index: int
    first_frame: int
    frames: int = 0
    opened: float = field(default_factory=time.monotonic)


class SegmentWriter:
    """Frames in, checkpointed segments out. A segment ends after `max_frames` frames or
    `max_seconds` of wall time, whichever comes first, or at checkpoint().

    A full segment is finished (encoder drained, file stored, then the manifest) by a background
    thread while the next segment's encoder already takes frames: the render never waits for the
    drain. on_checkpoint is still called from the writing thread, at the next write."""

    def __init__(self, store: CheckpointStore, workdir: str, manifest: CheckpointManifest,
                 settings: EncoderSettings, max_frames: int = 300, max_seconds: float = 30.0,
                 on_checkpoint: Callable[[CheckpointManifest], None] = lambda m: None, pod_id: str = "",
                 fmt: FrameFormat = BGR, queue_frames: int = 8):
        self.store, self.workdir, self.manifest, self.settings, self.fmt = store, workdir, manifest, settings, fmt
        self.queue_frames = queue_frames  # each encoder's queue
        self.max_frames, self.max_seconds = max_frames, max_seconds
        self.on_checkpoint, self.pod_id = on_checkpoint, pod_id
        self.frame = manifest.frame  # the next frame to be written
        self._open: Optional[_Segment] = None
        self._finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segment-finisher")
        self._finishing: list[Future] = []  # in segment order; each gives a copy of its manifest
        # Counted here, not derived: a finisher adds its segment to the manifest before its future is
        # done, so manifest + pending would count that segment twice and reuse its index.
        self._next_index = len(manifest.segments)
        self._store_failed: Optional[BaseException] = None

    def write(self, frame: np.ndarray) -> None:
        self._report_finished(wait=False)
        if self._open is None:
            index, self._next_index = self._next_index, self._next_index + 1
            encoder = Encoder(self._part_path(index), self.settings, self.fmt, self.queue_frames)
            self._open = _Segment(encoder, index, self.frame)
        self._open.encoder.write(frame)
        self._open.frames += 1
        self.frame += 1
        if self._open.frames >= self.max_frames or time.monotonic() - self._open.opened >= self.max_seconds:
            self._finishing.append(self._finisher.submit(self._store, self._open))
            self._open = None

    def checkpoint(self) -> None:
        """End the open segment (if any) and return once every segment and the manifest are stored."""
        if self._open is not None:
            self._finishing.append(self._finisher.submit(self._store, self._open))
            self._open = None
        self._report_finished(wait=True)

    def abort(self) -> None:
        """Drop the open segment; segments already complete are still stored."""
        if self._open is not None:
            self._open.encoder.abort()
            self._open = None
        for future in self._finishing:
            future.exception()  # wait; a failure here does not matter any more
        self._finishing.clear()

    def _report_finished(self, wait: bool) -> None:
        while self._finishing and (wait or self._finishing[0].done()):
            self.on_checkpoint(self._finishing.pop(0).result())

    def _store(self, segment: _Segment) -> CheckpointManifest:
        """Runs on the finisher thread, one segment at a time, in order. After a failure nothing more
        is stored: the manifest must stay a contiguous run of frames [0, frame), or a resume from it
        would skip the frames of the segment that was lost."""
        if self._store_failed is not None:
            segment.encoder.abort()
            raise self._store_failed
        try:
            return self._store_segment(segment)
        except BaseException as e:
            self._store_failed = e
            raise

    def _store_segment(self, segment: _Segment) -> CheckpointManifest:
        if segment.first_frame != self.manifest.frame:
            raise RuntimeError(f"segment {segment.index} starts at frame {segment.first_frame}, "
                               f"the checkpoint ends at {self.manifest.frame}")
        segment.encoder.close()
        key = segment_key(segment.index)
        path = os.path.join(self.workdir, key)
        os.replace(self._part_path(segment.index), path)
        record = SegmentRecord(index=segment.index, key=key, first_frame=segment.first_frame, frames=segment.frames,
                               sha256=sha256_file(path), size_bytes=os.path.getsize(path), encoder=self.settings)
        self.store.put_segment(path, record)
        self.manifest.segments.append(record)
        self.manifest.frame = segment.first_frame + segment.frames
        self.manifest.pod_id, self.manifest.updated_at = self.pod_id, time.time()
        self.store.put_manifest(self.manifest)
        return self.manifest.model_copy(deep=True)

    def _part_path(self, index: int) -> str:
        return os.path.join(self.workdir, f"seg_{index:05d}.part.mp4")


# ---------------------------------------------------------------- joining


def concat_input(manifest: CheckpointManifest, workdir: str) -> list[str]:
    """ffmpeg input options reading all segments as one video (concat demuxer). Each segment gets
    an exact `duration` line: otherwise mp4's millisecond-rounded durations drift at each join."""
    fps = Fraction(manifest.segments[0].encoder.fps_num, manifest.segments[0].encoder.fps_den)
    path = os.path.join(workdir, "segments.txt")
    with open(path, "w") as f:
        for r in manifest.segments:
            f.write(f"file '{r.key}'\nduration {float(r.frames / fps):.9f}\n")
    return ["-f", "concat", "-safe", "0", "-i", path]


def needs_reencode(manifest: CheckpointManifest, settings: EncoderSettings) -> bool:
    """Segments from different encoders (an NVENC pod, then an x264 pod) cannot be stream-copied
    into one H.264 track: their parameter sets differ."""
    return any(r.encoder != settings for r in manifest.segments)


def video_codec_args(manifest: CheckpointManifest, settings: EncoderSettings) -> list[str]:
    """Output options for the joined video: a stream copy, or a re-encode with `settings`."""
    return encoder_args(settings) if needs_reencode(manifest, settings) else ["-c:v", "copy"]
