"""``--auto-exclude``: find the quantised layers that cost the most accuracy and keep them in float.

Ranking measures each layer's effect where it matters, on the model's output: the model is
quantised with *only* that unit of layers in INT8 (the rest in float) and the mean squared
probability error against FP32 on a few calibration tiles is its score. Local measures (SQNR lost
inside a layer) were tried and mislead: on the demo model they blamed decoder convolutions, while
the output error came from Hiera MatMuls whose small local noise the decoder amplifies. To bound
the cost on large models, consecutive layers in graph order form at most :data:`MAX_UNITS` units.
Search: the smallest number of top-ranked units to keep in float such that the held-out report
passes — doubling, then bisection — re-quantising from ranges already collected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_UNITS = 48


def layer_units(candidates: list[str], max_units: int = MAX_UNITS) -> list[list[str]]:
    """Consecutive runs of the quantised layers (graph order), at most ``max_units`` of them."""
    size = max(1, -(-len(candidates) // max_units))
    return [candidates[i : i + size] for i in range(0, len(candidates), size)]


def rank_units(
    units: list[list[str]],
    error_with_only: Callable[[list[str]], float],
    progress: Callable[[int], None] = lambda n: None,
) -> list[dict[str, Any]]:
    """Units sorted by the output error they cause alone (most harmful first).

    ``error_with_only(nodes)`` quantises just ``nodes`` and returns the output error vs FP32.
    """
    ranked = []
    for unit in units:
        ranked.append({"nodes": unit, "error": float(error_with_only(unit))})
        progress(1)
    return sorted(ranked, key=lambda r: -r["error"])


def smallest_passing(count: int, passes: Callable[[int], bool]) -> int | None:
    """The smallest k in 1..count with ``passes(k)``, assuming more kept-in-float never hurts:
    doubling, then bisection (about 2·log2(count) trials). None when even ``count`` fails.
    """
    failing, k, passing = 0, 1, None
    while k < count:
        if passes(k):
            passing = k
            break
        failing, k = k, 2 * k
    if passing is None:
        if count < 1 or not passes(count):
            return None
        passing = count
    while passing - failing > 1:
        mid = (failing + passing) // 2
        if passes(mid):
            passing = mid
        else:
            failing = mid
    return passing
