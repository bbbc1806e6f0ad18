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
from sam2ms.models.byte_input import ByteInput
from sam2ms.preprocess import INPUT_FORMATS, INPUT_NAME, OUTPUT_NAME

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


def _export_raw(
    model: nn.Module, example: torch.Tensor, opset: int, exporter: str, output_name: str = OUTPUT_NAME
) -> onnx.ModelProto:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            batch = torch.export.Dim("batch", min=1, max=1024)
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[output_name],
                dynamic_shapes={"x": {0: batch}},
                opset_version=opset,
                verbose=False,
            )
            assert program is not None  # dynamo=True always returns the program
            return program.model_proto
        import io

        buf = io.BytesIO()
        axes = {INPUT_NAME: {0: "batch"}, output_name: {0: "batch"}}
        torch.onnx.export(
            model,
            (example,),
            buf,  # type: ignore[arg-type]  # a file-like object is accepted
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[output_name],
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
        )
        return onnx.load_from_string(buf.getvalue())


def _fix_output_shape(proto: onnx.ModelProto, tile: int) -> None:
    """The output declared N x 1 x T x T: the TorchScript exporter leaves all but the batch symbolic,
    and clients read the class count from it (Deepness takes a non-1 channel dim for softmax
    classes). ``onnx.checker``'s full check then proves the graph agrees.
    """
    dims = proto.graph.output[0].type.tensor_type.shape.dim
    for dim, size in zip(dims[1:], (1, tile, tile)):
        dim.Clear()
        dim.dim_value = size


def opset_of(proto: onnx.ModelProto) -> int:
    """The default-domain opset the graph declares."""
    return int(next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")))


def export_onnx(
    model: nn.Module,
    path: str | Path,
    tile: int,
    opset: int = DYNAMO_MIN_OPSET,
    exporter: str = "dynamo",
    input_format: str = "uint8",
    *,
    output_name: str = OUTPUT_NAME,
    metadata: dict[str, str] | None = None,
) -> OnnxExport:
    """Export ``model`` (eval mode, CPU) for ``tile`` x ``tile`` inputs in ``input_format`` and a
    dynamic batch; its output named ``output_name``, ``metadata`` written as the model's metadata
    properties (what clients such as QGIS' Deepness read).
    """
    if input_format not in INPUT_FORMATS:
        raise UsageError(f"--input {input_format}: use one of {', '.join(INPUT_FORMATS)}")
    if exporter not in EXPORTERS:
        raise UsageError(f"--exporter {exporter}: use one of {', '.join(EXPORTERS)}")
    if opset < MIN_OPSET:
        raise UsageError(f"--opset {opset}: sam2ms exports opset {MIN_OPSET} or newer")
    if exporter == "dynamo" and opset < DYNAMO_MIN_OPSET:
        raise UsageError(
            f"--opset {opset}: the dynamo exporter emits opset {DYNAMO_MIN_OPSET} or newer; "
            "use --exporter torchscript for opset 17"
        )
    import onnxslim

    started = time.perf_counter()
    model = model.eval().cpu()
    if input_format == "uint8":
        model, example = ByteInput(model).eval(), torch.zeros(2, tile, tile, 3, dtype=torch.uint8)
    else:
        example = torch.zeros(2, 3, tile, tile)
    raw = _export_raw(model, example, opset, exporter, output_name)
    if opset_of(raw) != opset:
        raise UsageError(
            f"the {exporter} exporter wrote opset {opset_of(raw)} when asked for {opset}; "
            f"ask for --opset {opset_of(raw)}"
        )
    slim = onnxslim.slim(raw)
    _fix_output_shape(slim, tile)
    for key, value in (metadata or {}).items():
        slim.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(slim, full_check=True)
    path = Path(path)
    atomic_write(path, lambda f: f.write(slim.SerializeToString()))
    return OnnxExport(path, opset, exporter, len(raw.graph.node), len(slim.graph.node), time.perf_counter() - started)
