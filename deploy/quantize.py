"""int8 variants of an exported graph, made with ONNX Runtime's quantisation tools.

* ``dynamic``: weights int8 per tensor, activations quantised at run time per call
  (``onnxruntime.quantization.quantize_dynamic``): MatMul -> MatMulInteger / DynamicQuantizeMatMul, whose
  kernels use the CPU's int8 dot products (AVX-512 VNNI, AVX-VNNI, ARM dot product).
* ``static``: weights int8 per channel, activations int8 with ranges calibrated offline on real observations
  (``quantize_static``, QDQ format, MinMax calibration): no run-time range computation.

Both first fold the graph's constant sub-graphs (ORT's basic optimisation, ``quant_pre_process``): torch's
exporter writes each ``nn.Linear`` of SigLIP as ``MatMul(x, Transpose(W))``, and a MatMul whose weight is the
output of a node is not quantised. Without the fold, dynamic int8 left the whole vision encoder (78 % of
SmolVLA's time at real size) in float32 and bought 1.07x; with it, 2x (README, "Speed").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

QUANTIZATIONS = ("none", "int8", "int8_static")  # snapflow-export quantize=; int8 = dynamic
GRAPH_FILES = {"int8": "model.int8.onnx", "int8_static": "model.int8_static.onnx"}


def fold_constants(src: Path, dst: Path) -> Path:
    """``src`` with constant sub-graphs folded (weight transposes become transposed weights), to ``dst``."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(
        str(src),
        str(dst),
        skip_optimization=False,
        skip_onnx_shape=True,  # shape inference is not needed for folding, and fails on some dynamo graphs
        skip_symbolic_shape=True,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        external_data_location=dst.name + ".data",
    )
    return dst


def quantize(
    src: Path, dst: Path, method: str, calibration: Iterable[dict[str, np.ndarray]] | None = None
) -> Path:
    """Write the int8 graph of ``src`` (float32) to ``dst``; ``method`` is ``int8`` (dynamic) or ``int8_static``
    (needs ``calibration``: graph feeds {input name: array}). Raises ValueError for another method or static
    without calibration data."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if method not in GRAPH_FILES:
        raise ValueError(f"quantize={method!r}: choose one of {QUANTIZATIONS}")
    if method == "int8_static" and calibration is None:
        raise ValueError("quantize=int8_static needs calibration observations")
    folded = fold_constants(src, dst.with_name(dst.stem + ".folded.onnx"))
    # the quantiser logs one line per tensor it leaves alone, at INFO and WARNING (hundreds of lines with
    # tensor dumps): quiet while it runs, back as it was after
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        if method == "int8":
            quantize_dynamic(
                str(folded),
                str(dst),
                weight_type=QuantType.QInt8,
                # not "Attention": the quantiser takes ONNX's own Attention (opset 23) for its contrib op of the
                # same name and writes a QAttention that ONNX Runtime refuses to load
                op_types_to_quantize=["MatMul", "Gemm", "Conv"],
                use_external_data_format=True,
            )
        else:
            quantize_static(
                str(folded),
                str(dst),
                _Reader(calibration),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul", "Conv"],
                use_external_data_format=True,
            )
    finally:
        root.setLevel(level)
        for leftover in (folded, folded.with_name(folded.name + ".data")):
            leftover.unlink(missing_ok=True)
    _check_loads(dst)
    return dst


class QuantizationError(RuntimeError):
    """The quantised graph does not load in ONNX Runtime (it is removed, so no cache keeps it)."""


def _check_loads(path: Path) -> None:
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # ORT raises its own exception types for invalid graphs
        for file in (path, path.with_name(path.name + ".data")):
            file.unlink(missing_ok=True)
        raise QuantizationError(f"the quantised graph {path.name} does not load in ONNX Runtime: {e}") from e


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over an iterable of feeds."""

    def __init__(self, feeds: Iterable[dict[str, np.ndarray]]):
        self._feeds = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)

    def rewind(self) -> None:  # called by some calibrators; one pass is all MinMax needs
        return None
