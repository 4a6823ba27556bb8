"""R2 through the S3 API of the local stack: checkpoints, and how failures are classified."""

from __future__ import annotations

import os

import pytest
from jobspec import CheckpointManifest, EncoderSettings, SegmentRecord

from gpu_worker.segments import sha256_file
from gpu_worker.storage import R2, ObjectMissing, R2Config, StorageError

from scripts.gpu_worker_proc import BUCKET, r2_config

from .conftest import checkpoint_of

ENCODER = EncoderSettings(codec="libx264", width=256, height=144, fps_num=30, fps_den=1, quality=20, preset="veryfast")


def test_checkpoint_store_round_trip(r2, tmp_path):
    store = checkpoint_of(r2, "store-test")
    assert store.load_manifest() is None
    segment = tmp_path / "seg_00000.mp4"
    segment.write_bytes(os.urandom(10_000))
    record = SegmentRecord(index=0, key=segment.name, first_frame=0, frames=30, sha256=sha256_file(segment),
                           size_bytes=10_000, encoder=ENCODER)

    store.put_segment(str(segment), record)
    store.put_manifest(CheckpointManifest(job_id="store-test", frame=30, total_frames=90, segment_frames=30,
                                          segments=[record]))

    assert store.load_manifest().segments == [record]
    store.fetch_segment(record, str(tmp_path / "back.mp4"))
    assert (tmp_path / "back.mp4").read_bytes() == segment.read_bytes()
    with pytest.raises(StorageError, match="sha256"):
        store.fetch_segment(record.model_copy(update={"sha256": "0" * 64}), str(tmp_path / "bad.mp4"))
    assert not (tmp_path / "bad.mp4").exists()
    store.delete_all()
    assert list(r2.keys(store.prefix)) == [] and store.load_manifest() is None


def test_a_missing_object_is_permanent(r2, tmp_path):
    with pytest.raises(ObjectMissing) as failure:
        r2.download("videos/raw/nobody/none/missing.mp4", str(tmp_path / "in.mp4"))
    assert not failure.value.retryable and "missing.mp4" in str(failure.value)


def test_refused_credentials_are_permanent(stack):
    config = r2_config(stack)
    wrong = R2(R2Config(config.endpoint, BUCKET, config.access_key_id, "not-the-secret"))
    with pytest.raises(StorageError) as failure:
        wrong.write("checkpoints/x/manifest.json", b"{}", "application/json")
    assert not failure.value.retryable and "HTTP 4" in str(failure.value)


def test_no_answer_is_transient(tmp_path):
    closed = R2(R2Config("http://127.0.0.1:9", BUCKET, "key", "secret"), attempts=2)
    with pytest.raises(StorageError) as failure:
        closed.download("videos/raw/a/b/c.mp4", str(tmp_path / "in.mp4"))
    assert failure.value.retryable
