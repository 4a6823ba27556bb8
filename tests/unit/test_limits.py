"""The pod's limits as arithmetic: estimated work, time limit, queue depth in bytes."""

import pytest

from gpu_worker.limits import LimitExceeded, Limits, work_seconds


def test_work_scales_with_frames_pixels_and_the_model():
    base = work_seconds(100, 1080, 1920, "none")
    assert work_seconds(200, 1080, 1920, "none") == pytest.approx(2 * base)
    assert work_seconds(100, 2160, 3840, "none") == pytest.approx(4 * base)
    assert work_seconds(100, 1080, 1920, "realesrgan-x4plus") > 20 * work_seconds(100, 1080, 1920, "realesr-animevideov3")


def test_an_unknown_model_costs_as_much_as_the_dearest():
    assert work_seconds(10, 64, 64, "future-model") == work_seconds(10, 64, 64, "realesrgan-x4plus")


def test_over_a_limit_the_error_names_it_and_its_value():
    limits = Limits(max_frames=100, max_work_s=50)
    limits.check_input(100)
    with pytest.raises(LimitExceeded, match=r"max_frames\) is 100"):
        limits.check_input(101)
    with pytest.raises(LimitExceeded, match=r"max_work_s\) is 50 s"):
        limits.check_work(51, 10, 64, 64)


def test_time_limit_and_queue_depth():
    limits = Limits(time_floor_s=60, time_factor=3, queue_bytes=100 << 20)
    assert limits.time_limit_s(10) == 90
    assert limits.queue_frames(1920 * 1080 * 3) == 8  # 6 MB frames: the usual depth
    assert limits.queue_frames(3840 * 2160 * 3) == 4  # 25 MB frames: 100 MB
    assert limits.queue_frames(8192 * 8192 * 3) == 2  # never fewer than two: stages still overlap
