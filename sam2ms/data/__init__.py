"""Datasets: folder layouts, the paper's split, augmentation and the synthetic road generator."""

from .layouts import DEFAULT_PATCH, LAYOUTS, Sample, discover, paper_split, patch_origins
from .synth import LABEL_STYLES, render_road_scene, write_synthetic_dataset

__all__ = [
    "DEFAULT_PATCH",
    "LABEL_STYLES",
    "LAYOUTS",
    "Sample",
    "discover",
    "paper_split",
    "patch_origins",
    "render_road_scene",
    "write_synthetic_dataset",
]
