"""Calibration data: tiles from a folder of tiles or scenes, preprocessed exactly as at inference.

The windows come from the runtime's own scene reading and window iterator, as uint8 RGB, and
the reader converts them with the shared ``model_input`` into the model's input format, so
calibration sees the very tensors the deployed model will see. Sampling is
seeded; unreadable files are reported and skipped; too few usable tiles is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sam2ms.data.layouts import AUTO, LAYOUTS, detect_layout, layout_images, resolve_layout
from sam2ms.deps import require
from sam2ms.errors import UsageError
from sam2ms.geo.radiometry import Radiometry, Stretch
from sam2ms.geo.rasters import find_inputs, open_scene
from sam2ms.preprocess import model_input
from sam2ms.runtime.scenes import iter_windows
from sam2ms.runtime.tiling import Grid

SCENES = "scenes"
#: --layout of calibrate: a dataset layout (its images only), ``auto`` (detected; else scenes), or
#: ``scenes`` (every raster under the folder is an image, but for labels paired with one by name).
CALIB_LAYOUTS = (AUTO, SCENES, *LAYOUTS)
_LABEL_FOLDERS = ("masks", "labels", "gt", "groundtruth")
_LABEL_SUFFIXES = ("_mask", "_masks", "_label", "_labels", "_gt")


@dataclass(frozen=True)
class CalibrationImages:
    """The images calibration samples from, and what was found: the layout and how many label
    files (masks, centre-lines) were left out.
    """

    source: Path
    files: list[Path]
    layout: str
    labels_left_out: int

    def describe(self) -> str:
        """One line for the log: how many images, of which layout, and the labels left out."""
        what = f"{len(self.files)} image(s)" + (f" of a {self.layout} dataset" if self.layout != SCENES else "")
        left = f" (its {self.labels_left_out} label files left out)" if self.labels_left_out else ""
        return f"{what} in {self.source}{left}"

    def as_dict(self) -> dict[str, object]:
        """The record the sidecar keeps of the calibration data (where from, which layout, how many)."""
        return {
            "source": str(self.source),
            "layout": self.layout,
            "images": len(self.files),
            "labels_left_out": self.labels_left_out,
        }


def is_paired_label(path: Path, rasters: set[Path], root: Path) -> bool:
    """A raster that names itself the label of another one among ``rasters``: ``x_mask.png`` (or
    ``_label``, ``_gt``) beside an ``x*`` image, or a file in a ``masks``/``labels``/``gt`` folder
    beside an ``images`` folder (``<split>_labels`` beside ``<split>``). Names alone decide nothing:
    ``internal_mask.tif`` with no ``internal*`` beside it is an image. Only folders under ``root``
    (the folder given) count.
    """
    stem = path.stem.lower()
    for suffix in _LABEL_SUFFIXES:
        prefix = stem[: -len(suffix)] if stem.endswith(suffix) else None
        if prefix and any(
            p.parent == path.parent
            and p != path
            and p.stem.lower().startswith(prefix)
            and not p.stem.lower().endswith(_LABEL_SUFFIXES)
            for p in rasters
        ):
            return True
    for folder in (f for f in (path.parent, *path.parent.parents) if root in f.parents):
        name = folder.name.lower()
        if name in _LABEL_FOLDERS and (folder.parent / "images").is_dir():
            return True
        if name.endswith("_labels") and (folder.parent / folder.name[: -len("_labels")]).is_dir():
            return True
    return False


def calibration_images(source: str | Path, layout: str = AUTO) -> CalibrationImages:
    """The images under ``source`` to calibrate on, never a label: a dataset folder by its layout
    (the trainer's; ``auto`` detects it), else every raster but the labels paired with another by
    name (:func:`is_paired_label`).
    """
    source = Path(source)
    if layout not in CALIB_LAYOUTS:
        raise UsageError(f"--layout {layout}: use one of {', '.join(CALIB_LAYOUTS)}")
    found = None
    if source.is_dir() and layout != SCENES:
        found = resolve_layout(source, layout) if layout != AUTO else detect_layout(source)
    if found is not None:
        files, labels = layout_images(source, found)
        return CalibrationImages(source, files, found, labels)
    rasters = find_inputs(source)
    every = set(rasters)
    files = [p for p in rasters if not is_paired_label(p, every, source)]
    if not files:
        raise UsageError(
            f"{source}: only label files ({len(rasters)}: masks/labels) here; pass the folder of images to calibrate on"
        )
    return CalibrationImages(source, files, SCENES, len(rasters) - len(files))


def sample_windows(
    images: CalibrationImages,
    tile: int,
    counts: list[int],
    seed: int = 0,
    on_skip: Callable[[Path, str], None] = lambda p, m: None,
    radiometry: Radiometry | None = None,
) -> list[np.ndarray]:
    """Disjoint seeded samples of uint8 RGB windows (N x T x T x 3) from ``images``, one per entry of
    ``counts`` — e.g. calibration tiles and held-out tiles that never overlap.

    Scenes are cut into non-overlapping windows (the last snapped inward) and converted with
    ``radiometry`` (the model's); windows with no valid pixel are left out.
    """
    windows: list[tuple[Path, int, int]] = []
    sizes: dict[Path, tuple[int, int]] = {}
    stretches: dict[Path, Stretch] = {}
    for path in images.files:
        try:
            scene = open_scene(path, radiometry, stretches)
        except UsageError as exc:
            on_skip(path, str(exc))
            continue
        sizes[path] = (scene.height, scene.width)
        grid = Grid(scene.height, scene.width, tile, 0)
        if scene.masked:
            windows += [
                (path, y, x) for _, y, x, _w, valid in iter_windows(scene, grid) if valid is not None and valid.any()
            ]
        else:
            windows += [(path, y, x) for _, y, x in grid.windows()]
        scene.close()
    need = sum(counts)
    if len(windows) < need:
        raise UsageError(
            f"{images.source}: {len(windows)} usable {tile}px tiles, {need} needed for calibration "
            f"({images.describe()}); add images or lower --calib-batches"
        )
    order = np.random.default_rng(seed).permutation(len(windows))
    groups, start = [], 0
    for n in counts:
        groups.append(_load([windows[i] for i in order[start : start + n]], sizes, tile, radiometry, stretches))
        start += n
    return groups


def _load(
    chosen: list[tuple[Path, int, int]],
    sizes: dict[Path, tuple[int, int]],
    tile: int,
    radiometry: Radiometry | None,
    stretches: dict[Path, Stretch],
) -> np.ndarray:
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
    input format, then None.
    """

    def __init__(
        self,
        tiles: np.ndarray,
        batch: int,
        input_format: str,
        input_name: str = "image",
        progress: Callable[[int], None] = lambda n: None,
    ) -> None:
        require("onnxruntime.quantization", "INT8 calibration")
        tiles = model_input(tiles, input_format)
        self._batches = [tiles[i : i + batch] for i in range(0, len(tiles), batch)]
        self._input, self._progress, self._next = input_name, progress, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next batch as ONNX Runtime's CalibrationDataReader asks for it ({input: tiles}), or None at the end."""
        if self._next >= len(self._batches):
            return None
        batch = self._batches[self._next]
        self._next += 1
        self._progress(1)
        return {self._input: batch}

    def rewind(self) -> None:
        """Start again from the first batch (ONNX Runtime reads the data once per calibration method)."""
        self._next = 0

    def __len__(self) -> int:
        return len(self._batches)
