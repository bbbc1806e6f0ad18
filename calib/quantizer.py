"""The contract every INT8 quantiser keeps (:class:`Quantizer`): ONNX Runtime's
(:mod:`.quantize`) and NVIDIA ModelOpt's (:mod:`.modelopt_quantizer`) both implement it, and
:func:`.quantize.open_quantizer` picks one by name.
"""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import onnx

from sam2ms.progress import Bar

from .graph import QUANTIZED_OPS, default_exclusions, module_names


class Quantizer(ABC):
    """One FP32 model: prepared once, calibrated once, then written as Q/DQ INT8 with any extra set
    of nodes kept in float. A context manager (it owns a temporary folder).

    Subclasses say how the model is prepared, how ranges are collected and how the INT8 graph is
    written; the exclusions, the candidates for ``--auto-exclude`` and the report are shared.
    """

    name = "?"

    def __init__(
        self, fp32: str | Path, method: str = "minmax", *, tiles: int = 0, seed: int = 0, reduce_range: bool = False
    ) -> None:
        self.fp32, self.method, self.tiles, self.seed = Path(fp32), method, tiles, seed
        self.reduce_range = reduce_range
        self._tmp = tempfile.TemporaryDirectory(prefix="sam2ms-int8-")
        self.work = Path(self._tmp.name)
        self.prepared = self.prepare()
        model = onnx.load(str(self.prepared), load_external_data=False)
        self.default_excluded = default_exclusions(model)
        #: Quantised nodes, in graph order: what --auto-exclude may keep in float.
        self.candidates = [
            n.name for n in model.graph.node if n.op_type in QUANTIZED_OPS and n.name not in set(self.default_excluded)
        ]
        #: node name -> PyTorch module name, for reports.
        self.modules = module_names(model, self.candidates)
        self.calibration_seconds = 0.0

    def __enter__(self) -> Quantizer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._tmp.cleanup()

    @abstractmethod
    def prepare(self) -> Path:
        """The model the quantiser works on (the FP32 file, or a pre-processed copy in ``work``)."""

    @abstractmethod
    def calibrate(self, reader: Any | None, bar: Bar | None = None) -> None:
        """Collect what the INT8 graph needs from ``reader`` (``{"image": batch}`` dicts, then None);
        ``bar``: the calibration's progress display, for long steps after the reading.
        """

    @abstractmethod
    def write(self, out: str | Path, keep_float: Iterable[str] = ()) -> Path:
        """Write the Q/DQ model (atomically); ``keep_float`` nodes stay unquantised."""

    def facts(self, keep_float: Iterable[str] = ()) -> dict[str, Any]:
        """What the sidecar records about this quantisation."""
        return {
            "method": self.method,
            "calibration_tiles": self.tiles,
            "seed": self.seed,
            "weight_bits": 7 if self.reduce_range else 8,
            "excluded_nodes": self.default_excluded + list(keep_float),
            "calibration_seconds": round(self.calibration_seconds, 2),
        }
