"""Where an exported graph spends its time in ONNX Runtime: per operator type and per model part.

    python -m snapflow.deploy.ort_profile <export dir | model.onnx> [--threads 1] [--runs 3] [--out profile.json]

Runs the graph with ONNX Runtime's own profiler (``SessionOptions.enable_profiling``: one event per executed
node with its kernel time in microseconds), after one unprofiled warm-up call, on random inputs of the
graph's declared shapes (batch 1; time does not depend on the values). Node names map to the torch module that
produced them through the exporter's ``pkg.torch.onnx.name_scopes`` metadata, so the kernel time is split
into the parts of a VLA: vision encoder, connector, language model (VLM prefix), action expert and the rest.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

# Module-path fragments -> model part, first match wins (SmolVLA, PI0/PI05 module names).
PARTS = (
    ("vision_model", "vision encoder"),
    ("vision_tower", "vision encoder"),
    ("connector", "connector"),
    ("multi_modal_projector", "connector"),
    ("lm_expert", "action expert"),
    ("gemma_expert", "action expert"),
    ("action_", "action expert"),
    ("state_proj", "action expert"),
    ("text_model", "language model"),
    ("language_model", "language model"),
    ("embed_tokens", "language model"),
)
OTHER = "other (masks, positions, glue)"
# Functional code outside any module: SmolVLA's layers of the VLM and the action expert attend jointly
# (smolvlm_with_expert.py), so their attention cannot be split between the two.
CALLS = {
    "forward_attn_layer": "VLM + expert layers (joint attention)",
    "forward_cross_attn_layer": "VLM + expert layers (joint attention)",
    "sample_args": "image resize and scaling",
    "prefix_from_sample_args": "prefix embedding",
    "velocity": "time embedding, noise",
}
_NP_TYPES = {
    "tensor(float)": np.float32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
    "tensor(float16)": np.float16,
}


def part_of(scopes: list[str]) -> str:
    """The model part of a node from its torch name scopes (innermost scopes first)."""
    for scope in reversed(scopes):
        for fragment, part in PARTS:
            if fragment in scope:
                return part
    return OTHER


def call_of(stack_trace: str) -> str:
    """For a node made by functional code (no module scope): the call on its innermost traced source line,
    e.g. ``forward_cross_attn_layer`` or ``sample_args``; '' when the trace has none."""
    lines = [
        line.strip()
        for line in stack_trace.splitlines()
        if line.strip() and not line.strip().startswith("File")
    ]
    if not lines:
        return ""
    match = re.findall(r"([A-Za-z_][A-Za-z_0-9]*)\(", lines[-1])
    return match[-1] if match else ""


def node_parts(model_path: Path) -> dict[str, str]:
    """{node name: model part} from the graph's metadata (no weights loaded). Nodes outside any module are
    named by the call that made them (``other: sample_args`` = image resizing and scaling, for example)."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    parts = {}
    for node in model.graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        part = part_of(ast.literal_eval(meta.get("pkg.torch.onnx.name_scopes", "[]")))
        if part == OTHER:
            call = call_of(meta.get("pkg.torch.onnx.stack_trace", ""))
            part = CALLS.get(call, f"other: {call}" if call else OTHER)
        parts[node.name] = part
    return parts


def random_feeds(session: object, batch: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs of the session's declared shapes (symbolic axes = ``batch``): images in [0, 1], masks true."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for arg in session.get_inputs():
        shape = [d if isinstance(d, int) else batch for d in arg.shape]
        dtype = _NP_TYPES.get(arg.type)
        if dtype is None:
            raise ValueError(f"input {arg.name!r} has type {arg.type}, which this profiler does not feed")
        if dtype is np.bool_:
            feeds[arg.name] = np.ones(shape, dtype=bool)
        elif dtype is np.int64:
            feeds[arg.name] = np.ones(shape, dtype=np.int64)
        elif "image" in arg.name:
            feeds[arg.name] = rng.random(shape, dtype=np.float32).astype(dtype)
        else:
            feeds[arg.name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def profile(model_path: Path, threads: int = 1, runs: int = 3) -> dict:
    """Kernel time per op type and per model part, averaged over ``runs`` profiled calls (milliseconds)."""
    import onnxruntime as ort

    from snapflow.deploy.export_onnx import session_options

    opts = session_options(threads)
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = os.path.join(tmp, "ort")
        session = ort.InferenceSession(str(model_path), sess_options=opts, providers=["CPUExecutionProvider"])
        feeds = random_feeds(session)
        session.run(None, feeds)  # warm-up (first-call allocations); its events are dropped below
        wall = []
        for _ in range(runs):
            start = time.perf_counter()
            session.run(None, feeds)
            wall.append((time.perf_counter() - start) * 1e3)
        events = json.loads(Path(session.end_profiling()).read_text())
    runs_seen = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    first_measured = runs_seen[1]["ts"] if len(runs_seen) > 1 else 0
    parts = node_parts(model_path)
    by_op: dict[str, float] = defaultdict(float)
    by_part: dict[str, float] = defaultdict(float)
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < first_measured:
            continue
        node = e["name"].removesuffix("_kernel_time")
        ms = e["dur"] / 1e3 / runs
        by_op[e["args"].get("op_name", "?")] += ms
        by_part[parts.get(node, OTHER)] += ms
    return {
        "model": str(model_path),
        "threads": threads,
        "runs": runs,
        "wall_ms": float(np.median(wall)),
        "kernel_ms": sum(by_op.values()),
        "by_op": dict(sorted(by_op.items(), key=lambda kv: -kv[1])),
        "by_part": dict(sorted(by_part.items(), key=lambda kv: -kv[1])),
    }


def format_profile(result: dict, top: int = 12) -> str:
    total = result["kernel_ms"] or 1.0
    lines = [
        f"{result['model']}: {result['wall_ms']:.0f} ms per call (median of {result['runs']}, "
        f"{result['threads']} thread(s)), {total:.0f} ms in kernels",
        "by model part:",
    ]
    lines += [f"  {k:32s} {v:9.1f} ms {100 * v / total:5.1f} %" for k, v in result["by_part"].items()]
    lines.append(f"by operator (top {top}):")
    lines += [
        f"  {k:32s} {v:9.1f} ms {100 * v / total:5.1f} %" for k, v in list(result["by_op"].items())[:top]
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="an export directory (its contract's graph) or a .onnx file")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--top", type=int, default=12, help="operator types to list")
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.runs < 1:
        parser.error("--threads and --runs must be >= 1")
    path = args.model
    if path.is_dir():
        contract = path / "contract.json"
        path = path / (json.loads(contract.read_text())["onnx_file"] if contract.is_file() else "model.onnx")
    if not path.is_file():
        parser.error(f"{path} is not an ONNX file")
    result = profile(path, args.threads, args.runs)
    print(format_profile(result, args.top))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
