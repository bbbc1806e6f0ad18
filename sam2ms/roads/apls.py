"""APLS, the Average Path Length Similarity that scores SpaceNet roads, as CosmiQ's reference
(github CosmiQ/apls, ``apls/apls.py``) computes it, on numpy and scipy.

A port of the reference's steps, quirks included, with its command-line defaults:

1. Both graphs: identical parallel edges dropped; a *control point* at every node, plus points
   every ``linestring_delta`` (50 m) along each edge of at least 0.75 x 50 m (one at the middle of
   edges up to 50 m), inserted as nodes that split their edge (``create_graph_midpoints`` with
   ``is_curved_eps = -1``: every edge, curved or not). A truth graph of ``large_graph`` (500)
   nodes or more gets no midpoints and a seeded sample of ``max_nodes`` (1000) of its nodes as
   control points instead (``make_graphs_yuge``); the proposal is sampled alike.
2. Truth control points are snapped onto the proposal *as it came* (no midpoints): each to the
   nearest point of the nearest edge within ``max_snap_dist`` (4 m), splitting that edge; a point
   that lands on an existing node (within 5 cm) renames that node, as the reference does
   (``allow_renaming``). Points further than 4 m are not inserted. Then the other way round.
3. For every pair of truth control points joined in the truth by a path of at least
   ``min_path_length`` (10 m): ``min(1, |L - L'| / L)`` with L' the proposal's path between the
   snapped points, 1 when there is none or the start point could not be snapped (then every pair
   from it counts 1, short ones included). ``APLS_gt_onto_prop = 1 - mean``; the same from the
   proposal's control points onto the truth gives ``APLS_prop_onto_gt``.
4. APLS is their harmonic mean, 0 when either is 0.

Convention (ours; the reference returns 0): two empty graphs score 1; one empty graph scores 0.
Shortest paths come from scipy's C Dijkstra over sparse matrices, so graphs of thousands of nodes
take seconds (the reference runs networkx's all-pairs Dijkstra in Python). The snapping searches
all edges, where the reference looks only at edges of the 20 nearest nodes above 1000 nodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import geometry

CELL = 10.0  # metres: the grid that finds the segments near a point
SNAP_TO_NODE = 0.05  # metres: a snapped point this close to a node renames it (the reference's ``buff``)
MIDPOINT_SNAP = 5.0  # metres: insert_point_into_G's default, used for the midpoints


@dataclass(frozen=True)
class AplsParams:
    """The reference command line's defaults, except ``min_path_length``: 10 m as SpaceNet's
    scoring describes it (the reference CLI passes 0.001).
    """

    linestring_delta: float = 50.0
    is_curved_eps: float = -1.0
    max_snap_dist: float = 4.0
    min_path_length: float = 10.0
    large_graph: int = 500
    max_nodes: int = 1000
    seed: int = 0


class _Net:
    """A road graph being edited: nodes (id -> x, y), edges (u, v, geometry, length) and its
    segments bucketed on a grid of ``CELL`` metres, so that snapping a point looks only at the
    segments near it.
    """

    def __init__(self) -> None:
        self.xy: dict[int, np.ndarray] = {}
        self.edges: list[list[Any]] = []  # [u, v, geometry, length]
        self.alive: list[bool] = []
        self.incident: dict[int, set[int]] = {}
        self._seg = np.zeros((0, 5))  # x0, y0, x1, y1, edge index
        self._n_seg = 0
        self._cells: dict[tuple[int, int], list[int]] = {}

    @classmethod
    def from_graph(cls, graph: Any, ids: dict[Any, int]) -> _Net:
        net = cls()
        for n, data in graph.nodes(data=True):
            net.add_node(ids[n], np.array([data["x"], data["y"]], float))
        seen: dict[tuple[int, int], list[np.ndarray]] = {}
        for u, v, data in graph.edges(data=True):
            a, b = ids[u], ids[v]
            geom = data.get("geometry")
            geom = np.array([net.xy[a], net.xy[b]]) if geom is None else np.asarray(geom, float)
            if np.hypot(*(geom[0] - net.xy[a])) > np.hypot(*(geom[0] - net.xy[b])):
                geom = geom[::-1]  # oriented from its first node (create_edge_linestrings)
            same = seen.setdefault((min(a, b), max(a, b)), [])
            if any(g.shape == geom.shape and (np.array_equal(g, geom) or np.array_equal(g, geom[::-1])) for g in same):
                continue  # an identical parallel edge (remove_redundant)
            same.append(geom)
            net.add_edge(a, b, geom, float(data["length"]) if "length" in data else geometry.length(geom))
        return net

    def copy(self) -> _Net:
        net = _Net()
        net.xy = dict(self.xy)
        for (u, v, geom, length), alive in zip(self.edges, self.alive):
            if alive:
                net.add_edge(u, v, geom, length)
        for n in self.xy:
            net.incident.setdefault(n, set())
        return net

    def add_node(self, n: int, xy: np.ndarray) -> None:
        self.xy[n] = xy
        self.incident.setdefault(n, set())

    def add_edge(self, u: int, v: int, geom: np.ndarray, length: float) -> None:
        i = len(self.edges)
        self.edges.append([u, v, geom, length])
        self.alive.append(True)
        self.incident.setdefault(u, set()).add(i)
        self.incident.setdefault(v, set()).add(i)
        n = len(geom) - 1
        if n < 1:
            return
        if self._n_seg + n > len(self._seg):
            grown = np.zeros((max(2 * len(self._seg), self._n_seg + n, 64), 5))
            grown[: self._n_seg] = self._seg[: self._n_seg]
            self._seg = grown
        first = self._n_seg
        self._seg[first : first + n] = np.column_stack([geom[:-1], geom[1:], np.full(n, i)])
        self._n_seg += n
        lo = np.floor(np.minimum(geom[:-1], geom[1:]) / CELL).astype(int)
        hi = np.floor(np.maximum(geom[:-1], geom[1:]) / CELL).astype(int)
        for k, ((x0, y0), (x1, y1)) in enumerate(zip(lo.tolist(), hi.tolist())):
            for cx in range(x0, x1 + 1):
                for cy in range(y0, y1 + 1):
                    self._cells.setdefault((cx, cy), []).append(first + k)

    def remove_edge(self, i: int) -> None:
        u, v = self.edges[i][:2]
        self.alive[i] = False
        self.incident[u].discard(i)
        self.incident[v].discard(i)

    def rename(self, old: int, new: int) -> None:
        self.xy[new] = self.xy.pop(old)
        self.incident[new] = self.incident.pop(old)
        for i in self.incident[new]:
            edge = self.edges[i]
            edge[0] = new if edge[0] == old else edge[0]
            edge[1] = new if edge[1] == old else edge[1]

    def nearest_edge(self, point: np.ndarray, radius: float) -> tuple[int, float]:
        """(edge index, distance) of the live edge nearest to ``point`` among those within
        ``radius`` ((-1, inf) when there is none); ties go to the earliest segment.
        """
        (x0, y0) = np.floor((point - radius) / CELL).astype(int)
        (x1, y1) = np.floor((point + radius) / CELL).astype(int)
        ids = [i for cx in range(x0, x1 + 1) for cy in range(y0, y1 + 1) for i in self._cells.get((cx, cy), ())]
        if not ids:
            return -1, math.inf
        seg = self._seg[np.unique(ids)]
        a, b, owner = seg[:, 0:2], seg[:, 2:4], seg[:, 4].astype(int)
        ab = b - a
        denom = (ab**2).sum(axis=1)
        t = np.clip(((point - a) * ab).sum(axis=1) / np.where(denom > 0, denom, 1.0), 0.0, 1.0)
        dist = np.hypot(*(point - (a + t[:, None] * ab)).T)
        dist[[not self.alive[o] for o in owner.tolist()]] = np.inf
        k = int(np.argmin(dist))
        return (int(owner[k]), float(dist[k])) if dist[k] <= radius else (-1, math.inf)

    def insert(self, point: np.ndarray, node_id: int, max_dist: float) -> None:
        """The reference's ``insert_point_into_G`` with renaming allowed."""
        if node_id in self.xy:
            return
        i, _ = self.nearest_edge(point, max_dist)
        if i < 0:
            return
        u, v, geom, _ = self.edges[i]
        _, along = geometry.nearest(geom, point)
        new = geometry.interpolate(geom, along)
        pieces = geometry.cut(geom, along)
        if len(pieces) == 1:
            for end in (u, v):
                if np.all(np.abs(new - self.xy[end]) <= SNAP_TO_NODE):
                    self.rename(end, node_id)
                    return
            return
        self.add_node(node_id, new)
        first, second = pieces
        self.remove_edge(i)
        self.add_edge(u, node_id, first, geometry.length(first))
        self.add_edge(node_id, v, second, geometry.length(second))

    def add_midpoints(self, delta: float, curved_eps: float) -> None:
        """The reference's ``create_graph_midpoints``: new node ids above the largest."""
        next_id = max(self.xy) + 1
        for (_, _, geom, length), alive in list(zip(self.edges, self.alive)):
            if not alive or length <= 0:
                continue
            lo, hi = geom.min(axis=0), geom.max(axis=0)
            if abs(float(np.hypot(*(hi - lo))) - length) / length < curved_eps or length < 0.75 * delta:
                continue
            if length <= delta:
                dists = [0.5 * geometry.length(geom)]
            else:
                dists = list(np.linspace(0, length, len(np.arange(0, length, delta)) + 1)[1:-1])
            for d in dists:
                self.insert(geometry.interpolate(geom, d), next_id, MIDPOINT_SNAP)
                next_id += 1

    def distances(self, sources: list[int], targets: list[int]) -> np.ndarray:
        """Shortest path lengths (inf: no path), sources x targets, over live edges."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import dijkstra

        index = {n: k for k, n in enumerate(self.xy)}
        rows, cols, weights = [], [], []
        for (u, v, _, length), alive in zip(self.edges, self.alive):
            if alive and u != v:
                rows.append(index[u])
                cols.append(index[v])
                weights.append(max(length, 1e-12))  # a zero-length edge still connects
        n = len(index)
        matrix = coo_matrix((n, n)).tocsr()
        if rows:  # parallel edges: keep the shortest (coo -> csr would sum duplicates)
            order = np.lexsort((weights, cols, rows))
            r, c, w = np.asarray(rows)[order], np.asarray(cols)[order], np.asarray(weights)[order]
            first = np.ones(len(r), bool)
            first[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
            matrix = coo_matrix((w[first], (r[first], c[first])), shape=(n, n)).tocsr()
        if not sources:
            return np.zeros((0, len(targets)))
        d = dijkstra(matrix, directed=False, indices=[index[s] for s in sources])
        return d[:, [index[t] for t in targets]] if targets else np.zeros((len(sources), 0))


def _control_points(net: _Net, params: AplsParams, large: bool) -> list[int]:
    nodes = list(net.xy)
    if not large or len(nodes) <= params.max_nodes:
        return nodes
    rng = np.random.default_rng(params.seed)
    return [nodes[i] for i in sorted(rng.choice(len(nodes), params.max_nodes, replace=False))]


def _one_way(native: _Net, control: list[int], prime: _Net, min_len: float) -> tuple[float, int]:
    """APLS of ``native``'s control points snapped onto ``prime``: (score, number of paths scored),
    vectorised over the control-point matrix.
    """
    d_native = native.distances(control, control)
    have = np.array([n in prime.xy for n in control], bool)
    present = [n for n, h in zip(control, have) if h]
    d_prime = np.full(d_native.shape, np.inf)
    d_prime[np.ix_(have, have)] = prime.distances(present, present)
    reach = np.isfinite(d_native)
    # a start that could not be snapped: every path from it is missing, short ones too
    unsnapped = reach[~have].sum() - (~have).sum()  # the start itself is reachable from itself
    keep = reach & (d_native >= min_len) & have[:, None]
    len_gt, len_prop = d_native[keep], d_prime[keep]
    with np.errstate(invalid="ignore"):
        diffs = np.where(np.isfinite(len_prop), np.minimum(1.0, np.abs(len_gt - len_prop) / len_gt), 1.0)
    count = int(unsnapped + keep.sum())
    return (1.0 - float(unsnapped + diffs.sum()) / count, count) if count else (0.0, 0)


def apls(truth: Any, proposal: Any, params: AplsParams | None = None) -> dict[str, Any]:
    """APLS of a proposal road graph against the truth (networkx graphs, metres; see the module
    docstring): ``apls``, ``apls_gt_onto_prop``, ``apls_prop_onto_gt`` and the counts behind them.
    """
    params = params or AplsParams()
    if truth.number_of_nodes() == 0 or proposal.number_of_nodes() == 0:
        both_empty = truth.number_of_nodes() == proposal.number_of_nodes() == 0
        score = 1.0 if both_empty else 0.0
        return {
            "apls": score,
            "apls_gt_onto_prop": score,
            "apls_prop_onto_gt": score,
            "paths_gt": 0,
            "paths_prop": 0,
            "control_points_gt": 0,
            "control_points_prop": 0,
        }
    gt_ids = {n: k for k, n in enumerate(truth.nodes)}
    gt = _Net.from_graph(truth, gt_ids)
    large = truth.number_of_nodes() >= params.large_graph
    gt_cp = gt.copy()
    if not large:
        gt_cp.add_midpoints(params.linestring_delta, params.is_curved_eps)
    # proposal ids above every truth id (midpoints included), so that no control point of one
    # graph collides with a node of the other
    offset = max(gt_cp.xy) + 1
    prop = _Net.from_graph(proposal, {n: offset + k for k, n in enumerate(proposal.nodes)})
    prop_cp = prop.copy()
    if not large:
        prop_cp.add_midpoints(params.linestring_delta, params.is_curved_eps)
    control_gt = _control_points(gt_cp, params, large)
    control_prop = _control_points(prop_cp, params, large)
    prop_prime = prop.copy()
    for n in control_gt:
        prop_prime.insert(gt_cp.xy[n], n, params.max_snap_dist)
    gt_prime = gt.copy()
    for n in control_prop:
        gt_prime.insert(prop_cp.xy[n], n, params.max_snap_dist)
    onto_prop, paths_gt = _one_way(gt_cp, control_gt, prop_prime, params.min_path_length)
    onto_gt, paths_prop = _one_way(prop_cp, control_prop, gt_prime, params.min_path_length)
    total = 0.0 if onto_prop <= 0 or onto_gt <= 0 else 2 * onto_prop * onto_gt / (onto_prop + onto_gt)
    return {
        "apls": total,
        "apls_gt_onto_prop": onto_prop,
        "apls_prop_onto_gt": onto_gt,
        "paths_gt": paths_gt,
        "paths_prop": paths_prop,
        "control_points_gt": len(control_gt),
        "control_points_prop": len(control_prop),
    }
