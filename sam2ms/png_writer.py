"""Grayscale PNGs written row block by row block, byte for byte what Pillow writes for the whole image.

A whole-scene PNG mask used to be assembled in memory and compressed when its last row arrived,
so the end of every scene waited for a single-threaded zlib pass over the whole image (0.4 s for
a 6144² mask) and held the mask whole. :class:`PngRowWriter` filters and compresses each block of
rows as it comes (zlib releases the GIL) and keeps only the last row; the file is the one
``PIL.Image.fromarray(mask).save(path, "PNG")`` writes, because it makes Pillow's choices
(src/libImaging/ZipEncode.c): per row the filter among None, Up, Sub and Paeth (in that order, a
later one only when strictly better) with the least sum of |byte| read as signed, deflate at the
default level with memLevel 9 and the Z_FILTERED strategy, and IDAT chunks of
``max(65536, 4 x width)`` bytes (PIL.ImageFile._save). Tested against Pillow's own output.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

from .fileio import abort_staged, commit_staged, staged_file

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAXBLOCK = 65536  # PIL.ImageFile.MAXBLOCK


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _cost(filtered: np.ndarray) -> np.ndarray:
    """Per row, the sum of the bytes' distances from zero as signed values (Pillow's measure)."""
    return np.asarray(np.minimum(filtered, 0 - filtered).sum(axis=1, dtype=np.int64))  # uint8: 256 - v wraps to -v


#: Rows filtered at once: bounds the temporaries (about 20 bytes per pixel of the rows).
_ROWS_AT_ONCE = 128


def filter_rows(rows: np.ndarray, previous: np.ndarray) -> bytes:
    """PNG scanlines (filter byte + filtered bytes) of uint8 ``rows`` (n x W, one byte per pixel)
    under ``previous`` (the row above the first; zeros at the top), filters chosen as Pillow does.
    """
    parts = []
    for start in range(0, len(rows), _ROWS_AT_ONCE):
        block = rows[start : start + _ROWS_AT_ONCE]
        parts.append(_filter_block(block, previous if start == 0 else rows[start - 1]))
    return b"".join(parts)


def _filter_block(rows: np.ndarray, previous: np.ndarray) -> bytes:
    out = np.empty((len(rows), rows.shape[1] + 1), np.uint8)
    out[:, 0], out[:, 1:] = 0, rows
    cost = _cost(rows)
    todo = np.flatnonzero(cost > 0)  # a row of zeros stays unfiltered, as in Pillow
    if len(todo):
        above = np.concatenate([previous[None], rows[:-1]])[todo]
        cur = rows[todo]
        left = np.zeros_like(cur)
        left[:, 1:] = cur[:, :-1]
        upleft = np.zeros_like(cur)
        upleft[:, 1:] = above[:, :-1]
        candidates: tuple[tuple[int, Callable[[], np.ndarray]], ...] = (
            (2, lambda: above),
            (1, lambda: left),
            (4, lambda: _paeth(left, above, upleft)),
        )
        for kind, predict in candidates:
            live = cost[todo] > 0  # Pillow tries the next filter only while the best is not perfect
            if not live.any():
                break
            filtered = cur[live] - predict()[live]
            c = _cost(filtered)
            better = c < cost[todo][live]
            rows_better = todo[live][better]
            cost[rows_better], out[rows_better, 0], out[rows_better, 1:] = c[better], kind, filtered[better]
    return out.tobytes()


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The Paeth predictor of each byte from its left (a), upper (b) and upper-left (c) neighbours."""
    a16, b16, c16 = a.astype(np.int16), b.astype(np.int16), c.astype(np.int16)
    pa, pb, pc = np.abs(b16 - c16), np.abs(a16 - c16), np.abs(a16 + b16 - 2 * c16)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


class PngRowWriter:
    """An 8-bit grayscale PNG of ``height`` x ``width`` written in row blocks, top to bottom, to a
    staged file that :meth:`finish` renames to ``path`` (:meth:`abort` removes it).
    """

    def __init__(self, path: Path, height: int, width: int) -> None:
        self.path, self.height, self.width = Path(path), height, width
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 9, zlib.Z_FILTERED)
        self._chunk_size = max(_MAXBLOCK, width * 4)
        self._pending = bytearray()
        self._previous = np.zeros(width, np.uint8)
        self._rows = 0
        self._file: IO[bytes] = staged_file(self.path)
        self._file.write(SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))

    def write(self, rows: np.ndarray) -> None:
        """The next ``n x width`` uint8 rows."""
        if rows.shape[1:] != (self.width,) or self._rows + len(rows) > self.height:
            raise ValueError(f"rows {rows.shape} at row {self._rows} do not fit a {self.height} x {self.width} PNG")
        if not len(rows):
            return
        self._pending += self._deflate.compress(filter_rows(rows, self._previous))
        self._previous = rows[-1].copy()
        self._rows += len(rows)
        self._flush_chunks()

    def _flush_chunks(self, final: bool = False) -> None:
        size = self._chunk_size
        while len(self._pending) >= size or (final and self._pending):
            self._file.write(_chunk(b"IDAT", bytes(self._pending[:size])))
            del self._pending[:size]

    def finish(self) -> Path:
        """Close the stream and move the file into place (all rows must have been written)."""
        if self._rows != self.height:
            raise ValueError(f"{self.path}: {self._rows} of {self.height} rows written")
        self._pending += self._deflate.flush()
        self._flush_chunks(final=True)
        self._file.write(_chunk(b"IEND", b""))
        return commit_staged(self._file, self.path)

    def abort(self) -> None:
        """Drop the staged file: nothing is left where the PNG would have been."""
        abort_staged(self._file)
