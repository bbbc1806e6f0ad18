"""Dataset folder layouts: DeepGlobe, SpaceNet, Massachusetts and a plain images/ + masks/ folder.

Discovery reads only file headers (size, mode), so a bad pair is reported by name before any
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

from PIL import Image, UnidentifiedImageError

from ..errors import UsageError
from ..preprocess import IMAGE_SUFFIXES

LAYOUTS = ("deepglobe", "spacenet", "massachusetts", "folder")
DEFAULT_PATCH = 1024


@dataclass(frozen=True)
class Sample:
    """One training/evaluation example: a window (left, top, size) of an image and its mask."""

    image: Path
    mask: Path
    window: tuple[int, int, int] | None = None  # None = the whole image

    @property
    def name(self) -> str:
        if self.window is None:
            return self.image.stem
        left, top, size = self.window
        return f"{self.image.stem}_{left}_{top}_{size}"


def patch_origins(length: int, patch: int) -> list[int]:
    """Start offsets of the fewest ``patch`` windows covering ``length``, evenly spread, the last
    snapped to the end (1300 -> [0, 276]; 1500 -> [0, 476]; 1024 -> [0])."""
    if length <= patch:
        return [0]
    n = math.ceil((length - patch) / patch) + 1
    return [round(i * (length - patch) / (n - 1)) for i in range(n)]


def _header(path: Path) -> tuple[tuple[int, int], str]:
    try:
        with Image.open(path) as img:
            return img.size, img.mode
    except (UnidentifiedImageError, OSError) as exc:
        raise UsageError(f"{path}: cannot read as an image ({exc}); replace or remove the file") from None


def _check_pair(image: Path, mask: Path) -> tuple[int, int]:
    (w, h), mode = _header(image)
    if mode not in ("RGB", "RGBA"):
        raise UsageError(f"{image}: image has mode {mode!r}, not RGB; convert it to 8-bit RGB")
    msize, _ = _header(mask)
    if msize != (w, h):
        raise UsageError(f"{mask}: mask is {msize[0]}x{msize[1]} but its image {image.name} is {w}x{h}; "
                         "masks must have their image's size")
    return w, h


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _find_mask(stem: str, folder: Path, image: Path, *, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> Path:
    for suffix in suffixes:
        for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    raise UsageError(f"{image}: no mask found (looked for {folder / stem}.png/.tif/...); "
                     "add the mask or remove the image")


def _windows(pairs: list[tuple[Path, Path]], patch: int | None) -> list[list[Sample]]:
    """Check every pair and cut it into windows; one inner list per source image."""
    sources = []
    for image, mask in pairs:
        w, h = _check_pair(image, mask)
        if patch is None:
            sources.append([Sample(image, mask)])
            continue
        if w < patch or h < patch:
            raise UsageError(f"{image}: {w}x{h} is smaller than the {patch}px patch; pass a smaller --patch")
        sources.append([Sample(image, mask, (x, y, patch)) for y in patch_origins(h, patch)
                        for x in patch_origins(w, patch)])
    return sources


def _folder_pairs(root: Path) -> list[tuple[Path, Path]]:
    images, masks = root / "images", root / "masks"
    for d in (images, masks):
        if not d.is_dir():
            raise UsageError(f"{root}: layout 'folder' needs {d.name}/ beside images/ and masks/; "
                             "or choose another --layout")
    return [(p, _find_mask(p.stem, masks, p)) for p in _images_in(images)]


def _deepglobe_pairs(root: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for image in sorted(root.rglob("*_sat.jpg")):
        mask = image.with_name(image.name[: -len("_sat.jpg")] + "_mask.png")
        if not mask.is_file():
            raise UsageError(f"{image}: no mask {mask.name} beside it (DeepGlobe pairs *_sat.jpg with "
                             "*_mask.png); add it or remove the image")
        pairs.append((image, mask))
    return pairs


def _spacenet_pairs(root: Path) -> list[tuple[Path, Path]]:
    """SpaceNet roads: images/ (e.g. RGB-PanSharpen_AOI_2_Vegas_img1.tif, 8-bit RGB) and masks/
    (the rasterised road labels); pairs match by the ``AOI_*_img<N>`` id, or by the same stem."""
    images, masks = root / "images", root / "masks"
    for d in (images, masks):
        if not d.is_dir():
            raise UsageError(f"{root}: layout 'spacenet' needs images/ and masks/ folders (missing {d.name}/)")
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
            raise UsageError(f"{image}: no mask in {masks} with the same stem or AOI image id; "
                             "add it or remove the image")
        pairs.append((image, mask))
    return pairs


def _massachusetts_pairs(root: Path) -> list[tuple[Path, Path]]:
    """Massachusetts Roads: <split>/ (*.tiff) with <split>_labels/ (*.tif) for train/val/test."""
    pairs = []
    for labels in sorted(root.glob("*_labels")):
        images = root / labels.name[: -len("_labels")]
        if labels.is_dir() and images.is_dir():
            pairs += [(p, _find_mask(p.stem, labels, p, suffixes=(".tif", ".tiff", ".png")))
                      for p in _images_in(images)]
    if not pairs and not any(root.glob("*_labels")):
        raise UsageError(f"{root}: layout 'massachusetts' needs split folders like train/ with "
                         "train_labels/ (as in the dataset's tiff/ folder)")
    return pairs


_PAIR_FINDERS = {
    "folder": _folder_pairs,
    "deepglobe": _deepglobe_pairs,
    "spacenet": _spacenet_pairs,
    "massachusetts": _massachusetts_pairs,
}


def discover(root: str | Path, layout: str, patch: int | None = None) -> list[list[Sample]]:
    """All samples of a dataset folder, grouped by source image.

    ``patch`` defaults to 1024 for SpaceNet and Massachusetts (cut like the paper) and to none
    (whole images) for DeepGlobe and plain folders; pass it to force either.
    """
    root = Path(root)
    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    if not root.is_dir():
        raise UsageError(f"{root}: data folder not found")
    pairs = _PAIR_FINDERS[layout](root)
    if not pairs:
        raise UsageError(f"{root}: no image/mask pairs found for layout '{layout}'; check --layout "
                         "(deepglobe: *_sat.jpg + *_mask.png; folder: images/ + masks/)")
    if patch is None and layout in ("spacenet", "massachusetts"):
        patch = DEFAULT_PATCH
    return _windows(pairs, patch)


def paper_split(sources: list[list[Sample]], seed: int = 0, train_fraction: float = 0.7,
                group: int = 100) -> tuple[list[Sample], list[Sample]]:
    """The paper's split: shuffle source images (seeded), take groups of 100, and put 70% of each
    group in train and 30% in test. Returns (train, test) samples."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(sources))
    train: list[Sample] = []
    test: list[Sample] = []
    for start in range(0, len(order), group):
        chunk = order[start:start + group]
        n_train = int(round(train_fraction * len(chunk)))
        if len(chunk) > 1:
            n_train = min(max(n_train, 1), len(chunk) - 1)
        for i in chunk[:n_train]:
            train += sources[i]
        for i in chunk[n_train:]:
            test += sources[i]
    return train, test
