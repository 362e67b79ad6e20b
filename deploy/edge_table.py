"""The README's edge-speed table: each export variant's latency at real SmolVLA size (snapflow-bench, 1 and 2
threads) beside the closed-loop success of the trained tiny student exported the same way (snapflow-eval
exports={...}, `make edge-variants`).

    python -m snapflow.deploy.edge_table --bench1 <bench.json, threads=1> [--bench2 <bench.json, threads=2>]
        --eval <report.json> [--opset20-bench1 <bench.json>] [--opset20-bench2 <bench.json>]

Each row names the bench runtime (e.g. ``onnxruntime_int8@256px``) and the eval sampler (the exports= name,
e.g. ``int8_32px``) it joins; ratios are against torch eager's 1-NFE pass of the same bench run. The tiny
student runs at 64 px, so its 32 px variants stand for the real model's 256 px (4x fewer patches each).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# (label, bench runtime, which bench ("" = the default opset 23, or "opset20"), eval sampler of the tiny student)
ROWS = (
    ("torch eager, float32 (reference)", "torch", "", None),
    ("ONNX Runtime float32", "onnxruntime", "", "fp32"),
    ("ONNX Runtime dynamic int8", "onnxruntime_int8", "", "int8"),
    ("ONNX Runtime static int8 (calibrated)", "onnxruntime_int8_static", "", "int8_static"),
    ("ONNX Runtime float32, opset 20", "onnxruntime", "opset20", "fp32_opset20"),
    ("ONNX Runtime dynamic int8, opset 20", "onnxruntime_int8", "opset20", "int8_opset20"),
    ("torch eager, cameras at 256 px", "torch@256px", "", None),
    ("ONNX Runtime float32, 256 px", "onnxruntime@256px", "", None),
    (
        "ONNX Runtime dynamic int8, 256 px, policy trained at full size",
        "onnxruntime_int8@256px",
        "",
        "int8_32px_untuned",
    ),
    (
        "ONNX Runtime dynamic int8, 256 px, student distilled at that size",
        "onnxruntime_int8@256px",
        "",
        "int8_32px",
    ),
)


def _e2e(bench: dict | None, runtime: str) -> float | None:
    if bench is None:
        return None
    for row in bench["results"]:
        if row["runtime"] == runtime and row["nfe"] == 1 and row["path"] in ("joint", "graph"):
            return float(row["e2e_ms"]["p50"])
    return None


def _parity(bench: dict | None, runtime: str) -> float | None:
    if bench is None:
        return None
    export = bench["families"]["smolvla"].get("export", {})
    name, _, size = runtime.partition("@")
    if name == "onnxruntime":  # the float32 graph against torch (the export's check) at that size
        return export.get(f"float32{'@' + size if size else ''}", {}).get("parity_max_abs_err")
    return export.get(f"{runtime}_max_abs_vs_float32")


def _success(report: dict, sampler: str | None) -> str:
    if sampler is None:
        return "-"
    cells = [suite[sampler] for suite in report["suites"].values() if sampler in suite]
    if not cells:
        return "not evaluated"
    from snapflow.sim.stats import wilson_interval

    wins = sum(round(c["success"] * c["episodes"]) for c in cells)
    n = sum(c["episodes"] for c in cells)
    low, high = wilson_interval(wins, n)
    return f"{100 * wins / n:.1f} % [{100 * low:.1f}, {100 * high:.1f}] (n={n})"


def edge_table(benches: dict[str, dict | None], report: dict) -> str:
    """Markdown rows; ``benches`` maps "1" / "2" (threads) and "opset20_1" / "opset20_2" to bench.json dicts."""
    lines = [
        "| variant | 1 thread p50 | vs torch | 2 threads p50 | vs torch | parity (max abs) | tiny student success |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, runtime, which, sampler in ROWS:
        cells = []
        for threads in ("1", "2"):
            bench = benches.get(f"{which}_{threads}" if which else threads)
            ms, torch_ms = _e2e(bench, runtime), _e2e(bench, "torch")
            cells += [f"{ms:.0f} ms" if ms else "-", f"{torch_ms / ms:.2f}x" if ms and torch_ms else "-"]
        parity = _parity(benches.get(f"{which}_1" if which else "1"), runtime)
        parity_cell = (
            "0 (reference)" if runtime == "torch" else (f"{parity:.1e}" if parity is not None else "-")
        )
        lines.append(f"| {label} | {' | '.join(cells)} | {parity_cell} | {_success(report, sampler)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench1", type=Path, required=True)
    parser.add_argument("--bench2", type=Path)
    parser.add_argument("--opset20-bench1", type=Path)
    parser.add_argument("--opset20-bench2", type=Path)
    parser.add_argument("--eval", type=Path, required=True)
    args = parser.parse_args(argv)

    def load(path: Path | None) -> dict | None:
        return json.loads(path.read_text()) if path else None

    benches = {
        "1": load(args.bench1),
        "2": load(args.bench2),
        "opset20_1": load(args.opset20_bench1),
        "opset20_2": load(args.opset20_bench2),
    }
    print(edge_table(benches, load(args.eval)))


if __name__ == "__main__":
    main()
