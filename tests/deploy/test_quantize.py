"""deploy/quantize.py on a graph shaped like torch's export of a large nn.Linear: MatMul(x, Transpose(W))."""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from snapflow.deploy.quantize import quantize

# int8 of one 64 x 64 layer on N(0, 1) inputs: errors of a few percent of the output scale (~8)
INT8_LAYER_ATOL = 0.5


def _linear_graph(path: Path) -> np.ndarray:
    """y = x @ W.T with W an initializer behind a Transpose node (the exporter keeps the Transpose of weights
    too large for its constant folding, e.g. SigLIP's at real size); returns W."""
    w = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Transpose", ["W"], ["Wt"], perm=[1, 0]),
            helper.make_node("MatMul", ["x", "Wt"], ["y"]),
        ],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 64])],
        [numpy_helper.from_array(w, "W")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), str(path))
    return w


@pytest.mark.parametrize("method", ["int8", "int8_static"])
def test_a_transposed_weight_is_folded_and_quantised(tmp_path: Path, method: str) -> None:
    w = _linear_graph(tmp_path / "model.onnx")
    rng = np.random.default_rng(1)
    calibration = [{"x": rng.standard_normal((1, 64)).astype(np.float32)} for _ in range(8)]
    out = quantize(tmp_path / "model.onnx", tmp_path / "q.onnx", method, calibration)
    graph = onnx.load(str(out)).graph
    if method == "int8":
        assert any(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in graph.node)
    else:
        assert any(i.data_type == TensorProto.INT8 for i in graph.initializer)
    assert not any(n.op_type == "Transpose" for n in graph.node)
    x = np.concatenate(
        [c["x"] for c in calibration[:3]]
    )  # inside the calibrated ranges (static clips outside)
    y = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.abs(y - x @ w.T).max() < INT8_LAYER_ATOL
    assert not (tmp_path / "q.folded.onnx").exists()  # the intermediate is removed


def test_static_int8_needs_calibration_and_methods_are_named(tmp_path: Path) -> None:
    _linear_graph(tmp_path / "model.onnx")
    with pytest.raises(ValueError, match="needs calibration"):
        quantize(tmp_path / "model.onnx", tmp_path / "q.onnx", "int8_static")
    with pytest.raises(ValueError, match="quantize='fp4'"):
        quantize(tmp_path / "model.onnx", tmp_path / "q.onnx", "fp4")


def test_a_graph_with_onnx_attention_quantises_into_a_graph_that_loads(tmp_path: Path) -> None:
    """opset 23 writes SDPA as ONNX's Attention op, which the quantiser once mistook for its contrib op."""
    w = np.random.default_rng(0).standard_normal((16, 16)).astype(np.float32)
    qkv = helper.make_tensor_value_info("q", TensorProto.FLOAT, [1, 2, 4, 8])
    graph = helper.make_graph(
        [
            helper.make_node("Attention", ["q", "q", "q"], ["a"]),
            helper.make_node("Reshape", ["a", "shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "W"], ["y"]),
        ],
        "attention",
        [qkv],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 16])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.array([4, 16], np.int64), "shape")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)]), str(tmp_path / "m.onnx"))
    out = quantize(tmp_path / "m.onnx", tmp_path / "q.onnx", "int8")
    q = np.random.default_rng(1).standard_normal((1, 2, 4, 8)).astype(np.float32)
    y = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"q": q})[0]
    assert y.shape == (4, 16) and np.isfinite(y).all()
