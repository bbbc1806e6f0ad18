"""Evaluation: predict at the model's input size, score at the label's own resolution."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..data.dataset import RoadDataset
from ..data.layouts import Sample
from ..geo.radiometry import Radiometry
from ..metrics import RoadMetrics
from ..progress import progress_bar
from .distributed import Dist


class _EvalSet(Dataset[tuple[torch.Tensor, np.ndarray]]):
    """Resized, normalised input plus the untouched label window."""

    def __init__(self, samples: list[Sample], image_size: int, radiometry: Radiometry | None) -> None:
        self.inputs = RoadDataset(samples, image_size, radiometry=radiometry)
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, np.ndarray]:
        image_u8, mask = self.inputs.load(i)
        image = self.inputs.to_tensors(image_u8, mask, i)["image"]
        assert isinstance(image, torch.Tensor)
        return image, mask


def _collate(items: list[tuple[torch.Tensor, np.ndarray]]) -> tuple[torch.Tensor, list[np.ndarray]]:
    return torch.stack([x for x, _ in items]), [m for _, m in items]


@torch.no_grad()
def predict_probabilities(model: nn.Module, images: torch.Tensor, amp_dtype: torch.dtype | None = None) -> torch.Tensor:
    """sigmoid(logits) in float32 for a normalised batch, under autocast when asked."""
    device = images.device
    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        logits = model(images)
    return torch.sigmoid(logits.float())


def _road_scores(sample: Sample, mask: np.ndarray, prob: np.ndarray) -> dict[str, Any]:
    from ..roads.samples import sample_graphs
    from ..roads.score import graph_scores

    return graph_scores(*sample_graphs(sample, mask, prob))


def evaluate(
    model: nn.Module,
    samples: list[Sample],
    image_size: int,
    *,
    device: torch.device,
    batch: int = 2,
    workers: int = 0,
    amp_dtype: torch.dtype | None = None,
    dist: Dist | None = None,
    show_progress: bool = True,
    radiometry: Radiometry | None = None,
    with_apls: bool = False,
) -> dict[str, float]:
    """The paper's metrics over ``samples`` (sharded over DDP ranks when ``dist`` is given), read
    with ``radiometry`` (the model's conversion); ``with_apls`` adds APLS (mean and lowest over
    the windows) and TOPO (summed counts) of each prediction's road graph against its label's
    (:mod:`sam2ms.roads.samples`: SpaceNet GeoJSON where the layout has it, metres where the
    scene is georeferenced).
    """
    dist = dist or Dist.single()
    mine = samples[dist.rank :: dist.world]
    loader = DataLoader(
        _EvalSet(mine, image_size, radiometry), batch_size=batch, num_workers=workers, collate_fn=_collate
    )
    was_training = model.training
    model.eval()
    acc = RoadMetrics()
    graph_scores: list[dict[str, Any]] = []
    pending = iter(mine)  # the loader keeps the samples' order
    with progress_bar("eval", total=len(loader), enabled=show_progress and dist.is_main) as bar:
        for images, masks in loader:
            probs = predict_probabilities(model, images.to(device), amp_dtype)
            for prob, mask in zip(probs, masks):
                prob = F.interpolate(prob[None], size=mask.shape, mode="bilinear", align_corners=False)
                p = prob[0, 0].cpu().numpy()
                acc.update(p, mask)
                sample = next(pending)
                if with_apls:
                    graph_scores.append(_road_scores(sample, mask, p))
            bar.advance()
    model.train(was_training)
    gathered = dist.gather_objects((acc, graph_scores))
    for other, _ in gathered:
        if other is not acc:
            acc.merge(other)
    metrics = acc.compute()
    if with_apls:
        from ..roads.score import summarise

        metrics.update(summarise([s for _, part in gathered for s in part]))
    return metrics
