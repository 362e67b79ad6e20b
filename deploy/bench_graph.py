"""The exported-graph variants of snapflow-bench: ONNX Runtime (float32, dynamic / static int8) and TensorRT
on the 1-NFE graph, at the policy's image size and at each of ``image_sizes`` (SmolVLA), exports cached.

Each graph variant's parity is measured against the float32 graph of the same size on the benchmark's own
inputs (``export -> <tag> -> <runtime>_max_abs_vs_float32``); float32 against torch is the export's check.
"""

import json
import logging
import time
from pathlib import Path

import torch

from snapflow.deploy.bench import GRAPH_RUNTIMES, TASK, BenchConfig, Variant, raw_batch, resized
from snapflow.deploy.bench_timing import wall_ms

logger = logging.getLogger(__name__)

CALIBRATION_DRAWS = 8  # static int8 of random-weight models: ranges from benchmark-like random observations


def export_cached(
    policy: torch.nn.Module, pre: object, side: int, cfg: BenchConfig, tag: str
) -> tuple[Path, dict]:
    """Export the float32 1-NFE graph once per (model shapes, versions) and reuse it; returns (dir, info)."""
    import hashlib

    import transformers

    from snapflow.deploy.export_onnx import export_onnx

    key = json.dumps(
        {
            "tag": tag,
            "config": policy.config.to_dict() if hasattr(policy.config, "to_dict") else repr(policy.config),
            "params": sum(p.numel() for p in policy.parameters()),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "seed": cfg.seed,
            "opset": cfg.opset,
        },
        sort_keys=True,
        default=str,
    )
    out = (
        Path(cfg.cache_dir).expanduser()
        / "exports"
        / f"{tag}_{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    )
    info_file = out / "bench_export.json"
    if info_file.is_file():
        return out, {**json.loads(info_file.read_text()), "cached": True}
    import shutil
    import tempfile

    ckpt = Path(tempfile.mkdtemp(prefix="snapflow_bench_ckpt_"))
    try:
        start = time.perf_counter()
        policy.save_pretrained(ckpt)
        pre.save_pretrained(ckpt)
        save_s = time.perf_counter() - start
        obs = {k: v[0] for k, v in raw_batch(1, side, cfg.seed).items() if k != "task"} | {"task": TASK}
        start = time.perf_counter()
        _, parity = export_onnx(policy, pre, obs, out, source_dir=ckpt, nfe=1, opset=cfg.opset)
        info = {
            "export_s": round(time.perf_counter() - start, 1),
            "checkpoint_save_s": round(save_s, 1),
            "parity_max_abs_err": parity.max_abs_err,
        }
    finally:
        shutil.rmtree(ckpt, ignore_errors=True)
    info_file.write_text(json.dumps(info, indent=2))
    return out, {**info, "cached": False}


CALIBRATION_DRAWS = 8  # static int8 of random-weight models: ranges from benchmark-like random observations


def quantized_cached(
    export_dir: Path, method: str, policy: torch.nn.Module, pre: object, side: int, cfg: BenchConfig
) -> Path:
    """The graph of ``export_dir`` quantised with ``method`` (snapflow-export's quantize=), made once and cached
    beside it. Static int8 is calibrated on random observations of the benchmark's layout (the weights are
    random too; a trained policy is calibrated on its dataset by snapflow-export calibration=)."""
    from snapflow.deploy.graph import graph_feeds
    from snapflow.deploy.quantize import GRAPH_FILES, quantize

    if method == "none":
        return export_dir / "model.onnx"
    path = export_dir / GRAPH_FILES[method]
    if path.is_file():
        return path
    calibration = None
    if method == "int8_static":
        calibration = [
            graph_feeds(policy, pre(raw_batch(1, side, cfg.seed + 1 + i)), cfg.seed + 1 + i)
            for i in range(CALIBRATION_DRAWS)
        ]
    start = time.perf_counter()
    partial = path.with_name(path.stem + ".partial.onnx")  # a killed run leaves no half-written cached graph
    quantize(export_dir / "model.onnx", partial, method, calibration)
    partial.with_name(partial.name + ".data").rename(path.with_name(path.name + ".data"))
    _relink_external_data(partial, path)
    logger.info("quantised (%s) %s in %.1f s", method, path, time.perf_counter() - start)
    return path


def _relink_external_data(src: Path, dst: Path) -> None:
    """Save ``src`` as ``dst`` with its external weights file renamed from ``<src>.data`` to ``<dst>.data``."""
    import onnx

    model = onnx.load(str(src), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location" and entry.value == src.name + ".data":
                entry.value = dst.name + ".data"
    onnx.save(model, str(dst))
    src.unlink()


def _ort_variant(family: str, runtime: str, session: object, feeds: dict) -> Variant:
    def run() -> tuple[float, dict]:
        return wall_ms(lambda: session.run(None, feeds), "cpu"), {}

    return Variant(family, runtime, 1, "graph", run, [], [])


def _trt_variant(family: str, export_dir: Path, side: int, seed: int) -> Variant:
    import numpy as np

    from snapflow.deploy.tensorrt_engine import TrtRuntime

    runtime = TrtRuntime(export_dir, seed=seed)
    raw = raw_batch(1, side, seed)
    obs = {
        k: (v[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8) if "images" in k else v[0].numpy()
        for k, v in raw.items()
        if k != "task"
    } | {"task": TASK}

    def run() -> tuple[float, dict]:
        return runtime.predict_chunk(obs).timings_ms["model"], {}

    return Variant(family, "tensorrt", 1, "graph", run, [], [])


def graph_variants(
    cfg: BenchConfig,
    family: str,
    policy: torch.nn.Module,
    pre: object,
    side: int,
    batch: dict,
    device: torch.device,
) -> tuple[list[Variant], dict]:
    """The graph variants ``cfg.runtimes`` asks for, and notes (exports, parity, skipped with the reason)."""
    notes: dict = {"skipped": [], "export": {}}
    wants_ort = [r for r in GRAPH_RUNTIMES if r in cfg.runtimes]
    ort_ok = bool(wants_ort) and device.type == "cpu"
    trt_ok = False
    if "tensorrt" in cfg.runtimes:
        from snapflow.deploy.tensorrt_engine import trt_usable

        trt_ok, trt_reason = trt_usable()
        if not trt_ok:
            notes["skipped"].append({"runtime": "tensorrt", "reason": trt_reason})
    if wants_ort and not ort_ok:
        notes["skipped"].append(
            {
                "runtime": ", ".join(wants_ort),
                "reason": "the installed ONNX Runtime is the CPU build; "
                "comparing it with torch on CUDA would time two different devices",
            }
        )
    variants: list[Variant] = []
    sizes = [None, *(cfg.image_sizes if family == "smolvla" and ort_ok else ())]
    for size in sizes if (ort_ok or trt_ok) else []:
        suffix = f"@{size}px" if size else ""
        export_dir, notes["export"][f"float32{suffix}"] = _export_at(policy, pre, side, cfg, family, size)
        if trt_ok and size is None:
            variants.append(_trt_variant(family, export_dir, side, cfg.seed))
        if ort_ok:
            variants += _ort_variants(cfg, family, policy, pre, side, batch, export_dir, suffix, notes)
    return variants, notes


def _export_at(
    policy: torch.nn.Module, pre: object, side: int, cfg: BenchConfig, family: str, size: int | None
) -> tuple[Path, dict]:
    """The cached float32 export with the cameras resized to ``size`` inside the graph (None: as configured)."""
    with resized(policy, None if size is None else (size, size)):
        return export_cached(policy, pre, side, cfg, f"{family}_{cfg.size}{f'_{size}px' if size else ''}")


def _ort_variants(
    cfg: BenchConfig,
    family: str,
    policy: torch.nn.Module,
    pre: object,
    side: int,
    batch: dict,
    export_dir: Path,
    suffix: str,
    notes: dict,
) -> list[Variant]:
    from snapflow.deploy.export_onnx import ort_session
    from snapflow.deploy.graph import graph_feeds

    feeds = graph_feeds(policy, batch, cfg.seed)
    reference = ort_session(export_dir / "model.onnx", cfg.threads).run(None, feeds)[0]
    variants = []
    for runtime in [r for r in GRAPH_RUNTIMES if r in cfg.runtimes]:
        path = quantized_cached(export_dir, GRAPH_RUNTIMES[runtime], policy, pre, side, cfg)
        session = ort_session(path, cfg.threads)
        error = float(abs(session.run(None, feeds)[0] - reference).max())
        notes["export"][f"{runtime}{suffix}_max_abs_vs_float32"] = error
        variants.append(_ort_variant(family, f"{runtime}{suffix}", session, feeds))
    return variants
