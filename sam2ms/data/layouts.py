"""Dataset folder layouts: DeepGlobe, SpaceNet, Massachusetts and a plain images/ + masks/ folder.

SpaceNet 3 roads is read as distributed: 16-bit GeoTIFFs with GeoJSON centre-lines, in either
naming of its releases (``AOI_2_Vegas/PS-RGB`` + ``geojson_roads``, or ``RGB-PanSharpen`` +
``geojson/spacenetroads``); the centre-lines become masks of ``road_width`` metres when a sample
is loaded (:mod:`sam2ms.labels`). Already rasterised ``images/`` + ``masks/`` work too.

Discovery reads only file headers (size), so a bad pair is reported by name before any
training starts. Large images (SpaceNet 1300², Massachusetts 1500²) are cut into ``patch``-sized
windows as the paper does; windows cover the image with the last one snapped inward, so they
overlap rather than pad. A sample keeps its *source* image, and the split is made over sources
so that overlapping patches of one image never land on both sides of it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..errors import UsageError
from ..geo.radiometry import Radiometry
from ..geo.rasters import raster_size
from ..labels import DEFAULT_ROAD_WIDTH, VECTOR_SUFFIXES
from ..preprocess import IMAGE_SUFFIXES
from ..vectors import read_lines

T = TypeVar("T")  # what a split shuffles: samples, or whatever a test passes

LAYOUTS = ("deepglobe", "spacenet", "massachusetts", "folder")
AUTO = "auto"  # detect the layout from the folder's own markers (detect_layout)
DEFAULT_PATCH = 1024


@dataclass(frozen=True)
class Sample:
    """One training/evaluation example: a window (left, top, size) of an image and its mask."""

    image: Path
    mask: Path  # a raster mask, or GeoJSON centre-lines
    window: tuple[int, int, int] | None = None  # None = the whole image
    road_width: float = DEFAULT_ROAD_WIDTH  # metres, for GeoJSON centre-lines

    @property
    def name(self) -> str:
        """A name unique in the dataset: the image's stem, with the window's place when it is one."""
        if self.window is None:
            return self.image.stem
        left, top, size = self.window
        return f"{self.image.stem}_{left}_{top}_{size}"


def patch_origins(length: int, patch: int) -> list[int]:
    """Start offsets of the fewest ``patch`` windows covering ``length``, evenly spread, the last
    snapped to the end (1300 -> [0, 276]; 1500 -> [0, 476]; 1024 -> [0]).
    """
    if length <= patch:
        return [0]
    n = math.ceil((length - patch) / patch) + 1
    return [round(i * (length - patch) / (n - 1)) for i in range(n)]


def _check_pair(image: Path, mask: Path, radiometry: Radiometry) -> tuple[int, int]:
    w, h = raster_size(image, radiometry)
    if mask.suffix.lower() in VECTOR_SUFFIXES:
        read_lines(mask, labels=True)
        return w, h
    msize = raster_size(mask)
    if msize != (w, h):
        raise UsageError(
            f"{mask}: mask is {msize[0]}x{msize[1]} but its image {image.name} is {w}x{h}; "
            "masks must have their image's size"
        )
    return w, h


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _find_mask(stem: str, folder: Path, image: Path, *, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> Path:
    for suffix in suffixes:
        for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    raise UsageError(
        f"{image}: no mask found (looked for {folder / stem}.png/.tif/...); add the mask or remove the image"
    )


def _windows(
    pairs: list[tuple[Path, Path]], patch: int | None, road_width: float, radiometry: Radiometry
) -> list[list[Sample]]:
    """Check every pair and cut it into windows; one inner list per source image."""
    sources = []
    for image, mask in pairs:
        w, h = _check_pair(image, mask, radiometry)
        if patch is None:
            sources.append([Sample(image, mask, road_width=road_width)])
            continue
        if w < patch or h < patch:
            raise UsageError(f"{image}: {w}x{h} is smaller than the {patch}px patch; pass a smaller --patch")
        sources.append(
            [
                Sample(image, mask, (x, y, patch), road_width)
                for y in patch_origins(h, patch)
                for x in patch_origins(w, patch)
            ]
        )
    return sources


def _folder_pairs(root: Path) -> list[tuple[Path, Path]]:
    images, masks = root / "images", root / "masks"
    for d in (images, masks):
        if not d.is_dir():
            raise UsageError(
                f"{root}: layout 'folder' needs {d.name}/ beside images/ and masks/; or choose another --layout"
            )
    return [(p, _find_mask(p.stem, masks, p)) for p in _images_in(images)]


def _deepglobe_pairs(root: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for image in sorted(root.rglob("*_sat.jpg")):
        mask = image.with_name(image.name[: -len("_sat.jpg")] + "_mask.png")
        if not mask.is_file():
            raise UsageError(
                f"{image}: no mask {mask.name} beside it (DeepGlobe pairs *_sat.jpg with "
                "*_mask.png); add it or remove the image"
            )
        pairs.append((image, mask))
    return pairs


# SpaceNet 3 as released: (image folder, its label folder relative to the image folder's parent)
SPACENET_RELEASES = (("PS-RGB", "geojson_roads"), ("RGB-PanSharpen", "geojson/spacenetroads"))


def spacenet_id(stem: str) -> tuple[str, str] | None:
    """(AOI, image number) of a SpaceNet file stem in any release's naming: ``RGB-PanSharpen_AOI_2_Vegas_img1``,
    ``SN3_roads_train_AOI_2_Vegas_PS-RGB_img1`` and ``spacenetroads_AOI_2_Vegas_img1`` -> (AOI_2_Vegas, img1).
    """
    m = re.search(r"(AOI_\d+_[A-Za-z]+).*_(img\d+)$", stem)
    return (m.group(1), m.group(2)) if m else None


def _spacenet_raw_pairs(root: Path) -> list[tuple[Path, Path]]:
    """SpaceNet 3 as distributed: images in PS-RGB/ or RGB-PanSharpen/ folders, GeoJSON centre-lines
    in the release's label folder beside them, matched by AOI and image number.
    """
    pairs = []
    for image_dir, label_rel in SPACENET_RELEASES:
        for images in sorted(d for d in root.rglob(image_dir) if d.is_dir()):
            labels = images.parent / label_rel
            by_id = {spacenet_id(p.stem): p for p in sorted(labels.glob("*.geojson"))} if labels.is_dir() else {}
            for image in _images_in(images):
                label = by_id.get(spacenet_id(image.stem))
                if label is None:
                    raise UsageError(
                        f"{image}: no GeoJSON centre-lines for it in {labels} (same AOI and img number); "
                        "add the label file or remove the image"
                    )
                pairs.append((image, label))
    return pairs


def _spacenet_pairs(root: Path) -> list[tuple[Path, Path]]:
    """SpaceNet roads: the raw release (see :func:`_spacenet_raw_pairs`), or images/ with already
    rasterised masks/, matched by the ``AOI_*_img<N>`` id or by the same stem.
    """
    images, masks = root / "images", root / "masks"
    if not (images.is_dir() and masks.is_dir()):
        pairs = _spacenet_raw_pairs(root)
        if not pairs:
            raise UsageError(
                f"{root}: layout 'spacenet' needs SpaceNet 3 as released (AOI_*/PS-RGB/ with "
                "geojson_roads/, or RGB-PanSharpen/ with geojson/spacenetroads/) or images/ + masks/"
            )
        return pairs
    by_id: dict[str, Path] = {}
    for m in _images_in(masks):
        by_id[m.stem] = m
        aoi = re.search(r"(AOI_\w+?_img\d+)$", m.stem)
        if aoi:
            by_id[aoi.group(1)] = m
    pairs = []
    for image in _images_in(images):
        aoi = re.search(r"(AOI_\w+?_img\d+)$", image.stem)
        mask = by_id.get(image.stem) or (by_id.get(aoi.group(1)) if aoi else None)
        if mask is None:
            raise UsageError(
                f"{image}: no mask in {masks} with the same stem or AOI image id; add it or remove the image"
            )
        pairs.append((image, mask))
    return pairs


def _massachusetts_pairs(root: Path) -> list[tuple[Path, Path]]:
    """Massachusetts Roads: <split>/ (*.tiff) with <split>_labels/ (*.tif) for train/val/test."""
    pairs = []
    for labels in sorted(root.glob("*_labels")):
        images = root / labels.name[: -len("_labels")]
        if labels.is_dir() and images.is_dir():
            pairs += [
                (p, _find_mask(p.stem, labels, p, suffixes=(".tif", ".tiff", ".png"))) for p in _images_in(images)
            ]
    if not pairs and not any(root.glob("*_labels")):
        raise UsageError(
            f"{root}: layout 'massachusetts' needs split folders like train/ with "
            "train_labels/ (as in the dataset's tiff/ folder)"
        )
    return pairs


_PAIR_FINDERS = {
    "folder": _folder_pairs,
    "deepglobe": _deepglobe_pairs,
    "spacenet": _spacenet_pairs,
    "massachusetts": _massachusetts_pairs,
}


def detect_layout(root: Path) -> str | None:
    """The layout a dataset folder is in, by its markers: ``images/`` + ``masks/`` (folder; also
    rasterised SpaceNet), ``*_sat.jpg`` (DeepGlobe), ``PS-RGB/`` or ``RGB-PanSharpen/`` (SpaceNet as
    released), ``<split>/`` + ``<split>_labels/`` (Massachusetts); None for a folder of plain images.
    """
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return "folder"
    if next(root.rglob("*_sat.jpg"), None) is not None:
        return "deepglobe"
    if any(d.is_dir() for name, _ in SPACENET_RELEASES for d in root.rglob(name)):
        return "spacenet"
    if any(d.is_dir() and (root / d.name[: -len("_labels")]).is_dir() for d in root.glob("*_labels")):
        return "massachusetts"
    return None


def resolve_layout(root: Path, layout: str) -> str:
    """``layout``, or with ``auto`` the one :func:`detect_layout` finds (a UsageError when none)."""
    if layout != AUTO:
        if layout not in LAYOUTS:
            raise UsageError(f"unknown layout {layout!r}; use {AUTO} or one of {', '.join(LAYOUTS)}")
        return layout
    found = detect_layout(root)
    if found is None:
        raise UsageError(
            f"{root}: no dataset layout recognised (images/ + masks/, *_sat.jpg + *_mask.png, "
            "SpaceNet's PS-RGB/, Massachusetts' <split>_labels/); pass --layout"
        )
    return found


def layout_images(root: Path, layout: str) -> tuple[list[Path], int]:
    """The images of a dataset in ``layout`` (never a file the layout calls a label) and the number
    of label files left out: what calibration samples its tiles from.
    """
    pairs = _PAIR_FINDERS[layout](root)
    return list(dict.fromkeys(image for image, _ in pairs)), len({label for _, label in pairs})


def discover(
    root: str | Path,
    layout: str,
    patch: int | None = None,
    road_width: float = DEFAULT_ROAD_WIDTH,
    radiometry: Radiometry | None = None,
) -> list[list[Sample]]:
    """All samples of a dataset folder, grouped by source image.

    ``layout`` may be ``auto`` (:func:`resolve_layout`). ``patch`` defaults to 1024 for SpaceNet
    and Massachusetts (cut like the paper) and to none
    (whole images) for DeepGlobe and plain folders; pass it to force either. ``road_width``
    (metres) widens GeoJSON centre-lines into masks; every image must offer the bands
    ``radiometry`` (default: the default conversion) chooses.
    """
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"{root}: data folder not found")
    layout = resolve_layout(root, layout)
    pairs = _PAIR_FINDERS[layout](root)
    if not pairs:
        raise UsageError(
            f"{root}: no image/mask pairs found for layout '{layout}'; check --layout "
            "(deepglobe: *_sat.jpg + *_mask.png; folder: images/ + masks/)"
        )
    if patch is None and layout in ("spacenet", "massachusetts"):
        patch = DEFAULT_PATCH
    if road_width <= 0:
        raise UsageError(f"--road-width {road_width}: must be a positive width in metres")
    return _windows(pairs, patch, road_width, radiometry or Radiometry())


def paper_split(
    sources: list[list[T]], seed: int = 0, train_fraction: float = 0.7, group: int = 100
) -> tuple[list[T], list[T]]:
    """The paper's split: shuffle source images (seeded), take groups of 100, and put 70% of each
    group in train and 30% in test. Returns (train, test) samples.
    """
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(sources))
    train: list[T] = []
    test: list[T] = []
    for start in range(0, len(order), group):
        chunk = order[start : start + group]
        n_train = int(round(train_fraction * len(chunk)))
        if len(chunk) > 1:
            n_train = min(max(n_train, 1), len(chunk) - 1)
        for i in chunk[:n_train]:
            train += sources[i]
        for i in chunk[n_train:]:
            test += sources[i]
    return train, test
