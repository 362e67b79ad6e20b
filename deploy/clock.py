"""Clocks for the control loop: a real monotonic clock and a simulated one for deterministic tests.

All times are in seconds on a monotonic time base whose origin is arbitrary. The loop only ever asks
for `now()` and sleeps until an *absolute* deadline with `sleep_until(deadline)`; it never sleeps for a
relative duration, so per-tick sleep overshoot does not accumulate into drift
(LeRobot's relative `sleep(period - elapsed)` loses 0.8 % of the rate at 50 Hz, absolute deadlines do not).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time
from collections.abc import Iterator
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """The time source of the control loop."""

    def now(self) -> float:
        """Current time in seconds (monotonic, arbitrary origin)."""
        ...

    def sleep_until(self, deadline_s: float) -> None:
        """Block until `now() >= deadline_s` (seconds); return at once if it has already passed."""
        ...


class MonotonicClock:
    """Wall clock on `time.perf_counter` (CLOCK_MONOTONIC on Linux, ~1 ns resolution).

    `sleep_until` calls `time.sleep` for the bulk of the wait and, when `spin_s > 0`, busy-waits the
    last `spin_s` seconds. Busy-waiting cuts the median wake-up error from ~0.1 ms to ~µs but costs CPU
    and is pre-empted on loaded hosts, so it is off by default.
    """

    def __init__(self, spin_s: float = 0.0) -> None:
        if spin_s < 0:
            raise ValueError(f"spin_s must be >= 0, got {spin_s}")
        self.spin_s = spin_s  # seconds of busy-wait before each deadline

    def now(self) -> float:
        return time.perf_counter()

    def sleep_until(self, deadline_s: float) -> None:
        remaining = deadline_s - time.perf_counter()
        if remaining > self.spin_s:
            time.sleep(remaining - self.spin_s)
        while time.perf_counter() < deadline_s:  # spin tail (no-op when spin_s == 0 and sleep overshot)
            pass


class SimulatedClock:
    """A clock that only moves when told to: `sleep_until` jumps to the deadline, `advance` adds time.

    A fake robot or runtime "takes time" by calling `advance(dt)`, which lets tests script stalls,
    overruns and inference latencies exactly. Thread-safe, so a real inference thread may read it.
    """

    def __init__(self, start_s: float = 0.0) -> None:
        self._t = float(start_s)  # seconds
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def advance(self, dt_s: float) -> None:
        """Move time forward by `dt_s` seconds (must be >= 0)."""
        if dt_s < 0:
            raise ValueError(f"time cannot go backwards (dt_s={dt_s})")
        with self._lock:
            self._t += dt_s

    def sleep_until(self, deadline_s: float) -> None:
        with self._lock:
            self._t = max(self._t, deadline_s)


_PR_SET_TIMERSLACK = 29  # prctl option (linux/prctl.h)
_PR_GET_TIMERSLACK = 30


@contextlib.contextmanager
def realtime_scheduling(priority: int | None = 50, timer_slack_ns: int | None = 1) -> Iterator[list[str]]:
    """Run the calling thread under SCHED_FIFO `priority` with a `timer_slack_ns` timer slack (Linux).

    Both cut wake-up tails from scheduler pre-emption on busy hosts. They need
    CAP_SYS_NICE / root; without it the loop runs as before and the yielded list says what failed.
    Only the calling thread is changed (threads started earlier keep their policy) and everything is
    restored on exit. Yields notes such as ["SCHED_FIFO 50", "timer slack 1 ns"].
    """
    notes: list[str] = []
    old_policy = old_param = old_slack = None
    libc = None
    if priority is not None:
        try:
            old_policy, old_param = os.sched_getscheduler(0), os.sched_getparam(0)
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
            notes.append(f"SCHED_FIFO {priority}")
        except (OSError, AttributeError) as exc:
            old_policy = None
            notes.append(f"SCHED_FIFO unavailable: {exc}")
    if timer_slack_ns is not None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            old_slack = libc.prctl(_PR_GET_TIMERSLACK, 0, 0, 0, 0)
            if libc.prctl(_PR_SET_TIMERSLACK, int(timer_slack_ns), 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_SET_TIMERSLACK) failed")
            notes.append(f"timer slack {timer_slack_ns} ns")
        except (OSError, AttributeError) as exc:
            old_slack = None
            notes.append(f"timer slack unavailable: {exc}")
    try:
        yield notes
    finally:
        if old_policy is not None and old_param is not None:
            os.sched_setscheduler(0, old_policy, old_param)
        if libc is not None and old_slack is not None and old_slack > 0:
            libc.prctl(_PR_SET_TIMERSLACK, old_slack, 0, 0, 0)
