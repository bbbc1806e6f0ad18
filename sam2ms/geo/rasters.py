"""Reading rasters by windows as the model's uint8 RGB plus a valid-pixel mask, for every stage.

Two readers with one small interface (:class:`Raster`): GeoTIFFs and GDAL VRT mosaics through
rasterio (any band count and data type, read window by window; nodata values, alpha bands and
GDAL internal masks give the valid mask), and PNG/JPEG/TIFF through Pillow (decoded whole; an
alpha channel is the mask). A :class:`Scene` pairs a raster with its resolved
:class:`~sam2ms.geo.radiometry.Stretch`, so ``scene.read(window)`` hands training, calibration and
the runtime the very same bytes.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, cast

import numpy as np
from PIL import Image, UnidentifiedImageError
from typing_extensions import override

from ..errors import UsageError
from ..memory import check_pixels
from ..preprocess import IMAGE_SUFFIXES
from .radiometry import Radiometry, Stretch, decimation

GDAL_SUFFIXES = (".tif", ".tiff", ".vrt")
RASTER_SUFFIXES = (*IMAGE_SUFFIXES, ".vrt")

# Aerial scenes are large by nature: a 20 000 x 20 000 PNG is not a decompression bomb, so Pillow's
# fixed limit (89 M pixels) is replaced by one that follows the memory at hand (:func:`open_image`).
Image.MAX_IMAGE_PIXELS = None
#: Decoded bytes per pixel of each mode as handed over (after _PILLOW_MODES' conversion).
_MODE_BYTES = {"RGB": 3, "RGBA": 4, "L": 1, "LA": 2, "I;16": 2, "I;16B": 2, "I;16L": 2, "I": 4, "F": 4}


def rasterio_or_none() -> Any:
    """Rasterio where installed (the ``geo`` extra); without it Pillow reads 8-bit TIFFs whole."""
    try:
        import rasterio
    except ImportError:
        return None
    return rasterio


GDAL_CACHE_BYTES = 64 * 2**20


def streaming_gdal_cache() -> AbstractContextManager[object]:
    """A 64 MiB GDAL block cache for a streaming run: windows and output blocks pass through once,
    and GDAL's default (5 % of RAM) would let memory grow with the scene (measured in
    benchmarks/RESULTS.md). ``GDAL_CACHEMAX`` in the environment wins.
    """
    rasterio = rasterio_or_none()
    if rasterio is None or "GDAL_CACHEMAX" in os.environ:
        return nullcontext()
    return cast(AbstractContextManager[object], rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES))


def is_virtual(path: str | Path) -> bool:
    """A GDAL virtual file system path (``/vsis3/...``, ``/vsicurl/...``): read through GDAL only."""
    return str(path).startswith("/vsi")


def gdal_path(path: str | Path) -> str:
    """The string GDAL opens: the ``//`` that :class:`~pathlib.Path` folds restored in a
    ``/vsicurl/`` URL and after an archive prefix (``/vsizip//abs/a.zip/m.tif``: an archive path
    after the prefix is absolute; the ``{...}`` form passes as it is).
    """
    text = re.sub(r"^(/vsicurl(?:_streaming)?/file:)/+", r"\1///", str(path))  # file:///abs/path
    text = re.sub(r"^(/vsi(?:zip|tar|gzip|7z|rar)/)(?![/{])", r"\1/", text)
    return re.sub(r"^(/vsicurl(?:_streaming)?/(?!file:)[a-z]+:)/(?!/)", r"\1//", text)


def find_inputs(source: str | Path) -> list[Path]:
    """A file, or every raster under a folder (recursively, sorted)."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise UsageError(f"{source}: input not found; pass an image or a folder of images")
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES)
    if not files:
        raise UsageError(f"{source}: no images ({', '.join(RASTER_SUFFIXES)}) in this folder")
    return files


class Raster(ABC):
    """Raw bands of one raster, read by windows (row ``y``, column ``x``, ``h`` x ``w`` pixels)."""

    path: Path
    height: int
    width: int
    count: int
    dtype: str
    colorinterp: tuple[str, ...]
    profile: dict[str, Any] | None = None  # rasterio profile of a georeferenced raster
    masked: bool = False  # has nodata / alpha / a mask: windows come with a valid mask

    @abstractmethod
    def read(self, bands: tuple[int, ...], y: int, x: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``C x h x w`` raw values of ``bands`` and the ``h x w`` valid mask (None when unmasked)."""

    @abstractmethod
    def sample(self, bands: tuple[int, ...], side: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The same for the whole raster decimated to at most ``side`` pixels a side."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the file."""


class PillowRaster(Raster):
    """A PNG/JPEG/TIFF decoded whole by Pillow (they cannot be read by window)."""

    def __init__(self, path: Path, max_pixels: int | None = None) -> None:
        self.path = path
        bands, alpha = _pillow_bands(path, max_pixels)
        self._bands, self._valid = bands, (alpha > 0 if alpha is not None and (alpha == 0).any() else None)
        self.count, self.height, self.width = bands.shape
        self.dtype = str(bands.dtype)
        self.colorinterp = ("red", "green", "blue") if self.count == 3 else ("gray",) * self.count
        self.masked = self._valid is not None

    @override
    def read(self, bands: tuple[int, ...], y: int, x: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray | None]:
        data = self._bands[[b - 1 for b in bands], y : y + h, x : x + w]
        return data, None if self._valid is None else self._valid[y : y + h, x : x + w]

    @override
    def sample(self, bands: tuple[int, ...], side: int) -> tuple[np.ndarray, np.ndarray | None]:
        k = decimation(self.height, self.width, side)
        data = self._bands[[b - 1 for b in bands], ::k, ::k]
        return data, None if self._valid is None else self._valid[::k, ::k]

    @override
    def close(self) -> None:
        self._bands = self._valid = None  # type: ignore[assignment]


_PILLOW_MODES = {
    "RGB": "RGB",
    "RGBA": "RGBA",
    "L": "L",
    "LA": "LA",
    "I;16": "I;16",
    "I;16B": "I;16B",
    "I;16L": "I;16L",
    "I": "I",
    "F": "F",
    "1": "L",
    "P": "RGBA",
    "PA": "RGBA",
    "YCbCr": "RGB",
    "RGBX": "RGB",
}


def _pillow_bands(path: Path, max_pixels: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``C x H x W`` bands in their own dtype, and the alpha channel (None without one)."""
    img = open_image(path, max_pixels)
    mode = _PILLOW_MODES.get(img.mode)
    if mode is None:
        raise UsageError(
            f"{path}: Pillow cannot hand over {img.mode!r} images band by band; convert it to RGB, "
            "or install sam2ms[geo] to read it with GDAL"
        )
    if mode != img.mode:
        img = img.convert(mode)
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    arr = np.moveaxis(arr, -1, 0)
    if mode in ("RGBA", "LA"):
        return np.ascontiguousarray(arr[:-1]), arr[-1]
    return np.ascontiguousarray(arr), None


def _check_image_pixels(path: Path, width: int, height: int, mode: str, max_pixels: int | None) -> None:
    check_pixels(
        str(path),
        width,
        height,
        2 * _MODE_BYTES.get(_PILLOW_MODES.get(mode, ""), 4),
        max_pixels,
        "pass --max-pixels to allow it (it needs that memory), or convert it to a tiled GeoTIFF, which "
        "sam2ms[geo] reads window by window",
    )


class PngStreamRaster(Raster):
    """A PNG decoded top to bottom while its windows are read (:mod:`sam2ms.geo.png_rows`): the first
    tile starts after one strip of rows, not after the whole file. For the inference pipeline, which
    reads windows in row-major order; the same pixels as :class:`PillowRaster`.
    """

    def __init__(self, path: Path, layout: tuple[bytes, list[tuple[int, int]]], max_pixels: int | None = None) -> None:
        from .png_rows import PngRowBand

        self.path = path
        self._band = PngRowBand(path, *layout)
        self.count, self.height, self.width = self._band.channels, self._band.height, self._band.width
        _check_image_pixels(path, self.width, self.height, "RGB" if self.count == 3 else "L", max_pixels)
        self.dtype = "uint8"
        self.colorinterp = ("red", "green", "blue") if self.count == 3 else ("gray",)

    @override
    def read(self, bands: tuple[int, ...], y: int, x: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray | None]:
        rows = self._band.rows(y, h)[:, x : x + w]
        return np.ascontiguousarray(np.moveaxis(rows[..., [b - 1 for b in bands]], -1, 0)), None

    @override
    def sample(self, bands: tuple[int, ...], side: int) -> tuple[np.ndarray, np.ndarray | None]:
        return np.ascontiguousarray(np.moveaxis(self._band.decimated(side)[..., [b - 1 for b in bands]], -1, 0)), None

    @override
    def close(self) -> None:
        self._band.close()


def open_image(path: Path, max_pixels: int | None = None) -> Image.Image:
    """A decoded Pillow image, or a UsageError naming the file and the fix. Its size is read from
    the header and checked before anything is decoded (:func:`sam2ms.memory.check_pixels`: half the
    available memory for the image and our array of it, or ``max_pixels``), so a few bytes of header
    claiming 200 000 x 200 000 pixels are refused at once.
    """
    try:
        img = Image.open(path)
        try:
            _check_image_pixels(path, img.width, img.height, img.mode, max_pixels)
        except UsageError:
            img.close()
            raise
        img.load()
        return img
    except FileNotFoundError:
        raise UsageError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        hint = " (multi-band or 16-bit TIFFs need sam2ms[geo])" if path.suffix.lower() in GDAL_SUFFIXES else ""
        raise UsageError(f"{path}: cannot read as an image ({exc}){hint}; replace or remove the file") from None


class RasterioRaster(Raster):
    """A GeoTIFF or VRT read window by window through GDAL."""

    def __init__(self, path: Path) -> None:
        rasterio = rasterio_or_none()
        from rasterio.enums import MaskFlags

        self.path = path
        if not is_virtual(path) and not path.exists():
            raise UsageError(f"{path}: file not found")
        try:
            self._ds = rasterio.open(gdal_path(path))
        except Exception as exc:  # noqa: BLE001 - GDAL's own errors for unreadable files
            hint = (
                "check the path and the credentials GDAL uses for it"
                if is_virtual(path)
                else "replace or remove the file"
            )
            raise UsageError(f"{gdal_path(path)}: cannot read ({exc}); {hint}") from None
        ds = self._ds
        if path.suffix.lower() == ".vrt":
            _check_vrt_members(path, ds.files[1:])
        if len(set(ds.dtypes)) > 1:
            ds.close()
            raise UsageError(
                f"{path}: bands of different data types ({', '.join(sorted(set(ds.dtypes)))}); "
                "write the bands you need into one data type first"
            )
        self.height, self.width, self.count, self.dtype = ds.height, ds.width, ds.count, ds.dtypes[0]
        self.colorinterp = tuple(ci.name for ci in ds.colorinterp)
        self.profile = dict(ds.profile)
        flags = ds.mask_flag_enums
        self._per_dataset = MaskFlags.per_dataset in flags[0]
        self._nodata = ds.nodatavals
        self.masked = any(MaskFlags.all_valid not in f for f in flags)

    def _valid(self, bands: tuple[int, ...], data: np.ndarray, **read: Any) -> np.ndarray | None:
        """The valid mask of a read: the dataset mask (alpha band or internal mask), else pixels where
        any of the chosen bands differs from its nodata value.
        """
        if not self.masked:
            return None
        if self._per_dataset:
            return np.asarray(self._ds.read_masks(1, **read) > 0)
        valid = np.zeros(data.shape[1:], bool)
        for band, values in zip(bands, data):
            nodata = self._nodata[band - 1]
            if nodata is None:  # a band without nodata: every pixel has data
                return np.ones(data.shape[1:], bool)
            valid |= ~np.isnan(values) if np.isnan(nodata) else values != nodata
        return valid

    @override
    def read(self, bands: tuple[int, ...], y: int, x: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray | None]:
        from rasterio.windows import Window

        window = Window(x, y, w, h)
        data = self._ds.read(list(bands), window=window)
        return data, self._valid(bands, data, window=window)

    @override
    def sample(self, bands: tuple[int, ...], side: int) -> tuple[np.ndarray, np.ndarray | None]:
        k = decimation(self.height, self.width, side)
        shape = (-(-self.height // k), -(-self.width // k))
        data = self._ds.read(list(bands), out_shape=(len(bands), *shape))
        return data, self._valid(bands, data, out_shape=shape)

    @override
    def close(self) -> None:
        self._ds.close()


def _check_vrt_members(path: Path, members: Sequence[str]) -> None:
    """Every file a VRT mosaic refers to must open, or the mosaic fails here, by name, and not
    half-way through a run.
    """
    rasterio = rasterio_or_none()
    for member in members:
        if member.startswith("/vsi"):
            continue  # remote members: GDAL reports them when read
        try:
            rasterio.open(member).close()
        except Exception as exc:  # noqa: BLE001
            raise UsageError(
                f"{path}: mosaic member {member} cannot be read ({str(exc).splitlines()[0]}); fix the "
                "path in the VRT or rebuild it (sam2ms mosaic / gdalbuildvrt)"
            ) from None


class Scene:
    """A raster and its resolved conversion: windows come out as the model's uint8 RGB."""

    def __init__(self, raster: Raster, stretch: Stretch) -> None:
        self.raster, self.stretch = raster, stretch
        self.path, self.height, self.width = raster.path, raster.height, raster.width
        self.profile = raster.profile
        self.masked = raster.masked

    def read(self, y: int, x: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray | None]:
        """uint8 ``h x w x 3`` RGB and the ``h x w`` valid mask (None: every pixel is valid)."""
        data, valid = self.raster.read(self.stretch.bands, y, x, h, w)
        return self.stretch.apply(data), valid

    def close(self) -> None:
        """Close the raster under the scene."""
        self.raster.close()


def open_raster(path: Path, max_pixels: int | None = None, stream: bool = False) -> Raster:
    """GeoTIFFs and VRTs through rasterio when installed (windowed), anything else through Pillow
    (decoded whole: ``max_pixels`` bounds it, see :func:`open_image`); GDAL virtual paths (object
    storage, URLs) through rasterio only. ``stream``: a reader of windows in row-major order (the
    inference pipeline), which gets PNGs decoded as it goes where they allow it.
    """
    if is_virtual(path):
        if rasterio_or_none() is None:
            raise UsageError(f"{gdal_path(path)}: object storage and URLs are read through GDAL; install sam2ms[geo]")
        return RasterioRaster(path)
    if path.suffix.lower() in GDAL_SUFFIXES and rasterio_or_none() is not None:
        return RasterioRaster(path)
    if path.suffix.lower() == ".vrt":
        raise UsageError(f"{path}: VRT mosaics need GDAL; install sam2ms[geo]")
    if stream and path.suffix.lower() == ".png":
        from .png_rows import png_layout

        try:
            layout = png_layout(path)
        except FileNotFoundError:
            raise UsageError(f"{path}: file not found") from None
        except OSError:
            layout = None  # Pillow says what is wrong with it
        if layout is not None:
            return PngStreamRaster(path, layout, max_pixels)
    return PillowRaster(path, max_pixels)


def open_scene(
    path: Path,
    radiometry: Radiometry | None = None,
    cache: dict[Path, Stretch] | None = None,
    max_pixels: int | None = None,
    stream: bool = False,
) -> Scene:
    """A scene ready to read, converted as ``radiometry`` asks (default: :class:`Radiometry`);
    ``cache`` keeps per-scene stretches for scenes opened again (training reads a scene per patch);
    ``max_pixels`` bounds an image decoded whole (:func:`open_image`).
    """
    raster = open_raster(path, max_pixels, stream)
    try:
        stretch = cache.get(path) if cache is not None else None
        if stretch is None:
            stretch = (radiometry or Radiometry()).resolve(
                path, raster.count, raster.dtype, raster.colorinterp, raster.sample
            )
            if cache is not None:
                cache[path] = stretch
        return Scene(raster, stretch)
    except BaseException:
        raster.close()
        raise


def raster_size(path: Path, radiometry: Radiometry | None = None) -> tuple[int, int]:
    """(width, height) from the header only; with ``radiometry``, also checks that its bands can
    be chosen from this raster (so a dataset fails by name before training starts).
    """
    if is_virtual(path) or (path.suffix.lower() in GDAL_SUFFIXES and rasterio_or_none() is not None):
        raster = open_raster(path)
        raster.close()
        (w, h), count, colorinterp = (raster.width, raster.height), raster.count, raster.colorinterp
    else:
        try:
            with Image.open(path) as img:
                mode, (w, h) = _PILLOW_MODES.get(img.mode), img.size
        except (UnidentifiedImageError, OSError) as exc:
            raise UsageError(f"{path}: cannot read as an image ({exc}); replace or remove the file") from None
        if mode is None:
            raise UsageError(
                f"{path}: image has mode {img.mode!r}, which Pillow cannot hand over band by band; "
                "convert it to RGB, or install sam2ms[geo] to read it with GDAL"
            )
        count = len(mode.removesuffix("A")) if mode in ("RGB", "RGBA", "L", "LA") else 1
        colorinterp = ("red", "green", "blue") if count == 3 else ("gray",)
    if radiometry is not None:
        radiometry.choose_bands(path, count, colorinterp)
    return w, h
