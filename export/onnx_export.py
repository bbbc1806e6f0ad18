"""PyTorch -> ONNX: fixed tile, dynamic batch, simplified with onnxslim, checked with onnx.checker.

Exporter choice: ``torch.onnx.export(dynamo=True)`` by default. On the Hiera trunk it gives the
cleaner graph (579 nodes after onnxslim versus 697 for the TorchScript exporter, both with the
bicubic position-embedding interpolation folded to a constant), and FP16 conversion of the
dynamo graph loads in ONNX Runtime where that of the TorchScript graph fails on a Cast type
mismatch. The dynamo exporter emits opset 18 at the lowest; ``exporter="torchscript"`` serves
opset 17 for runtimes that need it.

Input format (``--input``): ``uint8`` (default) wraps the model in :class:`ByteInput`, so the graph
takes the decoded RGB windows as N x T x T x 3 bytes and normalises them itself; ``float32`` takes
N x 3 x T x T tensors the host has normalised (:func:`sam2ms.preprocess.normalize`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from sam2ms.errors import UsageError
from sam2ms.fileio import atomic_write
from sam2ms.preprocess import IMAGENET_MEAN, IMAGENET_STD, INPUT_FORMATS

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
EXPORTERS = ("dynamo", "torchscript")
MIN_OPSET = 17
DYNAMO_MIN_OPSET = 18


@dataclass
class OnnxExport:
    """What an export produced: the (slimmed) model and what it took."""

    path: Path
    opset: int
    exporter: str
    nodes_exported: int
    nodes_slim: int
    seconds: float


class ByteInput(nn.Module):
    """``model`` fed with uint8 RGB windows (N x T x T x 3): the same arithmetic as
    :func:`sam2ms.preprocess.normalize` (x / 255, minus mean, over std, in float32), inside the graph.

    Why it is the default: a 1024² tile is 3 MB as bytes and 12 MB as normalised float32, so the
    host-to-GPU copy shrinks 4×, and the host does no per-pixel work at all — the windows go from
    the decoder into the pinned buffer as they are; on a GPU the normalisation costs next to nothing.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Cast first: TensorRT takes a uint8 tensor only into a Cast (a Transpose of uint8 is refused).
        x = x.to(torch.float32).permute(0, 3, 1, 2) / 255.0
        return self.model((x - self.mean) / self.std)


def _export_raw(model: nn.Module, example: torch.Tensor, opset: int, exporter: str) -> onnx.ModelProto:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            batch = torch.export.Dim("batch", min=1, max=1024)
            program = torch.onnx.export(model, (example,), dynamo=True, input_names=[INPUT_NAME],
                                        output_names=[OUTPUT_NAME], dynamic_shapes={"x": {0: batch}},
                                        opset_version=opset, verbose=False)
            assert program is not None  # dynamo=True always returns the program
            return program.model_proto
        import io

        buf = io.BytesIO()
        axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
        torch.onnx.export(model, (example,), buf,  # type: ignore[arg-type]  # a file-like object is accepted
                          dynamo=False, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_axes=axes,
                          opset_version=opset, do_constant_folding=True)
        return onnx.load_from_string(buf.getvalue())


def opset_of(proto: onnx.ModelProto) -> int:
    """The default-domain opset the graph declares."""
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def export_onnx(model: nn.Module, path: str | Path, tile: int, opset: int = DYNAMO_MIN_OPSET,
                exporter: str = "dynamo", input_format: str = "uint8") -> OnnxExport:
    """Export ``model`` (eval mode, CPU) for ``tile`` x ``tile`` inputs in ``input_format`` and a
    dynamic batch."""
    if input_format not in INPUT_FORMATS:
        raise UsageError(f"--input {input_format}: use one of {', '.join(INPUT_FORMATS)}")
    if exporter not in EXPORTERS:
        raise UsageError(f"--exporter {exporter}: use one of {', '.join(EXPORTERS)}")
    if opset < MIN_OPSET:
        raise UsageError(f"--opset {opset}: sam2ms exports opset {MIN_OPSET} or newer")
    if exporter == "dynamo" and opset < DYNAMO_MIN_OPSET:
        raise UsageError(f"--opset {opset}: the dynamo exporter emits opset {DYNAMO_MIN_OPSET} or newer; "
                         "use --exporter torchscript for opset 17")
    import onnxslim

    started = time.perf_counter()
    model = model.eval().cpu()
    if input_format == "uint8":
        model, example = ByteInput(model).eval(), torch.zeros(2, tile, tile, 3, dtype=torch.uint8)
    else:
        example = torch.zeros(2, 3, tile, tile)
    raw = _export_raw(model, example, opset, exporter)
    if opset_of(raw) != opset:
        raise UsageError(f"the {exporter} exporter wrote opset {opset_of(raw)} when asked for {opset}; "
                         f"ask for --opset {opset_of(raw)}")
    slim = onnxslim.slim(raw)
    onnx.checker.check_model(slim, full_check=True)
    path = Path(path)
    atomic_write(path, lambda f: f.write(slim.SerializeToString()))
    return OnnxExport(path, opset, exporter, len(raw.graph.node), len(slim.graph.node),
                      time.perf_counter() - started)
