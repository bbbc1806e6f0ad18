"""PNG masks written row block by row block are the bytes Pillow writes for the whole mask."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam2ms.data.synth import render_road_scene
from sam2ms.png_writer import PngRowWriter

pytestmark = pytest.mark.core  # runs without torch: make test-core


def _pillow_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


CASES = {
    "road mask": lambda rng: render_road_scene(700, 650, rng, scale=1.0)[1].astype(np.uint8) * 255,
    "noise mask wider than an IDAT": lambda rng: (rng.random((90, 17000)) < 0.3).astype(np.uint8) * 255,
    "empty": lambda rng: np.zeros((50, 40), np.uint8),
    "probabilities": lambda rng: rng.integers(0, 256, (333, 257), dtype=np.uint8),
    "one pixel": lambda rng: np.full((1, 1), 255, np.uint8),
}


@pytest.mark.parametrize("name", list(CASES))
def test_rows_in_any_blocks_give_pillows_bytes(tmp_path: Path, name: str) -> None:
    rng = np.random.default_rng(0)
    image = CASES[name](rng)
    writer = PngRowWriter(tmp_path / "m.png", *image.shape)
    y = 0
    while y < len(image):
        n = int(rng.integers(1, 300))
        writer.write(image[y : y + n])
        y += n
    assert writer.finish() == tmp_path / "m.png"
    assert (tmp_path / "m.png").read_bytes() == _pillow_bytes(image)
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]  # the staged file was renamed


def test_an_unfinished_or_aborted_png_leaves_nothing(tmp_path: Path) -> None:
    writer = PngRowWriter(tmp_path / "m.png", 10, 8)
    writer.write(np.zeros((4, 8), np.uint8))
    with pytest.raises(ValueError, match="4 of 10 rows written"):
        writer.finish()
    with pytest.raises(ValueError, match="do not fit"):
        writer.write(np.zeros((7, 8), np.uint8))
    writer.abort()
    assert not list(tmp_path.iterdir())
