"""The torch Dataset: read a window, augment (seeded per epoch and sample), normalise.

Augmentation randomness comes from ``numpy.random.default_rng([seed, epoch, index])`` and not
from global RNG state, so a sample looks the same whatever the number of loader workers or DDP
ranks, and a resumed run sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from ..preprocess import IMAGENET_MEAN, IMAGENET_STD, read_mask, read_rgb
from .layouts import Sample


@dataclass(frozen=True)
class Augment:
    """The paper's augmentation: rotation within +-30 degrees, horizontal flip with p = 0.5.

    ``vflip`` (0 by default) adds the authors' vertical flip."""

    rotation: float = 30.0
    hflip: float = 0.5
    vflip: float = 0.0


def load_sample(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """The window's uint8 RGB image and boolean mask."""
    image, mask = read_rgb(sample.image), read_mask(sample.mask)
    if sample.window is not None:
        left, top, size = sample.window
        image = image[top:top + size, left:left + size]
        mask = mask[top:top + size, left:left + size]
    return image, mask


class RoadDataset(Dataset):
    """Samples resized to ``image_size`` (image bilinear, mask nearest: labels stay binary)."""

    def __init__(self, samples: list[Sample], image_size: int, augment: Augment | None = None,
                 seed: int = 0) -> None:
        self.samples = samples
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

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        image, mask = load_sample(self.samples[index])
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
