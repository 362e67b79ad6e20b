"""Small statistics for closed-loop evaluation: Wilson score intervals and latency percentiles.

A success rate from n Bernoulli episodes is reported with its Wilson score interval (10
episodes per task is 10-point resolution; the interval says how much a difference can be noise). The
Wilson interval stays inside [0, 1] and is sensible at 0/n and n/n, unlike the normal approximation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z_95 = 1.959963984540054  # two-sided 95 % standard-normal quantile


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval (low, high) for ``successes`` out of ``n`` trials; fractions in [0, 1].

    >>> tuple(round(x, 3) for x in wilson_interval(8, 10))
    (0.49, 0.943)
    """
    if n <= 0:
        raise ValueError(f"need at least one trial, got n={n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n={n}], got {successes}")
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # at 0/n and n/n the bounds equal p in exact arithmetic; in floats centre - half can land 1e-17 above 0
    # (or below 1), which would put p outside its own interval
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated ``q``-th percentile (q in [0, 100]) of a non-empty sequence (numpy's default)."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)
