"""Tracing a one-pixel skeleton into pixel chains between its ends and junctions.

Skeleton pixels of degree other than 2 (ends and junctions) are nodes; every chain of degree-2
pixels between two nodes becomes one chain (closed loops too), so that every skeleton pixel is
covered once. :mod:`sam2ms.roads.extract` turns the chains into a road graph.

The 8-neighbourhoods are found for all pixels at once with numpy; the walk itself runs over plain
Python lists of pixel numbers (a skeleton of a few hundred thousand pixels takes about a second).
"""

from __future__ import annotations

import numpy as np

_OFFSETS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def _neighbour_lists(skeleton: np.ndarray) -> tuple[np.ndarray, list[list[int]]]:
    """The skeleton's pixels ((row, col), row-major order) and, for each, the numbers of its
    8-neighbours in ``_OFFSETS`` order.
    """
    sk = np.pad(skeleton.astype(bool), 1)
    width = sk.shape[1]
    flat = np.flatnonzero(sk)
    candidates = flat[:, None] + np.array([dr * width + dc for dr, dc in _OFFSETS])[None, :]
    present = sk.ravel()[candidates]
    numbers = np.where(present, np.searchsorted(flat, candidates), -1)
    rows, cols = np.divmod(flat, width)
    return np.stack([rows - 1, cols - 1], axis=1), [[j for j in row if j >= 0] for row in numbers.tolist()]


def trace_skeleton(skeleton: np.ndarray) -> list[np.ndarray]:
    """Polylines ((row, col) arrays) covering every skeleton pixel once, split at ends/junctions."""
    pixels, neighbours = _neighbour_lists(skeleton)
    is_node = [len(nb) != 2 for nb in neighbours]
    used: set[int] = set()
    done_edges: set[tuple[int, int]] = set()
    chains: list[list[int]] = []

    def walk(start: int, first: int) -> list[int]:
        """Follow degree-2 pixels from ``first`` until a node (or back to ``start``: a loop)."""
        path, prev, cur = [start, first], start, first
        while not is_node[cur]:
            used.add(cur)
            options = [q for q in neighbours[cur] if q != prev and q not in used]
            if not options:
                if start in neighbours[cur] and len(path) > 2:
                    path.append(start)  # closes a loop
                break
            prev, cur = cur, options[0]
            path.append(cur)
        return path

    for node in (p for p in range(len(pixels)) if is_node[p]):
        for nb in neighbours[node]:
            if is_node[nb]:
                edge = (min(node, nb), max(node, nb))
                if edge not in done_edges:
                    done_edges.add(edge)
                    chains.append([node, nb])
            elif nb not in used:
                chains.append(walk(node, nb))
        if not neighbours[node]:
            chains.append([node])
    for p in range(len(pixels)):  # closed loops have no node at all
        if not is_node[p] and p not in used:
            used.add(p)
            chains.append([p, *walk(p, neighbours[p][0])[1:]])
    return [pixels[chain] for chain in chains]
