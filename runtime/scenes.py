"""Reading scenes and writing masks: PNG/JPEG/TIFF with Pillow, GeoTIFF by windows with rasterio.

GeoTIFF inputs are read window by window and GeoTIFF outputs written strip by strip (keeping
CRS and transform), so a 20 000 x 20 000 scene runs in bounded memory. Pillow formats decode the
whole image (PNG and JPEG cannot be read by window) and PNG outputs are assembled in memory
(one byte per pixel) before an atomic write.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sam2ms.deps import require
from sam2ms.errors import UsageError
from sam2ms.fileio import save_png, write_json
from sam2ms.preprocess import IMAGE_SUFFIXES, read_rgb

from .tiling import Grid, pad_to_tile

GEO_SUFFIXES = (".tif", ".tiff")
FORMATS = ("png", "tif", "geojson")


def find_inputs(source: str | Path) -> list[Path]:
    """A file, or every image under a folder (recursively, sorted)."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise UsageError(f"{source}: input not found; pass an image or a folder of images")
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UsageError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    return files


def rasterio_or_none() -> Any:
    """rasterio where installed: GeoTIFF inputs are then read by windows (optional: Pillow reads
    them whole otherwise)."""
    try:
        import rasterio
    except ImportError:
        return None
    return rasterio


class Scene(Protocol):
    """An RGB scene that can be read by windows."""

    path: Path
    height: int
    width: int
    profile: dict[str, Any] | None  # rasterio profile of a georeferenced input, else None

    def read(self, y: int, x: int, h: int, w: int) -> np.ndarray: ...

    def close(self) -> None: ...


class ArrayScene:
    """A decoded image held in memory (Pillow formats, and small scenes)."""

    profile: dict[str, Any] | None = None

    def __init__(self, path: Path, image: np.ndarray) -> None:
        self.path, self.image = path, image
        self.height, self.width = image.shape[:2]

    def read(self, y: int, x: int, h: int, w: int) -> np.ndarray:
        return self.image[y:y + h, x:x + w]

    def close(self) -> None:
        self.image = None  # type: ignore[assignment]


class RasterioScene:
    """A GeoTIFF read window by window (bands 1-3 as RGB, 8-bit)."""

    def __init__(self, path: Path) -> None:
        rasterio = rasterio_or_none()
        self.path = path
        self._ds = rasterio.open(path)
        if self._ds.count < 3:
            self._ds.close()
            raise UsageError(f"{path}: {self._ds.count} band(s); sam2ms needs RGB (3 bands)")
        if self._ds.dtypes[0] != "uint8":
            self._ds.close()
            raise UsageError(f"{path}: {self._ds.dtypes[0]} pixels; sam2ms needs 8-bit RGB — rescale to uint8 first")
        self.height, self.width = self._ds.height, self._ds.width
        self.profile: dict[str, Any] | None = dict(self._ds.profile)

    def read(self, y: int, x: int, h: int, w: int) -> np.ndarray:
        from rasterio.windows import Window

        data = self._ds.read((1, 2, 3), window=Window(x, y, w, h))
        return np.ascontiguousarray(np.moveaxis(data, 0, -1))

    def close(self) -> None:
        self._ds.close()


def iter_windows(scene: Scene, grid: Grid) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """(window row, y, x, uint8 T x T x 3 window) in row-major order; a scene smaller than a
    tile is read once and reflect-padded."""
    t = grid.tile
    padded = pad_to_tile(scene.read(0, 0, scene.height, scene.width), t) if grid.needs_padding else None
    for row, y, x in grid.windows():
        yield row, y, x, (padded[y:y + t, x:x + t] if padded is not None else scene.read(y, x, t, t))


def open_scene(path: Path) -> Scene:
    """GeoTIFFs through rasterio when installed (windowed), anything else through Pillow."""
    if path.suffix.lower() in GEO_SUFFIXES and rasterio_or_none() is not None:
        try:
            return RasterioScene(path)
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - rasterio's own errors for unreadable files
            raise UsageError(f"{path}: cannot read ({exc})") from None
    return ArrayScene(path, read_rgb(path))


class MaskWriter:
    """Receives finished probability rows of one scene and writes its outputs atomically.

    ``png``: binary mask (0/255) and, with ``probabilities``, ``*.prob.png`` (uint8 0-255).
    ``tif``: the same as GeoTIFF (LZW), with the input's CRS and transform, written by strips.
    ``geojson``: the PNG outputs plus ``*.centerlines.geojson`` (road centre-lines in the
    input's CRS when it has one).
    """

    def __init__(self, scene: Scene, out_base: Path, fmt: str, threshold: float, probabilities: bool) -> None:
        self.scene, self.fmt, self.threshold, self.probabilities = scene, fmt, threshold, probabilities
        self.paths = output_paths(out_base, fmt, probabilities)
        h, w = scene.height, scene.width
        if fmt == "tif":
            self._open_geotiffs()
        else:
            self._mask = np.zeros((h, w), np.uint8)
            self._prob = np.zeros((h, w), np.uint8) if probabilities else None

    def _open_geotiffs(self) -> None:
        rasterio = require("rasterio", "--format tif")
        profile = {"driver": "GTiff", "height": self.scene.height, "width": self.scene.width, "count": 1,
                   "dtype": "uint8", "compress": "lzw"}
        src = self.scene.profile or {}
        for key in ("crs", "transform"):
            if src.get(key) is not None:
                profile[key] = src[key]
        self._tmp, self._ds = [], []
        for path in self.paths:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            self._tmp.append(tmp)
            self._ds.append(rasterio.open(tmp, "w", **profile))

    def rows(self, y0: int, prob: np.ndarray) -> None:
        mask = (prob >= self.threshold).astype(np.uint8) * 255
        prob8 = np.clip(np.rint(prob * 255), 0, 255).astype(np.uint8) if self.probabilities else None
        if self.fmt == "tif":
            from rasterio.windows import Window

            win = Window(0, y0, prob.shape[1], prob.shape[0])
            self._ds[0].write(mask, 1, window=win)
            if prob8 is not None:
                self._ds[1].write(prob8, 1, window=win)
            return
        self._mask[y0:y0 + len(prob)] = mask
        if prob8 is not None:
            self._prob[y0:y0 + len(prob)] = prob8  # type: ignore[index]

    def finish(self) -> list[Path]:
        if self.fmt == "tif":
            for ds, tmp, path in zip(self._ds, self._tmp, self.paths):
                ds.close()
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            return self.paths
        save_png(self.paths[0], self._mask)
        if self._prob is not None:
            save_png(self.paths[1], self._prob)
        if self.fmt == "geojson":
            from .centerlines import centerlines, to_geojson

            profile = self.scene.profile or {}
            lines = centerlines(self._mask > 0)
            write_json(self.paths[-1], to_geojson(lines, profile.get("transform"), profile.get("crs")))
        return self.paths

    def abort(self) -> None:
        if self.fmt == "tif":
            for ds, tmp in zip(self._ds, self._tmp):
                ds.close()
                Path(tmp).unlink(missing_ok=True)


def output_paths(out_base: Path, fmt: str, probabilities: bool) -> list[Path]:
    """Mask path first, then the probability map when asked for."""
    suffix = ".tif" if fmt == "tif" else ".png"
    paths = [out_base.with_name(out_base.name + ".mask" + suffix)]
    if probabilities:
        paths.append(out_base.with_name(out_base.name + ".prob" + suffix))
    if fmt == "geojson":
        paths.append(out_base.with_name(out_base.name + ".centerlines.geojson"))
    return paths
