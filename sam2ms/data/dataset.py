"""The torch Dataset: read a window, augment (seeded per epoch and sample), normalise.

Augmentation randomness comes from ``numpy.random.default_rng([seed, epoch, index])`` and not
from global RNG state, so a sample looks the same whatever the number of loader workers or DDP
ranks, and a resumed run sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..geo.radiometry import Radiometry, Stretch
from ..geo.rasters import open_scene
from ..labels import VECTOR_SUFFIXES, rasterize_roads, read_mask
from ..preprocess import IMAGENET_MEAN, IMAGENET_STD
from .layouts import Sample


@dataclass(frozen=True)
class Augment:
    """The paper's augmentation: rotation within +-30 degrees, horizontal flip with p = 0.5.

    ``vflip`` (0 by default) adds the authors' vertical flip.
    """

    rotation: float = 30.0
    hflip: float = 0.5
    vflip: float = 0.0


class RoadItem(TypedDict):
    """One training sample as the data loader collates it."""

    image: torch.Tensor  # normalised float32 3 x S x S
    mask: torch.Tensor  # float32 1 x S x S in {0, 1}
    index: int


def load_sample(
    sample: Sample, radiometry: Radiometry | None = None, cache: dict[Path, Stretch] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The window's uint8 RGB image (converted by the shared radiometry, exactly as the runtime
    converts it) and boolean mask; ``cache`` keeps each scene's stretch across its patches.
    """
    scene = open_scene(sample.image, radiometry, cache)
    try:
        left, top, size = sample.window or (0, 0, max(scene.height, scene.width))
        image, _ = scene.read(top, left, min(size, scene.height - top), min(size, scene.width - left))
        if sample.mask.suffix.lower() in VECTOR_SUFFIXES:
            profile = scene.profile or {}
            mask = rasterize_roads(
                sample.mask, scene.height, scene.width, profile.get("transform"), profile.get("crs"), sample.road_width
            )
        else:
            mask = read_mask(sample.mask)
    finally:
        scene.close()
    return image, mask[top : top + size, left : left + size]


class RoadDataset(Dataset[RoadItem]):
    """Samples resized to ``image_size`` (image bilinear, mask nearest: labels stay binary)."""

    def __init__(
        self,
        samples: list[Sample],
        image_size: int,
        augment: Augment | None = None,
        seed: int = 0,
        radiometry: Radiometry | None = None,
    ) -> None:
        self.samples = samples
        self.radiometry = radiometry
        self._stretches: dict[Path, Stretch] = {}
        self.image_size = image_size
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self._mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def set_epoch(self, epoch: int) -> None:
        """Choose the augmentation draw (call before each epoch, as with DistributedSampler)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``index`` as read: uint8 RGB image and boolean mask at the label's resolution."""
        return load_sample(self.samples[index], self.radiometry, self._stretches)

    def __getitem__(self, index: int) -> RoadItem:
        return self.to_tensors(*self.load(index), index)

    def to_tensors(self, image: np.ndarray, mask: np.ndarray, index: int) -> RoadItem:
        """Resize, augment (seeded by epoch and ``index``) and normalise a loaded sample."""
        img = torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div_(255.0)
        lbl = torch.from_numpy(np.array(mask)).unsqueeze(0).float()
        size = [self.image_size, self.image_size]
        img = TF.resize(img, size, interpolation=InterpolationMode.BILINEAR, antialias=True)
        lbl = TF.resize(lbl, size, interpolation=InterpolationMode.NEAREST)
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            angle = float(rng.uniform(-self.augment.rotation, self.augment.rotation))
            hflip, vflip = rng.random() < self.augment.hflip, rng.random() < self.augment.vflip
            if angle:
                img = TF.rotate(img, angle, interpolation=InterpolationMode.BILINEAR)
                lbl = TF.rotate(lbl, angle, interpolation=InterpolationMode.NEAREST)
            if hflip:
                img, lbl = TF.horizontal_flip(img), TF.horizontal_flip(lbl)
            if vflip:
                img, lbl = TF.vertical_flip(img), TF.vertical_flip(lbl)
        img = (img.clamp_(0, 1) - self._mean) / self._std
        return {"image": img, "mask": lbl, "index": index}
