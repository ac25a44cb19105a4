"""How full a budget is, in words an app can show: a level and "about N uses left".

The uses-remaining range comes from the spread of recent per-call costs: the dearest recent call
gives the minimum, the cheapest the maximum; the more calls seen and the less they vary, the higher
the confidence.
"""

from __future__ import annotations

import math

LEVEL_OK = "ok"
LEVEL_WARNING = "warning"
LEVEL_CRITICAL = "critical"
LEVEL_EXCEEDED = "exceeded"

_FULL_CONFIDENCE_SAMPLES = 10


def level_for(percent: float, thresholds: tuple[float, ...]) -> str:
    """ok below the first threshold; warning from it; critical from the last threshold below 100 %
    (when there are two or more below 100 %); exceeded at 100 % and above."""
    if percent >= 100.0:
        return LEVEL_EXCEEDED
    below = [t for t in thresholds if t < 100.0]
    if len(below) >= 2 and percent >= below[-1]:
        return LEVEL_CRITICAL
    if below and percent >= below[0]:
        return LEVEL_WARNING
    return LEVEL_OK


def uses_remaining(
    remaining: int | None, costs: list[int], requests_left: int | None
) -> tuple[int | None, int | None, float]:
    """(min, max, confidence) from the nano-USD left, recent per-call costs and requests left."""
    low: int | None = None
    high: int | None = None
    confidence = 0.0
    priced = [cost for cost in costs if cost > 0]
    if remaining is not None and priced:
        low = remaining // max(priced)
        high = remaining // min(priced)
        mean = sum(priced) / len(priced)
        spread = math.sqrt(sum((cost - mean) ** 2 for cost in priced) / len(priced)) / mean
        confidence = min(1.0, len(priced) / _FULL_CONFIDENCE_SAMPLES) / (1.0 + spread)
    if requests_left is not None:
        requests_left = max(0, requests_left)
        if remaining is None or not priced:
            low = high = requests_left
            confidence = 1.0
        else:
            low = min(low, requests_left) if low is not None else requests_left
            high = min(high, requests_left) if high is not None else requests_left
    if remaining is not None and remaining <= 0:
        low, high, confidence = 0, 0, 1.0
    return low, high, round(confidence, 3)
