"""Scenes cut into blocks that are inferred and blended independently (one unit of work for a
cluster) and still give the single-process result bit for bit.

A block is a rectangle of a scene's output pixels. Its windows are the scene's own windows (the
whole scene's :class:`~sam2ms.runtime.tiling.Grid`, never a grid of the block) that touch it, so
the block reads the scene around itself as far as those windows reach: a halo of up to one
window, the overlap included. :class:`BlockBlender` blends them with the same weights, in the same
(row-major) order and with the same float32 operations as :class:`~sam2ms.runtime.tiling.Stitcher`
does over the whole scene, so every pixel gets the same sum, added in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tiling import Grid, blend_ramp

DEFAULT_BLOCK = 8192  # pixels: the side of the blocks a scene larger than it is cut into (``--block``)


@dataclass(frozen=True)
class Block:
    """Output pixels [row0, row1) x [col0, col1) of a scene; ``index`` is its row-major number."""

    index: int
    row0: int
    row1: int
    col0: int
    col1: int

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the block."""
        return self.row1 - self.row0, self.col1 - self.col0


def plan_blocks(height: int, width: int, block: int) -> list[Block]:
    """The scene's blocks of ``block`` x ``block`` pixels (smaller at the right and bottom edges),
    row-major; one block when the scene fits.
    """
    if block < 1:
        raise ValueError(f"block {block} must be positive")
    origins = [(r, c) for r in range(0, height, block) for c in range(0, width, block)]
    return [Block(n, r, min(r + block, height), c, min(c + block, width)) for n, (r, c) in enumerate(origins)]


def block_windows(grid: Grid, block: Block) -> list[tuple[int, int, int]]:
    """(window row, y, x) of the scene's windows that touch ``block``, in the scene's row-major order."""
    t = grid.tile
    return [
        (r, y, x)
        for r, y, x in grid.windows()
        if y < block.row1 and y + t > block.row0 and x < block.col1 and x + t > block.col0
    ]


class BlockBlender:
    """The blend of one block from its windows' probability maps (added in row-major order)."""

    def __init__(self, grid: Grid, block: Block, masked: bool = False) -> None:
        self.grid, self.block = grid, block
        ramp = blend_ramp(grid.tile, grid.overlap)
        self._weight = np.outer(ramp, ramp)
        shape = block.shape
        self._acc = np.zeros(shape, np.float32)
        self._wsum = np.zeros(shape, np.float32)
        self._valid = np.zeros(shape, bool) if masked else None

    def add(self, y: int, x: int, prob: np.ndarray, valid: np.ndarray | None = None) -> None:
        """The T x T probability map (and valid mask) of the window at (y, x) of the scene."""
        t, b = self.grid.tile, self.block
        r0, r1 = max(y, b.row0), min(y + t, b.row1)
        c0, c1 = max(x, b.col0), min(x + t, b.col1)
        if r0 >= r1 or c0 >= c1:
            return
        src = (slice(r0 - y, r1 - y), slice(c0 - x, c1 - x))
        dst = (slice(r0 - b.row0, r1 - b.row0), slice(c0 - b.col0, c1 - b.col0))
        self._acc[dst] += (prob * self._weight)[src]
        self._wsum[dst] += self._weight[src]
        if self._valid is not None and valid is not None:
            self._valid[dst] |= valid[src]

    def result(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The block's blended probabilities and its valid mask (None when unmasked)."""
        return self._acc / self._wsum, self._valid
