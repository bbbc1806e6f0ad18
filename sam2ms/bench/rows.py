"""One benchmark measurement as a typed record (:class:`BenchRow`), and its ratios to the PyTorch
rows it is compared with. The report holds each row's :meth:`BenchRow.to_json`; its JSON Schema is
:data:`sam2ms.bench.report.ROW_SCHEMA` (same keys, same order as before the rows were typed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Ratio:
    """A row against another of the same batch: throughput and p50 latency ratios, and which row."""

    throughput: float
    latency_p50: float
    subject: str


@dataclass
class BenchRow:
    """What one (subject, batch, streams) measurement found. Built by the runner in the subject's
    process (it crosses back pickled); the ratios are filled once every row is in
    (:func:`sam2ms.bench.runner.add_ratios`).
    """

    subject: str
    backend: str
    kind: str
    precision: str
    reference: bool  # the eager FP32 PyTorch row every accuracy figure refers to
    device: str
    batch: int
    streams: int
    latency_ms: dict[str, float]  # mean, p50, p90, p99, min, max
    throughput: dict[str, float]  # tiles_per_s, megapixels_per_s
    split_ms: dict[str, float] | None  # h2d, compute, d2h where the lane measures them
    memory_mb: dict[str, float | None]  # host_rss_increase, device_peak
    checks_passed: bool | None  # the artifact's export checks and its backend's gate; None: none ran
    flops_per_tile: float | None
    peak_tflops: float | None
    mfu: float | None
    pid: int
    accuracy: dict[str, Any]  # against the reference's probabilities, and F1 against the labels
    vs_reference: Ratio | None = None
    vs_best_pytorch: Ratio | None = None
    gflops_per_s: float | None = None

    @property
    def tiles_per_s(self) -> float:
        """The row's throughput in tiles per second."""
        return float(self.throughput["tiles_per_s"])

    def ratio_to(self, base: BenchRow | None) -> Ratio | None:
        """This row against ``base`` (None without one)."""
        if base is None:
            return None
        return Ratio(self.tiles_per_s / base.tiles_per_s, self.latency_ms["p50"] / base.latency_ms["p50"], base.subject)

    def to_json(self) -> dict[str, Any]:
        """The row as the report holds it (nested records as dicts)."""
        return asdict(self)
