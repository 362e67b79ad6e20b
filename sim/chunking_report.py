"""The chunking sweep's part of report.json, its table and its plot (success against inference delay).

report["chunking"] = {<scheme>: {"<delay>": {success, ci_low, ci_high, episodes, ...}}}
report["chunking_meta"] = {sampler, suite, execute_steps, crossfade_steps, ensemble_decay, episodes_per_task}
"""

from __future__ import annotations

from pathlib import Path

from snapflow.sim.chunking import SCHEMES, Chunking
from snapflow.sim.evaluate import RolloutResult
from snapflow.sim.report import summarize


def chunking_section(results: dict[Chunking, RolloutResult]) -> dict:
    """{scheme: {str(delay): summary}} in SCHEMES order and increasing delay."""
    out: dict[str, dict[str, dict]] = {}
    for c in sorted(results, key=lambda c: (SCHEMES.index(c.scheme), c.delay)):
        entry = summarize(results[c].episodes)
        entry["latency_calls"] = len(results[c].latencies_ms)
        out.setdefault(c.scheme, {})[str(c.delay)] = entry
    return out


def chunking_table(section: dict, meta: dict) -> str:
    """A markdown table: one row per scheme, one column per delay (success % [95 % CI])."""
    delays = sorted({int(d) for per in section.values() for d in per})
    head = f"chunking sweep: {meta.get('sampler')} on {meta.get('suite')}, execute_steps={meta.get('execute_steps')}"
    lines = [head, "", "| scheme | " + " | ".join(f"delay {d}" for d in delays) + " |"]
    lines.append("|---|" + "---|" * len(delays))
    for scheme, per in section.items():
        cells = []
        for d in delays:
            e = per.get(str(d))
            cells.append(
                f"{100 * e['success']:.0f} [{100 * e['ci_low']:.0f}, {100 * e['ci_high']:.0f}] (n={e['episodes']})"
                if e
                else "-"
            )
        lines.append(f"| {scheme} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_chunking(section: dict, meta: dict, path: str | Path) -> Path:
    """Success (%) against inference delay, one line per scheme, Wilson 95 % intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for k, (scheme, per) in enumerate(section.items()):
        delays = sorted(int(d) for d in per)
        xs = [d + (k - 2) * 0.06 for d in delays]  # small offsets so the intervals do not hide each other
        ys = [100 * per[str(d)]["success"] for d in delays]
        err = [
            [100 * (per[str(d)]["success"] - per[str(d)]["ci_low"]) for d in delays],
            [100 * (per[str(d)]["ci_high"] - per[str(d)]["success"]) for d in delays],
        ]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=scheme)
    ax.set_xlabel("simulated inference delay (control ticks)")
    ax.set_ylabel("success (%), Wilson 95% CI")
    ax.set_ylim(0, 105)
    ax.set_title(
        f"{meta.get('sampler')} on {meta.get('suite')}, {meta.get('execute_steps')} actions per chunk"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
