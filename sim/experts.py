"""Scripted experts: phase machines on privileged poses that emit LIBERO-style normalised actions.

A task's plan is a tuple of primitives (`PickPlace`, `OpenDrawer`, `CloseDrawer`, `Switch`). Each primitive
expands into waypoints for the end effector (a goal position computed from the live simulator state, a
gripper command and a tolerance). The expert drives a clipped P-controller towards the current waypoint
while holding the gripper straight down, and moves on when the waypoint is reached or times out.
Optional Gaussian action noise diversifies demonstrations the DART way: the noisy action is executed, the
clean one is the label (`ScriptedExpert.label`), so a policy learns the expert, not the noise. Failed demos
are filtered by the task's success predicate in `record.py`, not here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import mujoco
import numpy as np

from snapflow.sim.controller import POS_SCALE, ROT_SCALE, quat_error
from snapflow.sim.modes import DETOURS, MODES, side_offset
from snapflow.sim.scene import CABINET_HALF, CABINET_POS, DRAWER_TRAVEL, OBJECTS, STOVE_POS

# Gripper straight down, fingers closing along world y (the HOME_QPOS orientation), as a wxyz quaternion.
DOWN_QUAT = np.zeros(4)
mujoco.mju_mat2Quat(DOWN_QUAT, np.array([[0.0, 1, 0], [1, 0, 0], [0, 0, -1]]).ravel())

POS_GAIN = 2.0  # action per (POS_SCALE metres) of error: converges in a few steps without overshoot
TRAVEL_SPEED = 0.5  # max |action| in free space (2.5 cm per step)
FINE_SPEED = 0.25  # max |action| near objects and fixtures
ROT_SPEED = 0.5  # max |action| for orientation hold
CARRY_HEIGHT = 0.20  # m, end-effector height for transport
GRASP_STEPS = 6  # control steps to close (or open) the hand
PAD_BELOW_EEF = 0.0064  # m, the finger pads reach this far below the eef site


@dataclass(frozen=True)
class PickPlace:
    """Pick `obj` and release it with its centre at `target`'s body origin + (dx, dy, release_z) metres.

    With `around` = (x, y) of an obstacle on the way, the carry first moves sideways, to the side the
    expert's `mode` names, then along that side to beside the target, then in over it (`modes.side_offset`).
    """

    obj: str
    target: str
    release_z: float
    dx: float = 0.0
    dy: float = 0.0
    around: tuple[float, float] | None = None


@dataclass(frozen=True)
class OpenDrawer:
    """Hook the drawer front from behind and pull it out."""


@dataclass(frozen=True)
class CloseDrawer:
    """Push the drawer front until the drawer is shut."""


@dataclass(frozen=True)
class Switch:
    """Press one end of the stove's rocker switch: `on=True` presses the +x end."""

    on: bool = True


PlanStep = PickPlace | OpenDrawer | CloseDrawer | Switch
Target = Callable[["ScriptedExpert"], np.ndarray]


@dataclass
class _Waypoint:
    target: Target
    grip: float  # -1 open, +1 closed
    tol: float = 0.015  # m
    speed: float = TRAVEL_SPEED
    max_steps: int = 60
    wait: int = 0  # if > 0: hold still for exactly this many steps (grasp/release)
    on_enter: Callable[[ScriptedExpert], None] | None = None


class ScriptedExpert:
    """Stateful expert for one episode; call `reset()` after the env reset, then `act()` every step.

    Args:
        model, data: the env's MuJoCo model and data (privileged state).
        plan: the task's primitives, executed in order.
        noise_std: std of Gaussian noise added to the 6 arm action dims (normalised units).
        rng: generator for the noise (and for the mode, when the plan has a choice and `mode` is None).
        mode: the strategy for a plan step with a choice (one of `modes.MODES`); drawn uniformly if None.
            `self.mode` is the one used (None for a plan without a choice).
        detour: how a plan step with a choice leaves for its side (`modes.DETOURS`).
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        plan: tuple[PlanStep, ...],
        noise_std: float = 0.0,
        rng: np.random.Generator | None = None,
        mode: str | None = None,
        detour: str = DETOURS[0],
    ) -> None:
        if detour not in DETOURS:
            raise ValueError(f"detour={detour!r} is not an expert detour; valid: {list(DETOURS)}")
        self.model, self.data, self.plan, self.detour = model, data, plan, detour
        self.noise_std = noise_std
        self.rng = rng if rng is not None else np.random.default_rng(0)
        has_choice = any(isinstance(s, PickPlace) and s.around is not None for s in plan)
        if has_choice and mode is None:
            mode = MODES[int(self.rng.integers(len(MODES)))]
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode={mode!r} is not an expert mode; valid: {list(MODES)}")
        self.mode = mode if has_choice else None
        self._eef = model.site("eef").id
        self.reset()

    def reset(self) -> None:
        self._waypoints = [wp for step in self.plan for wp in self._expand(step)]
        self._index, self._count, self._entered = 0, 0, False
        self._grasp_offset = np.zeros(3)
        self._anchor = np.zeros(3)
        self._detour_start = np.zeros(2)
        self.label = np.zeros(7, dtype=np.float32)

    @property
    def done(self) -> bool:
        """True once every waypoint of the plan has been executed."""
        return self._index >= len(self._waypoints)

    def eef(self) -> np.ndarray:
        return self.data.site_xpos[self._eef].copy()

    def body(self, name: str) -> np.ndarray:
        return self.data.body(name).xpos.copy()

    def act(self) -> np.ndarray:
        """The next action to execute, float32 (7,) in [-1, 1]; a hold-still open-hand action once `done`.

        With `noise_std > 0` the returned action is perturbed; the expert's own (clean) action of the same step
        is kept in `label`. DART (Laskey et al., 2017) executes the perturbed action, so that the demos visit
        the states a learner drifts into, and records the clean one as the training label.
        """
        if self.done:
            self.label = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float32)
            return self.label.copy()
        wp = self._waypoints[self._index]
        if not self._entered:
            self._entered = True
            self._anchor = self.eef()
            if wp.on_enter is not None:
                wp.on_enter(self)
        err = wp.target(self) - self.eef()
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[self._eef])
        action = np.zeros(7)
        action[:3] = np.clip(POS_GAIN * err / POS_SCALE, -wp.speed, wp.speed)
        action[3:6] = np.clip(quat_error(DOWN_QUAT, quat) / ROT_SCALE, -ROT_SPEED, ROT_SPEED)
        action[6] = wp.grip
        self.label = np.clip(action, -1.0, 1.0).astype(np.float32)
        if self.noise_std > 0:
            action[:6] += self.rng.normal(0.0, self.noise_std, 6)
        self._count += 1
        reached = self._count >= wp.wait if wp.wait else np.linalg.norm(err) < wp.tol
        if reached or self._count >= wp.max_steps:
            self._index, self._count, self._entered = self._index + 1, 0, False
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    # ---- primitives -> waypoints ------------------------------------------------------------------------

    def _expand(self, step: PlanStep) -> list[_Waypoint]:
        if isinstance(step, PickPlace):
            return _pick_place(step, self.mode, self.detour)
        if isinstance(step, OpenDrawer):
            return _open_drawer()
        if isinstance(step, CloseDrawer):
            return _close_drawer()
        if isinstance(step, Switch):
            return _switch(step.on)
        raise TypeError(f"unknown plan step {step!r}")


def _at(xy_fn: Callable[[ScriptedExpert], np.ndarray], z: float) -> Target:
    return lambda ex: np.array([*xy_fn(ex)[:2], z])


def _hold(ex: ScriptedExpert) -> np.ndarray:
    return ex._anchor


def _pick_place(step: PickPlace, mode: str | None = None, detour: str = DETOURS[0]) -> list[_Waypoint]:
    obj_xy = lambda ex: ex.body(step.obj)  # noqa: E731
    offset = np.array([step.dx, step.dy, step.release_z])
    carry = max(CARRY_HEIGHT, step.release_z + 0.15)

    def grasp_point(ex: ScriptedExpert) -> np.ndarray:
        # Grip a little above the centre of tall objects so the pads never scrape the table.
        p = ex.body(step.obj)
        return np.array([p[0], p[1], max(p[2], 0.025)])

    def remember_offset(ex: ScriptedExpert) -> None:
        ex._grasp_offset = ex.body(step.obj) - ex.eef()

    def release_point(ex: ScriptedExpert) -> np.ndarray:
        return ex.body(step.target) + offset - np.array([0, 0, ex._grasp_offset[2]])

    def side(ex: ScriptedExpert) -> np.ndarray:
        # From where the lift ended (`_anchor` of the first detour waypoint), fixed for the whole carry.
        return side_offset(ex._detour_start, ex.body(step.target)[:2], mode)

    def remember_start(ex: ScriptedExpert) -> None:
        ex._detour_start = ex._anchor[:2].copy()

    def sideways(ex: ScriptedExpert) -> np.ndarray:
        # "diagonal" goes straight to beside the barrier: the two modes' mean heads into its face.
        base = np.asarray(step.around, float) if detour == "diagonal" else ex._detour_start
        return np.array([*(base + side(ex)), carry])

    def along_side(ex: ScriptedExpert) -> np.ndarray:
        return np.array([*(ex.body(step.target)[:2] + side(ex)), carry])

    around_barrier = (
        []
        if step.around is None
        else [_Waypoint(sideways, 1, tol=0.02, on_enter=remember_start), _Waypoint(along_side, 1, tol=0.03)]
    )
    return [
        _Waypoint(_at(obj_xy, carry - 0.06), -1, tol=0.02),
        _Waypoint(grasp_point, -1, tol=0.006, speed=FINE_SPEED, max_steps=40),
        _Waypoint(_hold, 1, wait=GRASP_STEPS),
        _Waypoint(_at(obj_xy, carry), 1, tol=0.03, on_enter=remember_offset),
        *around_barrier,
        _Waypoint(lambda ex: np.array([*(ex.body(step.target) + offset)[:2], carry]), 1, tol=0.015),
        _Waypoint(release_point, 1, tol=0.008, speed=FINE_SPEED, max_steps=40),
        _Waypoint(_hold, -1, wait=GRASP_STEPS),
        _Waypoint(lambda ex: ex._anchor + np.array([0, 0, 0.08]), -1, tol=0.02),
    ]


# Drawer geometry in world coordinates (see scene._cabinet_xml): the drawer opens towards -y and its
# front face is at y = _FRONT_Y - qpos.
_FRONT_Y = CABINET_POS[1] - CABINET_HALF[0]
_CAB_TOP = 2 * CABINET_HALF[2]
_HOOK_Z = _CAB_TOP + 0.012  # pads just above the cabinet top, behind the 2 cm lip of the drawer front
_PUSH_Z = 0.07  # pads at mid-height of the drawer front
_LIP_GAP = 0.026  # m from the front face to the hook point (lip 1.2 cm + pads 0.75 cm + clearance)


def _drawer_q(ex: ScriptedExpert) -> float:
    return float(ex.data.joint("drawer_slide").qpos[0])


def _open_drawer() -> list[_Waypoint]:
    x = CABINET_POS[0]
    hook_y = lambda ex: _FRONT_Y + _LIP_GAP - _drawer_q(ex)  # noqa: E731
    return [
        _Waypoint(lambda ex: np.array([x, hook_y(ex), _HOOK_Z + 0.08]), 1, tol=0.02),
        _Waypoint(
            lambda ex: np.array([x, hook_y(ex), _HOOK_Z]), 1, tol=0.006, speed=FINE_SPEED, max_steps=40
        ),
        _Waypoint(
            lambda ex: np.array([x, _FRONT_Y + 0.02 - DRAWER_TRAVEL, _HOOK_Z]),
            1,
            tol=0.01,
            speed=FINE_SPEED,
            max_steps=60,
        ),
        _Waypoint(lambda ex: ex._anchor + np.array([0, 0.03, 0.10]), 1, tol=0.02),
    ]


def _close_drawer() -> list[_Waypoint]:
    x = CABINET_POS[0]
    push_y = lambda ex: _FRONT_Y - 0.022 - _drawer_q(ex)  # noqa: E731
    return [
        _Waypoint(lambda ex: np.array([x, push_y(ex), _PUSH_Z + 0.10]), 1, tol=0.02),
        _Waypoint(
            lambda ex: np.array([x, push_y(ex), _PUSH_Z]), 1, tol=0.008, speed=FINE_SPEED, max_steps=40
        ),
        _Waypoint(
            lambda ex: np.array([x, _FRONT_Y - 0.012, _PUSH_Z]), 1, tol=0.006, speed=FINE_SPEED, max_steps=60
        ),
        _Waypoint(lambda ex: ex._anchor + np.array([0, -0.03, 0.10]), 1, tol=0.02),
    ]


# Rocker switch: hinge at (STOVE_POS - 0.095 x, z 0.03); pressing 2.2 cm from the hinge tips it over.
_SWITCH_X = STOVE_POS[0] - 0.095
_PRESS_Z = 0.028 + PAD_BELOW_EEF - 0.004  # eef height that pushes the pressed end to its stop


def _switch(on: bool) -> list[_Waypoint]:
    x = _SWITCH_X + (0.022 if on else -0.022)
    y = STOVE_POS[1]
    return [
        _Waypoint(lambda ex: np.array([x, y, 0.14]), 1, tol=0.02),
        _Waypoint(lambda ex: np.array([x, y, _PRESS_Z]), 1, tol=0.004, speed=FINE_SPEED, max_steps=25),
        _Waypoint(lambda ex: np.array([x, y, _PRESS_Z]), 1, wait=3),
        _Waypoint(lambda ex: np.array([x, y, 0.14]), 1, tol=0.02),
    ]


def release_height(obj: str, target: str) -> float:
    """Height (m) of `obj`'s centre above `target`'s body origin at which the expert lets go."""
    half = OBJECTS[obj].half_height
    drop = 0.012  # small drop so the object never gets pushed into the support
    if target == "basket":
        return -OBJECTS["basket"].half_height + 0.008 + half + 0.03  # falls the last 3 cm into the basket
    if target == "drawer":
        return 0.018 + half + 0.02
    if target == "stove":
        return 0.016 + half + drop
    if target == "cabinet":
        return _CAB_TOP + half + drop
    return OBJECTS[target].half_height + half + drop


class ExpertRun(NamedTuple):
    """What `run_expert` returns: whether the goal held, the steps taken and the strategy used (or None)."""

    success: bool
    steps: int
    mode: str | None


EXTRA_STEPS_AFTER_PLAN = 10  # steps to let a released object settle before declaring failure


def run_expert(
    env,
    noise_std: float = 0.0,
    rng: np.random.Generator | None = None,
    on_step: Callable[[dict, np.ndarray], None] | None = None,
    obs: dict | None = None,
    mode: str | None = None,
    detour: str = DETOURS[0],
) -> ExpertRun:
    """Roll out the task's expert in an already-reset `MiniLiberoEnv` until success or the step limit.

    Args:
        env: a reset `MiniLiberoEnv` (the unwrapped env).
        noise_std, rng: action noise for diversity (see `ScriptedExpert`).
        on_step: called with (observation, label) before each step, e.g. to record a frame; the label is the
            expert's clean action (`ScriptedExpert.label`), the executed one carries the noise.
        obs: the observation returned by the reset (passed to `on_step` for the first frame).
        mode: the strategy for a task with a choice (`modes.MODES`); drawn from `rng` when None.
        detour: how the expert leaves for its side on such a task (`modes.DETOURS`).

    Returns:
        `ExpertRun(success, steps, mode)`; `mode` is None for a task without a choice.
    """
    expert = ScriptedExpert(
        env.model, env.data, env.task_spec.plan, noise_std=noise_std, rng=rng, mode=mode, detour=detour
    )
    extra = 0
    for step in range(env._max_episode_steps):
        action = expert.act()
        if on_step is not None:
            on_step(obs, expert.label)
        obs, _, terminated, truncated, info = env.step(action)
        if terminated:
            return ExpertRun(True, step + 1, expert.mode)
        extra += expert.done
        if truncated or extra > EXTRA_STEPS_AFTER_PLAN:
            return ExpertRun(bool(info["is_success"]), step + 1, expert.mode)
    return ExpertRun(False, env._max_episode_steps, expert.mode)
