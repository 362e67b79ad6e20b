"""snapflow-bench on tiny models (schema-checked bench.json + plot) and the real-size configs on the meta device."""

import copy
import json
import sys

import pytest

from snapflow.deploy.bench_report import format_table, validate_bench
from snapflow.deploy.tensorrt_engine import trt_usable
from snapflow.policies.real_size import (
    PUBLISHED_PARAMS,
    SMOLVLM2_500M_TEXT,
    checkpoint_parameters,
    count_parameters,
    make_real_policy,
)
from snapflow.policies.tiny import lerobot_features
from snapflow.scripts import bench as bench_script
from tests.policies.helpers import dataset_stats

# Published sizes have two significant digits (0.45 B: +-1.1 %, 3.3 B: +-1.5 %), and "3.3 B" is pi0's figure:
# pi05 adds the expert's adaRMS modulation layers (+0.12 B, +3.5 %). 5 % covers both, and still fails on any
# wrong width, depth or vocabulary (one gemma_2b layer is 3.6 % of the total, one SmolVLM layer 3.2 %).
PARAM_RTOL = 0.05
# Counted once on the meta device (transformers 5.5.4, lerobot 0.6.1): the numbers the README quotes.
EXPECTED_PARAMS = {"smolvla": 451_084_416, "pi0": 3_240_147_728, "pi05": 3_355_533_072}


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(
            sys,
            "argv",
            [
                "snapflow-bench",
                "policy=smolvla",
                "size=tiny",
                "nfe=[1,10]",
                # tensorrt where it can run (elsewhere the bench refuses it: test_cli_values.py)
                f"runtimes=[torch,onnxruntime,onnxruntime_int8{',tensorrt' if trt_usable()[0] else ''}]",
                "image_sizes=[32]",
                "best_of=[torch,onnxruntime_int8]",
                "repeats=3",
                "warmup=1",
                "threads=2",
                f"out={out}",
                f"cache_dir={out / 'cache'}",
            ],
        )
        bench_script.main()
    finally:
        mp.undo()
    return out


def test_tiny_bench_writes_a_schema_checked_json_and_the_plot(tiny_bench):
    bench = validate_bench(json.loads((tiny_bench / "bench.json").read_text()))
    assert (tiny_bench / "latency_breakdown.png").stat().st_size > 1000
    rows = {(r["runtime"], r["nfe"], r["path"]): r for r in bench["results"]}
    assert {
        ("torch", 1, "joint"),
        ("torch", 10, "cached"),
        ("torch", 1, "cached"),
        ("onnxruntime", 1, "graph"),
        ("onnxruntime_int8", 1, "graph"),
        ("torch@32px", 1, "joint"),
        ("onnxruntime@32px", 1, "graph"),
        ("onnxruntime_int8@32px", 1, "graph"),
    } <= set(rows)
    assert all(r["n"] == 3 and r["size"] == "tiny" and r["family"] == "smolvla" for r in rows.values())
    assert rows[("torch", 10, "cached")]["stages_ms"]["step"]["p50"] > 0
    assert rows[("torch", 1, "joint")]["stages_ms"]["joint"]["p50"] > 0
    speed = bench["speedup"]["smolvla"]
    assert {"e2e_1_vs_10", "expert_1_vs_10", "onnxruntime_vs_torch", "bound_1_vs_10"} <= set(speed)
    assert {
        "onnxruntime_int8_vs_torch",
        "onnxruntime_int8@32px_vs_torch",
        "e2e_teacher10_torch_vs_best_student",
    } <= set(speed)
    family = bench["families"]["smolvla"]
    best = family["bound_inputs"]["best_student"]
    assert best["runtime"] in (
        "torch",
        "onnxruntime_int8",
    )  # only what best_of allows, never the 32 px graphs
    assert speed["e2e_teacher10_torch_vs_best_student"] == pytest.approx(
        rows[("torch", 10, "cached")]["e2e_ms"]["p50"] / best["e2e_p50_ms"], rel=1e-2
    )
    assert family["export"]["float32"]["parity_max_abs_err"] < 1e-3
    assert family["export"]["float32@32px"]["parity_max_abs_err"] < 1e-3
    assert 0 < family["export"]["onnxruntime_int8_max_abs_vs_float32"] < 1.0
    if trt_usable()[0]:  # a machine with TensorRT times it (one without refuses it: test_cli_values.py)
        assert any(r["runtime"] == "tensorrt" for r in bench["results"])
    machine = bench["machine"]
    assert machine["threads"]["torch"] == 2 and machine["versions"]["lerobot"]
    assert "A800" in format_table(bench)


def test_validate_bench_rejects_broken_output(tiny_bench):
    good = json.loads((tiny_bench / "bench.json").read_text())
    for breaks in (
        lambda b: b.pop("speedup"),
        lambda b: b["results"][0].pop("e2e_ms"),
        lambda b: b["results"][0]["e2e_ms"].update(p50=1e9),
        lambda b: b["results"][0].update(prefix_ms=None),
        lambda b: b["speedup"]["smolvla"].update(e2e_1_vs_10=-1.0),
    ):
        bad = copy.deepcopy(good)
        breaks(bad)
        with pytest.raises(ValueError):
            validate_bench(bad)


@pytest.mark.parametrize("family", ["smolvla", "pi0", "pi05"])
def test_real_size_builds_on_meta_with_the_published_parameter_count(family, tmp_path):
    inputs, outputs = lerobot_features(image_size=256)
    policy, _, _ = make_real_policy(
        f"{family}_snapflow", tmp_path, inputs, outputs, dataset_stats(), meta=True
    )
    assert all(p.is_meta for p in policy.parameters())  # nothing allocated
    count = checkpoint_parameters(policy)
    assert count == EXPECTED_PARAMS[family]
    assert abs(count / PUBLISHED_PARAMS[family] - 1) < PARAM_RTOL
    if family == "smolvla":
        text = policy.model.vlm_with_expert.vlm.model.text_model
        assert len(text.layers) == 16 and text.config.hidden_size == SMOLVLM2_500M_TEXT["hidden_size"]
        assert count_parameters(policy) == count  # SmolVLM2 does not tie its lm_head: all are stored
    else:
        paligemma = policy.model.paligemma_with_expert.paligemma
        assert (
            paligemma.config.text_config.hidden_size == 2048
            and len(paligemma.model.language_model.layers) == 18
        )
        assert paligemma.config.vision_config.num_hidden_layers == 27  # SigLIP So400m


def test_edge_table_joins_bench_runtimes_with_eval_samplers():
    from snapflow.deploy.edge_table import edge_table

    def row(runtime: str, path: str, p50: float) -> dict:
        return {"runtime": runtime, "nfe": 1, "path": path, "e2e_ms": {"p50": p50}}

    bench = {
        "results": [row("torch", "joint", 6000.0), row("onnxruntime_int8", "graph", 2000.0)],
        "families": {"smolvla": {"export": {"onnxruntime_int8_max_abs_vs_float32": 0.09}}},
    }
    cell = {"success": 0.8, "episodes": 50}
    report = {"suites": {"goal": {"int8": cell}, "long": {"int8": {"success": 0.4, "episodes": 50}}}}
    table = edge_table({"1": bench}, report)
    int8 = next(line for line in table.splitlines() if line.startswith("| ONNX Runtime dynamic int8 |"))
    assert "2000 ms | 3.00x" in int8 and "9.0e-02" in int8 and "60.0 % [50.2, 69.1] (n=100)" in int8
    fp32 = next(line for line in table.splitlines() if line.startswith("| ONNX Runtime float32 |"))
    assert "not evaluated" in fp32  # a variant with no eval sampler says so instead of a number
