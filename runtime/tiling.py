"""Window geometry and seamless blending for scenes larger (or smaller) than the model's tile.

A scene is covered by overlapping T x T windows (stride T - O) whose last row and column are
snapped inward to end at the scene's edge; a scene smaller than T in either direction is
reflect-padded to T and cropped back. Window predictions are blended with a separable weight
that is 1 in the window's interior and rises as a cosine (half-Hann) ramp over the overlap, so
neighbouring windows cross-fade and no seam shows. Every weight is positive and the blend is
normalised by the summed weights, which makes the geometry exact: for a model whose output is a
per-pixel function of its input, the stitched scene equals that function applied to the scene.

:class:`Stitcher` accumulates window results row by row and hands back finished pixel rows as
soon as no later window can touch them, so a scene never needs a full-size float accumulator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


def window_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets along one axis: stride ``tile - overlap``, the last snapped to ``length - tile``."""
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap {overlap} must be in [0, tile={tile})")
    if length <= tile:
        return [0]
    stride = tile - overlap
    origins = list(range(0, length - tile, stride))
    origins.append(length - tile)
    return origins


def blend_ramp(tile: int, overlap: int) -> np.ndarray:
    """1-D weight: 1 inside, a positive cosine ramp over ``overlap`` pixels at both ends."""
    w = np.ones(tile, dtype=np.float32)
    if overlap:
        t = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        ramp = np.sin(0.5 * np.pi * t) ** 2
        w[:overlap] = ramp
        w[tile - overlap :] = np.minimum(w[tile - overlap :], ramp[::-1])
    return w


@dataclass(frozen=True)
class Grid:
    """The windows of one scene: padded size and window origins (row-major)."""

    height: int
    width: int
    tile: int
    overlap: int
    ys: tuple[int, ...] = field(init=False)
    xs: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ys", tuple(window_origins(self.padded_height, self.tile, self.overlap)))
        object.__setattr__(self, "xs", tuple(window_origins(self.padded_width, self.tile, self.overlap)))

    @property
    def padded_height(self) -> int:
        """The height windows cover: a scene smaller than a tile is padded up to one."""
        return max(self.height, self.tile)

    @property
    def padded_width(self) -> int:
        """The width windows cover: a scene smaller than a tile is padded up to one."""
        return max(self.width, self.tile)

    @property
    def needs_padding(self) -> bool:
        """Whether the scene is smaller than a tile on a side (its windows read past the edge)."""
        return self.height < self.tile or self.width < self.tile

    def windows(self) -> list[tuple[int, int, int]]:
        """(row index, y, x) for every window, row by row."""
        return [(r, y, x) for r, y in enumerate(self.ys) for x in self.xs]

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)


def pad_to_tile(image: np.ndarray, tile: int) -> np.ndarray:
    """Reflect-pad an H x W (x C) array at the bottom/right to at least tile x tile."""
    ph, pw = max(0, tile - image.shape[0]), max(0, tile - image.shape[1])
    if not (ph or pw):
        return image
    pad = [(0, ph), (0, pw)] + [(0, 0)] * (image.ndim - 2)
    # 'reflect' needs more than one pixel; 'symmetric' covers one-pixel-wide scenes too.
    if min(image.shape[:2]) > 1:
        return np.pad(image, pad, mode="reflect")
    return np.pad(image, pad, mode="symmetric")


class Stitcher:
    """Blend window probabilities into a scene, emitting finished rows in order.

    ``emit(y0, rows, valid)`` receives float32 probability rows ``[y0, y0 + len(rows))`` of the
    original (unpadded) scene, each row exactly once, top to bottom, with their valid mask when
    ``masked`` (the union of the windows' masks; every window covering a pixel agrees on it),
    else None.
    """

    def __init__(
        self, grid: Grid, emit: Callable[[int, np.ndarray, np.ndarray | None], None], masked: bool = False
    ) -> None:
        self.grid = grid
        self.emit = emit
        ramp = blend_ramp(grid.tile, grid.overlap)
        self._weight = np.outer(ramp, ramp)
        self._left = [len(grid.xs)] * len(grid.ys)  # windows still missing per window row
        self._next_row = 0  # first window row not yet finished in order
        self._base = 0  # first pixel row held in the buffers
        width = grid.padded_width
        self._acc = np.zeros((0, width), np.float32)
        self._wsum = np.zeros((0, width), np.float32)
        self._valid = np.zeros((0, width), bool) if masked else None

    @property
    def done(self) -> bool:
        """Whether every window row has been blended and handed out."""
        return self._next_row == len(self.grid.ys)

    @property
    def held_rows(self) -> int:
        """Pixel rows buffered now: bounded by about two window rows, whatever the scene's height."""
        return self._acc.shape[0]

    def _ensure(self, end: int) -> None:
        held = self._base + self._acc.shape[0]
        if end > held:
            extra = np.zeros((end - held, self._acc.shape[1]), np.float32)
            self._acc = np.concatenate([self._acc, extra])
            self._wsum = np.concatenate([self._wsum, extra.copy()])
            if self._valid is not None:
                self._valid = np.concatenate([self._valid, np.zeros(extra.shape, bool)])

    def add(self, row: int, y: int, x: int, prob: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Add the T x T probability map (and valid mask) of the window at (y, x), in window row ``row``."""
        t = self.grid.tile
        self._ensure(y + t)
        r0 = y - self._base
        self._acc[r0 : r0 + t, x : x + t] += prob * self._weight
        self._wsum[r0 : r0 + t, x : x + t] += self._weight
        if self._valid is not None and valid is not None:
            self._valid[r0 : r0 + t, x : x + t] |= valid
        self._left[row] -= 1
        while not self.done and self._left[self._next_row] == 0:
            self._next_row += 1
            self._flush()

    def _flush(self) -> None:
        g = self.grid
        # Rows above the next window row's origin can no longer change.
        stop = g.ys[self._next_row] if not self.done else g.padded_height
        stop = min(stop, g.height)
        if stop > self._base:
            n = stop - self._base
            rows = self._acc[:n, : g.width] / self._wsum[:n, : g.width]
            valid = self._valid[:n, : g.width] if self._valid is not None else None
            self.emit(self._base, rows, valid)
            self._acc, self._wsum = self._acc[n:], self._wsum[n:]
            if self._valid is not None:
                self._valid = self._valid[n:]
            self._base = stop
