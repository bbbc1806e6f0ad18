"""Cloud-Optimized GeoTIFF output in bounded memory.

Finished rows arrive top to bottom. They are kept only until a full row of 512-pixel blocks is
there, then written to a tiled, deflate-compressed staging GeoTIFF beside the output (whole
blocks only, so no compressed block is ever rewritten), with the valid mask as a GDAL internal
mask. At the end GDAL's COG driver turns the staging file into the COG — overviews built from
the file (nearest for masks, average for probabilities), then the COG layout — and the result is
renamed into place. Memory holds one block row of the output, whatever the scene's size.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from sam2ms.deps import require

BLOCK = 512


class CogWriter:
    """One uint8 band of a scene's output, written as a COG at ``path`` by :meth:`finish`."""

    def __init__(
        self,
        path: Path,
        height: int,
        width: int,
        georef: dict[str, Any],
        resampling: str,
        masked: bool,
        tags: dict[str, str] | None = None,
    ) -> None:
        self._rasterio = require("rasterio", "--format tif")
        self.path, self.height, self.width = path, height, width
        self.resampling, self.masked, self.tags = resampling, masked, tags or {}
        self._georef = {k: georef[k] for k in ("crs", "transform") if georef.get(k) is not None}
        self._stage = _temp_beside(path, ".stage.tif")
        self._ds: Any = None
        self._rows: list[np.ndarray] = []
        self._valid: list[np.ndarray] = []
        self._y = 0  # first row not yet written

    def _env(self) -> Any:
        return self._rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True)

    def write(self, rows: np.ndarray, valid: np.ndarray | None) -> None:
        """The next rows (uint8 ``n x width``) and their valid mask (None: all valid)."""
        self._rows.append(rows)
        if self.masked:
            self._valid.append(np.ones(rows.shape, bool) if valid is None else valid)
        pending = sum(len(r) for r in self._rows)
        if pending >= BLOCK:
            self._flush(pending - pending % BLOCK)

    def _flush(self, n: int) -> None:
        from rasterio.windows import Window

        data = np.concatenate(self._rows)
        valid = np.concatenate(self._valid) if self.masked else None
        with self._env():
            if self._ds is None:
                self._ds = self._rasterio.open(
                    self._stage,
                    "w",
                    driver="GTiff",
                    height=self.height,
                    width=self.width,
                    count=1,
                    dtype="uint8",
                    tiled=True,
                    blockxsize=BLOCK,
                    blockysize=BLOCK,
                    compress="deflate",
                    bigtiff="if_safer",
                    **self._georef,
                )
                self._ds.update_tags(**self.tags)
            window = Window(0, self._y, self.width, n)
            self._ds.write(data[:n], 1, window=window)
            if valid is not None:
                self._ds.write_mask(valid[:n].astype(np.uint8) * 255, window=window)
        self._y += n
        self._rows = [data[n:]] if n < len(data) else []
        self._valid = [valid[n:]] if valid is not None and n < len(valid) else []

    def finish(self) -> float:
        """Write what is left, build the COG (overviews from the staging file) and move it into place;
        returns the seconds the COG build took.
        """
        from rasterio.shutil import copy

        rest = sum(len(r) for r in self._rows)
        if rest or self._ds is None:
            self._flush(rest)
        self._ds.close()
        self._ds = None
        started = time.perf_counter()
        final = _temp_beside(self.path, ".tmp")
        try:
            with self._env():
                copy(
                    self._stage,
                    final,
                    driver="COG",
                    compress="DEFLATE",
                    blocksize=BLOCK,
                    overview_resampling=self.resampling,
                    bigtiff="IF_SAFER",
                )
            os.chmod(final, 0o644)
            os.replace(final, self.path)
        finally:
            Path(final).unlink(missing_ok=True)
            Path(self._stage).unlink(missing_ok=True)
        return time.perf_counter() - started

    def abort(self) -> None:
        """Drop everything written so far (the output path is never touched)."""
        if self._ds is not None:
            self._ds.close()
            self._ds = None
        Path(self._stage).unlink(missing_ok=True)


def _temp_beside(path: Path, suffix: str) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return tmp
