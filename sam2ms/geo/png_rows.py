"""A PNG decoded top to bottom as its rows are asked for, so tiles start before the file is decoded.

Pillow decodes a PNG whole: a 6144² scene holds the first tile for the whole decode (0.76 s here;
OpenCV 0.62 s, pyspng 0.48 s — none of them streams) and takes ~4x its pixels in memory. PNG rows
are a zlib stream of filtered scanlines, and a row's filter needs only the row above it, so we
inflate the stream ourselves (zlib, a strip at a time) and let Pillow's own C code undo the filters
on each strip: a strip is handed to it as a small stored (uncompressed) PNG whose first row is the
previous strip's last row, unfiltered. The pixels are Pillow's, bit for bit; the whole file costs
~1.2x Pillow's single decode, but the first rows come after one strip and memory holds only the
rows a window row needs (benchmarks/RESULTS.md, issue 26).

Streamed: non-interlaced 8-bit grayscale or RGB without a transparency chunk (what imagery PNGs
are); any other PNG is decoded whole by :class:`sam2ms.geo.rasters.PillowRaster`.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import UsageError
from .radiometry import decimation

SIGNATURE = b"\x89PNG\r\n\x1a\n"
STRIP_ROWS = 64
_CHANNELS = {0: 1, 2: 3}  # PNG colour type -> channels, for the types streamed


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_layout(path: Path) -> tuple[bytes, list[tuple[int, int]]] | None:
    """The IHDR data and the (offset, length) of each IDAT chunk of a PNG that can be streamed, else
    None (not a PNG, interlaced, palette, alpha, transparency, 16-bit: decode it whole).
    """
    with open(path, "rb") as f:
        if f.read(8) != SIGNATURE:
            return None
        ihdr, idat = b"", []
        while True:
            head = f.read(8)
            if len(head) < 8:
                return None
            length, kind = struct.unpack(">I4s", head)
            if kind == b"IHDR":
                ihdr = f.read(length)
                f.seek(4, 1)
            elif kind == b"IDAT":
                idat.append((f.tell(), length))
                f.seek(length + 4, 1)
            elif kind == b"tRNS":
                return None
            elif kind == b"IEND":
                break
            else:
                f.seek(length + 4, 1)
    if len(ihdr) != 13 or not idat:
        return None
    _, _, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    return (ihdr, idat) if depth == 8 and colour in _CHANNELS and not interlace else None


class PngRowReader:
    """The rows of one streamable PNG, in order (:meth:`next_strip`)."""

    def __init__(self, path: Path, ihdr: bytes, idat: list[tuple[int, int]]) -> None:
        self.path, self._ihdr, self._idat = path, ihdr, idat
        self.width, self.height, _, colour, _, _, _ = struct.unpack(">IIBBBBB", ihdr)
        self.channels = _CHANNELS[colour]
        self._row_bytes = 1 + self.width * self.channels  # the filter byte, then the scanline
        self._file: BinaryIO = open(path, "rb")  # noqa: SIM115 - read row by row until close()
        self._inflate = zlib.decompressobj()
        self._next_chunk, self._pending = 0, b""
        self._prior: bytes | None = None  # the last row handed out, unfiltered
        self.rows_read = 0

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def _filtered(self, rows: int) -> bytes:
        """The next ``rows`` filtered scanlines of the zlib stream."""
        need = rows * self._row_bytes
        parts, have = [self._pending], len(self._pending)
        while have < need:
            if self._inflate.unconsumed_tail:
                out = self._inflate.decompress(self._inflate.unconsumed_tail, need - have)
            elif self._next_chunk < len(self._idat):
                offset, length = self._idat[self._next_chunk]
                self._next_chunk += 1
                self._file.seek(offset)
                out = self._inflate.decompress(self._file.read(length), need - have)
            else:
                row = self.rows_read + have // self._row_bytes
                raise UsageError(
                    f"{self.path}: the PNG's pixel data ends at row {row} of {self.height} (truncated "
                    "or damaged); replace the file"
                )
            parts.append(out)
            have += len(out)
        data = b"".join(parts)
        self._pending = data[need:]
        return data[:need]

    def next_strip(self, rows: int = STRIP_ROWS) -> np.ndarray:
        """The next up to ``rows`` rows, uint8 rows x W x C, unfiltered by Pillow."""
        from PIL import Image

        rows = min(rows, self.height - self.rows_read)
        filtered = self._filtered(rows)
        lead = b"" if self._prior is None else b"\x00" + self._prior  # filter 0: the row as it is
        count = rows + (self._prior is not None)
        header = self._ihdr[8:]  # depth, colour type, compression, filter, interlace as in the file
        png = (
            SIGNATURE
            + _chunk(b"IHDR", struct.pack(">II", self.width, count) + header)
            + _chunk(b"IDAT", zlib.compress(lead + filtered, 0))
            + _chunk(b"IEND", b"")
        )
        try:
            with Image.open(io.BytesIO(png)) as img:
                strip = np.asarray(img)
        except (OSError, ValueError, SyntaxError) as exc:
            raise UsageError(
                f"{self.path}: cannot read as an image at row {self.rows_read} ({exc}); replace or remove the file"
            ) from None
        strip = strip[1:] if self._prior is not None else strip
        self._prior = strip[-1].tobytes()
        self.rows_read += rows
        return strip.reshape(rows, self.width, self.channels)


class PngRowBand:
    """Windows of a streamed PNG read in row-major order: the rows from the latest window's top down
    are held, decoded strip by strip as windows reach further (an earlier row restarts the decode).
    """

    def __init__(self, path: Path, ihdr: bytes, idat: list[tuple[int, int]]) -> None:
        self._layout = (path, ihdr, idat)
        self._reader = PngRowReader(path, ihdr, idat)
        self.height, self.width, self.channels = self._reader.height, self._reader.width, self._reader.channels
        self._buf = np.empty((0, self.width, self.channels), np.uint8)
        self._base, self._rows = 0, 0  # image row of _buf[0]; rows held

    def rows(self, y: int, h: int) -> np.ndarray:
        """Image rows ``[y, y + h)`` (H x W x C); rows above ``y`` are dropped from then on."""
        if y < self._base:  # an earlier row: decode again from the top
            self._reader.close()
            self._reader = PngRowReader(*self._layout)
            self._base = self._rows = 0
        drop = min(y - self._base, self._rows)
        if drop:
            self._buf[: self._rows - drop] = self._buf[drop : self._rows]
            self._base, self._rows = self._base + drop, self._rows - drop
        while self._base + self._rows < min(y + h, self.height):
            if self._base + self._rows < y:  # rows below the last window but above this one: skip them
                self._reader.next_strip(min(STRIP_ROWS, y - self._base - self._rows))
                self._base = self._reader.rows_read
                continue
            strip = self._reader.next_strip()
            if self._rows + len(strip) > len(self._buf):
                grown = np.empty(
                    (max(2 * len(self._buf), self._rows + len(strip)), self.width, self.channels), np.uint8
                )
                grown[: self._rows] = self._buf[: self._rows]
                self._buf = grown
            self._buf[self._rows : self._rows + len(strip)] = strip
            self._rows += len(strip)
        return self._buf[y - self._base : y - self._base + h]

    def decimated(self, side: int) -> np.ndarray:
        """The whole image at every k-th row and column (k from :func:`decimation`), in one pass of
        a separate decode.
        """
        k = decimation(self.height, self.width, side)
        reader, kept = PngRowReader(*self._layout), []
        try:
            while reader.rows_read < self.height:
                start = reader.rows_read
                strip = reader.next_strip()
                kept.append(strip[(-start) % k :: k, ::k])
        finally:
            reader.close()
        return np.concatenate(kept)

    def close(self) -> None:
        """Close the reader's file."""
        self._reader.close()
