"""Real-clock benchmark of the control loop alone: a dummy runtime of fixed latency, a no-op robot.

    python -m snapflow.deploy.loop_bench --seconds 15 --hz 20 --latency-ms 2
    python -m snapflow.deploy.loop_bench --seconds 15 --hz 20 --latency-ms 120 --out outputs/bench
    python -m snapflow.deploy.loop_bench --seconds 15 --latency-ms 2 --sim   # drive the mini-LIBERO sim

It measures what the loop machinery costs and how it schedules (achieved rate, wake-up jitter,
missed ticks, held ticks, stale rows skipped), independent of any model. The dummy runtime sleeps for
its latency (like ONNX Runtime / torch kernels, it releases the GIL while "computing").
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from snapflow.deploy.clock import MonotonicClock
from snapflow.deploy.control_loop import ControlLoopConfig, run_control_loop
from snapflow.deploy.metrics import LoopReport, save_run
from snapflow.deploy.robots import Robot, SimRobot
from snapflow.deploy.runtime_base import ChunkResult
from snapflow.deploy.safety import SafetyConfig


@dataclass
class DummyRuntime:
    """Returns a smooth (horizon, action_dim) chunk after sleeping `latency_ms` milliseconds."""

    latency_ms: float = 2.0
    horizon: int = 50
    action_dim: int = 7
    calls: int = 0

    def reset(self) -> None:
        self.calls = 0

    def predict_chunk(self, observation: dict) -> ChunkResult:
        t0 = time.perf_counter()
        time.sleep(self.latency_ms / 1000.0)
        phase = 0.1 * (self.calls + np.arange(self.horizon))
        actions = 0.5 * np.sin(phase)[:, None] * np.ones((1, self.action_dim))
        self.calls += 1
        return ChunkResult(actions.astype(np.float32), {"model": (time.perf_counter() - t0) * 1e3})


class NullRobot:
    """Accepts commands and does nothing (counts them)."""

    def __init__(self, action_dim: int = 7) -> None:
        self.action_dim = action_dim
        self.sent = 0

    def get_observation(self) -> dict:
        return {"agent_pos": np.zeros(8, np.float32), "task": "benchmark"}

    def send_action(self, action: np.ndarray) -> None:
        assert np.isfinite(action).all()
        self.sent += 1

    def close(self) -> None:
        pass


def run_bench(
    seconds: float = 15.0,
    hz: float = 20.0,
    latency_ms: float = 2.0,
    actions_per_chunk: int = 10,
    queue_low_watermark: int | None = None,
    spin_ms: float = 0.0,
    realtime_priority: int | None = None,
    robot: Robot | None = None,
) -> LoopReport:
    """Run the loop on the real clock with a `DummyRuntime` and return its report.

    Args:
        seconds: loop duration (s). hz: control rate (Hz). latency_ms: dummy inference latency (ms).
        actions_per_chunk: rows used per chunk. queue_low_watermark: refill threshold (default: the
            latency in ticks + 2). spin_ms: busy-wait tail before each deadline (ms; 0 = plain sleep).
        realtime_priority: SCHED_FIFO priority of the control thread, with 1 ns timer slack (None: off).
        robot: the robot to drive (default: a `NullRobot`); must take 7-D actions in [-1, 1].
    """
    if queue_low_watermark is None:
        queue_low_watermark = int(np.ceil(latency_ms / 1000.0 * hz)) + 2
    cfg = ControlLoopConfig(
        safety=SafetyConfig.box(7, max_delta=0.5, stale_after_s=max(0.5, 3 * latency_ms / 1000.0)),
        hz=hz,
        seconds=seconds,
        actions_per_chunk=actions_per_chunk,
        queue_low_watermark=queue_low_watermark,
        crossfade_steps=2,
        inference="thread",
        realtime_priority=realtime_priority,
        timer_slack_ns=None if realtime_priority is None else 1,
    )
    clock = MonotonicClock(spin_s=spin_ms / 1000.0)
    return run_control_loop(DummyRuntime(latency_ms), robot or NullRobot(), clock, cfg)


def format_report(r: LoopReport) -> str:
    """A few human-readable lines: rate, jitter, misses, latency (ms)."""

    def fmt(block: dict) -> str:
        return " / ".join("-" if block[k] is None else f"{block[k]:.3f}" for k in ("p50", "p99", "max"))

    achieved = "-" if r.achieved_hz is None else f"{r.achieved_hz:.3f}"
    lines = [
        f"target {r.target_hz:g} Hz, achieved {achieved} Hz over {r.duration_s:.2f} s, {r.ticks} ticks "
        f"(stopped: {r.stop_reason})",
        f"jitter ms p50/p99/max: {fmt(r.jitter_ms)}; tick work ms p50/p99/max: {fmt(r.tick_work_ms)}",
        f"missed ticks {r.missed_ticks} (overruns {r.overruns}); held {r.held_ticks}; "
        f"watchdog {r.watchdog_ticks}; queue min {r.queue_min}",
        f"inference latency ms p50/p99/max: {fmt(r.latency_ms)}; stale rows skipped max "
        f"{r.delay_ticks['max']}; chunks merged {r.chunks_merged}",
    ]
    if r.realtime:
        lines.append("realtime: " + ", ".join(r.realtime))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="loop duration (s)")
    parser.add_argument("--hz", type=float, default=20.0, help="control rate (Hz)")
    parser.add_argument("--latency-ms", type=float, default=2.0, help="dummy inference latency (ms)")
    parser.add_argument("--actions-per-chunk", type=int, default=10)
    parser.add_argument("--watermark", type=int, default=None, help="queue refill threshold (actions)")
    parser.add_argument("--spin-ms", type=float, default=0.0, help="busy-wait tail before deadlines (ms)")
    parser.add_argument("--rt", type=int, default=None, help="SCHED_FIFO priority of the control thread")
    parser.add_argument(
        "--sim", action="store_true", help="drive the mini-LIBERO sim instead of a null robot"
    )
    parser.add_argument("--resolution", type=int, default=128, help="sim camera resolution (pixels)")
    parser.add_argument("--out", default=None, help="write run.json and latency_hist.png here")
    a = parser.parse_args(argv)
    robot = SimRobot(resolution=a.resolution) if a.sim else NullRobot()
    try:
        report = run_bench(
            a.seconds, a.hz, a.latency_ms, a.actions_per_chunk, a.watermark, a.spin_ms, a.rt, robot
        )
    finally:
        robot.close()
    print(format_report(report))
    if a.out:
        print(f"wrote {save_run(report, a.out)}")


if __name__ == "__main__":
    main()
