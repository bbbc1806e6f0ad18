"""Blocks of a scene blended on their own equal the whole scene's blend, bit for bit."""

import numpy as np
import pytest

from sam2ms.runtime.blocks import BlockBlender, block_windows, plan_blocks
from sam2ms.runtime.tiling import Grid, Stitcher

pytestmark = pytest.mark.core  # runs without torch: make test-core


def _whole(grid: Grid, probs: dict, valids: dict | None) -> tuple[np.ndarray, np.ndarray | None]:
    rows: list[np.ndarray] = []
    masks: list[np.ndarray] = []

    def emit(y0: int, prob: np.ndarray, valid: np.ndarray | None) -> None:
        rows.append(prob.copy())
        if valid is not None:
            masks.append(valid)

    stitcher = Stitcher(grid, emit, masked=valids is not None)
    for r, y, x in grid.windows():
        stitcher.add(r, y, x, probs[y, x], None if valids is None else valids[y, x])
    return np.concatenate(rows), (np.concatenate(masks) if valids is not None else None)


@pytest.mark.parametrize(
    ("height", "width", "tile", "overlap", "block"),
    [
        (700, 900, 128, 16, 256),
        (700, 900, 128, 16, 100),
        (513, 257, 64, 8, 64),
        (90, 50, 64, 8, 32),
        (1000, 300, 256, 32, 4096),
    ],
)
@pytest.mark.parametrize("masked", [False, True])
def test_blocks_equal_the_whole_scene_bit_for_bit(
    height: int, width: int, tile: int, overlap: int, block: int, masked: bool
) -> None:
    rng = np.random.default_rng(height + block)
    grid = Grid(height, width, tile, overlap)
    probs = {(y, x): rng.random((tile, tile), dtype=np.float32) for _, y, x in grid.windows()}
    valids = {(y, x): rng.random((tile, tile)) > 0.1 for _, y, x in grid.windows()} if masked else None
    whole, whole_valid = _whole(grid, probs, valids)
    assert whole.shape == (height, width)
    blocks = plan_blocks(height, width, block)
    assert [b.index for b in blocks] == list(range(len(blocks)))
    covered = np.zeros((height, width), int)
    for b in blocks:
        blender = BlockBlender(grid, b, masked=masked)
        windows = block_windows(grid, b)
        assert windows == sorted(windows)  # the scene's row-major order
        for _, y, x in windows:
            blender.add(y, x, probs[y, x], None if valids is None else valids[y, x])
        prob, valid = blender.result()
        assert np.array_equal(prob, whole[b.row0 : b.row1, b.col0 : b.col1])
        if masked:
            assert valid is not None and whole_valid is not None
            assert np.array_equal(valid, whole_valid[b.row0 : b.row1, b.col0 : b.col1])
        covered[b.row0 : b.row1, b.col0 : b.col1] += 1
    assert (covered == 1).all()


def test_a_block_reads_only_the_windows_that_touch_it() -> None:
    grid = Grid(1000, 1000, 128, 16)  # stride 112
    (b,) = [b for b in plan_blocks(1000, 1000, 250) if b.index == 5]  # rows 250-500, cols 250-500
    ys = sorted({y for _, y, _ in block_windows(grid, b)})
    assert ys[0] + 128 > 250 and ys[-1] < 500 and all(y + 128 > 250 and y < 500 for y in ys)
    assert len(block_windows(grid, b)) < len(grid) / 4
