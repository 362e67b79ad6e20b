"""The action envelope of a robot: what each action dimension means and where it may go.

A robot's actions are either absolute targets (joint positions, a gripper opening) or motion commands
(mini-LIBERO's delta end-effector steps, a mobile base's velocities). The two need different safe
behaviour (`safety.py`): an absolute target is rate-limited from the robot's *measured* position and
holding means "stay where you are"; a motion command of 0 is "no motion", so holding sends 0 instead of
repeating the last step (which would keep the arm moving).

Sources, most specific first:
  - explicit limits from the user (`snapflow-run action_low=[...] action_high=[...] max_delta=...`);
  - the robot's own description: `SimRobot.envelope()` (mini-LIBERO: [-1, 1], six delta dims and an
    absolute gripper) or, for LeRobot robots with a motor bus, the calibrated ranges
    (`lerobot_envelope`: range_m100_100 -> [-100, 100], range_0_100 -> [0, 100], degrees -> the
    calibrated range converted as LeRobot's `MotorsBus._normalize` does) and the config's
    `max_relative_target` as the per-tick rate limit.
`resolve_envelope` refuses (EnvelopeError) when a dimension has no limit or no rate limit: a real arm
never runs on made-up limits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ABSOLUTE, DELTA = "absolute", "delta"
KINDS = (ABSOLUTE, DELTA)


class EnvelopeError(ValueError):
    """The robot's action envelope is unknown or inconsistent; the loop must not start."""


@dataclass(frozen=True)
class ActionEnvelope:
    """Per-dimension limits, rate limits and meaning of a robot's actions (robot action units).

    Attributes:
        names: one name per action dimension (LeRobot's action feature names, e.g. "shoulder_pan.pos").
        low, high: limits per dimension; None where unknown (the user must give them).
        kinds: "absolute" (a target; rate-limited from the measured position) or "delta" (a motion
            command; 0 is no motion) per dimension.
        max_delta: largest change per control tick per dimension (units / tick); None where unknown.
    """

    names: tuple[str, ...]
    low: tuple[float | None, ...]
    high: tuple[float | None, ...]
    kinds: tuple[str, ...]
    max_delta: tuple[float | None, ...]

    def __post_init__(self) -> None:
        n = len(self.names)
        if {len(self.low), len(self.high), len(self.kinds), len(self.max_delta)} != {n}:
            raise EnvelopeError(f"envelope fields need {n} entries (one per action: {list(self.names)})")
        bad = [k for k in self.kinds if k not in KINDS]
        if bad:
            raise EnvelopeError(f"unknown action kinds {bad}; valid: {list(KINDS)}")


def _per_dim(value: float | Sequence[float] | None, n: int, field: str) -> list[float | None]:
    """One value for all dims, or one per dim; EnvelopeError naming `field` otherwise."""
    if value is None:
        return [None] * n
    if isinstance(value, int | float):
        return [float(value)] * n
    values = [float(v) for v in value]
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise EnvelopeError(
            f"{field} has {len(values)} values; give one for all or one per action dimension ({n})"
        )
    return values


def resolve_envelope(
    robot_envelope: ActionEnvelope,
    action_low: float | Sequence[float] | None = None,
    action_high: float | Sequence[float] | None = None,
    max_delta: float | Sequence[float] | None = None,
) -> ActionEnvelope:
    """The robot's envelope narrowed by explicit user limits; every dimension fully defined.

    User limits may only narrow the robot's (a wider user range is cut to the robot's, never widened).

    Raises:
        EnvelopeError: a dimension without a limit or rate limit, low > high, max_delta <= 0 or a
            non-finite value; the message names the dimension and the flag that sets it.
    """
    n = len(robot_envelope.names)
    lows, highs = _per_dim(action_low, n, "action_low"), _per_dim(action_high, n, "action_high")
    deltas = _per_dim(max_delta, n, "max_delta")
    low, high, delta = [], [], []
    for i, name in enumerate(robot_envelope.names):
        lo = _narrow(robot_envelope.low[i], lows[i], max)
        hi = _narrow(robot_envelope.high[i], highs[i], min)
        d = deltas[i] if deltas[i] is not None else robot_envelope.max_delta[i]
        if lo is None or hi is None:
            raise EnvelopeError(
                f"action {name!r} has no known limits: pass action_low=[...] action_high=[...] "
                f"(one value per action dimension, in the robot's units)"
            )
        if d is None:
            raise EnvelopeError(
                f"action {name!r} has no rate limit: pass max_delta=... (robot units per tick)"
            )
        if not all(np.isfinite([lo, hi, d])) or lo > hi or d <= 0:
            raise EnvelopeError(
                f"action {name!r}: need finite low <= high and max_delta > 0, got "
                f"low={lo}, high={hi}, max_delta={d}"
            )
        low.append(lo)
        high.append(hi)
        delta.append(d)
    return ActionEnvelope(robot_envelope.names, tuple(low), tuple(high), robot_envelope.kinds, tuple(delta))


def _narrow(robot_value: float | None, user_value: float | None, pick) -> float | None:
    if robot_value is None:
        return user_value
    return robot_value if user_value is None else pick(robot_value, user_value)


def lerobot_envelope(robot: object, action_names: Sequence[str]) -> ActionEnvelope:
    """What a LeRobot robot says about its actions: calibrated bus ranges and `max_relative_target`.

    Actions named "<motor>.pos" of a robot with a calibrated motor bus (`robot.bus`, as SO-100/101,
    Koch, OMX) get their normalised range; any other action keeps None (the user must give limits).
    Actions ending in ".pos" are absolute, everything else (velocities) a motion command.
    """
    low: list[float | None] = [None] * len(action_names)
    high: list[float | None] = [None] * len(action_names)
    bus = getattr(robot, "bus", None)
    calibration = getattr(bus, "calibration", None) or {}
    motors = getattr(bus, "motors", None) or {}
    for i, name in enumerate(action_names):
        motor = name.removesuffix(".pos")
        if name.endswith(".pos") and motor in motors and motor in calibration:
            low[i], high[i] = _motor_range(bus, motor, calibration[motor])
    rel = getattr(getattr(robot, "config", None), "max_relative_target", None)
    if isinstance(rel, dict):
        delta = [
            float(rel[n.removesuffix(".pos")]) if n.removesuffix(".pos") in rel else None
            for n in action_names
        ]
    else:
        delta = [None if rel is None else float(rel)] * len(action_names)
    kinds = tuple(ABSOLUTE if n.endswith(".pos") else DELTA for n in action_names)
    return ActionEnvelope(tuple(action_names), tuple(low), tuple(high), kinds, tuple(delta))


def _motor_range(bus: object, motor: str, cal: object) -> tuple[float, float]:
    """A calibrated motor's range in the bus's normalised units (lerobot/motors/motors_bus.py)."""
    from lerobot.motors.motors_bus import MotorNormMode

    mode = bus.motors[motor].norm_mode
    if mode is MotorNormMode.RANGE_M100_100:
        return -100.0, 100.0
    if mode is MotorNormMode.RANGE_0_100:
        return 0.0, 100.0
    mid = (cal.range_min + cal.range_max) / 2
    max_res = bus.model_resolution_table[bus.motors[motor].model] - 1
    return (cal.range_min - mid) * 360 / max_res, (cal.range_max - mid) * 360 / max_res
