"""Seeded synthetic road networks with known geometry, for tests, benchmarks and reference checks
(the graph counterpart of :mod:`sam2ms.data.synth`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from sam2ms.data.synth import Road

from .lines import clip_to_box, lines_to_graph, split_at_crossings


def street_grid(
    n: int,
    step: float,
    shift: tuple[float, float] = (0.0, 0.0),
    drop: Iterable[tuple[int, int]] = (),
    wiggle: float = 0.0,
    seed: int = 0,
) -> Any:
    """An n x n street grid ``step`` metres apart, moved by ``shift``, without the edges in ``drop``
    (pairs of node numbers ``i * n + j``); ``wiggle`` bends each street into a 6-vertex polyline
    by up to that many metres (seeded).
    """
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
    return lines_to_graph(streets)


def scene_graph(roads: list[Road], height: int, width: int) -> Any:
    """The ground-truth graph of a synthetic scene: its roads' centre-lines, clipped to the scene,
    in the pixel-centre frame of :func:`sam2ms.roads.extract.mask_to_graph` (x = column + 0.5),
    one pixel = one metre. Roads join where they cross or branch, as drawn.
    """
    lines = [part for road in roads for part in clip_to_box(np.asarray(road.points, float) + 0.5, width, height)]
    return lines_to_graph(split_at_crossings(lines))


def synthetic_scene_case(size: int = 1024, seed: int = 1) -> tuple[Any, Any]:
    """A synthetic scene's drawn centre-lines (truth) against the graph extracted from its label
    mask (proposal): what extraction gains and loses, as a reference case.
    """
    from sam2ms.data.synth import render_scene

    from .extract import mask_to_graph

    scene = render_scene(size, size, np.random.default_rng(seed), style="centerline", scale=1.0)
    return scene_graph(scene.roads, size, size), mask_to_graph(scene.label)


def apls_reference_cases() -> dict[str, tuple[Any, Any]]:
    """(truth, proposal) graphs on which APLS is checked against CosmiQ's reference
    (tests/roads/test_apls.py holds the reference's scores, benchmarks/apls_check.py runs it).
    """
    truth = street_grid(4, 120)
    return {
        "identical": (truth, street_grid(4, 120)),
        "removed_edge": (truth, street_grid(4, 120, drop={(5, 6)})),
        "shifted_1.5m": (truth, street_grid(4, 120, shift=(1.5, 1.0))),
        "shifted_6m": (truth, street_grid(4, 120, shift=(6.0, 0.0))),
        "gap_halves": (
            lines_to_graph([[[0, 0], [400, 0]]]),
            lines_to_graph([[[0, 0], [185, 0]], [[215, 0], [400, 0]]]),
        ),
        "curved_vs_straight": (street_grid(4, 150, wiggle=8.0, seed=1), street_grid(4, 150)),
    }
