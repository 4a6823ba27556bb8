"""Shared by the latency benchmarks."""

# The job they create (add "input_video_key"): one small spotlight, cheap to validate and to store.
OVERLAY_JOB = {"type": "overlay", "params": {"highlight_regions": [
    {"keyframes": [{"t": 0, "x": 0.5, "y": 0.5, "rx": 0.2, "ry": 0.2}]}]}}


def percentile(values, p):
    """The nearest-rank p-th percentile (a value that was measured, not an interpolation)."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]
