"""Synthetic aerial road scenes: the stand-in for DeepGlobe/SpaceNet/Massachusetts here.

No real dataset can be downloaded on these machines, so tests, the demo and the benchmarks
train and measure on scenes drawn here. They are built to carry the difficulties the paper's
model addresses: curved roads of varied width, junctions, textured land cover with fields and
buildings, and trees whose crowns and shadows hide parts of roads (the label still runs under
them). Two label styles match the public datasets: ``boundary`` (the full road surface, like
DeepGlobe) and ``centerline`` (a fixed-width line along the road axis, like Massachusetts and
rasterised SpaceNet centre-lines). Everything is numpy + Pillow and deterministic per seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..fileio import save_png, write_json

LabelStyle = Literal["boundary", "centerline"]
LABEL_STYLES: tuple[str, ...] = ("boundary", "centerline")

# Land-cover palettes (RGB): vegetation, arid, urban. Roads: asphalt, concrete, dirt.
_LAND = np.array([[78, 102, 58], [150, 130, 96], [118, 116, 110]], dtype=np.float32)
_ROAD = np.array([[62, 62, 66], [168, 166, 160], [138, 112, 84]], dtype=np.float32)


@dataclass(frozen=True)
class Road:
    """A road as a polyline (x, y pixel points) and its width in pixels."""

    points: list[tuple[float, float]]
    width: float


def _noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Smooth value noise in [-1, 1]: a random grid of ``cell``-pixel spacing upsampled bicubically."""
    gh, gw = max(2, h // cell + 2), max(2, w // cell + 2)
    grid = rng.uniform(-1, 1, size=(gh, gw)).astype(np.float32)
    img = Image.fromarray(grid, mode="F").resize((gw * cell, gh * cell), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32)[:h, :w]


def _density(h: int, w: int, scale: float) -> float:
    """Scene area in units of a 256² scene at this scale: object counts grow with it."""
    return max(1.0, h * w / (256.0 * scale) ** 2)


def _background(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    kind = rng.integers(len(_LAND))
    base = _LAND[kind] + rng.normal(0, 8, 3)
    tex = (
        0.55 * _noise(rng, h, w, max(4, int(64 * scale)))
        + 0.30 * _noise(rng, h, w, max(2, int(16 * scale)))
        + 0.15 * _noise(rng, h, w, max(1, int(4 * scale)))
    )
    img = base[None, None, :] * (1 + 0.22 * tex[..., None])
    # Fields: a few tinted quadrilaterals, as parcels look from above.
    layer = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(layer, "RGBA")
    for _ in range(round(rng.integers(2, 7) * _density(h, w, scale))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.1, 0.35) * min(h, w)
        angles = np.sort(rng.uniform(0, 2 * np.pi, 4))
        poly = [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in angles]
        tint = tuple(int(c) for c in np.clip(_LAND[rng.integers(len(_LAND))] + rng.normal(0, 15, 3), 0, 255))
        draw.polygon(poly, fill=(*tint, int(rng.integers(60, 140))))
    # Buildings: bright or dark roofs.
    for _ in range(round(rng.integers(0, 12) * _density(h, w, scale))):
        bw, bh = rng.uniform(6, 22, 2) * scale
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        roof = int(rng.choice([90, 170, 200]))
        draw.rectangle([x, y, x + bw, y + bh], fill=(roof, roof - 10, roof - 20, 255))
    return np.asarray(layer, dtype=np.float32)


def _curve(
    rng: np.random.Generator, h: int, w: int, start: tuple[float, float], heading: float, step: float
) -> list[tuple[float, float]]:
    """A smooth random walk from ``start``: heading changes drift slowly, so roads bend, not zigzag."""
    x, y = start
    points = [(x, y)]
    turn = 0.0
    curviness = rng.uniform(0.002, 0.02) * step / 6.0
    margin = 0.1 * max(h, w)
    for _ in range(int(4 * (h + w) / step)):
        turn = float(np.clip(0.9 * turn + rng.normal(0, curviness), -0.04, 0.04))
        heading += turn
        x += step * np.cos(heading)
        y += step * np.sin(heading)
        points.append((x, y))
        if not (-margin <= x <= w + margin and -margin <= y <= h + margin):
            break
    return points


def _roads(rng: np.random.Generator, h: int, w: int, scale: float) -> list[Road]:
    """Main roads cross the scene from border to border; side roads branch off them (junctions)."""
    roads: list[Road] = []
    step = max(2.0, 6.0 * scale)
    for _ in range(round(rng.integers(1, 4) * np.sqrt(_density(h, w, scale)))):
        side = rng.integers(4)
        t = rng.uniform(0.1, 0.9)
        start, heading = [
            ((t * w, 0.0), np.pi / 2),
            ((w - 1.0, t * h), np.pi),
            ((t * w, h - 1.0), -np.pi / 2),
            ((0.0, t * h), 0.0),
        ][side]
        heading += rng.normal(0, 0.35)
        roads.append(Road(_curve(rng, h, w, start, heading, step), rng.uniform(5, 12) * scale))
    for _ in range(round(rng.integers(0, 4) * np.sqrt(_density(h, w, scale)))):
        parent = roads[rng.integers(len(roads))]
        n = len(parent.points)
        i = min(int(rng.integers(n // 5, max(n // 5 + 1, 4 * n // 5))), n - 2)
        (x0, y0), (x1, y1) = parent.points[i], parent.points[i + 1]
        heading = np.arctan2(y1 - y0, x1 - x0) + rng.choice([-1, 1]) * rng.uniform(np.pi / 3, 2 * np.pi / 3)
        roads.append(Road(_curve(rng, h, w, (x0, y0), heading, step), rng.uniform(3, 8) * scale))
    return roads


@dataclass(frozen=True)
class SyntheticScene:
    """A drawn scene: uint8 H x W x 3 image, bool H x W road label, and the roads' centre-lines
    (the ground truth a road graph is scored against).
    """

    image: np.ndarray
    label: np.ndarray
    roads: list[Road]


def render_road_scene(
    height: int, width: int, rng: np.random.Generator, style: LabelStyle = "boundary", scale: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one scene: returns (uint8 H x W x 3 image, bool H x W road label); see :func:`render_scene`."""
    scene = render_scene(height, width, rng, style, scale)
    return scene.image, scene.label


def render_scene(
    height: int, width: int, rng: np.random.Generator, style: LabelStyle = "boundary", scale: float | None = None
) -> SyntheticScene:
    """Draw one scene with its roads.

    ``scale`` sets the size of roads, trees and texture (1.0 = as in a 256² scene); by default
    it grows with the scene, so every scene looks alike. Pass a fixed scale for a large scene at
    the ground resolution of small training tiles.
    """
    if style not in LABEL_STYLES:
        raise ValueError(f"unknown label style {style!r}; use one of {LABEL_STYLES}")
    h, w = height, width
    scale = scale if scale is not None else max(h, w) / 256.0
    img = Image.fromarray(np.clip(_background(rng, h, w, scale), 0, 255).astype(np.uint8))
    label = Image.new("L", (w, h), 0)
    draw, ldraw = ImageDraw.Draw(img), ImageDraw.Draw(label)
    centre_width = max(2, int(round(3 * scale)))
    roads = _roads(rng, h, w, scale)
    for road in roads:
        colour = np.clip(_ROAD[rng.integers(len(_ROAD))] + rng.normal(0, 10, 3), 0, 255)
        width_px = max(2, int(round(road.width)))
        # Darker verge first, then the surface: a visible but soft road edge.
        draw.line(road.points, fill=tuple(int(c * 0.8) for c in colour), width=width_px + 2, joint="curve")
        draw.line(road.points, fill=tuple(int(c) for c in colour), width=width_px, joint="curve")
        if width_px >= 8 and rng.random() < 0.5:
            dashes = road.points[::2]
            for a, b in zip(dashes[::2], dashes[1::2]):
                draw.line([a, b], fill=(225, 225, 215), width=max(1, width_px // 8))
        label_width = width_px if style == "boundary" else centre_width
        ldraw.line(road.points, fill=255, width=label_width, joint="curve")
    arr = np.asarray(img, dtype=np.float32)
    # Surface texture over everything (roads too), so roads are not flat colour.
    arr *= (1 + 0.06 * _noise(rng, h, w, max(1, int(3 * scale))))[..., None]
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img, "RGBA")
    # Trees: shadow first (offset to the south-east), then the crown; both hide the road below.
    sun = rng.uniform(0.3, 0.8) * np.array([1.0, 1.0])
    for _ in range(round(rng.integers(5, 40) * _density(h, w, scale))):
        r = rng.uniform(2.5, 7) * scale
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        sx, sy = x + sun[0] * r * 1.6, y + sun[1] * r * 1.6
        draw.ellipse([sx - r, sy - r, sx + r, sy + r], fill=(15, 20, 15, 150))
        g = int(rng.integers(55, 100))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(int(g * 0.6), g, int(g * 0.5), 255))
    img = img.filter(ImageFilter.GaussianBlur(radius=0.6 * min(scale, 2.0)))
    noisy = np.asarray(img, dtype=np.float32) + rng.normal(0, 3.0, (h, w, 3))
    return SyntheticScene(np.clip(noisy, 0, 255).astype(np.uint8), np.asarray(label) > 127, roads)


def write_synthetic_dataset(out: str | Path, count: int, size: int, seed: int, style: LabelStyle = "boundary") -> Path:
    """Write ``count`` scenes in the plain folder layout (``images/`` + ``masks/``, PNG).

    Scene ``i`` depends only on ``(seed, i)``: growing ``count`` keeps earlier scenes identical.
    """
    out = Path(out)
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        image, label = render_road_scene(size, size, rng, style)
        name = f"synth_{i:05d}.png"
        save_png(out / "images" / name, image)
        save_png(out / "masks" / name, label.astype(np.uint8) * 255)
    write_json(
        out / "synth.json",
        {"generator": "sam2ms.synth", "count": count, "size": size, "seed": seed, "style": style, "layout": "folder"},
    )
    return out
