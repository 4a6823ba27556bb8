"""Checkpoints and resumes must not change a single frame.

Where a segment is cut decides which frame x264 codes as an IDR, so lossy output differs
bit-wise when cuts move (an interruption at any frame cuts there). Lossless coding (crf 0)
makes any misplaced, lost or repeated frame show up as an md5 mismatch."""

import json
import os
import random
import subprocess
import sys

import av
import pytest
from render_helpers import KEY_A, LOSSLESS, StopAt, frame_md5s, overlay_job, render_job

from gpu_worker.render import Cancelled, Hooks, Interrupted
from gpu_worker.segments import DirectoryStore, needs_reencode

SEGMENT = 40


@pytest.fixture(scope="module")
def reference(clip_av, tmp_path_factory):
    """The uninterrupted lossless render."""
    tmp = tmp_path_factory.mktemp("reference")
    result = render_job(overlay_job(), {KEY_A: clip_av}, tmp / "work", tmp / "store",
                        quality=LOSSLESS, segment_frames=SEGMENT)
    return frame_md5s(result.path)


def run_cli(spec_path, clip, workdir, store, *extra):
    proc = subprocess.run([sys.executable, "-m", "gpu_worker.render_cli", str(spec_path), "--input", f"{KEY_A}={clip}",
                           "--workdir", str(workdir), "--store", str(store), "--codec", "libx264",
                           "--quality", str(LOSSLESS), "--segment-frames", str(SEGMENT), *extra],
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])


def video_packets(path):
    with av.open(path) as c:
        return [bytes(p) for p in c.demux(video=0) if p.size]


def keyframes(path):
    with av.open(path) as c:
        return [i for i, p in enumerate(p for p in c.demux(video=0) if p.size) if p.is_keyframe]


def test_interrupted_at_random_frames_in_fresh_processes_gives_identical_frames(clip_av, reference, tmp_path):
    stops = sorted(random.Random(2024).sample(range(1, 120), 3))
    spec = tmp_path / "spec.json"
    spec.write_text(overlay_job().model_dump_json())
    store = tmp_path / "store"
    for i, stop in enumerate(stops):  # a new workdir each time, like a new pod: segments come from the store
        code, out = run_cli(spec, clip_av, tmp_path / f"pod{i}", store, "--interrupt-at", str(stop))
        assert (code, out) == (75, {"interrupted_at": stop}), stops
        assert DirectoryStore(str(store)).load_manifest().frame == stop
    code, out = run_cli(spec, clip_av, tmp_path / "last", store)
    assert code == 0 and out["resumed_from"] == stops[-1] and out["frames"] == 120
    assert frame_md5s(out["path"]) == reference, f"interrupted at {stops}"
    with av.open(out["path"]) as c:
        assert c.streams.audio and c.streams.audio[0].duration * c.streams.audio[0].time_base == pytest.approx(4.0, abs=0.05)
    manifest = DirectoryStore(str(store)).load_manifest()
    assert manifest.resume_count == 3 and [s.first_frame for s in manifest.segments][:2] == [0, min(stops[0], SEGMENT)]
    assert keyframes(out["path"]) == [r.first_frame for r in manifest.segments]  # one encoder: a stream copy


def test_lossy_output_is_identical_when_interrupted_at_segment_boundaries(clip_av, tmp_path):
    whole = render_job(overlay_job(), {KEY_A: clip_av}, tmp_path / "a", tmp_path / "sa", segment_frames=SEGMENT)
    for stop in (SEGMENT, 2 * SEGMENT):
        with pytest.raises(Interrupted):
            render_job(overlay_job(), {KEY_A: clip_av}, tmp_path / "b", tmp_path / "sb", StopAt(stop).hooks(),
                       segment_frames=SEGMENT)
    resumed = render_job(overlay_job(), {KEY_A: clip_av}, tmp_path / "b", tmp_path / "sb", segment_frames=SEGMENT)
    assert video_packets(resumed.path) == video_packets(whole.path)


def interrupt_at(frame, clip, tmp_path, **options):
    with pytest.raises(Interrupted) as stopped:
        render_job(overlay_job(), {KEY_A: clip}, tmp_path / "work", tmp_path / "store", StopAt(frame).hooks(),
                   quality=LOSSLESS, segment_frames=SEGMENT, **options)
    assert stopped.value.frame == frame
    return DirectoryStore(str(tmp_path / "store"))


def test_segments_from_another_encoder_are_re_encoded_at_the_join(clip_av, reference, tmp_path):
    store = interrupt_at(50, clip_av, tmp_path)
    manifest = store.load_manifest()
    manifest.segments[0].encoder.codec = "h264_nvenc"  # as if an NVENC pod had made it
    store.put_manifest(manifest)
    result = render_job(overlay_job(), {KEY_A: clip_av}, tmp_path / "work2", tmp_path / "store",
                        quality=LOSSLESS, segment_frames=SEGMENT)
    manifest = store.load_manifest()
    assert needs_reencode(manifest, manifest.segments[-1].encoder)
    assert keyframes(result.path) == [0]  # one new encode, not the segments' IDR frames
    assert frame_md5s(result.path) == reference


def test_a_damaged_checkpoint_segment_is_rendered_again(clip_av, reference, tmp_path):
    store = interrupt_at(90, clip_av, tmp_path)
    damaged = store.load_manifest().segments[1]
    with open(os.path.join(store.path, damaged.key), "r+b") as f:
        f.seek(damaged.size_bytes // 2)
        f.write(b"\0" * 64)
    resumed = []
    result = render_job(overlay_job(), {KEY_A: clip_av}, tmp_path / "fresh", tmp_path / "store",
                        Hooks(on_resumed=resumed.append), quality=LOSSLESS, segment_frames=SEGMENT)
    assert resumed == [damaged.first_frame] and result.resumed_from == damaged.first_frame
    assert frame_md5s(result.path) == reference


def test_cancel_stores_nothing_more(clip_av, tmp_path):
    with pytest.raises(Cancelled):
        render_job(overlay_job(), {KEY_A: clip_av}, tmp_path / "work", tmp_path / "store", StopAt(50, "cancel").hooks(),
                   segment_frames=SEGMENT)
    manifest = DirectoryStore(str(tmp_path / "store")).load_manifest()
    assert manifest.frame == SEGMENT and len(manifest.segments) == 1
