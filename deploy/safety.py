"""Action safety: per-dimension limits, rate limits from the measured state, non-finite rejection, watchdog.

Every command the control loop sends passes through `SafetyFilter.step`, which guarantees that it is
finite, inside `[action_low, action_high]` per dimension and at most `max_delta` away from its reference
per dimension. Units are the robot's action units (`envelope.py`); `max_delta` is units per control tick.
The reference depends on the dimension's kind:
  - "absolute" (a position target): the robot's measured position of that dimension when the robot
    reports one (`measured`), else the previous command. A first command therefore never jumps from
    where the arm stands, whatever the policy proposes.
  - "delta" (a motion command, 0 = no motion): the previous command (smooth steps).

Watchdog state machine (one step per control tick):

    NORMAL --queue empty--> HOLD --no fresh chunk for stale_after_s--> WD_HOLD --hold_ticks--> (RAMP) --> SAFE
       ^                      |                                           |                       |         |
       +----------------------+---------------- a proposed action arrives +-----------------------+---------+

- NORMAL: the proposed action is clamped to the limits, then rate-limited from the reference.
- HOLD / WD_HOLD: no motion: delta dims send 0 (repeating the last step would keep the arm moving),
  absolute dims keep the last target, brought within `max_delta` of the measured position.
- SAFE: the same no-motion command, for good; with an explicit `safe_action` (a rest pose) the filter
  first RAMPs there at <= max_delta per tick. Without one (the default) it stops where it is.
A proposed action that contains NaN/inf is counted and treated as "no action" (never sent).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from snapflow.deploy.envelope import ActionEnvelope

_CLAMP_ATOL = 1e-9  # an action changed by less than this (action units) does not count as clamped


@dataclass
class SafetyConfig:
    """Limits and watchdog settings; each per-dimension list has one entry per action dimension.

    Attributes:
        action_low: lower limit per dimension (action units).
        action_high: upper limit per dimension (action units).
        max_delta: largest allowed change per control tick, per dimension (action units / tick).
        safe_action: a rest pose the watchdog ramps to, inside the limits; None (default) = stop where
            the robot is (delta dims 0, absolute dims hold).
        stale_after_s: seconds without a fresh chunk (while the queue is empty) before the watchdog acts.
        hold_ticks: ticks the watchdog holds before it declares SAFE (or ramps to `safe_action`).
        kinds: "absolute" or "delta" per dimension (`envelope.py`); None = all absolute.
    """

    action_low: list[float]
    action_high: list[float]
    max_delta: list[float]
    safe_action: list[float] | None = None
    stale_after_s: float = 0.5
    hold_ticks: int = 5
    kinds: list[str] | None = None

    def __post_init__(self) -> None:
        self.kinds = list(self.kinds) if self.kinds is not None else ["absolute"] * len(self.action_low)
        sizes = [len(self.action_low), len(self.action_high), len(self.max_delta), len(self.kinds)]
        if self.safe_action is not None:
            sizes.append(len(self.safe_action))
        if len(set(sizes)) != 1:
            raise ValueError("action_low, action_high, max_delta, kinds and safe_action need the same length")
        if any(k not in ("absolute", "delta") for k in self.kinds):
            raise ValueError(f"kinds must be 'absolute' or 'delta' per dimension, got {self.kinds}")
        low, high = np.asarray(self.action_low, float), np.asarray(self.action_high, float)
        delta = np.asarray(self.max_delta, float)
        safe = low if self.safe_action is None else np.asarray(self.safe_action, float)
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
        safe: float | None = 0.0,
        stale_after_s: float = 0.5,
        hold_ticks: int = 5,
    ) -> SafetyConfig:
        """The same absolute limits in every dimension (tests and benchmarks; robots use `from_envelope`)."""
        return cls(
            [low] * dim,
            [high] * dim,
            [max_delta] * dim,
            None if safe is None else [safe] * dim,
            stale_after_s,
            hold_ticks,
        )

    @classmethod
    def from_envelope(
        cls, envelope: ActionEnvelope, stale_after_s: float = 0.5, hold_ticks: int = 5
    ) -> SafetyConfig:
        """Limits, rate limits and kinds of a resolved robot envelope (`envelope.resolve_envelope`)."""
        return cls(
            list(envelope.low),
            list(envelope.high),
            list(envelope.max_delta),
            None,
            stale_after_s,
            hold_ticks,
            list(envelope.kinds),
        )


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
        self,
        config: SafetyConfig,
        initial_action: Sequence[float] | np.ndarray | None = None,
        measured: np.ndarray | None = None,
    ) -> None:
        """
        Args:
            initial_action: the command the robot holds now; default: the measured position on absolute
                dims that report one, 0 (no motion) on delta dims, else `safe_action` or 0, clipped.
            measured: (A,) the robot's measured state in action units, NaN where not measured.
        """
        self.config = config
        self.low = np.asarray(config.action_low, dtype=np.float64)
        self.high = np.asarray(config.action_high, dtype=np.float64)
        self.max_delta = np.asarray(config.max_delta, dtype=np.float64)
        self.absolute = np.array([k == "absolute" for k in config.kinds])
        self.safe = None if config.safe_action is None else np.asarray(config.safe_action, dtype=np.float64)
        self.still = np.clip(np.zeros_like(self.low), self.low, self.high)  # "no motion" on delta dims
        if initial_action is None:
            start = self.still.copy() if self.safe is None else self.safe.copy()
            if measured is not None:
                m = np.asarray(measured, dtype=np.float64)
                start = np.where(self.absolute & np.isfinite(m), m, start)
        else:
            start = np.asarray(initial_action, dtype=np.float64)
        if start.shape != self.low.shape or not np.isfinite(start).all():
            raise ValueError(f"initial_action must be finite with shape {self.low.shape}")
        # The first command may still be rate-limited from here; clip so the invariant holds from tick 0.
        self.last = np.clip(start, self.low, self.high)
        self._wd_ticks = 0  # ticks spent in the watchdog since it last fired

    def within_limits(self, action: np.ndarray) -> bool:
        """True if `action` is finite and inside the per-dimension limits."""
        return bool(np.isfinite(action).all() and (action >= self.low).all() and (action <= self.high).all())

    def reference(self, measured: np.ndarray | None) -> np.ndarray:
        """What the next command is rate-limited from: measured position (absolute dims) or last command."""
        ref = self.last.copy()
        if measured is not None:
            m = np.asarray(measured, dtype=np.float64)
            use = self.absolute & np.isfinite(m)
            ref[use] = m[use]
        return ref

    def step(
        self, proposed: np.ndarray | None, stale: bool, measured: np.ndarray | None = None
    ) -> SafetyStep:
        """Turn the queue's proposed action (None = queue empty) into a safe command.

        Args:
            proposed: (A,) action from the chunk queue, or None when the queue is empty.
            stale: True when no fresh chunk has arrived for `stale_after_s` seconds.
            measured: (A,) the robot's measured state in action units (NaN where unknown), or None.
        """
        ref = self.reference(measured)
        nonfinite = proposed is not None and not bool(np.isfinite(proposed).all())
        if proposed is not None and not nonfinite:
            self._wd_ticks = 0
            target = np.clip(np.asarray(proposed, dtype=np.float64), self.low, self.high)
            clamped = bool(np.abs(target - proposed).max() > _CLAMP_ATOL)
            return self._rate_limited(target, ref, SafetyMode.NORMAL, clamped, nonfinite=False)
        if not stale:
            self._wd_ticks = 0
            return self._hold(ref, SafetyMode.HOLD, nonfinite)
        self._wd_ticks += 1
        if self._wd_ticks <= self.config.hold_ticks:
            return self._hold(ref, SafetyMode.WD_HOLD, nonfinite)
        if self.safe is None or np.array_equal(self.last, self.safe):
            return self._hold(ref, SafetyMode.SAFE, nonfinite)
        step = self._rate_limited(self.safe, ref, SafetyMode.RAMP, clamped=False, nonfinite=nonfinite)
        step.delta_limited = False  # ramping is rate-limited by design; do not count it as an event
        if np.array_equal(step.command, self.safe):  # arrived: this tick already sends the rest pose
            step.mode = SafetyMode.SAFE
        return step

    def _hold(self, ref: np.ndarray, mode: SafetyMode, nonfinite: bool) -> SafetyStep:
        """No motion: delta dims 0, absolute dims keep the last target within reach of the measured state."""
        target = np.where(self.absolute, self.last, self.still)
        step = self._rate_limited(target, np.where(self.absolute, ref, target), mode, False, nonfinite)
        step.delta_limited = False
        return step

    def _rate_limited(
        self, target: np.ndarray, ref: np.ndarray, mode: SafetyMode, clamped: bool, nonfinite: bool
    ) -> SafetyStep:
        delta = target - ref
        limited_delta = np.clip(delta, -self.max_delta, self.max_delta)
        delta_limited = bool(np.abs(limited_delta - delta).max() > _CLAMP_ATOL)
        # Exact arrival when within reach avoids float residue on the way to the target.
        command = np.where(np.abs(delta) <= self.max_delta, target, ref + limited_delta)
        command = np.clip(command, self.low, self.high)
        self.last = command
        return SafetyStep(command.copy(), mode, clamped, delta_limited, nonfinite)
