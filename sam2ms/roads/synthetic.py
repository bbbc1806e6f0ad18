"""Seeded synthetic road networks with known geometry, for tests, benchmarks and reference checks
(the graph counterpart of :mod:`sam2ms.data.synth`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


def polyline_graph(polylines: Iterable[Any]) -> Any:
    """A networkx MultiGraph of polylines (metres) joined where their end points coincide."""
    import networkx as nx

    g = nx.MultiGraph()
    ids: dict[tuple[float, float], int] = {}
    for coords in polylines:
        geom = np.asarray(coords, float)
        ends = []
        for x, y in (geom[0], geom[-1]):
            key = (float(x), float(y))
            if key not in ids:
                ids[key] = len(ids)
                g.add_node(ids[key], x=key[0], y=key[1])
            ends.append(ids[key])
        g.add_edge(*ends, geometry=geom, length=float(np.hypot(*np.diff(geom, axis=0).T).sum()))
    return g


def street_grid(n: int, step: float, shift: tuple[float, float] = (0.0, 0.0),
                drop: Iterable[tuple[int, int]] = (), wiggle: float = 0.0, seed: int = 0) -> Any:
    """An n x n street grid ``step`` metres apart, moved by ``shift``, without the edges in ``drop``
    (pairs of node numbers ``i * n + j``); ``wiggle`` bends each street into a 6-vertex polyline
    by up to that many metres (seeded)."""
    rng = np.random.default_rng(seed)
    dropped = set(drop)
    xy = {i * n + j: np.array([j * step + shift[0], i * step + shift[1]]) for i in range(n) for j in range(n)}
    streets = []
    for i in range(n):
        for j in range(n):
            for di, dj in ((0, 1), (1, 0)):
                if i + di >= n or j + dj >= n or (i * n + j, (i + di) * n + j + dj) in dropped:
                    continue
                a, b = xy[i * n + j], xy[(i + di) * n + j + dj]
                line = a + np.linspace(0, 1, 6)[:, None] * (b - a)
                if wiggle:
                    normal = np.array([a[1] - b[1], b[0] - a[0]]) / np.hypot(*(b - a))
                    line[1:-1] += normal * rng.uniform(-wiggle, wiggle, (4, 1))
                streets.append(line)
    return polyline_graph(streets)
