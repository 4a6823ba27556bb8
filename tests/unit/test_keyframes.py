from types import SimpleNamespace as K

import pytest

from gpu_worker.keyframes import interpolate


def kf(t, x, easing="linear"):
    return K(t=t, x=x, easing=easing)


def test_holds_outside_the_keyframes():
    kfs = [kf(1, 10), kf(2, 20)]
    assert interpolate(kfs, 0.0, ["x"]) == {"x": 10}
    assert interpolate(kfs, 5.0, ["x"]) == {"x": 20}


def test_linear_midpoint_and_ends():
    kfs = [kf(0, 0), kf(2, 10)]
    assert interpolate(kfs, 1.0, ["x"])["x"] == pytest.approx(5)
    assert interpolate(kfs, 2.0, ["x"])["x"] == 10


@pytest.mark.parametrize("easing,expected", [("ease_in", 2.5), ("ease_out", 7.5), ("ease_in_out", 5.0), ("hold", 0.0)])
def test_easings_shape_the_segment(easing, expected):
    kfs = [kf(0, 0, easing), kf(1, 10)]
    assert interpolate(kfs, 0.5, ["x"])["x"] == pytest.approx(expected)


def test_single_keyframe_is_constant():
    assert interpolate([kf(3, 7)], 10, ["x"]) == {"x": 7}
