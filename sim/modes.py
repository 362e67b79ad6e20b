"""Behaviour modes of the multimodal probe: the two ways around the barrier, and how to tell them apart.

In the `multimodal` suite (`tasks.py`) a flat barrier stands across the straight line from the object to
its target. After the lift the scripted expert first moves sideways, to the side nearer the robot ("near")
or farther from it ("far"), drawn uniformly per episode, then carries the object along that side and back
in over the target. The two paths are mirror images, so the average of the two actions is no sideways
motion at all: a sampler that returns the conditional mean of the demonstrated actions (one plain Euler
step from t = 1 does exactly that, README "Where one Euler step must fail") hovers over the start or
pushes the object into the barrier's flat face, which, unlike a round post, does not deflect it to a side.

`classify_path` names the strategy of an executed episode from its end-effector path alone, so a rollout of
any policy is scored the same way as the expert.
"""

from __future__ import annotations

import numpy as np

MODES = ("near", "far")
BETWEEN = "between"  # carried the object (or tried to) without ever going to either side
NOT_REACHED = "not_reached"  # never reached the object (e.g. a missed approach)
DETOUR = 0.12  # m, lateral offset of the expert's side line from the object -> target line
# How the expert leaves the start for its side line (the first is the default). "diagonal": straight to
# beside the barrier, so the mean of the two modes is a move straight into the barrier's face (it does
# harm). "lateral" (the probe's first expert): straight sideways from where the lift ended, so the mean of
# the two modes is no motion (it waits).
DETOURS = ("diagonal", "lateral")
# A path has gone to a side once it is this far from the line: the barrier's half width (4 cm) plus 1.5 cm,
# so every path that passes the barrier without touching it counts, and every straight push does not.
MODE_MIN_OFFSET = 0.055  # m
AT_OBJECT = 0.04  # m; the path is read from the first time the hand comes this close (xy) to the object


def lateral_axis(start_xy: np.ndarray, goal_xy: np.ndarray) -> np.ndarray:
    """Unit (2,) normal to the start -> goal line, pointing away from the robot (+x, the "far" side)."""
    d = np.asarray(goal_xy, float) - np.asarray(start_xy, float)
    n = np.array([-d[1], d[0]]) / max(float(np.linalg.norm(d)), 1e-9)
    return n if n[0] >= 0 else -n


def side_offset(start_xy: np.ndarray, goal_xy: np.ndarray, mode: str) -> np.ndarray:
    """(2,) m: the sideways move of `mode` (DETOUR along `lateral_axis`, signed); ValueError for a bad mode."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not a multimodal-probe mode; valid: {list(MODES)}")
    return (1.0 if mode == "far" else -1.0) * DETOUR * lateral_axis(start_xy, goal_xy)


def classify_path(eef_xy: np.ndarray, start_xy: np.ndarray, goal_xy: np.ndarray) -> str:
    """Name the strategy of one episode from its end-effector path.

    Args:
        eef_xy: (T, 2) end-effector positions (m, world) of the episode, in order.
        start_xy, goal_xy: the object's and the target's nominal positions (m).

    Returns:
        One of `MODES` (the side of the largest excursion from the start -> goal line, if at least
        `MODE_MIN_OFFSET`), `BETWEEN` (reached the object but never went that far to either side) or
        `NOT_REACHED` (never came within `AT_OBJECT` of the object). Only the path after the hand first
        reaches the object counts: the way there is not the choice.
    """
    xy = np.asarray(eef_xy, float).reshape(-1, 2)
    start = np.asarray(start_xy, float)
    at_object = np.flatnonzero(np.linalg.norm(xy - start, axis=1) <= AT_OBJECT)
    if at_object.size == 0:
        return NOT_REACHED
    lateral = (xy[at_object[0] :] - start) @ lateral_axis(start_xy, goal_xy)
    side = lateral[np.argmax(np.abs(lateral))]
    if abs(side) < MODE_MIN_OFFSET:
        return BETWEEN
    return "far" if side > 0 else "near"
