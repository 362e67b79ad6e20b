"""The fixed-rate control loop: chunk queue + background inference + safety filter + metrics.

One tick (period dt = 1 / hz seconds), on an absolute deadline grid t0 + k * dt:

    1. collect a finished inference outcome, if any: reject errors / non-finite / wrong-shape chunks,
       otherwise merge it into the queue, skipping d = ceil(delay / dt) stale rows (chunk_queue.py);
    2. if the queue depth <= queue_low_watermark and no inference is in flight: read an observation
       and submit it (then collect again, so inline executors can deliver within the same tick);
    3. pop the next action (None when the queue is empty) and pass it through the safety filter with
       the robot's measured state (limits, rate limit from the measured position, no-motion hold,
       watchdog; safety.py), then check the command once more before it is sent;
    4. send the command; stop on success / episode end / fault when configured;
    5. advance the deadline. If the tick ran past the next deadline it counts one overrun and the
       deadlines it missed are skipped, never burst: the loop resumes on the original grid
       (ros2_control style).

Fault handling: after `max_consecutive_errors` failed inference calls (exceptions, NaN or wrong-shape
chunks) the loop stops requesting inference, drops the queue and forces the watchdog: no motion for
`hold_ticks`, then SAFE (or a ramp to an explicit `safe_action`) and (with `stop_on_fault`) it stops.
A stalled runtime is handled by the watchdog alone (the control thread never waits on inference). If the
first chunk never arrives, or the robot stands outside its envelope, no command is ever sent.

The measured state comes from `robot.measured_action()` (optional; (A,) in action units, NaN where a
dimension is not measured), read on every tick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from snapflow.deploy.chunk_queue import ChunkQueue
from snapflow.deploy.clock import Clock, realtime_scheduling
from snapflow.deploy.inference_worker import (
    InferenceExecutor,
    InferenceOutcome,
    InlineInference,
    ThreadedInference,
)
from snapflow.deploy.metrics import LoopCounters, LoopReport, LoopSamples, build_report
from snapflow.deploy.robots import Robot
from snapflow.deploy.runtime_base import ChunkResult, ChunkRuntime
from snapflow.deploy.safety import SafetyConfig, SafetyFilter, SafetyMode, SafetyStep, is_valid_chunk

InferenceMode = Literal["thread", "inline", "inline_blocking"]
_JUMP_ATOL = 1e-9  # action units: float64 rounding of measured + limited delta


@dataclass
class ControlLoopConfig:
    """Settings of one control-loop run.

    Attributes:
        safety: action limits, per-tick delta limits, safe action and watchdog timing.
        hz: control rate (Hz).
        seconds: stop after this many seconds of loop time (None: no time limit).
        max_ticks: stop after this many executed ticks (None: no tick limit). One of the two is required.
        actions_per_chunk: use at most this many rows of each chunk (None: the whole chunk).
        queue_low_watermark: request a new chunk when the queue holds <= this many actions. Set it to at
            least the expected inference delay in ticks, or the queue runs dry (held ticks).
        crossfade_steps: ticks over which a new chunk fades in (0: hard switch).
        skip_stale: drop the rows of a chunk whose ticks passed during inference.
        drop_missed: when deadlines are skipped after an overrun, also drop the queued actions meant for
            them (right for absolute-position targets). False keeps the plan and resumes it late (right
            for delta actions such as mini-LIBERO's, where a dropped row is lost motion).
        inference: "thread" (background thread, production), "inline" (deterministic; latency from the
            runtime's reported timings, delivered later on the clock) or "inline_blocking" (sync inference).
        first_chunk_timeout_s: wait this long (seconds) for the first chunk before the first tick.
        max_consecutive_errors: failed inference calls in a row before the loop faults.
        stop_on_success: stop as soon as the robot reports `is_success`.
        stop_on_done: stop when the robot reports `done` (episode over).
        stop_on_fault: after a fault, stop once the safe action is reached.
        close_timeout_s: seconds to wait for the inference thread to finish at the end.
        realtime_priority: run the control thread (only) under SCHED_FIFO with this priority (1-99);
            needs CAP_SYS_NICE, reported in `LoopReport.realtime` when refused. None: leave as is.
        timer_slack_ns: set the control thread's timer slack (ns; Linux default 50000). None: leave.
    """

    safety: SafetyConfig
    hz: float = 20.0
    seconds: float | None = None
    max_ticks: int | None = None
    actions_per_chunk: int | None = None
    queue_low_watermark: int = 4
    crossfade_steps: int = 0
    skip_stale: bool = True
    drop_missed: bool = False
    inference: InferenceMode = "thread"
    first_chunk_timeout_s: float = 30.0
    max_consecutive_errors: int = 10
    stop_on_success: bool = False
    stop_on_done: bool = True
    stop_on_fault: bool = True
    close_timeout_s: float = 1.0
    realtime_priority: int | None = None
    timer_slack_ns: int | None = None

    def __post_init__(self) -> None:
        if self.hz <= 0:
            raise ValueError(f"hz must be > 0, got {self.hz}")
        if self.seconds is None and self.max_ticks is None:
            raise ValueError("set seconds or max_ticks")
        if self.queue_low_watermark < 0 or self.max_consecutive_errors < 1:
            raise ValueError("queue_low_watermark must be >= 0 and max_consecutive_errors >= 1")
        if self.inference not in ("thread", "inline", "inline_blocking"):
            raise ValueError(
                f"unknown inference mode {self.inference!r}; choose thread, inline or inline_blocking"
            )

    @property
    def period_s(self) -> float:
        return 1.0 / self.hz


def make_executor(mode: InferenceMode, runtime: ChunkRuntime, clock: Clock) -> InferenceExecutor:
    """The executor for a `ControlLoopConfig.inference` mode."""
    if mode == "thread":
        return ThreadedInference(runtime, clock)
    return InlineInference(runtime, clock, blocking=(mode == "inline_blocking"))


def run_control_loop(
    runtime: ChunkRuntime,
    robot: Robot,
    clock: Clock,
    config: ControlLoopConfig,
    executor: InferenceExecutor | None = None,
    initial_action: np.ndarray | None = None,
) -> LoopReport:
    """Run the loop until a stop condition and return its report (see `ControlLoop`).

    The caller owns `robot` and `runtime`: the loop neither closes the robot nor the runtime (it does
    stop its own inference thread). Save the report with `metrics.save_run(report, out_dir)`.
    """
    return ControlLoop(runtime, robot, clock, config, executor, initial_action).run()


class ControlLoop:
    """One run of the loop. Deployment state (queue, timing, watchdog) lives here, never in a model."""

    def __init__(
        self,
        runtime: ChunkRuntime,
        robot: Robot,
        clock: Clock,
        config: ControlLoopConfig,
        executor: InferenceExecutor | None = None,
        initial_action: np.ndarray | None = None,
    ) -> None:
        """
        Args:
            executor: overrides `config.inference` (tests inject one).
            initial_action: the command the robot currently holds (default: its measured position on
                absolute dims, no motion on delta dims; `SafetyFilter`); the first commands are
                rate-limited from it (absolute dims: from the measured position whenever known).
        """
        self.runtime, self.robot, self.clock, self.config = runtime, robot, clock, config
        self.executor = executor if executor is not None else make_executor(config.inference, runtime, clock)
        self.queue = ChunkQueue(
            config.period_s, config.actions_per_chunk, config.crossfade_steps, config.skip_stale
        )
        self._measured_fn = getattr(robot, "measured_action", None)
        self.safety = SafetyFilter(config.safety, initial_action, self._measured())
        self.samples, self.counters = LoopSamples(), LoopCounters()
        self.fault: str | None = None
        self.realtime_notes: list[str] = []
        self._consecutive_errors = 0
        self._last_failure = ""
        self._started = False  # True once the tick grid runs
        self._last_fresh_s = 0.0  # clock time of the last merged chunk (seconds)
        # A robot that starts episode after episode (SimRobot auto_reset) counts them in `episodes`;
        # a new episode invalidates the plan: queued rows and chunks computed from older observations.
        self._episode = getattr(robot, "episodes", None)
        self._episode_start_s = -math.inf  # grid time (s) of the tick that started the current episode

    def run(self) -> LoopReport:
        """Wait for the first chunk, then tick until a stop condition; always closes the executor."""
        stop_reason, cfg = "fault", self.config
        try:
            self.runtime.reset()
            self.fault = self._envelope_fault(self._measured())
            if self.fault is None and self._first_chunk():
                # Entered after the inference thread exists, so that thread does not inherit FIFO.
                with realtime_scheduling(cfg.realtime_priority, cfg.timer_slack_ns) as self.realtime_notes:
                    try:
                        stop_reason = self._ticks()
                    except KeyboardInterrupt:  # Ctrl-C: stop sending, keep the report of the ticks run
                        stop_reason = "interrupted"
        finally:
            stopped = self.executor.close(self.config.close_timeout_s)
        success = getattr(self.robot, "is_success", None)
        return build_report(
            self.samples,
            self.counters,
            self.config.hz,
            None if success is None else bool(success),
            stop_reason,
            self.fault,
            stopped,
            self.realtime_notes,
        )

    def _measured(self) -> np.ndarray | None:
        """The robot's measured state in action units (NaN where unmeasured), or None if it has none."""
        if self._measured_fn is None:
            return None
        m = self._measured_fn()
        return None if m is None else np.asarray(m, dtype=np.float64).reshape(-1)

    def _envelope_fault(self, measured: np.ndarray | None) -> str | None:
        """Why the loop must not start: a measured absolute position outside reach of the limits."""
        if measured is None:
            return None
        s = self.safety
        if measured.shape != s.low.shape:
            return f"robot reports {measured.shape[0]} measured values for {s.low.shape[0]} action dims"
        far = (
            s.absolute
            & np.isfinite(measured)
            & ((measured < s.low - s.max_delta) | (measured > s.high + s.max_delta))
        )
        if far.any():
            dims = np.flatnonzero(far).tolist()
            return (
                f"robot stands outside its action envelope on dims {dims}: measured "
                f"{measured[far].tolist()}, limits low {s.low[far].tolist()} high {s.high[far].tolist()}"
            )
        return None

    def _first_chunk(self) -> bool:
        self._request(self.clock.now())
        if not self.counters.chunks_merged and self.executor.busy:  # not delivered inline already
            outcome = self.executor.wait(self.config.first_chunk_timeout_s)
            if outcome is None:
                self.fault = f"no first chunk within {self.config.first_chunk_timeout_s} s"
                return False
            self._handle(outcome, self.clock.now())
        if not self.counters.chunks_merged:
            self.fault = self.fault or f"first chunk rejected: {self._last_failure}"
            return False
        return True

    def _ticks(self) -> str:
        cfg, period = self.config, self.config.period_s
        t0 = self.clock.now()
        self._started = True
        grid = 0  # index of the current deadline on the grid t0 + grid * period
        while True:
            if cfg.max_ticks is not None and self.counters.ticks >= cfg.max_ticks:
                return "max_ticks"
            deadline = t0 + grid * period
            if cfg.seconds is not None and deadline >= t0 + cfg.seconds - 1e-9:
                return "seconds"
            self.clock.sleep_until(deadline)
            wake = self.clock.now()
            step = self._tick(deadline, wake)
            end = self.clock.now()
            self.samples.tick_start_s.append(wake)
            self.samples.jitter_ms.append((wake - deadline) * 1e3)
            self.samples.work_ms.append((end - wake) * 1e3)
            reason = self._stop_reason(step)
            if reason is not None:
                return reason
            grid += 1
            late_s = end - (t0 + grid * period)
            if late_s > 0:  # overran the next deadline: skip every deadline already passed
                skipped = math.floor(late_s / period) + 1
                self.counters.overruns += 1
                self.counters.missed_ticks += skipped
                grid += skipped
                for _ in range(skipped if cfg.drop_missed else 0):
                    self.queue.pop()

    def _tick(self, deadline: float, now: float) -> SafetyStep:
        """One tick at grid time `deadline` (s), woken at clock time `now` (s)."""
        self._collect(deadline)
        if self.fault is None and len(self.queue) <= self.config.queue_low_watermark:
            self._request(deadline)
        proposed = self.queue.pop()
        self.samples.queue_depth.append(len(self.queue))
        stale = self.fault is not None or (now - self._last_fresh_s) > self.config.safety.stale_after_s
        measured = self._measured()
        step = self.safety.step(proposed, stale, measured)
        self._check_command(step.command, measured)
        self.robot.send_action(step.command)  # float64, exactly what the filter checked
        episode = getattr(self.robot, "episodes", None)
        if episode != self._episode:
            self._episode, self._episode_start_s = episode, deadline
            self.queue.clear()
        c = self.counters
        c.ticks += 1
        c.held_ticks += step.mode == "hold"
        c.watchdog_ticks += step.mode.is_watchdog
        c.clamped_ticks += step.clamped
        c.delta_limited_ticks += step.delta_limited
        c.nonfinite_rejected += step.nonfinite
        return step

    def _check_command(self, command: np.ndarray, measured: np.ndarray | None) -> None:
        """Refuse to send what the filter must never produce (an independent second check)."""
        if not self.safety.within_limits(command):
            raise RuntimeError(f"safety filter produced an unsafe command {command}")
        if measured is not None:
            s = self.safety
            use = s.absolute & np.isfinite(measured)
            if (np.abs(command - measured)[use] > s.max_delta[use] + _JUMP_ATOL).any():
                raise RuntimeError(
                    f"safety filter produced a jump from the measured state: {command} vs {measured}"
                )

    def _request(self, t_grid: float) -> None:
        """Submit an observation read on the tick whose grid time is `t_grid` (s)."""
        if self.executor.busy:
            return
        obs = self.robot.get_observation()
        if self.executor.submit(obs, t_grid):
            self.counters.chunks_requested += 1
            self._collect(t_grid)  # inline executors may already be done

    def _collect(self, t_grid: float) -> None:
        outcome = self.executor.poll()
        if outcome is not None:
            self._handle(outcome, t_grid)

    def _handle(self, outcome: InferenceOutcome, t_grid: float) -> None:
        """Account for one finished inference call and merge its chunk if it is usable.

        Staleness is measured on the deadline grid (grid time of this tick minus grid time of the
        observation's tick), so wake-up jitter cannot add a spurious stale row: a chunk requested on
        tick k and merged on tick k + d skips exactly d rows, d = ceil(latency / dt) for an on-time loop.
        """
        if outcome.error is not None:
            self.counters.inference_errors += 1
            self._failed(outcome.error)
            return
        result: ChunkResult = outcome.result
        self.samples.latency_ms.append(outcome.latency_s * 1e3)
        if outcome.t_obs_s <= self._episode_start_s:  # observed before the robot started a new episode
            return
        for stage, ms in result.timings_ms.items():
            self.samples.stage_ms.setdefault(stage, []).append(float(ms))
        actions = np.asarray(result.actions)
        if not is_valid_chunk(actions, self.config.safety.action_dim):
            finite_shape = actions.ndim == 2 and actions.shape[-1] == self.config.safety.action_dim
            if finite_shape and actions.size and not np.isfinite(actions).all():
                self.counters.nonfinite_rejected += 1
                self._failed("non-finite chunk")
            else:
                self.counters.invalid_chunks += 1
                self._failed(f"chunk of shape {actions.shape}")
            return
        # The first chunk is computed before the grid starts, so none of its rows is stale.
        first = not self._started
        delay_s = 0.0 if first else t_grid - outcome.t_obs_s
        info = self.queue.merge(actions, delay_s, last_sent=self.safety.last)
        self._consecutive_errors = 0
        self.samples.delay_ticks.append(info.skipped)
        if info.kept == 0:
            return
        self.counters.chunks_merged += 1
        self._last_fresh_s = t_grid
        if info.jump is not None and not first:
            self.samples.chunk_jump.append(info.jump)
            self.samples.chunk_jump_raw.append(info.raw_jump if info.raw_jump is not None else info.jump)

    def _failed(self, reason: str) -> None:
        self._consecutive_errors += 1
        self._last_failure = reason
        if self._consecutive_errors >= self.config.max_consecutive_errors and self.fault is None:
            self.fault = f"{self._consecutive_errors} failed inference calls in a row; last: {reason}"
            self.queue.clear()

    def _stop_reason(self, step: SafetyStep) -> str | None:
        cfg = self.config
        if cfg.stop_on_success and getattr(self.robot, "is_success", None):
            return "success"
        if cfg.stop_on_done and getattr(self.robot, "done", False):
            return "done"
        if cfg.stop_on_fault and self.fault is not None and step.mode == SafetyMode.SAFE:
            return "fault"
        return None
