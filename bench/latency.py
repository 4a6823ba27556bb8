"""Shared by the latency benchmarks."""


def percentile(values, p):
    """The nearest-rank p-th percentile (a value that was measured, not an interpolation)."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]
