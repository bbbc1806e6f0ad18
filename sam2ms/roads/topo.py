"""TOPO, the holes-and-marbles road metric (Biagioni & Eriksson 2012, as graph papers from
Sat2Graph on report it), as CosmiQ's reference (github CosmiQ/apls, ``apls/topo_metric.py``)
computes it beside APLS, with the settings of that reference's scoring command (``apls.py``).

1. ``origins`` (500) truth nodes are drawn at random, with replacement (the reference's
   ``np.random.choice``; seeded here, so scores repeat).
2. Around each: the truth nodes within ``subgraph_radius`` (150 m, straight-line; at most the
   500 nearest, the reference's k-d query) and of those the ones connected to the origin inside
   that set. Its *holes* are those nodes plus points every ``interval`` (30 m) along each of its
   edges of at least 30 m, counted from the end nearer the origin.
3. The proposal node nearest to the origin within ``hole_size`` (4 m) is the proposal's origin;
   its subgraph gives *marbles* the same way. No such node: every hole counts as a miss.
4. Each marble, in turn, falls into the nearest still-empty hole within 4 m (a true positive) or
   is a false positive; empty holes are false negatives. Counts are summed over the origins:
   ``topo_precision = tp / (tp + fp)``, ``topo_recall = tp / (tp + fn)``, ``topo_f1`` their
   harmonic mean.

Sat2Graph's own TOPO differs in its hole spacing (about 5 m) and propagation; the interval here is
the SpaceNet reference's. Convention (ours; the reference returns zeros): two empty graphs score 1,
an empty proposal or truth scores 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import geometry

KD_NEIGHBOURS = 500  # the reference's k-d ball query returns at most this many nearest nodes


@dataclass(frozen=True)
class TopoParams:
    """The settings of the reference's scoring command (``apls.py``: ``topo_subgraph_radius``,
    ``topo_interval``, ``topo_hole_size``; ``max_nodes`` origins).
    """

    subgraph_radius: float = 150.0
    interval: float = 30.0
    hole_size: float = 4.0
    origins: int = 500
    seed: int = 0


class _Positions:
    """A graph's node positions in a k-d tree, queried as the reference's ``_query_kd_ball``."""

    def __init__(self, graph: Any) -> None:
        from scipy.spatial import cKDTree

        self.graph = graph
        self.names = list(graph.nodes)
        self.xy = np.array([[d["x"], d["y"]] for _, d in graph.nodes(data=True)], float).reshape(-1, 2)
        self.tree = cKDTree(self.xy)
        self._along: dict[tuple[int, bool], np.ndarray] = {}  # interval points per edge and direction

    def ball(self, point: np.ndarray, radius: float) -> tuple[list[Any], np.ndarray]:
        """Names and distances of the (at most 500) nearest nodes within ``radius`` of ``point``."""
        dist, idx = self.tree.query(point, k=KD_NEIGHBOURS, distance_upper_bound=radius)
        keep = dist <= radius
        return [self.names[i] for i in idx[keep]], dist[keep]

    def holes(self, origin: Any, params: TopoParams) -> np.ndarray:
        """The origin's connected subgraph within the radius, as points: its nodes, then the
        interval points of its edges (the order in which the reference inserts them).
        """
        import networkx as nx

        o = np.array([self.graph.nodes[origin]["x"], self.graph.nodes[origin]["y"]])
        near, _ = self.ball(o, params.subgraph_radius)
        sub = self.graph.subgraph(near)
        sub = sub.subgraph(nx.node_connected_component(sub, origin))
        points = [np.array([[d["x"], d["y"]] for _, d in sub.nodes(data=True)], float).reshape(-1, 2)]
        for u, v, data in sub.edges(data=True):
            line = _geometry(sub, u, v, data)
            length = float(data["length"]) if "length" in data else geometry.length(line)
            if length < params.interval:
                continue
            # radially outward from the origin (ensure_radial_linestrings): from the nearer end
            flip = bool(np.hypot(*(line[-1] - o)) < np.hypot(*(line[0] - o)))
            key = (id(data), flip)  # an edge's data dict is shared by every view of the graph
            if key not in self._along:
                self._along[key] = geometry.points_along(
                    line[::-1] if flip else line, np.arange(0, length, params.interval)[1:]
                )
            points.append(self._along[key])
        return np.concatenate(points)


def _geometry(graph: Any, u: Any, v: Any, data: dict[str, Any]) -> np.ndarray:
    if data.get("geometry") is not None:
        return np.asarray(data["geometry"], float)
    return np.array([[graph.nodes[n]["x"], graph.nodes[n]["y"]] for n in (u, v)], float)


def _marbles_in_holes(holes: np.ndarray, marbles: np.ndarray, hole_size: float) -> tuple[int, int, int]:
    """(tp, fp, fn): each marble in turn takes the nearest empty hole within ``hole_size``."""
    from scipy.spatial import cKDTree

    filled: set[int] = set()
    tp = 0
    for marble, near in zip(marbles, cKDTree(holes).query_ball_point(marbles, r=hole_size)):
        free = [i for i in near if i not in filled]
        if free:
            gaps = np.hypot(*(holes[free] - marble).T)
            filled.add(free[int(np.argmin(gaps))])
            tp += 1
    return tp, len(marbles) - tp, len(holes) - tp


def scores_from_counts(tp: int, fp: int, fn: int) -> dict[str, Any]:
    """Precision, recall and F1 of summed hole counts (one graph's, or a test set's)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "topo_precision": precision,
        "topo_recall": recall,
        "topo_f1": f1,
        "topo_tp": tp,
        "topo_fp": fp,
        "topo_fn": fn,
    }


def draw_origins(truth: Any, params: TopoParams) -> list[Any]:
    """The seeded draw of origin nodes: ``min(origins, nodes)`` of them, with replacement."""
    names = list(truth.nodes)
    rng = np.random.default_rng(params.seed)
    return [names[i] for i in rng.choice(len(names), min(params.origins, len(names)))]


def topo(
    truth: Any, proposal: Any, params: TopoParams | None = None, origins: list[Any] | None = None
) -> dict[str, Any]:
    """TOPO precision, recall and F1 of a proposal road graph against the truth (networkx graphs,
    metres; see the module docstring), with the summed counts and the number of origins.
    ``origins`` (truth node names) replaces the seeded draw, e.g. to compare with the reference.
    """
    params = params or TopoParams()
    if truth.number_of_nodes() == 0 or proposal.number_of_nodes() == 0:
        empty = truth.number_of_nodes() == proposal.number_of_nodes() == 0
        score = 1.0 if empty else 0.0
        return {
            "topo_precision": score,
            "topo_recall": score,
            "topo_f1": score,
            "topo_tp": 0,
            "topo_fp": 0,
            "topo_fn": 0,
            "topo_origins": 0,
        }
    gt, prop = _Positions(truth), _Positions(proposal)
    origins = draw_origins(truth, params) if origins is None else origins
    tp = fp = fn = 0
    for origin in origins:
        holes = gt.holes(origin, params)
        near, dist = prop.ball(np.array([truth.nodes[origin]["x"], truth.nodes[origin]["y"]]), params.hole_size)
        if not near:
            fn += len(holes)
            continue
        t, f, n = _marbles_in_holes(holes, prop.holes(near[int(np.argmin(dist))], params), params.hole_size)
        tp, fp, fn = tp + t, fp + f, fn + n
    return {**scores_from_counts(tp, fp, fn), "topo_origins": len(origins)}
