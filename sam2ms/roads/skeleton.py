"""Tracing a one-pixel skeleton into pixel chains between its ends and junctions.

Skeleton pixels of degree other than 2 (ends and junctions) are nodes; every chain of degree-2
pixels between two nodes becomes one chain (closed loops too), so that every skeleton pixel is
covered once. :mod:`sam2ms.roads.extract` turns the chains into a road graph.
"""

from __future__ import annotations

import numpy as np

_OFFSETS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def _neighbours(sk: np.ndarray, r: int, c: int) -> list[tuple[int, int]]:
    h, w = sk.shape
    return [(r + dr, c + dc) for dr, dc in _OFFSETS if 0 <= r + dr < h and 0 <= c + dc < w and sk[r + dr, c + dc]]


def trace_skeleton(skeleton: np.ndarray) -> list[np.ndarray]:
    """Polylines ((row, col) arrays) covering every skeleton pixel once, split at ends/junctions."""
    sk = skeleton.astype(bool)
    pixels = list(zip(*np.nonzero(sk)))
    degree = {p: len(_neighbours(sk, *p)) for p in pixels}
    is_node = {p: d != 2 for p, d in degree.items()}
    used: set[tuple[int, int]] = set()
    done_edges: set[frozenset] = set()
    lines: list[np.ndarray] = []

    def walk(start: tuple[int, int], first: tuple[int, int]) -> list[tuple[int, int]]:
        """Follow degree-2 pixels from ``first`` until a node (or back to ``start``: a loop)."""
        path, prev, cur = [start, first], start, first
        while not is_node[cur]:
            used.add(cur)
            options = [q for q in _neighbours(sk, *cur) if q != prev and q not in used]
            if not options:
                if start in _neighbours(sk, *cur) and len(path) > 2:
                    path.append(start)  # closes a loop
                break
            prev, cur = cur, options[0]
            path.append(cur)
        return path

    for node in (p for p in pixels if is_node[p]):
        for nb in _neighbours(sk, *node):
            if is_node[nb]:
                edge = frozenset((node, nb))
                if edge not in done_edges:
                    done_edges.add(edge)
                    lines.append(np.array([node, nb]))
            elif nb not in used:
                lines.append(np.array(walk(node, nb)))
        if degree[node] == 0:
            lines.append(np.array([node]))
    for p in pixels:  # closed loops have no node at all
        if not is_node[p] and p not in used:
            nb = _neighbours(sk, *p)[0]
            used.add(p)
            lines.append(np.array([p, *walk(p, nb)[1:]]))
    return lines
