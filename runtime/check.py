"""``--check-against CKPT``: the deployed model against the PyTorch reference on the same tiles.

Both run the very same uint8 windows of the inputs (each converted to its model's input format);
the report gives the parity figures
(max/mean |Δp|, mask IoU), the engine's F1 and mIoU with the reference's masks as labels, and the
seconds per tile of each. It fails (exit 3) below the criteria of the model's precision: the
export's parity thresholds for FP32/FP16/BF16, the calibration's INT8 targets for INT8.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from sam2ms.accuracy import Verdict, judge
from sam2ms.geo.inputs import resolve_inputs
from sam2ms.geo.radiometry import Radiometry
from sam2ms.geo.rasters import open_scene
from sam2ms.metrics import RoadMetrics, sigmoid
from sam2ms.preprocess import model_input

from .backends import Backend
from .scenes import iter_windows
from .tiling import Grid


def sample_tiles(
    source: str | Path,
    tile: int,
    overlap: int,
    limit: int,
    radiometry: Radiometry | None = None,
    stac_asset: str | None = None,
    max_pixels: int | None = None,
) -> np.ndarray:
    """Up to ``limit`` uint8 RGB windows (N x T x T x 3) with valid pixels, converted as the run
    converts them, in input and window order.
    """
    tiles: list[np.ndarray] = []
    for inp in resolve_inputs(source, stac_asset):
        try:
            scene = open_scene(inp.path, radiometry, max_pixels=max_pixels)
        except Exception:  # noqa: BLE001 - bad inputs are reported by the main run
            continue
        for _, _, _, window, valid in iter_windows(scene, Grid(scene.height, scene.width, tile, overlap)):
            if valid is not None and not valid.any():
                continue
            tiles.append(window)
            if len(tiles) >= limit:
                break
        scene.close()
        if len(tiles) >= limit:
            break
    return np.stack(tiles) if tiles else np.zeros((0, tile, tile, 3), np.uint8)


def _probabilities(backend: Backend, windows: np.ndarray, batch: int) -> tuple[np.ndarray, float]:
    lane = backend.lanes(1)[0]
    tiles = model_input(windows, backend.info.input_format)
    for size in {min(batch, len(tiles)), len(tiles) % batch} - {0}:
        lane.infer(tiles[:size])  # warm-up of every batch shape timed below (kernels compiled, caches filled)
    t0 = time.perf_counter()
    out = [lane.infer(tiles[i : i + batch]) for i in range(0, len(tiles), batch)]
    seconds = (time.perf_counter() - t0) / max(len(tiles), 1)
    return sigmoid(np.concatenate(out)[:, 0]), seconds


def check_against(
    engine: Backend,
    reference: Backend,
    source: str | Path,
    *,
    overlap: int,
    batch: int,
    limit: int = 8,
    radiometry: Radiometry | None = None,
    stac_asset: str | None = None,
    max_pixels: int | None = None,
) -> Verdict:
    """Compare ``engine`` with the PyTorch ``reference`` (a checkpoint opened before the run, so that a
    bad one fails before any output is written) on up to ``limit`` input windows.
    """
    tile = engine.info.tile
    tiles = sample_tiles(source, tile, overlap, limit, radiometry, stac_asset, max_pixels)
    if not len(tiles):
        return Verdict(False, ("no readable input tiles to compare on",), {"tiles": 0})
    ref, ref_s = _probabilities(reference, tiles, batch)
    got, got_s = _probabilities(engine, tiles, min(batch, engine.info.max_batch or batch))
    acc = RoadMetrics()
    acc.update_batch(got, ref >= 0.5)
    m = acc.compute()
    from sam2ms.roads.score import tile_scores

    return judge(engine.info.precision, ref, got).noted(
        reference="pytorch-fp32",
        f1=m["f1"],
        miou=m["miou"],
        **tile_scores(ref, got),
        checkpoint=reference.info.path,
        precision=engine.info.precision,
        seconds_per_tile={"engine": got_s, "pytorch": ref_s},
        speedup_vs_pytorch=ref_s / got_s if got_s else None,
    )
