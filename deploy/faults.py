"""Fault injection for the control loop: wrap a runtime so that, after some good chunks, it misbehaves.

Used by ``snapflow-run fault=...`` to show the documented safe behaviour on the real loop:
  stall      the runtime blocks (a hung GPU, a dead server): the watchdog holds the last command for
             hold_ticks, then ramps to the safe action at <= max_delta per tick (held / watchdog ticks).
  crash      the runtime raises on every call: after max_consecutive_errors the loop faults, drops its
             queue, holds, ramps to the safe action and stops (stop_reason "fault").
  nan        the runtime returns NaN chunks: each is rejected (nonfinite_rejected) and never sent; the
             queue drains and the watchdog takes over.
  overlimit  the runtime returns actions 10x outside the limits: every command is clamped (clamped_ticks).
  late       every chunk arrives `late_ms` after its observation (a slow network or an overloaded GPU):
             stale rows are skipped, the queue runs dry, the loop holds without motion.
"""

import time

import numpy as np

from snapflow.deploy.runtime_base import ChunkResult, ChunkRuntime

FAULTS = ("none", "stall", "crash", "nan", "overlimit", "late")
OVERLIMIT_SCALE = 10.0  # far outside mini-LIBERO's [-1, 1] normalised action box


class FaultInjectingRuntime:
    """Delegates to ``runtime`` for ``good_chunks`` calls, then injects ``fault`` on every later call."""

    def __init__(
        self,
        runtime: ChunkRuntime,
        fault: str,
        good_chunks: int = 3,
        stall_s: float = 30.0,
        late_ms: float = 150.0,
        sleep: bool = True,
    ):
        """`sleep=False` reports a stall or late delay in the timings without sleeping (simulated clocks)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}: one of {FAULTS}")
        self.runtime, self.fault, self.good_chunks, self.stall_s = runtime, fault, good_chunks, stall_s
        self.late_ms, self.sleep = late_ms, sleep
        self.calls = 0

    def predict_chunk(self, observation: dict) -> ChunkResult:
        self.calls += 1
        if self.fault == "none" or self.calls <= self.good_chunks:
            return self.runtime.predict_chunk(observation)
        if self.fault == "stall":
            if not self.sleep:  # an inline executor on a simulated clock models the stall from the timing
                result = self.runtime.predict_chunk(observation)
                return ChunkResult(
                    result.actions, {**result.timings_ms, "injected_stall": self.stall_s * 1e3}
                )
            time.sleep(self.stall_s)
            return self.runtime.predict_chunk(observation)
        if self.fault == "crash":
            raise RuntimeError(f"injected crash (call {self.calls})")
        result = self.runtime.predict_chunk(observation)
        if self.fault == "late":
            if self.sleep:
                time.sleep(self.late_ms / 1e3)
            return ChunkResult(result.actions, {**result.timings_ms, "injected_delay": self.late_ms})
        if self.fault == "nan":
            return ChunkResult(np.full_like(result.actions, np.nan), result.timings_ms)
        return ChunkResult(result.actions * OVERLIMIT_SCALE + np.sign(result.actions), result.timings_ms)

    def reset(self) -> None:
        self.calls = 0
        self.runtime.reset()
