"""`report.json` of `snapflow-eval`: schema, builder, validator, markdown table and plots.

Schema (other tools read these names; keep them):

    {"suites": {<suite>: {<sampler>: {"success": float in [0, 1], "ci_low": float, "ci_high": float,
                                       "episodes": int, "mean_episode_length": float, "latency_ms": float}}},
     "offline_mse": {<sampler>: float},
     ...}

Extra top-level keys: "samplers" (checkpoint, nfe, mode, role, policy type), "tasks" (the same per-task
numbers), "episode_results", "n_action_steps", "held_out", "episodes_per_task", "max_steps",
"resolution", "batch_size", "machine", "wall_time_s", "created", and with a latency benchmark
"latency_benchmark" and "latency_ratio_teacher10_snapflow1". `success` is a fraction; `ci_low` and
`ci_high` bound its Wilson 95 % interval; `latency_ms` is the median per-call `predict_action_chunk` time
(ms) measured in the same run, from the interleaved batch-1 benchmark when one ran, otherwise from the
rollouts at batch size `batch_size` (`latency_source` says which); `mean_episode_length` is in control
steps (20 Hz). Entries of the multimodal probe also carry the mode coverage (`mode_report.py`).
"""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path

from snapflow.sim.evaluate import EpisodeResult, RolloutResult
from snapflow.sim.mode_report import mode_entry, mode_tables, plot_modes
from snapflow.sim.stats import percentile, wilson_interval

SUITE_FIELDS = ("success", "ci_low", "ci_high", "episodes", "mean_episode_length", "latency_ms")


def summarize(episodes: list[EpisodeResult]) -> dict:
    """Success with its Wilson 95 % interval, episode count and mean length of a list of episodes."""
    n = len(episodes)
    wins = sum(e.success for e in episodes)
    low, high = wilson_interval(wins, n)
    return {
        "success": wins / n,
        "ci_low": low,
        "ci_high": high,
        "episodes": n,
        "successes": wins,
        "mean_episode_length": sum(e.length for e in episodes) / n,
    }


def suite_entry(result: RolloutResult) -> dict:
    """The report.json block of one (suite, sampler): the schema fields plus latency spread (and the mode
    coverage, `mode_entry`, on the multimodal probe)."""
    lat = result.latencies_ms
    return {
        **summarize(result.episodes),
        **mode_entry(result.episodes),
        "latency_ms": percentile(lat, 50),
        "latency_p90_ms": percentile(lat, 90),
        "latency_calls": len(lat),
    }


def machine_info() -> dict:
    """Where the numbers were measured (latency depends on it)."""
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def build_report(
    results: dict[str, dict[str, RolloutResult]],
    samplers: dict[str, dict],
    offline_mse: dict[str, float],
    meta: dict,
    benchmark_ms: dict[str, list[float]] | None = None,
) -> dict:
    """Assemble report.json from {suite: {sampler: RolloutResult}} and run metadata.

    With ``benchmark_ms`` (interleaved batch-1 chunk times per sampler), ``latency_ms`` is its median
    (``latency_source`` "benchmark_b1") and the in-rollout median moves to ``rollout_latency_ms``;
    without it ``latency_ms`` is the in-rollout median (``latency_source`` "rollout").
    """
    report: dict = {
        "suites": {},
        "offline_mse": dict(offline_mse),
        "samplers": samplers,
        "tasks": {},
        "episode_results": {},
    }
    if benchmark_ms:
        report["latency_benchmark"] = {
            name: {
                "p50_ms": percentile(ms, 50),
                "p90_ms": percentile(ms, 90),
                "calls": len(ms),
                "batch_size": 1,
            }
            for name, ms in benchmark_ms.items()
        }
        b = report["latency_benchmark"]
        if "teacher_10" in b and "snapflow_1" in b:
            report["latency_ratio_teacher10_snapflow1"] = (
                b["teacher_10"]["p50_ms"] / b["snapflow_1"]["p50_ms"]
            )
    for suite, per_sampler in results.items():
        report["suites"][suite] = {}
        for name, r in per_sampler.items():
            entry = {**suite_entry(r), "latency_source": "rollout"}
            if benchmark_ms and name in benchmark_ms:
                entry["rollout_latency_ms"] = entry["latency_ms"]
                entry["latency_ms"] = report["latency_benchmark"][name]["p50_ms"]
                entry["latency_source"] = "benchmark_b1"
            report["suites"][suite][name] = entry
        report["tasks"][suite] = {}
        report["episode_results"][suite] = {}
        for name, r in per_sampler.items():
            by_task: dict[int, list[EpisodeResult]] = {}
            for e in r.episodes:
                by_task.setdefault(e.task_id, []).append(e)
            report["tasks"][suite][name] = {str(t): summarize(eps) for t, eps in sorted(by_task.items())}
            report["episode_results"][suite][name] = [
                {
                    "task_id": e.task_id,
                    "episode": e.episode,
                    "init": e.init,
                    "success": e.success,
                    "length": e.length,
                    **({"mode": e.mode} if e.mode else {}),
                    **({"touched_barrier": e.touched_obstacle} if e.touched_obstacle is not None else {}),
                }
                for e in r.episodes
            ]
    report.update(meta)
    return report


def _number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def validate_report(report: dict) -> None:
    """Raise ValueError naming the first field of ``report`` that breaks the report.json schema."""
    if not isinstance(report, dict):
        raise ValueError(f"report must be a dict, got {type(report).__name__}")
    for key in ("suites", "offline_mse"):
        if not isinstance(report.get(key), dict):
            raise ValueError(f"report[{key!r}] must be a dict")
    if not report["suites"]:
        raise ValueError("report['suites'] is empty")
    for suite, per_sampler in report["suites"].items():
        if not isinstance(per_sampler, dict) or not per_sampler:
            raise ValueError(f"suites[{suite!r}] must be a non-empty dict of samplers")
        for name, entry in per_sampler.items():
            where = f"suites[{suite!r}][{name!r}]"
            if not isinstance(entry, dict):
                raise ValueError(f"{where} must be a dict")
            missing = [f for f in SUITE_FIELDS if f not in entry]
            if missing:
                raise ValueError(f"{where} lacks {missing}")
            if not all(_number(entry[f]) for f in SUITE_FIELDS):
                raise ValueError(f"{where}: {SUITE_FIELDS} must be finite numbers, got {entry}")
            if not isinstance(entry["episodes"], int) or entry["episodes"] < 1:
                raise ValueError(f"{where}['episodes'] must be a positive int, got {entry['episodes']!r}")
            if not 0.0 <= entry["ci_low"] <= entry["success"] <= entry["ci_high"] <= 1.0:
                raise ValueError(f"{where}: need 0 <= ci_low <= success <= ci_high <= 1, got {entry}")
            if entry["mean_episode_length"] < 0 or entry["latency_ms"] < 0:
                raise ValueError(f"{where}: mean_episode_length and latency_ms must be >= 0")
    for name, mse in report["offline_mse"].items():
        if not _number(mse) or mse < 0:
            raise ValueError(f"offline_mse[{name!r}] must be a finite float >= 0, got {mse!r}")


def write_report(report: dict, out: str | Path) -> Path:
    """Validate and write ``<out>/report.json``; returns its path."""
    validate_report(report)
    path = Path(out) / "report.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def markdown_table(report: dict) -> str:
    """One row per sampler: NFE, success [95 % CI] per suite, mean length, latency, offline MSE."""
    suites = list(report["suites"])
    names = list(dict.fromkeys(n for s in suites for n in report["suites"][s]))
    head = [
        "sampler",
        "NFE",
        *[f"{s} success [95% CI]" for s in suites],
        "mean len",
        "latency p50 (ms)",
        "offline MSE",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        cells = [name, str(report.get("samplers", {}).get(name, {}).get("nfe", "?"))]
        entries = [report["suites"][s].get(name) for s in suites]
        for e in entries:
            cells.append(
                "–"
                if e is None
                else f"{100 * e['success']:.1f}% [{100 * e['ci_low']:.1f}, {100 * e['ci_high']:.1f}] (n={e['episodes']})"
            )
        present = [e for e in entries if e is not None]
        cells.append(f"{sum(e['mean_episode_length'] for e in present) / len(present):.1f}")
        cells.append(f"{sum(e['latency_ms'] for e in present) / len(present):.1f}")
        mse = report["offline_mse"].get(name)
        cells.append("–" if mse is None else f"{mse:.5f}")
        lines.append("| " + " | ".join(cells) + " |")
    first = next(iter(report["suites"].values()))
    source = next(iter(first.values())).get("latency_source", "rollout")
    where = (
        "warm batch-1 calls, samplers interleaved"
        if source == "benchmark_b1"
        else f"in-rollout calls at batch size {report.get('batch_size')}"
    )
    note = (
        f"\nn_action_steps={report.get('n_action_steps')}, held_out={report.get('held_out')}, "
        f"episodes/task={report.get('episodes_per_task')}, max_steps={report.get('max_steps')}; "
        f"latency = median per-call predict_action_chunk time over {where}.\n"
    )
    return "\n".join(lines) + "\n" + note + mode_tables(report) + _task_tables(report)


def _task_tables(report: dict) -> str:
    """Per-task success (%) tables, one per suite: rows samplers, columns task ids."""
    out = []
    for suite, per_sampler in report.get("tasks", {}).items():
        tasks = sorted({int(t) for per_task in per_sampler.values() for t in per_task})
        out += [
            f"\n{suite} per task (success %, n per cell = episodes/task):\n",
            "| sampler | " + " | ".join(f"task {t}" for t in tasks) + " |",
            "|" + "---|" * (len(tasks) + 1),
        ]
        for name, per_task in per_sampler.items():
            cells = [f"{100 * per_task[str(t)]['success']:.0f}" if str(t) in per_task else "–" for t in tasks]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out) + ("\n" if out else "")


def _plot(report: dict, path: Path, metric: str, ylabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samplers = report.get("samplers", {})
    fig, ax = plt.subplots(figsize=(6, 4))
    for suite, per_sampler in report["suites"].items():
        groups: dict[str, list[tuple[int, dict]]] = {}
        for name, entry in per_sampler.items():
            info = samplers.get(name, {})
            groups.setdefault(info.get("role") or name, []).append((int(info.get("nfe", 0)), entry))
        for role, points in groups.items():
            points.sort(key=lambda p: p[0])
            xs = [p[0] for p in points]
            ys = [p[1][metric] * (100 if metric == "success" else 1) for p in points]
            label = f"{role} ({suite})" if len(report["suites"]) > 1 else role
            if metric == "success":
                err = [
                    [100 * (p[1]["success"] - p[1]["ci_low"]) for p in points],
                    [100 * (p[1]["ci_high"] - p[1]["success"]) for p in points],
                ]
                ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label)
            else:
                ax.plot(xs, ys, marker="o", label=label)
    ax.set_xscale("log", base=2)
    nfes = sorted({int(info.get("nfe", 0)) for info in samplers.values()} - {0})
    if nfes:
        ax.set_xticks(nfes, [str(n) for n in nfes])
    ax.set_xlabel("NFE (denoising steps per chunk)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"n_action_steps={report.get('n_action_steps')}, held_out={report.get('held_out')}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_suites(report: dict, path: Path) -> None:
    """Grouped bars: success per suite (groups) and sampler (bars) with Wilson 95 % intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = list(report["suites"])
    names = list(dict.fromkeys(n for per in report["suites"].values() for n in per))
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(1.6 + 1.6 * len(suites), 3.6))
    for k, name in enumerate(names):
        xs, ys, err = [], [], [[], []]
        for i, suite in enumerate(suites):
            entry = report["suites"][suite].get(name)
            if entry is None:
                continue
            xs.append(i + (k - (len(names) - 1) / 2) * width)
            ys.append(100 * entry["success"])
            err[0].append(100 * (entry["success"] - entry["ci_low"]))
            err[1].append(100 * (entry["ci_high"] - entry["success"]))
        ax.bar(xs, ys, width, yerr=err, capsize=2, label=name)
    ax.set_xticks(range(len(suites)), suites)
    ax.set_ylim(0, 105)
    ax.set_ylabel("success (%), Wilson 95% CI")
    ax.set_title(f"layout={report.get('layout', 'libero')}, held_out={report.get('held_out')}, "
                 f"{report.get('episodes_per_task')} episodes per task")  # fmt: skip
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=len(names), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(report: dict, out: str | Path) -> dict[str, Path]:
    """report.json, report.md, success_by_suite.png, success_vs_nfe.png and latency_vs_nfe.png under ``out``,
    plus <suite>_modes.png for a suite with mode coverage (the multimodal probe)."""
    out = Path(out)
    paths = {
        "report": write_report(report, out),
        "markdown": out / "report.md",
        "suite_plot": out / "success_by_suite.png",
        "success_plot": out / "success_vs_nfe.png",
        "latency_plot": out / "latency_vs_nfe.png",
    }
    paths["markdown"].write_text(markdown_table(report))
    _plot_suites(report, paths["suite_plot"])
    _plot(report, paths["success_plot"], "success", "success (%) with Wilson 95% CI")
    _plot(report, paths["latency_plot"], "latency_ms", "chunk latency p50 (ms)")
    for suite, per_sampler in report["suites"].items():
        if any("modes" in e for e in per_sampler.values()):
            paths[f"{suite}_modes_plot"] = out / f"{suite}_modes.png"
            plot_modes(report, paths[f"{suite}_modes_plot"], suite)
    return paths
