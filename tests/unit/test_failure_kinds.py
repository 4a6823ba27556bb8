"""Which errors end a job for good and which are retried."""

from gpu_worker.media import CorruptInput, FFmpegError
from gpu_worker.runner import _failure
from gpu_worker.upscale import WeightsError


def test_missing_weights_and_corrupt_input_are_fatal_with_their_reason():
    for error in (WeightsError("no weights file for realesrgan-x4plus"), CorruptInput("input is not a video")):
        assert _failure(error) == {"reason": str(error), "retryable": False}


def test_ffmpeg_crash_is_retryable_and_unknown_errors_let_the_lease_expire():
    assert _failure(FFmpegError("encoder died"))["retryable"] is True
    assert _failure(KeyError("surprise")) is None
