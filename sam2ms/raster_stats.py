"""``sam2ms stats``: per-band statistics of a dataset, so that every scene is stretched alike.

A per-scene percentile stretch makes each scene's own contrast; across a mosaic or a time series
that shows as seams and as a model that sees different brightness for the same road. Statistics
over the whole dataset (the raster-vision habit) fix one LOW/HIGH per band for all scenes. Each
scene contributes a decimated read (never the whole scene), subsampled so that the pooled sample
stays bounded however many scenes there are.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import typer

from .console import JSON_HELP, emit
from .errors import UsageError
from .fileio import write_json
from .geo.radiometry import DEFAULT_PERCENTILES, STATS_FORMAT, Radiometry, parse_bands, parse_pair, valid_values
from .geo.raster_options import BANDS
from .geo.rasters import find_inputs, open_raster
from .progress import progress_bar

SCENE_SIDE = 512  # decimated read per scene
MAX_SAMPLES = 4_000_000  # pooled values per band at most


def dataset_stats(
    paths: list[Path],
    bands: tuple[int, ...] | None,
    percentiles: tuple[float, float],
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """The stats document for ``paths`` (see the module docstring)."""
    chooser = Radiometry(bands=bands).validate()
    per_file = max(1, math.ceil(MAX_SAMPLES / len(paths)))
    rng = np.random.default_rng(seed)
    pooled: list[np.ndarray] = []
    chosen: tuple[int, ...] | None = None
    dtypes: set[str] = set()
    empty: list[str] = []
    with progress_bar("stats", len(paths), progress) as bar:
        for path in paths:
            raster = open_raster(path)
            try:
                these = chooser.choose_bands(path, raster.count, raster.colorinterp)
                if chosen is not None and these != chosen:
                    raise UsageError(f"{path}: its default bands are {these}, others' {chosen}; pass --bands")
                chosen = these
                dtypes.add(raster.dtype)
                values = valid_values(*raster.sample(these, SCENE_SIDE))
            finally:
                raster.close()
            if values.shape[1] == 0:
                empty.append(str(path))
            elif values.shape[1] > per_file:
                values = values[:, rng.choice(values.shape[1], per_file, replace=False)]
            pooled.append(values)
            bar.advance()
    data = np.concatenate(pooled, axis=1)
    if data.shape[1] == 0:
        raise UsageError("no valid pixels in any scene (all nodata); check the nodata values or masks")
    low, high = np.percentile(data, percentiles, axis=1)
    return {
        "format": STATS_FORMAT,
        "version": 1,
        "bands": list(chosen or ()),
        "percentiles": list(percentiles),
        "low": low.tolist(),
        "high": high.tolist(),
        "min": data.min(axis=1).tolist(),
        "max": data.max(axis=1).tolist(),
        "mean": data.mean(axis=1).tolist(),
        "std": data.std(axis=1).tolist(),
        "dtypes": sorted(dtypes),
        "files": len(paths),
        "files_without_valid_pixels": empty,
        "pixels_sampled": int(data.shape[1]),
    }


def stats_command(
    data: Path = typer.Argument(..., metavar="DATA", help="A scene, a folder of scenes, or a dataset (with --layout)."),
    output: Path = typer.Option(..., "-o", "--output", help="The stats file to write (JSON)."),
    layout: str | None = typer.Option(
        None, help="Read DATA as a dataset layout (deepglobe | spacenet | massachusetts | folder): its images."
    ),
    bands: str | None = BANDS,
    percentiles: str | None = typer.Option(
        None, "--percentiles", help="LOW,HIGH percentiles of every band over the dataset (default 2,98)."
    ),
    seed: int = typer.Option(0, min=0, help="Seed of the subsampling."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Per-band statistics of a dataset for --stats (train, eval, infer): every scene stretched alike."""
    if layout is not None:
        from .data.layouts import discover

        paths = list(dict.fromkeys(s.image for source in discover(data, layout) for s in source))
    else:
        paths = find_inputs(data)
    q = parse_pair(percentiles, "--percentiles", ",") if percentiles else DEFAULT_PERCENTILES
    Radiometry(percentiles=q).validate()
    doc = dataset_stats(paths, parse_bands(bands) if bands else None, q, seed, progress=not quiet)
    write_json(output, doc)
    emit(
        {"output": str(output), **doc},
        as_json,
        [
            ("output", str(output)),
            ("files", str(doc["files"])),
            ("bands", ",".join(map(str, doc["bands"]))),
            ("low", ", ".join(f"{v:g}" for v in doc["low"])),
            ("high", ", ".join(f"{v:g}" for v in doc["high"])),
        ],
    )
