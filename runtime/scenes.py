"""Cutting scenes into windows and writing their masks.

Windows come from :class:`sam2ms.geo.rasters.Scene` (uint8 RGB + valid mask, one conversion for
every stage). Outputs are written as their rows arrive, to staged files renamed into place when
the scene is complete: PNG masks compressed row block by row block (:mod:`sam2ms.png_writer`, the
bytes Pillow writes), GeoTIFF outputs as Cloud-Optimized GeoTIFFs written block row by block row
(:mod:`.geotiff`), keeping the input's CRS and transform and masking its nodata area, so a
20 000 x 20 000 scene runs in bounded memory. Only a road graph of a PNG run holds its mask whole.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sam2ms.geo.rasters import Scene
from sam2ms.memory import check_pixels
from sam2ms.png_writer import PngRowWriter

from .geotiff import CogWriter
from .tiling import Grid, pad_to_tile

FORMATS = ("png", "tif")  # the masks; --format geojson|graphml is short for png + --graph
GRAPH_FORMATS = ("geojson", "graphml")


def iter_windows(
    scene: Scene, grid: Grid, only: set[tuple[int, int]] | None = None
) -> Iterator[tuple[int, int, int, np.ndarray, np.ndarray | None]]:
    """(window row, y, x, uint8 T x T x 3 window, T x T valid mask or None) in row-major order,
    only the windows at the (y, x) in ``only`` when given (a block's); a scene smaller than a tile
    is read once and reflect-padded.
    """
    t = grid.tile
    windows = [w for w in grid.windows() if only is None or (w[1], w[2]) in only]
    if grid.needs_padding:
        image, valid = scene.read(0, 0, scene.height, scene.width)
        image = pad_to_tile(image, t)
        valid = pad_to_tile(valid, t) if valid is not None else None
        for row, y, x in windows:
            yield row, y, x, image[y : y + t, x : x + t], None if valid is None else valid[y : y + t, x : x + t]
        return
    for row, y, x in windows:
        yield row, y, x, *scene.read(y, x, t, t)


def encode_rows(
    prob: np.ndarray, valid: np.ndarray | None, threshold: float, probabilities: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Probability rows as written: the 0/255 mask and, when asked, uint8 probabilities, both 0
    outside ``valid`` (per pixel, so blocks encoded apart equal the scene encoded at once).
    """
    mask = (prob >= threshold).astype(np.uint8) * 255
    prob8 = np.clip(np.rint(prob * 255), 0, 255).astype(np.uint8) if probabilities else None
    if valid is not None:
        mask[~valid] = 0
        if prob8 is not None:
            prob8[~valid] = 0
    return mask, prob8


class MaskWriter:
    """Receives finished probability rows of one scene and writes its outputs atomically.

    ``png``: binary mask (0/255) and, with ``probabilities``, ``*.prob.png`` (uint8 0-255).
    ``tif``: the same as Cloud-Optimized GeoTIFFs with the input's CRS and transform.
    ``graph`` (``geojson`` / ``graphml``): also the road graph of the stitched mask
    (``*.graph.geojson`` or ``*.graph.graphml``, :mod:`sam2ms.roads`), in the input's CRS when it
    has one — from the PNG mask in memory, or read back block by block from the mask COG.
    Over the input's nodata area, GeoTIFFs carry an internal mask and PNGs hold 0; GeoTIFFs also
    record how the scene was converted (``SAM2MS_RADIOMETRY``: bands, per-band low/high).
    """

    def __init__(
        self,
        scene: Scene,
        out_base: Path,
        fmt: str,
        threshold: float,
        probabilities: bool,
        max_pixels: int | None = None,
        graph: str | None = None,
    ) -> None:
        self.scene, self.fmt, self.threshold, self.probabilities = scene, fmt, threshold, probabilities
        self.graph = graph
        self.paths = output_paths(out_base, fmt, probabilities, graph)
        self.cog_seconds = 0.0  # of finish(): building the COGs' overviews
        self.graph_seconds = 0.0  # of finish(): extracting and writing the road graph
        h, w = scene.height, scene.width
        check_output_memory(scene.path, h, w, fmt, graph, max_pixels)
        if fmt == "tif":
            georef = scene.profile or {}
            tags = {"SAM2MS_RADIOMETRY": json.dumps(scene.stretch.as_dict())}  # how this scene was converted
            self._cogs = [
                CogWriter(path, h, w, georef, resampling, scene.masked, tags)
                for path, resampling in zip(self.paths, ("nearest", "average") if probabilities else ("nearest",))
            ]
        else:
            self._pngs = [PngRowWriter(path, h, w) for path in self.paths[: 1 + int(probabilities)]]
            self._mask = np.zeros((h, w), np.uint8) if graph is not None else None  # the graph's input

    def write_encoded(self, y0: int, mask: np.ndarray, prob8: np.ndarray | None, valid: np.ndarray | None) -> None:
        """Rows ``[y0, y0 + len(mask))`` encoded by :func:`encode_rows` (in the pipeline's write
        threads, or blocks inferred elsewhere), top to bottom.
        """
        if self.fmt == "tif":
            for cog, rows in zip(self._cogs, (mask, prob8)):
                cog.write(rows, valid)  # type: ignore[arg-type]
            return
        for png, rows in zip(self._pngs, (mask, prob8)):
            png.write(rows)  # type: ignore[arg-type]
        if self._mask is not None:
            self._mask[y0 : y0 + len(mask)] = mask

    def finish(self) -> list[Path]:
        """Finish every output (COG overviews built, the road graph written), each moved into place; the paths."""
        if self.fmt == "tif":
            self.cog_seconds = sum(cog.finish() for cog in self._cogs)
        else:
            for png in self._pngs:
                png.finish()
        if self.graph is not None:
            t0 = time.perf_counter()
            self._write_graph()
            self.graph_seconds = time.perf_counter() - t0
        return self.paths

    def _write_graph(self) -> None:
        from sam2ms.roads.extract import mask_raster_graph, scene_road_graph
        from sam2ms.roads.io import write_graph

        if self.fmt == "tif":  # read back by blocks: a scene of any size
            graph, crs = mask_raster_graph(self.paths[0])
        else:
            profile = self.scene.profile or {}
            mask, crs = self._mask, profile.get("crs")
            assert mask is not None  # held for the graph
            graph = scene_road_graph(
                lambda r, c, h, w: mask[r : r + h, c : c + w] > 0, *mask.shape, profile.get("transform"), crs
            )
        write_graph(graph, self.paths[-1], crs)

    def abort(self) -> None:
        """Drop the staged files (the output paths are never touched)."""
        for writer in self._cogs if self.fmt == "tif" else self._pngs:
            writer.abort()


def check_output_memory(
    path: Path, height: int, width: int, fmt: str, graph: str | None, max_pixels: int | None
) -> None:
    """Refuse (UsageError) a scene whose mask would be held whole and not fit the memory budget
    (:func:`sam2ms.memory.check_pixels`), before any of its windows is read: the road graph of a
    PNG run is extracted from the mask in memory. Masks and probabilities themselves are written as
    their rows come (any size), and a GeoTIFF run's graph reads its mask back by blocks.
    """
    if fmt != "tif" and graph is not None:
        check_pixels(
            f"{path}: its --graph {graph} from a --format {fmt} mask",
            width,
            height,
            1,
            max_pixels,
            f"use --format tif --graph {graph} (the mask is read back block by block), or pass --max-pixels",
        )


def output_paths(out_base: Path, fmt: str, probabilities: bool, graph: str | None = None) -> list[Path]:
    """Mask path first, then the probability map when asked for, then the road graph."""
    suffix = ".tif" if fmt == "tif" else ".png"
    paths = [out_base.with_name(out_base.name + ".mask" + suffix)]
    if probabilities:
        paths.append(out_base.with_name(out_base.name + ".prob" + suffix))
    if graph is not None:
        paths.append(out_base.with_name(out_base.name + f".graph.{graph}"))
    return paths
