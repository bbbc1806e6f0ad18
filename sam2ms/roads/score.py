"""APLS beside the pixel metrics wherever two models are compared on tiles: the road graph of one
model's masks scored against the other's, so that a model which keeps pixels but breaks roads
(a quantised one, say) shows it. Tiles carry no georeference here: one pixel counts as one metre
(APLS's 50 m / 4 m / 10 m become pixels; aerial tiles are 0.3-1 m per pixel)."""

from __future__ import annotations

from typing import Any

import numpy as np

from sam2ms.deps import MissingDependency, require
from sam2ms.metrics import THRESHOLD


def graph_pairs(reference: np.ndarray, candidate: np.ndarray,
                threshold: float = THRESHOLD) -> list[tuple[Any, Any]] | None:
    """(reference graph, candidate graph) of each tile (N x H x W probabilities); None when the
    road-graph libraries (sam2ms[geo]) are not installed."""
    try:
        for module in ("networkx", "scipy", "skimage"):
            require(module, "APLS")
    except MissingDependency:
        return None
    from .extract import mask_to_graph

    return [(mask_to_graph(r >= threshold), mask_to_graph(c >= threshold)) for r, c in zip(reference, candidate)]


def pairs_apls(pairs: list[tuple[Any, Any]] | None) -> dict[str, Any]:
    """Mean and lowest APLS of candidate graphs against reference graphs (empty without pairs)."""
    from .apls import apls

    scores = [apls(ref, cand)["apls"] for ref, cand in pairs or []]
    return {"apls": float(np.mean(scores)), "apls_min": float(np.min(scores))} if scores else {}


def tile_apls(reference: np.ndarray, candidate: np.ndarray, threshold: float = THRESHOLD) -> dict[str, Any]:
    """Mean and lowest APLS over tiles of ``candidate``'s graphs against ``reference``'s; empty
    when the road-graph libraries are not installed."""
    return pairs_apls(graph_pairs(reference, candidate, threshold))
