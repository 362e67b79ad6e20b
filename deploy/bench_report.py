"""snapflow-bench output: bench.json (assembled and schema-checked), the ratio table and the breakdown plot.

bench.json (other tools read these names):
  machine   {cpu, cores, gpu, device, threads: {torch, ort_intra_op}, versions: {...}, memory: {...}}
  results   [{family, size, runtime, nfe, path, prefix_ms, step_ms, e2e_ms, stages_ms}], each *_ms {p50, p95, p99}
            (prefix_ms / step_ms are null for graph runtimes, where the stages are not separable)
  speedup   {<family>: {e2e_1_vs_10, expert_1_vs_10, onnxruntime_vs_torch, bound_1_vs_10, ...}}
  families  {<family>: {params, bound inputs P and E, preprocess_ms, export, skipped, timing_s, ...}}
"""

import os
import platform
from pathlib import Path

import numpy as np
import torch

from snapflow.deploy.bench_timing import percentiles

# SnapFlow paper (arXiv 2604.05656): A800, batch 1, the paper's own figures (a different machine: for the shape of the ratios only).
PAPER_REFERENCE = {
    "smolvla": {"e2e_10_ms": 178.0, "e2e_1_ms": 50.0, "e2e_1_vs_10": 3.56, "expert_1_vs_10": None},
    "pi05": {"e2e_10_ms": 274.0, "e2e_1_ms": 83.0, "e2e_1_vs_10": 3.3, "expert_1_vs_10": 9.6},
}
PCT_KEYS = ("p50", "p95", "p99")
RESULT_KEYS = ("family", "size", "runtime", "nfe", "prefix_ms", "step_ms", "e2e_ms")
SPEEDUP_KEYS = (
    "e2e_1_vs_10",
    "expert_1_vs_10",
    "onnxruntime_vs_torch",
    "onnxruntime_int8_vs_torch",
    "onnxruntime_int8_static_vs_torch",
    "e2e_teacher10_torch_vs_best_student",
)


def machine_info(device: torch.device, threads: int) -> dict:
    import lerobot
    import onnxruntime
    import transformers

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpu": gpu,
        "device": str(device),
        "platform": platform.platform(),
        "threads": {"torch": torch.get_num_threads(), "ort_intra_op": threads, "ort_inter_op": 1},
        "versions": {
            "torch": torch.__version__,
            "lerobot": getattr(lerobot, "__version__", "?"),
            "onnxruntime": onnxruntime.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
            "cuda": torch.version.cuda,
        },
    }


def _stage_per_call(variant: object, *stages: str) -> list[float]:
    """Per call: the sum of the named stages' times (ms)."""
    return [sum(sum(rec.get(s, [])) for s in stages) for rec in variant.stages]


def _row(cfg: object, v: object) -> dict:
    graph = v.path == "graph"
    steps = [t for rec in v.stages for t in rec.get("joint" if v.path == "joint" else "step", [])]
    prefix = _stage_per_call(v, "embed_prefix", "prefill")
    stage_names = sorted({k for rec in v.stages for k in rec})
    return {
        "family": v.family,
        "size": cfg.size,
        "runtime": v.runtime,
        "nfe": v.nfe,
        "path": v.path,
        "prefix_ms": None if graph else percentiles(prefix),
        "step_ms": None if graph else percentiles(steps),
        "e2e_ms": percentiles(v.e2e),
        "n": len(v.e2e),
        "stages_ms": {s: percentiles(_stage_per_call(v, s)) for s in stage_names},
    }


def _p50(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def _speedups(variants: list, family: str, best_of: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """Ratios of p50s from this run, and the bound inputs. See the README "Speed" section for definitions."""
    by = {(v.runtime, v.nfe, v.path): v for v in variants}
    joint, loop10 = by.get(("torch", 1, "joint")), by.get(("torch", 10, "cached"))
    cached1 = by.get(("torch", 1, "cached"))
    out: dict = {}
    bound: dict = {}
    if joint and loop10:
        e2e1, e2e10 = _p50(joint.e2e), _p50(loop10.e2e)
        loop = _stage_per_call(loop10, "step")  # the 10 denoise steps of each call
        # P: everything in the 10-step call that is not the denoising loop, per call (same calls as E).
        p_ms = _p50([e - s for e, s in zip(loop10.e2e, loop, strict=True)])
        # E: the mean step of each call's loop (p50 over calls), so that P + 10 E reproduces the 10-step e2e.
        e_ms = _p50(loop) / 10
        out["e2e_1_vs_10"] = round(e2e10 / e2e1, 3)
        out["bound_1_vs_10"] = round((p_ms + 10 * e_ms) / (p_ms + e_ms), 3)
        out["e2e_vs_bound"] = round(out["e2e_1_vs_10"] / out["bound_1_vs_10"], 3)
        # 1-NFE expert time, measured two ways: the single denoise step of the cached 1-step path (its
        # own calls), and the joint pass minus the prefill of the same prefix (VLM layers) in the 10-step calls.
        if cached1:
            e1 = _p50(_stage_per_call(cached1, "step"))
            out["expert_1_vs_10"] = round(_p50(loop) / e1, 3)
            bound["expert_1nfe_cached_ms"] = round(e1, 3)
        joint_expert = _p50(_stage_per_call(joint, "joint")) - _p50(_stage_per_call(loop10, "prefill"))
        bound["expert_1nfe_joint_minus_prefill_ms"] = round(joint_expert, 3)
        if joint_expert > 0:
            out["expert_1_vs_10_joint"] = round(_p50(loop) / joint_expert, 3)
        bound.update(
            P_ms=round(p_ms, 3),
            E_ms=round(e_ms, 3),
            loop10_ms=round(_p50(loop), 3),
            prefix_share_1nfe=round(p_ms / e2e1, 3),
        )
    for v in variants:  # every other 1-NFE variant against torch eager's joint pass, same run
        if joint and v.nfe == 1 and (v.path == "graph" or v.runtime.startswith("torch@")):
            out[f"{v.runtime}_vs_torch"] = round(_p50(joint.e2e) / _p50(v.e2e), 3)
    best = _best_student(variants, best_of)
    if loop10 and best is not None:
        # the teacher as released (torch, 10 steps) against the fastest 1-NFE student variant allowed
        out["e2e_teacher10_torch_vs_best_student"] = round(_p50(loop10.e2e) / _p50(best.e2e), 3)
        bound["best_student"] = {
            "runtime": best.runtime,
            "path": best.path,
            "e2e_p50_ms": round(_p50(best.e2e), 3),
        }
    return out, bound


def _best_student(variants: list, best_of: tuple[str, ...]) -> object | None:
    """The fastest 1-NFE variant (p50) among the runtimes in ``best_of`` (all of them when empty)."""
    students = [v for v in variants if v.nfe == 1 and (not best_of or v.runtime in best_of)]
    return min(students, key=lambda v: _p50(v.e2e), default=None)


def assemble(
    cfg: object,
    family: str,
    device: torch.device,
    variants: list,
    preprocess: list[float],
    notes: dict,
    timing: dict,
    memory: dict,
    params: int,
    prompt_tokens: int,
    lang_length: int,
) -> dict:
    machine = machine_info(device, cfg.threads)
    machine["memory"] = memory
    speedup, bound = _speedups(variants, family, tuple(getattr(cfg, "best_of", ())))
    return {
        "machine": machine,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(cfg).items()},
        "results": [_row(cfg, v) for v in variants],
        "speedup": {family: speedup},
        "families": {
            family: {
                "params": params,
                "bound_inputs": bound,
                "preprocess_ms": percentiles(preprocess),
                "language": {"prompt_tokens": prompt_tokens, "padded_length": lang_length},
                "batch": cfg.batch,
                "repeats": cfg.repeats,
                "warmup": cfg.warmup,
                "timing_s": timing,
                **notes,
            }
        },
        "notes": "e2e = predict_action_chunk on a preprocessed batch (preprocess_ms is tokenisation + "
        "normalisation + device transfer, outside e2e); ratios are of p50s from this one run.",
    }


def _check_pct(value: object, where: str, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if not isinstance(value, dict) or set(PCT_KEYS) - set(value):
        raise ValueError(f"{where} must be {{p50, p95, p99}}, got {value!r}")
    if not all(isinstance(value[k], (int, float)) and value[k] >= 0 for k in PCT_KEYS):
        raise ValueError(f"{where} has a negative or non-numeric percentile: {value!r}")
    if not value["p50"] <= value["p95"] <= value["p99"]:
        raise ValueError(f"{where} percentiles are not ordered: {value!r}")


def validate_bench(bench: dict) -> dict:
    """Raise ValueError unless ``bench`` has the bench.json schema; returns it."""
    for key in ("machine", "results", "speedup"):
        if key not in bench:
            raise ValueError(f"bench.json has no {key!r}")
    for key in ("cpu", "cores", "device", "threads", "versions"):
        if key not in bench["machine"]:
            raise ValueError(f"machine has no {key!r}")
    if not bench["results"]:
        raise ValueError("results is empty")
    for i, row in enumerate(bench["results"]):
        missing = set(RESULT_KEYS) - set(row)
        if missing:
            raise ValueError(f"results[{i}] misses {sorted(missing)}")
        graph = row["runtime"] not in ("torch",) and not row["runtime"].startswith("torch@")
        for key in ("prefix_ms", "step_ms"):
            _check_pct(row[key], f"results[{i}].{key}", nullable=graph or row.get("path") == "graph")
        _check_pct(row["e2e_ms"], f"results[{i}].e2e_ms")
    for family, ratios in bench["speedup"].items():
        for key in SPEEDUP_KEYS:
            if key in ratios and not (isinstance(ratios[key], (int, float)) and ratios[key] > 0):
                raise ValueError(f"speedup.{family}.{key} must be a positive number, got {ratios[key]!r}")
    for family, t in bench.get("train", {}).items():
        for key in ("fm_step_ms", "snapflow_step_ms", "ratio"):
            if not (isinstance(t.get(key), (int, float)) and t[key] > 0):
                raise ValueError(f"train.{family}.{key} must be a positive number, got {t.get(key)!r}")
    return bench


def format_table(bench: dict) -> str:
    """Our latencies and ratios next to the paper's (a different machine)."""
    m = bench["machine"]
    lines = [
        f"machine: {m['gpu'] or m['cpu']} ({m['device']}, {m['threads']['torch']} torch threads)",
        "",
        f"{'family':8} {'runtime':24} {'nfe':>3} {'path':6} {'prefix p50':>11} {'step p50':>10} "
        f"{'e2e p50':>10} {'e2e p95':>10} {'n':>3}",
    ]
    for r in bench["results"]:

        def p(x: dict | None) -> str:
            return f"{x['p50']:.1f}" if x else "-"

        lines.append(
            f"{r['family']:8} {r['runtime']:24} {r['nfe']:>3} {r.get('path', ''):6} {p(r['prefix_ms']):>11} "
            f"{p(r['step_ms']):>10} {p(r['e2e_ms']):>10} {r['e2e_ms']['p95']:>10.1f} {r.get('n', ''):>3}"
        )
    lines += ["", "ratios (ours: this machine; paper: A800 -- a different machine)"]
    for family, ratios in bench["speedup"].items():
        ref = PAPER_REFERENCE.get(family, {})
        for key, value in ratios.items():
            paper = ref.get(key)
            lines.append(
                f"  {family:8} {key:36} ours {value:>7.2f}x   paper(A800) "
                f"{f'{paper:.2f}x' if paper else '-':>7}"
            )
        if ref:
            lines.append(
                f"  {family:8} paper e2e (A800): {ref['e2e_10_ms']:.0f} ms (10 steps) -> "
                f"{ref['e2e_1_ms']:.0f} ms (1-NFE)"
            )
    for family, t in bench.get("train", {}).items():
        lines.append(
            f"  {family:8} training step (batch {t['batch']}): FM {t['fm_step_ms']:.0f} ms, "
            f"SnapFlow {t['snapflow_step_ms']:.0f} ms, ratio {t['ratio']:.2f}x"
        )
    return "\n".join(lines)


def plot_breakdown(bench: dict, path: str | Path) -> Path:
    """Stacked p50 bars per family and NFE (torch): prefix (non-denoise time) vs denoise (or the joint pass)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in bench["results"] if r["runtime"] == "torch"]
    labels, prefix, denoise, joint = [], [], [], []
    for r in rows:
        stages = r.get("stages_ms", {})
        e2e = r["e2e_ms"]["p50"]
        inner = (stages.get("joint") if r["path"] == "joint" else stages.get("step")) or {"p50": 0.0}
        labels.append(f"{r['family']}\nNFE={r['nfe']} ({r['path']})")
        prefix.append(max(e2e - inner["p50"], 0.0))
        (joint if r["path"] == "joint" else denoise).append(inner["p50"])
        (denoise if r["path"] == "joint" else joint).append(0.0)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(labels)), 4.0))
    x = np.arange(len(labels))
    ax.bar(x, prefix, label="prefix: image prep + vision + embeddings (+ prefill)")
    ax.bar(x, denoise, bottom=prefix, label="denoise steps (expert on the KV cache)")
    ax.bar(x, joint, bottom=prefix, hatch="//", label="1-NFE joint pass (VLM layers + expert)")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("p50 latency (ms)")
    ax.set_title(f"{bench['machine']['gpu'] or bench['machine']['cpu']}"[:70], fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
