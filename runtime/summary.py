"""The summary of one ``sam2ms-infer`` run: one record, one builder of its JSON.

Both the threads of one machine (:mod:`.pipeline`) and Ray (:mod:`.ray_pipeline`) fill the same
:class:`RunSummary`, so the JSON a user scripts against (``--json``), the demo and the tests read
has one shape whichever ran it; the Ray run adds its ``ray`` section, the local run its threads'
busy fractions and each scene's radiometric conversion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sam2ms.preprocess import input_bytes_per_tile

from .backends.base import ModelInfo


@dataclass
class RunSummary:
    """What a run did. ``seconds`` is the wall time; ``pixels`` the scene pixels written."""

    model: dict[str, Any]
    input: str
    output: str
    info: ModelInfo
    settings: dict[str, Any]
    radiometry: dict[str, Any] | None
    files: int
    skipped_existing: int
    removed_temp_files: int
    stale_lock: Any
    tiles: int
    empty_windows: int
    pixels: int
    seconds: float
    stage_seconds: dict[str, float]
    failures: list[dict[str, str]]
    outputs: list[str]
    thread_busy: dict[str, dict[str, float]] | None = None  # the local run's thread roles
    conversions: list[dict[str, Any]] | None = None  # the local run's resolved band conversions
    ray: dict[str, Any] | None = field(default=None)  # the Ray run's blocks and actors

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` summary (``failures`` non-empty -> exit 1)."""
        wall = self.seconds
        out: dict[str, Any] = {
            "model": self.model,
            "input": self.input,
            "output": self.output,
            "files": self.files,
            "skipped_existing": self.skipped_existing,
            "removed_temp_files": self.removed_temp_files,
            "stale_lock": self.stale_lock,
            "failed": len(self.failures),
            "tiles": self.tiles,
            "empty_windows": self.empty_windows,
            "seconds": round(wall, 3),
            "tiles_per_s": self.tiles / wall if wall else 0.0,
            "input_bytes_per_tile": input_bytes_per_tile(self.info.input_format, self.info.tile),
            "megapixels_per_s": self.pixels / 1e6 / wall if wall else 0.0,
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }
        if self.thread_busy is not None:
            out["thread_busy"] = self.thread_busy
        out["settings"] = self.settings
        out["radiometry"] = self.radiometry
        if self.conversions is not None:
            out["conversions"] = self.conversions
        if self.ray is not None:
            out["ray"] = self.ray
        out["outputs"] = self.outputs
        out["failures"] = self.failures
        return out
