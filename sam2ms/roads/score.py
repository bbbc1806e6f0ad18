"""APLS and TOPO beside the pixel metrics wherever two models are compared on tiles: the road
graph of one model's masks scored against the other's, so that a model which keeps pixels but
breaks roads (a quantised one, say) shows it. Tiles carry no georeference here: one pixel counts
as one metre (APLS's 50 m / 4 m / 10 m and TOPO's 150 m / 30 m / 4 m become pixels; aerial tiles
are 0.3-1 m per pixel).

Over many tiles APLS is the mean of the tiles' scores (with the lowest beside it) and TOPO comes
from the tiles' summed hole counts, as the SpaceNet reference totals both over a test set.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sam2ms.deps import MissingDependency, require
from sam2ms.metrics import THRESHOLD

TOPO_COUNTS = ("topo_tp", "topo_fp", "topo_fn")


def graph_pairs(
    reference: np.ndarray, candidate: np.ndarray, threshold: float = THRESHOLD
) -> list[tuple[Any, Any]] | None:
    """(reference graph, candidate graph) of each tile (N x H x W probabilities); None when the
    road-graph libraries (sam2ms[geo]) are not installed.
    """
    if not have_graph_libraries():
        return None
    from .extract import mask_to_graph

    return [(mask_to_graph(r >= threshold), mask_to_graph(c >= threshold)) for r, c in zip(reference, candidate)]


def have_graph_libraries() -> bool:
    """Whether the graph libraries ([geo]: networkx, scipy, scikit-image) are installed."""
    try:
        for module in ("networkx", "scipy", "skimage"):
            require(module, "APLS")
    except MissingDependency:
        return False
    return True


def graph_scores(truth: Any, proposal: Any) -> dict[str, Any]:
    """APLS (both directions) and TOPO (with its hole counts) of one proposal graph."""
    from .apls import apls
    from .topo import topo

    a, t = apls(truth, proposal), topo(truth, proposal)
    return {
        **{k: a[k] for k in ("apls", "apls_gt_onto_prop", "apls_prop_onto_gt")},
        **{k: t[k] for k in ("topo_precision", "topo_recall", "topo_f1", *TOPO_COUNTS)},
    }


def summarise(scores: list[dict[str, Any]]) -> dict[str, Any]:
    """Many tiles' :func:`graph_scores` as one: mean and lowest APLS, TOPO of the summed counts
    (empty without scores).
    """
    from .topo import scores_from_counts

    if not scores:
        return {}
    apls = [s["apls"] for s in scores]
    return {
        "apls": float(np.mean(apls)),
        "apls_min": float(np.min(apls)),
        **scores_from_counts(*(sum(int(s[k]) for s in scores) for k in TOPO_COUNTS)),
    }


def pairs_scores(pairs: list[tuple[Any, Any]] | None) -> dict[str, Any]:
    """:func:`summarise` of candidate graphs against reference graphs (empty without pairs)."""
    return summarise([graph_scores(ref, cand) for ref, cand in pairs or []])


def tile_scores(reference: np.ndarray, candidate: np.ndarray, threshold: float = THRESHOLD) -> dict[str, Any]:
    """APLS and TOPO over tiles of ``candidate``'s graphs against ``reference``'s; empty when the
    road-graph libraries are not installed.
    """
    return pairs_scores(graph_pairs(reference, candidate, threshold))
