"""Inference executors: run a `ChunkRuntime` next to the control tick without ever blocking it.

Two implementations share one small interface (`submit` / `poll` / `wait` / `close`):

- `ThreadedInference`: a daemon background thread (the production path). A stalled runtime keeps the
  worker busy forever; the control thread never waits on it and the watchdog takes over.
- `InlineInference`: runs the runtime synchronously inside `submit` and models its latency on the
  loop's clock, for deterministic tests under `SimulatedClock` (and for sync inference):
    * `blocking=False`: the result is *released* only once `now() >= t_submit + latency`, exactly as a
      background thread finishing after `latency` seconds would deliver it;
    * `blocking=True`: the call "takes" `latency` seconds of the control thread (`sleep_until`), like
      LeRobot's sync engine, so slow inference shows up as overruns and missed ticks.
  The latency is `latency_fn(result)`, by default the sum of the runtime's reported `timings_ms`.

A runtime that raises yields an `InferenceOutcome` with `error` set; nothing is re-raised in the
control thread. All times are seconds on the loop's clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from snapflow.deploy.clock import Clock
from snapflow.deploy.runtime_base import ChunkResult, ChunkRuntime

# s; a result due at t is released at t - eps, so float rounding in (t_obs + latency) vs the tick grid
# (t0 + k * dt) cannot delay a chunk by a whole tick.
_READY_EPS_S = 1e-9


@dataclass
class InferenceOutcome:
    """One finished inference call: a result or an error, never both."""

    t_obs_s: float  # clock time at which the observation was read
    latency_s: float  # duration of the predict_chunk call (seconds)
    result: ChunkResult | None = None
    error: str | None = None  # repr of the exception the runtime raised


class InferenceExecutor(Protocol):
    """How the control loop talks to a runtime."""

    def submit(self, observation: dict, t_obs_s: float) -> bool:
        """Start a prediction; returns False (and does nothing) while one is still running."""
        ...

    @property
    def busy(self) -> bool:
        """True while a submitted prediction has not yet been returned by `poll`/`wait`."""
        ...

    def poll(self) -> InferenceOutcome | None:
        """The finished outcome, once (non-blocking); None if nothing finished."""
        ...

    def wait(self, timeout_s: float) -> InferenceOutcome | None:
        """Block up to `timeout_s` seconds for the pending outcome (used once, before the first tick)."""
        ...

    def close(self, timeout_s: float = 1.0) -> bool:
        """Stop; True if the worker finished within `timeout_s` seconds (a stalled thread may not)."""
        ...


def reported_latency_s(result: ChunkResult) -> float:
    """Sum of a result's stage timings, in seconds (the default simulated latency)."""
    return sum(result.timings_ms.values()) / 1000.0


class InlineInference:
    """Synchronous executor with latency modelled on the clock (see module docstring)."""

    def __init__(
        self,
        runtime: ChunkRuntime,
        clock: Clock,
        blocking: bool = False,
        latency_fn: Callable[[ChunkResult], float] = reported_latency_s,
    ) -> None:
        self.runtime = runtime
        self.clock = clock
        self.blocking = blocking
        self.latency_fn = latency_fn
        self._pending: InferenceOutcome | None = None
        self._ready_at_s = 0.0

    @property
    def busy(self) -> bool:
        return self._pending is not None

    def submit(self, observation: dict, t_obs_s: float) -> bool:
        if self._pending is not None:
            return False
        t0 = self.clock.now()
        try:
            result = self.runtime.predict_chunk(observation)
        except Exception as exc:  # a crashing runtime must never take the control thread down
            self._pending = InferenceOutcome(t_obs_s, self.clock.now() - t0, error=repr(exc))
            self._ready_at_s = self.clock.now()
            return True
        elapsed = self.clock.now() - t0  # real time spent (0 under SimulatedClock unless advanced)
        latency = max(elapsed, float(self.latency_fn(result)))
        self._pending = InferenceOutcome(t_obs_s, latency, result=result)
        self._ready_at_s = t0 + latency
        if self.blocking:
            self.clock.sleep_until(self._ready_at_s)
        return True

    def poll(self) -> InferenceOutcome | None:
        if self._pending is None or self.clock.now() < self._ready_at_s - _READY_EPS_S:
            return None
        out, self._pending = self._pending, None
        return out

    def wait(self, timeout_s: float) -> InferenceOutcome | None:
        if self._pending is None or self._ready_at_s - self.clock.now() > timeout_s:
            return None
        self.clock.sleep_until(self._ready_at_s)
        return self.poll()

    def close(self, timeout_s: float = 1.0) -> bool:
        return True


class ThreadedInference:
    """Background-thread executor: one request in flight at a time, newest outcome kept."""

    def __init__(self, runtime: ChunkRuntime, clock: Clock, name: str = "snapflow-inference") -> None:
        self.runtime = runtime
        self.clock = clock
        self._cv = threading.Condition()
        self._request: tuple[dict, float] | None = None
        self._outcome: InferenceOutcome | None = None
        self._busy = False
        self._in_call = False  # the worker is inside predict_chunk
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        with self._cv:
            return self._busy

    def submit(self, observation: dict, t_obs_s: float) -> bool:
        with self._cv:
            if self._busy or self._stop:
                return False
            self._busy = True
            self._request = (observation, t_obs_s)
            self._cv.notify_all()
            return True

    def poll(self) -> InferenceOutcome | None:
        with self._cv:
            return self._take()

    def wait(self, timeout_s: float) -> InferenceOutcome | None:
        with self._cv:
            self._cv.wait_for(lambda: self._outcome is not None or not self._busy, timeout=timeout_s)
            return self._take()

    def wait_idle(self, timeout_s: float) -> bool:
        """Block up to `timeout_s` seconds until no call is queued or running; True if idle.

        Not used by the loop (which never waits on inference after the first chunk); tests use it to
        pin down when a real thread's result becomes visible.
        """
        with self._cv:
            return self._cv.wait_for(lambda: self._request is None and not self._in_call, timeout=timeout_s)

    def close(self, timeout_s: float = 1.0) -> bool:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._thread.join(timeout=timeout_s)
        return not self._thread.is_alive()

    def _take(self) -> InferenceOutcome | None:
        out, self._outcome = self._outcome, None
        if out is not None:
            self._busy = False
        return out

    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._request is not None or self._stop)
                if self._stop:
                    return
                assert self._request is not None
                observation, t_obs_s = self._request
                self._request = None
                self._in_call = True
            t0 = self.clock.now()
            try:
                out = InferenceOutcome(t_obs_s, 0.0, result=self.runtime.predict_chunk(observation))
            except Exception as exc:  # reported to the control thread, never raised there
                out = InferenceOutcome(t_obs_s, 0.0, error=repr(exc))
            out.latency_s = self.clock.now() - t0
            with self._cv:
                self._outcome = out
                self._in_call = False
                self._cv.notify_all()
