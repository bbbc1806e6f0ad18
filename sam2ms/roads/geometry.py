"""Polyline operations on N x 2 numpy arrays: the few that road graphs need (length, nearest
point, interpolation, cutting), with shapely's semantics for simple lines, so that the APLS port
can follow CosmiQ's reference step by step without shapely.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def length(line: np.ndarray) -> float:
    """The length of a polyline (K x 2 points), in its coordinates' units."""
    return float(np.hypot(*np.diff(line, axis=0).T).sum())


def cumulative(line: np.ndarray) -> np.ndarray:
    """Distance along the line at each vertex."""
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(line, axis=0).T))])


def nearest(line: np.ndarray, point: np.ndarray) -> tuple[float, float]:
    """(distance from ``point`` to the line, distance along the line of the nearest point); the
    first segment wins a tie, as in shapely's ``project``.
    """
    a, b = line[:-1], line[1:]
    ab = b - a
    denom = (ab**2).sum(axis=1)
    t = np.where(denom > 0, ((point - a) * ab).sum(axis=1) / np.where(denom > 0, denom, 1), 0.0)
    t = np.clip(t, 0.0, 1.0)
    foot = a + t[:, None] * ab
    dist = np.hypot(*(point - foot).T)
    i = int(np.argmin(dist))
    return float(dist[i]), float(cumulative(line)[i] + t[i] * np.sqrt(denom[i]))


def interpolate(line: np.ndarray, d: float) -> np.ndarray:
    """The point ``d`` along the line (clamped to its ends)."""
    cum = cumulative(line)
    d = min(max(d, 0.0), cum[-1])
    i = int(np.clip(np.searchsorted(cum, d, side="right") - 1, 0, len(line) - 2))
    seg = cum[i + 1] - cum[i]
    t = (d - cum[i]) / seg if seg > 0 else 0.0
    return np.asarray(line[i] + t * (line[i + 1] - line[i]))


def points_along(line: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """:func:`interpolate` at many distances at once (N x 2)."""
    cum = cumulative(line)
    d = np.clip(distances, 0.0, cum[-1])
    return np.stack([np.interp(d, cum, line[:, 0]), np.interp(d, cum, line[:, 1])], axis=1)


def cut(line: np.ndarray, d: float) -> list[np.ndarray]:
    """The line cut ``d`` along it: two lines, or the line itself when ``d`` is at or beyond an
    end (the reference's ``cut_linestring``).
    """
    cum = cumulative(line)
    if d <= 0.0 or d >= cum[-1]:
        return [line]
    for i, pd in enumerate(cum):
        if pd == d:
            return [line[: i + 1], line[i:]]
        if pd > d:
            cp = interpolate(line, d)[None]
            return [np.concatenate([line[:i], cp]), np.concatenate([cp, line[i:]])]
    raise AssertionError("unreachable: d < length")


def apply_affine(transform: Any, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``transform`` (an ``affine.Affine``) applied to coordinate arrays, written out: ``*`` on
    tuples is deprecated in affine 3 and ``@`` is missing from older releases.
    """
    a, b, c, d, e, f = tuple(transform)[:6]
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    return a * xs + b * ys + c, d * xs + e * ys + f
