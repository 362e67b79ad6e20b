"""Action safety: per-dimension limits, per-tick delta limits, non-finite rejection and a watchdog.

Every command the control loop sends passes through `SafetyFilter.step`, which guarantees that it is
finite, inside `[action_low, action_high]` per dimension and at most `max_delta` away from the previous
command per dimension. Units are those of the robot's actions (for mini-LIBERO: normalised delta
end-effector commands in [-1, 1]); `max_delta` is in action units per control tick.

Watchdog state machine (one step per control tick):

    NORMAL --queue empty--> HOLD --no fresh chunk for stale_after_s--> WD_HOLD --hold_ticks--> RAMP --> SAFE
       ^                      |                                           |                       |        |
       +----------------------+---------------- a proposed action arrives +-----------------------+--------+

- NORMAL: the proposed action is clamped to the limits, then rate-limited by `max_delta`.
- HOLD: the queue is empty but the last chunk is still recent: repeat the last command.
- WD_HOLD: no chunk for `stale_after_s`: keep holding the last command for `hold_ticks` ticks ...
- RAMP: ... then move towards `safe_action` by at most `max_delta` per tick, and stay there (SAFE).
A proposed action that contains NaN/inf is counted and treated as "no action" (never sent).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_CLAMP_ATOL = 1e-9  # an action changed by less than this (action units) does not count as clamped


@dataclass
class SafetyConfig:
    """Limits and watchdog settings; each per-dimension list has one entry per action dimension.

    Attributes:
        action_low: lower limit per dimension (action units).
        action_high: upper limit per dimension (action units).
        max_delta: largest allowed change per control tick, per dimension (action units / tick).
        safe_action: where the watchdog brings the robot; must lie inside the limits (action units).
        stale_after_s: seconds without a fresh chunk (while the queue is empty) before the watchdog acts.
        hold_ticks: ticks the watchdog holds the last command before ramping to `safe_action`.
    """

    action_low: list[float]
    action_high: list[float]
    max_delta: list[float]
    safe_action: list[float]
    stale_after_s: float = 0.5
    hold_ticks: int = 5

    def __post_init__(self) -> None:
        dims = {len(self.action_low), len(self.action_high), len(self.max_delta), len(self.safe_action)}
        if len(dims) != 1:
            raise ValueError("action_low, action_high, max_delta and safe_action need the same length")
        low, high = np.asarray(self.action_low, float), np.asarray(self.action_high, float)
        delta, safe = np.asarray(self.max_delta, float), np.asarray(self.safe_action, float)
        if not all(np.isfinite(x).all() for x in (low, high, delta, safe)):
            raise ValueError("safety limits must be finite")
        if (low > high).any():
            raise ValueError("action_low must be <= action_high in every dimension")
        if (delta <= 0).any():
            raise ValueError("max_delta must be > 0 in every dimension")
        if ((safe < low) | (safe > high)).any():
            raise ValueError("safe_action must lie inside [action_low, action_high]")
        if self.stale_after_s <= 0 or self.hold_ticks < 0:
            raise ValueError("stale_after_s must be > 0 and hold_ticks >= 0")

    @property
    def action_dim(self) -> int:
        return len(self.action_low)

    @classmethod
    def box(
        cls,
        dim: int,
        low: float = -1.0,
        high: float = 1.0,
        max_delta: float = 0.25,
        safe: float = 0.0,
        stale_after_s: float = 0.5,
        hold_ticks: int = 5,
    ) -> SafetyConfig:
        """The same limits in every dimension (e.g. mini-LIBERO: dim=7 in [-1, 1], safe = 0 = no motion)."""
        return cls([low] * dim, [high] * dim, [max_delta] * dim, [safe] * dim, stale_after_s, hold_ticks)


class SafetyMode(enum.StrEnum):
    """What the safety filter did on one tick."""

    NORMAL = "normal"
    HOLD = "hold"
    WD_HOLD = "watchdog_hold"
    RAMP = "ramp"
    SAFE = "safe"

    @property
    def is_watchdog(self) -> bool:
        return self in (SafetyMode.WD_HOLD, SafetyMode.RAMP, SafetyMode.SAFE)


@dataclass
class SafetyStep:
    """The outcome of one tick: the command to send and what was done to it."""

    command: np.ndarray  # (A,) float64, finite, inside the limits
    mode: SafetyMode
    clamped: bool  # the proposed action was outside [low, high] in some dimension
    delta_limited: bool  # the change from the last command exceeded max_delta in some dimension
    nonfinite: bool  # the proposed action contained NaN/inf and was dropped


def is_valid_chunk(actions: np.ndarray, action_dim: int) -> bool:
    """True if `actions` is a non-empty (H, action_dim) array with only finite values."""
    arr = np.asarray(actions)
    return arr.ndim == 2 and arr.shape[0] > 0 and arr.shape[1] == action_dim and bool(np.isfinite(arr).all())


class SafetyFilter:
    """Stateful per-tick filter implementing the limits and the watchdog state machine above."""

    def __init__(
        self, config: SafetyConfig, initial_action: Sequence[float] | np.ndarray | None = None
    ) -> None:
        self.config = config
        self.low = np.asarray(config.action_low, dtype=np.float64)
        self.high = np.asarray(config.action_high, dtype=np.float64)
        self.max_delta = np.asarray(config.max_delta, dtype=np.float64)
        self.safe = np.asarray(config.safe_action, dtype=np.float64)
        start = self.safe if initial_action is None else np.asarray(initial_action, dtype=np.float64)
        if start.shape != self.safe.shape or not np.isfinite(start).all():
            raise ValueError(f"initial_action must be finite with shape {self.safe.shape}")
        # The first command may still be rate-limited from here; clip so the invariant holds from tick 0.
        self.last = np.clip(start, self.low, self.high)
        self._wd_ticks = 0  # ticks spent in the watchdog since it last fired

    def within_limits(self, action: np.ndarray) -> bool:
        """True if `action` is finite and inside the per-dimension limits."""
        return bool(np.isfinite(action).all() and (action >= self.low).all() and (action <= self.high).all())

    def step(self, proposed: np.ndarray | None, stale: bool) -> SafetyStep:
        """Turn the queue's proposed action (None = queue empty) into a safe command.

        Args:
            proposed: (A,) action from the chunk queue, or None when the queue is empty.
            stale: True when no fresh chunk has arrived for `stale_after_s` seconds.
        """
        nonfinite = proposed is not None and not bool(np.isfinite(proposed).all())
        if proposed is not None and not nonfinite:
            self._wd_ticks = 0
            target = np.clip(np.asarray(proposed, dtype=np.float64), self.low, self.high)
            clamped = bool(np.abs(target - proposed).max() > _CLAMP_ATOL)
            return self._rate_limited(target, SafetyMode.NORMAL, clamped, nonfinite=False)
        if not stale:
            self._wd_ticks = 0
            return SafetyStep(self.last.copy(), SafetyMode.HOLD, False, False, nonfinite)
        self._wd_ticks += 1
        if self._wd_ticks <= self.config.hold_ticks:
            return SafetyStep(self.last.copy(), SafetyMode.WD_HOLD, False, False, nonfinite)
        if np.array_equal(self.last, self.safe):
            return SafetyStep(self.last.copy(), SafetyMode.SAFE, False, False, nonfinite)
        step = self._rate_limited(self.safe, SafetyMode.RAMP, clamped=False, nonfinite=nonfinite)
        step.delta_limited = False  # ramping is rate-limited by design; do not count it as an event
        return step

    def _rate_limited(
        self, target: np.ndarray, mode: SafetyMode, clamped: bool, nonfinite: bool
    ) -> SafetyStep:
        delta = target - self.last
        limited_delta = np.clip(delta, -self.max_delta, self.max_delta)
        delta_limited = bool(np.abs(limited_delta - delta).max() > _CLAMP_ATOL)
        # Exact arrival when within reach avoids float residue on the way to the safe action.
        command = np.where(np.abs(delta) <= self.max_delta, target, self.last + limited_delta)
        command = np.clip(command, self.low, self.high)  # both ends inside the box, so a no-op but cheap
        self.last = command
        return SafetyStep(command.copy(), mode, clamped, delta_limited, nonfinite)
