"""Behaviour modes of the multimodal probe: the two ways around the pillar, and how to tell them apart.

In the `multimodal` suite (`tasks.py`) a pillar stands on the straight line from the object to its target.
The scripted expert carries the object around it on the side nearer the robot ("near") or the side
farther from it ("far"), drawn uniformly per episode. The two paths are mirror images, so their average is
the straight line through the pillar: a sampler that returns the conditional mean of the demonstrated
actions (one plain Euler step from t = 1 does exactly that, see README "Where one Euler step must fail")
drives into it.

`classify_path` names the strategy of an executed episode from its end-effector path alone, so a rollout
of any policy can be scored the same way as the expert.
"""

from __future__ import annotations

import numpy as np

MODES = ("near", "far")
BETWEEN = "between"  # reached the pillar without going around it on either side
NOT_REACHED = "not_reached"  # never came close to the pillar (e.g. a missed grasp)
DETOUR = 0.12  # m, lateral offset of the expert's via point from the pillar's axis
# A path passes the pillar on a side when it is this far from the straight line while level with it:
# the pillar radius (2.5 cm) plus a cube's half width (2 cm) plus 1 cm; anything closer hits the pillar.
MODE_MIN_OFFSET = 0.055  # m
GATE = 0.08  # m, half length (along the line) of the stretch around the pillar where the side is read
AT_OBJECT = 0.04  # m; the path is read from the first time the hand comes this close (xy) to the object


def lateral_axis(start_xy: np.ndarray, goal_xy: np.ndarray) -> np.ndarray:
    """Unit (2,) normal to the start -> goal line, pointing away from the robot (+x, the "far" side)."""
    d = np.asarray(goal_xy, float) - np.asarray(start_xy, float)
    n = np.array([-d[1], d[0]]) / max(float(np.linalg.norm(d)), 1e-9)
    return n if n[0] >= 0 else -n


def via_point(start_xy: np.ndarray, goal_xy: np.ndarray, obstacle_xy: np.ndarray, mode: str) -> np.ndarray:
    """(2,) xy in m beside the pillar on the `mode` side, `DETOUR` from its axis; ValueError for a bad mode."""
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is not a multimodal-probe mode; valid: {list(MODES)}")
    sign = 1.0 if mode == "far" else -1.0
    return np.asarray(obstacle_xy, float) + sign * DETOUR * lateral_axis(start_xy, goal_xy)


def classify_path(
    eef_xy: np.ndarray, start_xy: np.ndarray, goal_xy: np.ndarray, obstacle_xy: np.ndarray
) -> str:
    """Name the strategy of one episode from its end-effector path.

    Args:
        eef_xy: (T, 2) end-effector positions (m, world) of the episode, in order.
        start_xy, goal_xy: the object's and the target's nominal positions (m); obstacle_xy: the pillar's.

    Returns:
        One of `MODES` (the side of the largest lateral excursion within `GATE` of the pillar, if at least
        `MODE_MIN_OFFSET`), `BETWEEN` (came level with the pillar but never that far to the side) or
        `NOT_REACHED` (never reached the object, or never came within `GATE` of the pillar after that).
        Only the path after the hand first reaches the object counts: the way there is not the choice.
    """
    xy = np.asarray(eef_xy, float).reshape(-1, 2)
    start = np.asarray(start_xy, float)
    at_object = np.flatnonzero(np.linalg.norm(xy - start, axis=1) <= AT_OBJECT)
    if at_object.size == 0:
        return NOT_REACHED
    xy = xy[at_object[0] :]
    d = np.asarray(goal_xy, float) - start
    along_axis = d / max(float(np.linalg.norm(d)), 1e-9)
    rel = xy - start
    along = rel @ along_axis - (np.asarray(obstacle_xy, float) - start) @ along_axis
    lateral = (xy - np.asarray(obstacle_xy, float)) @ lateral_axis(start_xy, goal_xy)
    near_pillar = np.abs(along) <= GATE
    if not near_pillar.any():
        return NOT_REACHED
    side = lateral[near_pillar][np.argmax(np.abs(lateral[near_pillar]))]
    if abs(side) < MODE_MIN_OFFSET:
        return BETWEEN
    return "far" if side > 0 else "near"
