"""The control loop under a simulated clock: tick order, skipping, stale merge, safety, watchdog, threads.

Every test drives a `RecordingRobot`, which asserts on *every* `send_action` that the command is finite,
inside the limits and within max_delta of the previous command. Runtimes are small scripted doubles
whose reported `timings_ms` set the simulated inference latency (InlineInference) or which really run
on the background thread (ThreadedInference).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import numpy as np
import pytest

from snapflow.deploy.clock import SimulatedClock
from snapflow.deploy.control_loop import ControlLoop, ControlLoopConfig, run_control_loop
from snapflow.deploy.inference_worker import ThreadedInference
from snapflow.deploy.metrics import save_run
from snapflow.deploy.runtime_base import ChunkResult
from snapflow.deploy.safety import SafetyConfig

DIM = 2
LIMIT_ATOL = 1e-9  # commands arrive as the float64 the safety filter checked; 1e-9 only absorbs sum rounding
GRID_ATOL = 1e-9  # s; SimulatedClock times are sums of float periods
# Keys other tools read from run.json (issue #4); renaming one breaks them.
RUN_JSON_KEYS = (
    "target_hz", "achieved_hz", "ticks", "missed_ticks", "jitter_ms", "latency_ms", "latency_ms_by_stage",
    "held_ticks", "watchdog_ticks", "queue_min", "chunk_jump", "nonfinite_rejected", "clamped_ticks",
    "success",
)  # fmt: skip
THREAD_WAIT_S = 5.0  # real seconds a test waits for the background thread; generous for a loaded CI box


class RecordingRobot:
    """Records every command and asserts it is safe; optional scripted stalls (seconds) per tick."""

    def __init__(
        self,
        clock: SimulatedClock,
        safety: SafetyConfig,
        stalls: dict[int, float] | None = None,
        on_send: Callable[[], None] | None = None,
        success_at: int | None = None,
    ) -> None:
        self.clock, self.safety = clock, safety
        self.stalls = stalls or {}
        self.on_send = on_send
        self.success_at = success_at
        self.sent: list[np.ndarray] = []
        self.sent_at: list[float] = []
        self.observed_at: list[float] = []
        self.is_success: bool | None = False
        self.closed = False

    def get_observation(self) -> dict:
        self.observed_at.append(self.clock.now())
        return {"agent_pos": np.zeros(8, np.float32), "task": "test"}

    def send_action(self, action: np.ndarray) -> None:
        a = np.asarray(action, dtype=np.float64)
        assert a.shape == (DIM,)
        assert np.isfinite(a).all(), f"non-finite command {a}"
        assert (a >= np.array(self.safety.action_low) - LIMIT_ATOL).all(), f"below limits: {a}"
        assert (a <= np.array(self.safety.action_high) + LIMIT_ATOL).all(), f"above limits: {a}"
        if self.sent:
            step = np.abs(a - self.sent[-1])
            assert (step <= np.array(self.safety.max_delta) + LIMIT_ATOL).all(), f"delta too big: {step}"
        self.sent.append(a)
        self.sent_at.append(self.clock.now())
        if len(self.sent) - 1 in self.stalls:
            self.clock.advance(self.stalls[len(self.sent) - 1])
        if self.success_at is not None and len(self.sent) > self.success_at:
            self.is_success = True
        if self.on_send is not None:
            self.on_send()

    def close(self) -> None:
        self.closed = True

    def values(self) -> list[float]:
        return [round(float(a[0]), 6) for a in self.sent]


class ScriptedRuntime:
    """Call c returns rows 10c, 10c+1, ... (scaled by `scale`), with a reported latency in ms.

    `script[c]` may override call c: "raise", "nan", "block" (wait on `release`), or a float array;
    `slow[c]` overrides the reported latency (ms) of call c.
    """

    def __init__(
        self,
        horizon: int = 10,
        latency_ms: float = 0.0,
        scale: float = 0.01,
        script: dict[int, object] | None = None,
        default: object = None,
        slow: dict[int, float] | None = None,
    ) -> None:
        self.horizon, self.latency_ms, self.scale = horizon, latency_ms, scale
        self.slow = slow or {}
        self.script = script or {}
        self.default = default
        self.calls = 0
        self.resets = 0
        self.release = threading.Event()  # set to end a "block"
        self.blocked = threading.Event()  # set when a call starts blocking

    def reset(self) -> None:
        self.resets += 1

    def predict_chunk(self, observation: dict) -> ChunkResult:
        assert observation["task"] == "test"
        c = self.calls
        self.calls += 1
        action = self.script.get(c, self.default)
        if isinstance(action, str) and action == "raise":
            raise RuntimeError(f"runtime crashed on call {c}")
        if isinstance(action, str) and action == "block":
            self.blocked.set()
            self.release.wait(timeout=60.0)
        rows = (10 * c + np.arange(self.horizon, dtype=float)) * self.scale
        chunk = np.repeat(rows[:, None], DIM, axis=1).astype(np.float32)
        if isinstance(action, str) and action == "nan":
            chunk[3, 1] = np.nan
        elif isinstance(action, np.ndarray):
            chunk = action.astype(np.float32)
        return ChunkResult(chunk, {"preprocess": 0.0, "model": self.slow.get(c, self.latency_ms)})


def _safety(**kw) -> SafetyConfig:
    base = {"max_delta": 10.0, "stale_after_s": 0.2, "hold_ticks": 2}  # max_delta 10: no rate limit
    base.update(kw)
    return SafetyConfig.box(DIM, low=-1.0, high=1.0, **base)


def _setup(hz=20.0, max_ticks=30, safety=None, **kw):
    clock = SimulatedClock()
    cfg = ControlLoopConfig(safety=safety or _safety(), hz=hz, max_ticks=max_ticks, inference="inline", **kw)
    return clock, cfg


def test_tick_order_and_refill_at_watermark():
    clock, cfg = _setup(max_ticks=20, queue_low_watermark=2)
    robot, runtime = RecordingRobot(clock, cfg.safety), ScriptedRuntime()
    report = run_control_loop(runtime, robot, clock, cfg, initial_action=np.zeros(DIM))
    # Chunk 0 rows 0..7, then at depth 2 chunk 1 replaces the queue (zero latency: nothing stale).
    assert robot.values() == [round(0.01 * v, 6) for v in [*range(8), *range(10, 18), *range(20, 24)]]
    np.testing.assert_allclose(robot.sent_at, np.arange(20) * 0.05, atol=GRID_ATOL)
    np.testing.assert_allclose(robot.observed_at, [0.0, 0.4, 0.8], atol=GRID_ATOL)
    assert runtime.resets == 1
    assert report.ticks == 20 and report.missed_ticks == 0 and report.held_ticks == 0
    assert report.queue_min == 2 and report.stop_reason == "max_ticks"
    assert report.achieved_hz == pytest.approx(20.0)
    assert report.jitter_ms["max"] == pytest.approx(0.0, abs=1e-6)


def test_missed_ticks_are_skipped_not_burst():
    clock, cfg = _setup(hz=50.0, max_ticks=20)
    robot = RecordingRobot(clock, cfg.safety, stalls={10: 0.055})  # a 55 ms stall inside tick 10
    report = run_control_loop(ScriptedRuntime(horizon=40), robot, clock, cfg)
    assert report.overruns == 1 and report.missed_ticks == 2
    starts = np.array(robot.sent_at)
    np.testing.assert_allclose(starts[:11], np.arange(11) * 0.02, atol=GRID_ATOL)
    np.testing.assert_allclose(starts[11:], (np.arange(11, 20) + 2) * 0.02, atol=GRID_ATOL)  # on the grid
    assert np.diff(starts).min() >= 0.02 - GRID_ATOL  # never a burst of catch-up ticks
    # The queue is not consumed during the skipped ticks: the action stream has no gaps.
    assert robot.values() == [round(0.01 * v, 6) for v in range(20)]


def test_missed_ticks_can_drop_the_actions_meant_for_them():
    clock, cfg = _setup(hz=50.0, max_ticks=14, drop_missed=True)
    robot = RecordingRobot(clock, cfg.safety, stalls={10: 0.055})
    report = run_control_loop(ScriptedRuntime(horizon=40), robot, clock, cfg)
    assert report.missed_ticks == 2
    assert robot.values() == [round(0.01 * v, 6) for v in [*range(11), 13, 14, 15]]  # rows 11, 12 dropped


def test_inline_blocking_inference_overruns_are_counted():
    clock = SimulatedClock()
    cfg = ControlLoopConfig(
        _safety(), hz=20.0, max_ticks=12, queue_low_watermark=2, inference="inline_blocking"
    )
    robot = RecordingRobot(clock, cfg.safety)
    report = run_control_loop(ScriptedRuntime(latency_ms=120.0), robot, clock, cfg)
    # Tick 8 (depth 2) runs inference inside the tick: it ends 120 ms after its deadline, 70 ms past the
    # next one, so deadlines 9 and 10 are skipped (1 overrun, 2 missed) and tick 9 runs at grid slot 11.
    assert report.overruns == 1 and report.missed_ticks == 2
    starts = np.array(robot.sent_at) - robot.sent_at[0]
    np.testing.assert_allclose(starts[8:10], [8 * 0.05 + 0.12, 11 * 0.05], atol=GRID_ATOL)
    assert report.latency_ms["p50"] == pytest.approx(120.0)


def test_merge_skips_stale_actions_by_measured_latency():
    clock, cfg = _setup(max_ticks=16, queue_low_watermark=4)
    robot, runtime = RecordingRobot(clock, cfg.safety), ScriptedRuntime(latency_ms=120.0)
    report = run_control_loop(runtime, robot, clock, cfg)
    # The first chunk takes 120 ms before the grid starts (t0 = 0.12 s). Tick 6 sees depth 4 and requests;
    # the chunk is merged at tick 9, 0.15 s after its observation: d = ceil(0.15 / 0.05) = 3 stale rows
    # are skipped, so row 3 of chunk 1 is sent on the tick it was meant for (one old row was replaced).
    expected = [*range(9), 13, 14, 15, 16, 17, 18, 23]
    assert robot.values() == [round(0.01 * v, 6) for v in expected]
    np.testing.assert_allclose(robot.observed_at, [0.0, 0.12 + 0.3, 0.12 + 0.6], atol=GRID_ATOL)
    assert report.delay_ticks["max"] == 3 and report.latency_ms["max"] == pytest.approx(120.0)
    assert report.latency_ms_by_stage["model"]["p50"] == pytest.approx(120.0)
    assert report.chunk_jump_raw["max"] == pytest.approx(0.05)  # row 13 after row 8, in action units
    assert report.held_ticks == 0 and report.queue_min == 1


def test_crossfade_in_loop_reduces_chunk_jump():
    reports = {}
    for steps in (0, 3):
        clock, cfg = _setup(max_ticks=16, queue_low_watermark=4, crossfade_steps=steps)
        robot = RecordingRobot(clock, cfg.safety)
        reports[steps] = run_control_loop(ScriptedRuntime(latency_ms=120.0), robot, clock, cfg)
    # 0.08 -> 0.13 hard switch; with a 3-step fade the first new action blends the replaced old row 9:
    # 0.75 * 0.09 + 0.25 * 0.13 = 0.1 (jump 0.02 instead of 0.05).
    assert reports[0].chunk_jump["max"] == pytest.approx(0.05)
    assert reports[3].chunk_jump["max"] == pytest.approx(0.75 * 0.09 + 0.25 * 0.13 - 0.08)
    assert reports[3].chunk_jump_raw["max"] == pytest.approx(0.05)


def test_nan_chunk_is_rejected_and_never_sent():
    clock, cfg = _setup(max_ticks=25, queue_low_watermark=2)
    robot = RecordingRobot(clock, cfg.safety)
    report = run_control_loop(ScriptedRuntime(script={1: "nan"}), robot, clock, cfg)
    assert report.nonfinite_rejected == 1 and report.inference_errors == 0
    values = robot.values()
    # Chunk 1 (requested at tick 8) has a NaN: dropped whole, the old queue goes on (row 8), and the
    # retry on tick 9 (chunk 2) takes over. Nothing of chunk 1 (0.10 ... 0.19) reached the robot.
    assert values[:9] == [round(0.01 * v, 6) for v in range(9)]
    assert values[9:12] == [0.2, 0.21, 0.22]
    assert not any(0.1 <= v < 0.2 for v in values)


def test_over_limit_actions_are_clamped_and_rate_limited():
    safety = _safety(max_delta=0.3)
    clock, cfg = _setup(max_ticks=6, safety=safety)
    chunk = np.array([[5.0, -7.0]] * 10)
    robot = RecordingRobot(clock, safety)
    report = run_control_loop(ScriptedRuntime(default=chunk), robot, clock, cfg, initial_action=np.zeros(DIM))
    np.testing.assert_allclose(robot.sent[0], [0.3, -0.3], atol=LIMIT_ATOL)
    np.testing.assert_allclose(robot.sent[-1], [1.0, -1.0], atol=LIMIT_ATOL)
    assert report.clamped_ticks == 6 and report.delta_limited_ticks == 3  # 0.3, 0.6, 0.9, then 1.0


def test_watchdog_on_stalled_runtime_holds_then_ramps_to_safe():
    safety = _safety(max_delta=0.1, stale_after_s=0.2, hold_ticks=2)
    clock, cfg = _setup(max_ticks=16, safety=safety, queue_low_watermark=1)
    # The second call "never" returns: its result is due after 1e6 s of simulated time.
    runtime = ScriptedRuntime(horizon=4, default=np.full((4, DIM), 0.35), slow={1: 1e9})
    robot = RecordingRobot(clock, safety)
    report = run_control_loop(runtime, robot, clock, cfg, initial_action=np.full(DIM, 0.35))
    v = robot.values()
    # ticks 0-3: the chunk; 4: queue empty but fresh (held); from t=0.25 > 0.2 s stale: 2 watchdog
    # hold ticks, then ramp 0.35 -> 0 at 0.1 per tick, then stay at the safe action.
    assert v == [0.35] * 5 + [0.35, 0.35] + [0.25, 0.15, 0.05, 0.0] + [0.0] * 5
    assert report.held_ticks == 1 and report.watchdog_ticks == 11
    assert runtime.calls == 2 and report.chunks_merged == 1 and report.stop_reason == "max_ticks"


def test_crashing_runtime_faults_to_safe_action_and_stops():
    safety = _safety(max_delta=0.1, hold_ticks=1)
    clock, cfg = _setup(max_ticks=100, safety=safety, queue_low_watermark=2, max_consecutive_errors=3)
    runtime = ScriptedRuntime(scale=0.03, script={1: "raise", 2: "raise", 3: "raise"}, default=None)
    robot = RecordingRobot(clock, safety)
    report = run_control_loop(runtime, robot, clock, cfg)
    assert report.inference_errors == 3 and report.fault is not None and "crashed" in report.fault
    assert report.stop_reason == "fault"
    assert runtime.calls == 4  # no request after the fault
    v = robot.values()
    np.testing.assert_allclose(v[-1], 0.0)
    assert v[:8] == [round(0.03 * i, 6) for i in range(8)]
    # errors at ticks 8, 9, 10 (one retry per tick); fault drops the queue: 1 hold tick, then ramp.
    assert v[8:11] == [0.24, 0.27, 0.27]
    assert v[11:] == [0.17, 0.07, 0.0]


def test_first_chunk_failure_sends_nothing():
    clock, cfg = _setup()
    robot = RecordingRobot(clock, cfg.safety)
    report = run_control_loop(ScriptedRuntime(script={0: "raise"}), robot, clock, cfg)
    assert robot.sent == [] and report.ticks == 0 and report.stop_reason == "fault"
    assert report.fault.startswith("first chunk rejected: RuntimeError") and report.inference_errors == 1


def test_stop_on_success_and_reports(tmp_path):
    clock, cfg = _setup(max_ticks=100, stop_on_success=True)
    robot = RecordingRobot(clock, cfg.safety, success_at=7)
    report = run_control_loop(ScriptedRuntime(latency_ms=30.0), robot, clock, cfg)
    assert report.success is True and report.stop_reason == "success" and report.ticks == 8
    run_json = save_run(report, tmp_path)
    doc = json.loads(run_json.read_text())
    assert set(doc) >= set(RUN_JSON_KEYS)
    assert set(doc["jitter_ms"]) >= {"p50", "p95", "p99", "max"}
    assert set(doc["latency_ms_by_stage"]) == {"preprocess", "model"}
    assert (tmp_path / "latency_hist.png").stat().st_size > 1000


def _threaded_run(runtime: ScriptedRuntime, cfg: ControlLoopConfig, clock: SimulatedClock):
    """Run with a real background thread. After each tick the robot waits (real time) until the thread
    is idle or blocked in a "block" call. That pins down when the thread's result becomes visible: a
    request made on tick k is delivered on tick k + 1, exactly like inline inference with one period
    of latency, so the run is deterministic although the thread is real."""
    executor = ThreadedInference(runtime, clock)

    def settle() -> None:
        for _ in range(int(THREAD_WAIT_S / 0.001)):
            if executor.wait_idle(0.001) or runtime.blocked.is_set():
                return
        raise AssertionError("inference thread neither finished nor blocked")

    robot = RecordingRobot(clock, cfg.safety, on_send=settle)
    report = ControlLoop(runtime, robot, clock, cfg, executor=executor).run()
    return robot, report


def test_real_thread_matches_inline_with_one_tick_latency():
    clock, cfg = _setup(max_ticks=30, queue_low_watermark=2)
    robot_t, report_t = _threaded_run(ScriptedRuntime(), cfg, clock)
    clock2 = SimulatedClock()
    robot_i = RecordingRobot(clock2, cfg.safety)
    report_i = run_control_loop(ScriptedRuntime(latency_ms=50.0), robot_i, clock2, cfg)
    assert robot_t.values() == robot_i.values()
    assert report_t.chunks_merged == report_i.chunks_merged == 4
    assert report_t.delay_ticks["max"] == report_i.delay_ticks["max"] == 1
    assert report_t.inference_thread_stopped


def test_real_thread_crash_is_contained():
    safety = _safety(max_delta=0.1, hold_ticks=1)
    clock, cfg = _setup(max_ticks=200, safety=safety, max_consecutive_errors=2, queue_low_watermark=2)
    runtime = ScriptedRuntime(default="raise", script={0: None})
    robot, report = _threaded_run(runtime, cfg, clock)
    assert report.inference_errors == 2 and report.stop_reason == "fault"
    assert robot.values()[-1] == 0.0 and report.inference_thread_stopped
    assert report.ticks < 200  # stopped once safe, without waiting for max_ticks


def test_real_thread_stall_triggers_watchdog_and_loop_still_ends():
    safety = _safety(max_delta=0.1, stale_after_s=0.2, hold_ticks=2)
    clock, cfg = _setup(max_ticks=40, safety=safety, queue_low_watermark=1, close_timeout_s=0.05)
    runtime = ScriptedRuntime(horizon=4, default="block", script={0: None}, scale=0.1)
    try:
        robot, report = _threaded_run(runtime, cfg, clock)
    finally:
        runtime.release.set()  # let the stuck worker finish so the test leaves no live thread behind
    assert not report.inference_thread_stopped  # close() timed out on the stalled call, as it must
    assert report.chunks_merged == 1 and report.stop_reason == "max_ticks"
    # 4 rows of the only chunk, 1 held tick (t=0.2 s is not yet > stale_after_s), 2 watchdog holds,
    # ramp 0.3 -> 0 at 0.1 per tick, then the safe action until the end.
    assert robot.values() == [0.0, 0.1, 0.2, 0.3] + [0.3] * 3 + [0.2, 0.1] + [0.0] * 31
    assert report.held_ticks == 1 and report.watchdog_ticks == 40 - 4 - 1


class EpisodicRobot(RecordingRobot):
    """A robot that starts a new episode right after send number `new_episode_at` (SimRobot auto_reset)."""

    def __init__(self, *args, new_episode_at: int, **kw) -> None:
        super().__init__(*args, **kw)
        self.new_episode_at, self.episodes = new_episode_at, 0

    def send_action(self, action: np.ndarray) -> None:
        super().send_action(action)
        if len(self.sent) == self.new_episode_at + 1:
            self.episodes += 1


def test_new_episode_drops_the_queue():
    clock, cfg = _setup(max_ticks=10, queue_low_watermark=2)
    robot = EpisodicRobot(clock, cfg.safety, new_episode_at=3)
    run_control_loop(ScriptedRuntime(), robot, clock, cfg, initial_action=np.zeros(DIM))
    # rows 4..7 of chunk 0 belonged to the old episode; tick 4 plans afresh from the new first observation
    assert robot.values() == [round(0.01 * v, 6) for v in [0, 1, 2, 3, 10, 11, 12, 13, 14, 15]]
    np.testing.assert_allclose(robot.observed_at, [0.0, 0.2], atol=GRID_ATOL)


def test_new_episode_discards_a_chunk_planned_in_the_old_one():
    clock, cfg = _setup(max_ticks=14, queue_low_watermark=4)
    robot = EpisodicRobot(clock, cfg.safety, new_episode_at=6)
    run_control_loop(ScriptedRuntime(latency_ms=60.0), robot, clock, cfg, initial_action=np.zeros(DIM))
    values = robot.values()
    assert values[:7] == [round(0.01 * v, 6) for v in range(7)]
    # call 1 observed on tick 6, the tick whose command ended the episode: none of its rows (0.10-0.19) is sent
    assert not [v for v in values[7:] if 0.10 - 1e-9 <= v < 0.20]
    # call 2 observed on tick 8 (after the boundary), merged 2 ticks later without its 2 stale rows
    assert values[10:12] == [0.22, 0.23]


def test_ctrl_c_stops_sending_and_still_reports_the_ticks_run():
    def interrupt_at_five() -> None:
        if len(robot.sent) == 5:
            raise KeyboardInterrupt

    clock, cfg = _setup(max_ticks=30)
    robot = RecordingRobot(clock, cfg.safety, on_send=interrupt_at_five)
    report = run_control_loop(ScriptedRuntime(), robot, clock, cfg, initial_action=np.zeros(DIM))
    assert report.stop_reason == "interrupted" and len(robot.sent) == 5 and report.ticks >= 4
