"""Control-loop metrics: per-tick timing, inference latency per stage, counters, the run report.

Units: every `*_ms` value is milliseconds, `*_hz` hertz, `*_s` seconds, jumps are action units
(infinity norm over dimensions). Percentile blocks are `{"p50", "p95", "p99", "max"}` (plus "n", the
sample count); they are null when there were no samples. `LoopReport.to_json()` is what `run.json`
holds; other tools read its keys, so keep them stable.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

PERCENTILES = (50, 95, 99)


def percentiles(samples: list[float] | np.ndarray) -> dict[str, float | int | None]:
    """{"p50", "p95", "p99", "max", "n"} of `samples` (None values when empty)."""
    arr = np.asarray(samples, dtype=np.float64)
    if arr.size == 0:
        return {"p50": None, "p95": None, "p99": None, "max": None, "n": 0}
    out: dict[str, float | int | None] = {f"p{q}": float(np.percentile(arr, q)) for q in PERCENTILES}
    out["max"] = float(arr.max())
    out["n"] = int(arr.size)
    return out


@dataclass
class LoopSamples:
    """Raw samples kept during a run (not written to run.json; used for plots)."""

    tick_start_s: list[float] = field(default_factory=list)  # clock time each executed tick woke up
    jitter_ms: list[float] = field(default_factory=list)  # wake-up time minus deadline, per tick
    work_ms: list[float] = field(default_factory=list)  # time spent inside each tick
    queue_depth: list[int] = field(default_factory=list)  # depth after the tick's pop
    latency_ms: list[float] = field(default_factory=list)  # whole predict_chunk call, per chunk
    stage_ms: dict[str, list[float]] = field(default_factory=dict)  # runtime-reported, per stage
    delay_ticks: list[int] = field(default_factory=list)  # stale rows skipped per merge (d)
    chunk_jump: list[float] = field(default_factory=list)  # after cross-fade
    chunk_jump_raw: list[float] = field(default_factory=list)  # before cross-fade


@dataclass
class LoopCounters:
    """Event counters of one run."""

    ticks: int = 0  # executed ticks (= commands sent)
    missed_ticks: int = 0  # deadlines skipped because a tick overran
    overruns: int = 0  # ticks that finished after the next deadline
    held_ticks: int = 0  # queue empty, last chunk still recent: last command repeated
    watchdog_ticks: int = 0  # ticks under the watchdog (hold, ramp or at the safe action)
    clamped_ticks: int = 0  # proposed action outside the per-dimension limits
    delta_limited_ticks: int = 0  # proposed change above max_delta per tick
    nonfinite_rejected: int = 0  # chunks (or single actions) with NaN/inf, dropped and never sent
    invalid_chunks: int = 0  # chunks with a wrong shape, dropped
    chunks_requested: int = 0
    chunks_merged: int = 0
    inference_errors: int = 0  # runtime raised


@dataclass
class LoopReport:
    """Summary of one control-loop run; `to_json` gives the run.json document."""

    target_hz: float
    achieved_hz: float | None
    duration_s: float
    ticks: int
    missed_ticks: int
    overruns: int
    jitter_ms: dict
    tick_work_ms: dict
    latency_ms: dict
    latency_ms_by_stage: dict[str, dict]
    delay_ticks: dict
    held_ticks: int
    watchdog_ticks: int
    queue_min: int | None
    chunk_jump: dict
    chunk_jump_raw: dict
    nonfinite_rejected: int
    invalid_chunks: int
    clamped_ticks: int
    delta_limited_ticks: int
    chunks_requested: int
    chunks_merged: int
    inference_errors: int
    success: bool | None
    stop_reason: str
    fault: str | None
    inference_thread_stopped: bool
    realtime: list[str] = field(default_factory=list)  # scheduling changes applied (or refused)
    samples: LoopSamples = field(default_factory=LoopSamples, repr=False)

    def to_dict(self) -> dict:
        """All fields except the raw samples."""
        out = asdict(self)
        out.pop("samples")
        return out

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)


def build_report(
    samples: LoopSamples,
    counters: LoopCounters,
    target_hz: float,
    success: bool | None,
    stop_reason: str,
    fault: str | None,
    inference_thread_stopped: bool,
    realtime: list[str] | None = None,
) -> LoopReport:
    """Reduce a run's samples and counters to a `LoopReport`."""
    starts = samples.tick_start_s
    span = starts[-1] - starts[0] if len(starts) >= 2 else 0.0
    achieved = (len(starts) - 1) / span if span > 0 else None  # ticks per second between first and last
    return LoopReport(
        target_hz=target_hz,
        achieved_hz=achieved,
        duration_s=span,
        ticks=counters.ticks,
        missed_ticks=counters.missed_ticks,
        overruns=counters.overruns,
        jitter_ms=percentiles(samples.jitter_ms),
        tick_work_ms=percentiles(samples.work_ms),
        latency_ms=percentiles(samples.latency_ms),
        latency_ms_by_stage={k: percentiles(v) for k, v in samples.stage_ms.items()},
        delay_ticks=percentiles(samples.delay_ticks),
        held_ticks=counters.held_ticks,
        watchdog_ticks=counters.watchdog_ticks,
        queue_min=min(samples.queue_depth) if samples.queue_depth else None,
        chunk_jump=percentiles(samples.chunk_jump),
        chunk_jump_raw=percentiles(samples.chunk_jump_raw),
        nonfinite_rejected=counters.nonfinite_rejected,
        invalid_chunks=counters.invalid_chunks,
        clamped_ticks=counters.clamped_ticks,
        delta_limited_ticks=counters.delta_limited_ticks,
        chunks_requested=counters.chunks_requested,
        chunks_merged=counters.chunks_merged,
        inference_errors=counters.inference_errors,
        success=success,
        stop_reason=stop_reason,
        fault=fault,
        inference_thread_stopped=inference_thread_stopped,
        realtime=list(realtime or []),
        samples=samples,
    )


def plot_latency_histogram(report: LoopReport, path: str | Path) -> Path:
    """Histogram of inference latency per stage and of tick jitter (ms), saved as a PNG (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = report.samples
    fig, (ax_lat, ax_jit) = plt.subplots(1, 2, figsize=(11, 4))
    series = {"total": s.latency_ms, **s.stage_ms}
    for name, values in series.items():
        if values:
            ax_lat.hist(values, bins=40, alpha=0.5, label=f"{name} (n={len(values)})")
    ax_lat.set(xlabel="latency [ms]", ylabel="chunks", title="inference latency per stage")
    if any(series.values()):
        ax_lat.legend()
    if s.jitter_ms:
        ax_jit.hist(s.jitter_ms, bins=40, color="tab:gray")
    ax_jit.set(
        xlabel="tick wake-up minus deadline [ms]",
        ylabel="ticks",
        title=f"tick jitter @ {report.target_hz:g} Hz (missed {report.missed_ticks})",
    )
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def save_run(report: LoopReport, out_dir: str | Path) -> Path:
    """Write `<out_dir>/run.json` and `<out_dir>/latency_hist.png`; returns the run.json path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run_json = out / "run.json"
    run_json.write_text(report.to_json() + "\n")
    plot_latency_histogram(report, out / "latency_hist.png")
    return run_json
