"""Calibration data: tiles from a folder of tiles or scenes, preprocessed exactly as at inference.

The windows come from the runtime's own scene reading and window iterator, as uint8 RGB, and
the reader converts them with the shared ``model_input`` into the model's input format, so
calibration sees the very tensors the deployed model will see. Sampling is
seeded; unreadable files are reported and skipped; too few usable tiles is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from sam2ms.deps import require
from sam2ms.errors import UsageError
from sam2ms.preprocess import model_input
from sam2ms.radiometry import Radiometry, Stretch
from sam2ms.rasters import find_inputs, open_scene
from sam2ms.runtime.scenes import iter_windows
from sam2ms.runtime.tiling import Grid


def sample_windows(source: str | Path, tile: int, counts: list[int], seed: int = 0,
                   on_skip: Callable[[Path, str], None] = lambda p, m: None,
                   radiometry: Radiometry | None = None) -> list[np.ndarray]:
    """Disjoint seeded samples of uint8 RGB windows (N x T x T x 3), one per entry of
    ``counts`` — e.g. calibration tiles and held-out tiles that never overlap.

    Scenes are cut into non-overlapping windows (the last snapped inward) and converted with
    ``radiometry`` (the model's); windows with no valid pixel are left out."""
    windows: list[tuple[Path, int, int]] = []
    sizes: dict[Path, tuple[int, int]] = {}
    stretches: dict[Path, Stretch] = {}
    for path in find_inputs(source):
        try:
            scene = open_scene(path, radiometry, stretches)
        except UsageError as exc:
            on_skip(path, str(exc))
            continue
        sizes[path] = (scene.height, scene.width)
        grid = Grid(scene.height, scene.width, tile, 0)
        if scene.masked:
            windows += [(path, y, x) for _, y, x, _w, valid in iter_windows(scene, grid) if valid.any()]
        else:
            windows += [(path, y, x) for _, y, x in grid.windows()]
        scene.close()
    need = sum(counts)
    if len(windows) < need:
        raise UsageError(f"{source}: {len(windows)} usable {tile}px tiles, {need} needed for calibration; "
                         "add images or lower --calib-batches")
    order = np.random.default_rng(seed).permutation(len(windows))
    groups, start = [], 0
    for n in counts:
        groups.append(_load([windows[i] for i in order[start:start + n]], sizes, tile, radiometry, stretches))
        start += n
    return groups


def _load(chosen: list[tuple[Path, int, int]], sizes: dict[Path, tuple[int, int]], tile: int,
          radiometry: Radiometry | None, stretches: dict[Path, Stretch]) -> np.ndarray:
    """Read the chosen windows file by file, in a stable order."""
    chosen = sorted(chosen, key=lambda w: (str(w[0]), w[1], w[2]))
    tiles = []
    for path in dict.fromkeys(p for p, _, _ in chosen):
        scene = open_scene(path, radiometry, stretches)
        wanted = {(y, x) for p, y, x in chosen if p == path}
        h, w = sizes[path]
        tiles += [win for _, y, x, win, _valid in iter_windows(scene, Grid(h, w, tile, 0)) if (y, x) in wanted]
        scene.close()
    return np.stack(tiles) if tiles else np.zeros((0, tile, tile, 3), np.uint8)


class TileReader:
    """ONNX Runtime's ``CalibrationDataReader`` protocol: yields ``{"image": batch}`` in the model's
    input format, then None."""

    def __init__(self, tiles: np.ndarray, batch: int, input_format: str, input_name: str = "image",
                 progress: Callable[[int], None] = lambda n: None) -> None:
        require("onnxruntime.quantization", "INT8 calibration")
        tiles = model_input(tiles, input_format)
        self._batches = [tiles[i:i + batch] for i in range(0, len(tiles), batch)]
        self._input, self._progress, self._next = input_name, progress, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self._batches):
            return None
        batch = self._batches[self._next]
        self._next += 1
        self._progress(1)
        return {self._input: batch}

    def rewind(self) -> None:
        self._next = 0

    def __len__(self) -> int:
        return len(self._batches)
