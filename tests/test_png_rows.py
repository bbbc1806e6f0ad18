"""PNGs decoded strip by strip (sam2ms.geo.png_rows) give Pillow's pixels, for every PNG filter type,
and only as far as the windows asked for them reach.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam2ms.errors import UsageError
from sam2ms.geo.png_rows import PngRowBand, PngRowReader, png_layout
from sam2ms.geo.rasters import PngStreamRaster, open_raster, open_scene

pytestmark = pytest.mark.core  # runs without torch: make test-core


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _filtered(image: np.ndarray, kinds: list[int]) -> bytes:
    """PNG scanlines of ``image`` (H x W x C uint8), row y filtered with ``kinds[y]`` (0-4): the
    encoder's side of the five filters, written from the PNG specification.
    """
    h, w, c = image.shape
    x = image.reshape(h, w * c).astype(np.int16)
    out = bytearray()
    for y in range(h):
        row, up = x[y], (x[y - 1] if y else np.zeros_like(x[y]))
        left = np.concatenate([np.zeros(c, np.int16), row[:-c]])
        upleft = np.concatenate([np.zeros(c, np.int16), up[:-c]])
        kind = kinds[y]
        if kind == 0:
            pred = np.zeros_like(row)
        elif kind == 1:
            pred = left
        elif kind == 2:
            pred = up
        elif kind == 3:
            pred = (left + up) // 2
        else:
            p = left + up - upleft
            pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        out += bytes([kind]) + ((row - pred) % 256).astype(np.uint8).tobytes()
    return bytes(out)


def write_png(
    path: Path, image: np.ndarray, kinds: list[int], idat_size: int = 997, extra: bytes = b"", interlace: int = 0
) -> Path:
    """``image`` as a PNG with the given filter per row, its zlib stream cut into IDAT chunks of
    ``idat_size`` bytes (rows span chunks).
    """
    h, w, c = image.shape
    header = struct.pack(">IIBBBBB", w, h, 8, {1: 0, 3: 2}[c], 0, 0, interlace)
    stream = zlib.compress(_filtered(image, kinds), 6)
    idats = b"".join(_chunk(b"IDAT", stream[i : i + idat_size]) for i in range(0, len(stream), idat_size))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + extra + idats + _chunk(b"IEND", b""))
    return path


@pytest.fixture()
def rgb(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (203, 77, 3), dtype=np.uint8)
    image[50:120] = image[50:51]  # flat areas too, where Up and Paeth predict exactly
    kinds = list(rng.integers(0, 5, 203))
    return write_png(tmp_path / "rgb.png", image, kinds), image


def test_every_filter_type_decodes_to_pillows_pixels(rgb: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, image = rgb
    assert np.array_equal(np.asarray(Image.open(path)), image)  # the test's encoder is a valid PNG encoder
    layout = png_layout(path)
    assert layout is not None
    for rows in (1, 7, 64, 500):
        reader = PngRowReader(path, *layout)
        strips = []
        while reader.rows_read < reader.height:
            strips.append(reader.next_strip(rows))
        reader.close()
        assert np.array_equal(np.concatenate(strips), image), rows
    gray = np.random.default_rng(1).integers(0, 256, (40, 31, 1), dtype=np.uint8)
    gpath = write_png(tmp_path / "gray.png", gray, [4, 3, 2, 1, 0] * 8)
    band = PngRowBand(gpath, *png_layout(gpath))  # type: ignore[misc]
    assert np.array_equal(band.rows(0, 40), gray)


def test_windows_decode_only_as_far_as_they_reach_and_earlier_rows_restart(rgb: tuple[Path, np.ndarray]) -> None:
    path, image = rgb
    raster = open_raster(path, stream=True)
    assert isinstance(raster, PngStreamRaster)
    reader = raster._band._reader
    data, valid = raster.read((1, 2, 3), 0, 10, 32, 20)
    assert valid is None and np.array_equal(data, np.moveaxis(image[:32, 10:30], -1, 0))
    assert reader.rows_read < image.shape[0]  # not decoded whole before the first window
    assert np.array_equal(raster.read((3, 1), 150, 0, 40, 77)[0], np.moveaxis(image[150:190, :, [2, 0]], -1, 0))
    assert np.array_equal(raster.read((1, 2, 3), 5, 0, 10, 77)[0], np.moveaxis(image[5:15], -1, 0))  # restarted
    sample, _ = raster.sample((1, 2, 3), 50)
    k = -(-203 // 50)
    assert np.array_equal(sample, np.moveaxis(image[::k, ::k], -1, 0))
    raster.close()


def test_a_scene_reads_the_same_streamed_or_decoded_whole(rgb: tuple[Path, np.ndarray]) -> None:
    path, _ = rgb
    whole, streamed = open_scene(path), open_scene(path, stream=True)
    for y, x in ((0, 0), (40, 13), (171, 45)):
        a, b = whole.read(y, x, 32, 32), streamed.read(y, x, 32, 32)
        assert np.array_equal(a[0], b[0]) and a[1] is None and b[1] is None


def test_what_cannot_stream_is_decoded_whole(tmp_path: Path) -> None:
    image = np.random.default_rng(2).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    Image.fromarray(image).convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(image).convert("P").save(tmp_path / "palette.png")
    Image.fromarray(image[..., 0].astype(np.uint16) * 200).save(tmp_path / "deep.png")
    write_png(tmp_path / "trns.png", image, [0] * 20, extra=_chunk(b"tRNS", b"\0\0\0\0\0\0"))
    write_png(tmp_path / "adam7.png", image, [0] * 20, interlace=1)
    (tmp_path / "not.png").write_bytes(b"GIF89a")
    for name in ("rgba", "palette", "deep", "trns", "adam7", "not"):
        assert png_layout(tmp_path / f"{name}.png") is None, name


def test_a_truncated_png_names_the_row_where_it_ends(tmp_path: Path) -> None:
    image = np.random.default_rng(3).integers(0, 256, (300, 64, 3), dtype=np.uint8)
    path = write_png(tmp_path / "cut.png", image, [1] * 300, idat_size=8000)
    data = path.read_bytes()
    first_idat = data.index(b"IDAT") - 4
    path.write_bytes(data[: first_idat + 3 * (12 + 8000)] + _chunk(b"IEND", b""))  # three IDATs of many
    raster = open_raster(path, stream=True)
    assert np.array_equal(raster.read((1, 2, 3), 0, 0, 16, 64)[0], np.moveaxis(image[:16], -1, 0))
    with pytest.raises(UsageError, match=r"cut.png: the PNG's pixel data ends at row \d+ of 300"):
        raster.read((1, 2, 3), 250, 0, 50, 64)
