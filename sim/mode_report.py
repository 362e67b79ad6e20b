"""Mode coverage of the multimodal probe in `report.json`, its markdown table and its plot.

Each (multimodal suite, sampler) entry of report.json gets, beside the success fields, `modes`
({mode: share of all episodes}), `between_modes` (episodes that reached the object but never went to either
side of the barrier: the failure a mean-seeking sampler produces), `not_reached`, `touched_barrier` (episodes
in which anything touched the barrier, from MuJoCo's contacts) and `success_by_mode`. The strategy
of an episode comes from its end-effector path (`modes.classify_path`, via `MiniLiberoEnv.episode_mode`).
"""

from __future__ import annotations

from pathlib import Path

from snapflow.sim.evaluate import EpisodeResult
from snapflow.sim.modes import BETWEEN, MODES, NOT_REACHED

# Sampler names longer than this are drawn on two lines under their bar (about the width of one bar).
LABEL_CHARS = 11


def mode_entry(episodes: list[EpisodeResult]) -> dict:
    """Mode coverage of a multimodal-probe rollout: {"modes": {mode: share of all episodes},
    "between_modes": episodes that reached the object but never went to either side, "not_reached": the
    rest (never reached the object), "touched_barrier": episodes in which anything touched the barrier,
    "success_by_mode": {mode: success share within that mode}};
    {} when no episode carries a mode (the benchmark's suites)."""
    if not any(e.mode for e in episodes):
        return {}
    n = len(episodes)
    counts = {m: sum(e.mode == m for e in episodes) for m in (*MODES, BETWEEN, NOT_REACHED)}
    return {
        "modes": {m: counts[m] / n for m in MODES},
        "between_modes": counts[BETWEEN],
        "not_reached": counts[NOT_REACHED],
        "touched_barrier": sum(bool(e.touched_obstacle) for e in episodes),
        "success_by_mode": {
            m: sum(e.success for e in episodes if e.mode == m) / counts[m] for m in MODES if counts[m]
        },
    }


def mode_tables(report: dict) -> str:
    """Mode coverage per sampler for every suite whose entries carry `modes` (the multimodal probe)."""
    out = []
    for suite, per_sampler in report["suites"].items():
        rows = {name: e for name, e in per_sampler.items() if "modes" in e}
        if not rows:
            continue
        modes = list(next(iter(rows.values()))["modes"])
        out += [
            f"\n{suite} modes (share of all episodes; between = reached the object, never went to a side):\n",
            "| sampler | success [95% CI] | "
            + " | ".join(modes)
            + " | between | not reached | touched barrier | offline MSE | nearest-mode MSE |",
            "|" + "---|" * (len(modes) + 7),
        ]
        for name, e in rows.items():
            shares = " | ".join(f"{100 * e['modes'][m]:.0f}%" for m in modes)
            offline = report.get("samplers", {}).get(name, {}).get("offline_mse", {})
            errors = " | ".join(
                f"{offline[k]:.4f}" if k in offline else "–" for k in ("mean", "nearest_mode")
            )
            out.append(
                f"| {name} | {100 * e['success']:.0f}% [{100 * e['ci_low']:.0f}, {100 * e['ci_high']:.0f}] | "
                f"{shares} | {e['between_modes']} | {e['not_reached']} | {e.get('touched_barrier', '–')} | {errors} |"
            )
    return "\n".join(out) + ("\n" if out else "")


def plot_modes(report: dict, path: Path, suite: str = "multimodal") -> None:
    """Stacked bars per sampler: share of episodes per mode (succeeded and failed), between modes and not
    reached, with the success rate and its Wilson 95 % interval drawn over them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {name: e for name, e in report["suites"][suite].items() if "modes" in e}
    names = list(rows)
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(names), 3.8))
    bottom = [0.0] * len(names)
    colours = {"near": "#4c72b0", "far": "#55a868", BETWEEN: "#c44e52", NOT_REACHED: "#bbbbbb"}
    parts = [*MODES, BETWEEN, NOT_REACHED]
    for part in parts:
        if part in MODES:
            heights = [100 * rows[n]["modes"][part] for n in names]
        else:
            key = "between_modes" if part == BETWEEN else "not_reached"
            heights = [100 * rows[n][key] / rows[n]["episodes"] for n in names]
        ax.bar(names, heights, 0.6, bottom=bottom, color=colours.get(part), label=part.replace("_", " "))
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    success = [100 * rows[n]["success"] for n in names]
    err = [
        [100 * (rows[n]["success"] - rows[n]["ci_low"]) for n in names],
        [100 * (rows[n]["ci_high"] - rows[n]["success"]) for n in names],
    ]
    ax.errorbar(names, success, yerr=err, fmt="D", color="black", capsize=4, label="success (95% CI)")
    # Long sampler names (snapflow_option_1) would run into their neighbours: break them after the family.
    ax.set_xticks(range(len(names)), [n.replace("_", "\n", 1) if len(n) > LABEL_CHARS else n for n in names])
    ax.set_ylim(0, 105)
    ax.set_ylabel("% of episodes")
    ax.set_title(f"{suite}: strategy per episode and success, {rows[names[0]]['episodes']} episodes each")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
