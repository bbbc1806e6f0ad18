"""Tiling geometry and blending: exact for per-pixel models, seamless, bounded, padded."""

import itertools

import numpy as np
import pytest

from sam2ms.runtime.tiling import Grid, Stitcher, blend_ramp, pad_to_tile, window_origins

pytestmark = pytest.mark.core  # runs without torch: make test-core


def test_window_origins_snap_inward() -> None:
    assert window_origins(1024, 1024, 128) == [0]
    assert window_origins(2000, 1024, 128) == [0, 896, 976]
    assert window_origins(100, 256, 32) == [0]  # smaller than a tile: one padded window
    for length in (300, 513, 1000):
        o = window_origins(length, 256, 64)
        assert o[0] == 0 and o[-1] == length - 256
        assert all(b - a <= 256 - 64 for a, b in itertools.pairwise(o))  # overlap at least O everywhere
    with pytest.raises(ValueError):
        window_origins(500, 256, 256)


def test_blend_ramp_positive_and_cross_fading() -> None:
    w = blend_ramp(64, 16)
    assert (w > 0).all() and w[16:48].min() == 1.0
    # two windows overlapping by exactly O: their ramps sum to 1 over the overlap
    assert np.allclose(w[-16:] + w[:16], 1.0, atol=1e-6)


def _stitch(scene: np.ndarray, tile: int, overlap: int, model) -> np.ndarray:
    """Run the tiling path with a numpy 'model' on an H x W float scene."""
    grid = Grid(scene.shape[0], scene.shape[1], tile, overlap)
    padded = pad_to_tile(scene, tile)
    out = np.full(scene.shape, np.nan, np.float32)
    emitted = []

    def emit(y0: int, rows: np.ndarray, valid: np.ndarray | None) -> None:
        assert np.isnan(out[y0 : y0 + len(rows)]).all(), "row emitted twice"
        out[y0 : y0 + len(rows)] = rows
        emitted.append(y0)

    st = Stitcher(grid, emit)
    windows = grid.windows()
    rng = np.random.default_rng(0)
    order = list(range(len(windows)))
    # Out-of-order completion inside a small in-flight window, as with several streams.
    for start in range(0, len(order), 3):
        chunk = order[start : start + 3]
        rng.shuffle(chunk)
        for i in chunk:
            r, y, x = windows[i]
            st.add(r, y, x, model(padded[y : y + tile, x : x + tile]))
    assert st.done and emitted == sorted(emitted)
    return out


@pytest.mark.parametrize("shape", [(300, 410), (256, 256), (100, 70), (1, 300), (257, 1000)])
def test_per_pixel_model_is_reproduced_exactly(shape: tuple[int, int]) -> None:
    scene = np.random.default_rng(1).random(shape).astype(np.float32)
    model = lambda t: 1 / (1 + np.exp(-(3 * t - 1)))  # noqa: E731 - a pure per-pixel function
    out = _stitch(scene, 256, 64, model)
    assert np.allclose(out, model(scene), atol=1e-6)


def test_blending_hides_seams() -> None:
    # A model with a per-window bias (like edge effects of a real network): hard stitching
    # would show steps of 0.2 at window borders; cross-fading spreads them over the overlap.
    calls = iter(np.linspace(0.0, 0.2, 100))
    out = _stitch(np.zeros((64, 400), np.float32), 64, 32, lambda t: t + next(calls))
    assert np.abs(np.diff(out, axis=1)).max() < 0.2 / 8


def test_stitcher_memory_is_bounded_by_rows() -> None:
    grid = Grid(2048, 512, 256, 32)
    held = []
    st = Stitcher(grid, lambda y0, rows, valid: None)
    for r, y, x in grid.windows():
        st.add(r, y, x, np.zeros((256, 256), np.float32))
        held.append(st.held_rows)
    assert max(held) <= 2 * 256  # never the whole 2048-row scene


def test_pad_to_tile_reflects() -> None:
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    p = pad_to_tile(img, 6)
    assert p.shape == (6, 6) and (p[:3, :4] == img).all()
    assert p[3, 0] == img[1, 0]  # reflect, not repeat
