"""`MiniLiberoEnv`: one mini-LIBERO task as a gymnasium env with LeRobot's LIBERO observation keys.

Observation (raw, as LeRobot's `preprocess_observation` expects):
  {"pixels": {"image": uint8 (H, W, 3) agentview, "image2": uint8 (H, W, 3) wrist camera},
   "agent_pos": float32 (8,) = eef position (m, world) + eef axis-angle (rad, relative to the gripper
   pointing straight down) + 2 finger joints (m); with `object_state=True` it is followed by every object's
   presence and position relative to the eef, and the fixture joints (74 in all, see `object_state.py`)}.
Images are upright (unlike robosuite's, which LeRobot flips by 180 degrees for LIBERO).
Action: Box(-1, 1, (7,)) with LIBERO's delta-EEF semantics at 20 Hz (see `controller.py`).
Reward 1.0 on success, `terminated` on success, `truncated` at `_max_episode_steps`; `info["is_success"]`
on reset and on every step.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless software rendering works out of the box here

import functools
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from snapflow.sim.controller import CONTROL_HZ, DeltaEEFController, quat_error
from snapflow.sim.experts import DOWN_QUAT
from snapflow.sim.init_states import N_FROZEN, frozen_init_states, sample_init_state
from snapflow.sim.layouts import DEFAULT_LAYOUT, check_layout
from snapflow.sim.modes import AT_OBJECT, classify_path
from snapflow.sim.object_state import ObjectStateReader, state_dim
from snapflow.sim.panda import N_ARM_JOINTS
from snapflow.sim.predicates import TurnOn
from snapflow.sim.scene import scene_xml
from snapflow.sim.tasks import MAX_EPISODE_STEPS, Task, get_task

SETTLE_STEPS = 10  # no-op steps after reset so objects come to rest (LeRobot's LIBERO num_steps_wait)
SETTLE_ACTION = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float32)
CAMERAS = {"image": "agentview", "image2": "eye_in_hand"}  # raw obs key -> MuJoCo camera
DEFAULT_RESOLUTION = 128
STATE_BOUND = 4.0  # |positions| < 1 m, |axis-angle| <= pi rad, fingers <= 0.04 m
BURNER_ON_RGBA = np.array([0.9, 0.25, 0.1, 1.0])  # the burner glows while the switch is on
BURNER_OFF_RGBA = np.array([0.25, 0.25, 0.28, 1.0])


@functools.lru_cache(maxsize=64)
def _model_xml(suite: str, task_id: int) -> str:
    task = get_task(suite, task_id)
    return scene_xml(task.objects, task.fixtures, task.obstacle)


def build_model(task: Task) -> mujoco.MjModel:
    """Compile the task's scene (about 30 ms; the XML string is cached)."""
    return mujoco.MjModel.from_xml_string(_model_xml(task.suite, task.task_id))


RESOLUTION_RANGE = (16, 512)  # px, camera side: the sizes this env renders (one fact for env, collect, eval)


def check_resolution(resolution: object) -> int:
    """`resolution` (camera side, px) when it is an int in `RESOLUTION_RANGE`, else ValueError naming it."""
    low, high = RESOLUTION_RANGE
    if isinstance(resolution, bool) or not isinstance(resolution, int) or not low <= resolution <= high:
        raise ValueError(f"resolution must be an int in [{low}, {high}], got {resolution!r}")
    return resolution


class MiniLiberoEnv(gym.Env):
    """One task of a mini-LIBERO suite.

    Args:
        suite: "spatial", "object", "goal" or "long" (or the libero_* alias), or the probe "multimodal".
        task_id: 0..9 (0..3 for "multimodal").
        resolution: square image size in pixels for both cameras.
        init_state: index into the 50 frozen init states, or None for a layout drawn from `reset(seed)`.
        init_state_stride: added to the frozen index after every reset (LeRobot's LIBERO wrapper uses
            n_envs, so env k of a batch plays states k, k+n, ...); 0 keeps the same state.
        render: False skips both cameras (no "pixels" key): physics-only, for experts and benchmarks.
        max_episode_steps: defaults to the suite's `MAX_EPISODE_STEPS`.
        object_state: extend `agent_pos` with the objects' positions (`object_state.py`).
        layout: "libero" (default: per-task 2 cm regions, as LIBERO's BDDL files) or "wide" (every body
            anywhere on the table: a position-generalisation probe); see `init_states.py`.
    """

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}

    def __init__(
        self,
        suite: str = "spatial",
        task_id: int = 0,
        resolution: int = DEFAULT_RESOLUTION,
        init_state: int | None = None,
        init_state_stride: int = 0,
        render: bool = True,
        max_episode_steps: int | None = None,
        render_mode: str | None = "rgb_array",
        object_state: bool = False,
        layout: str = DEFAULT_LAYOUT,
    ) -> None:
        self.task_spec = get_task(suite, task_id)
        self.layout = check_layout(layout)
        if self.task_spec.regions and self.layout != "libero":
            raise ValueError(
                f"the {self.task_spec.suite} suite has a fixed layout; layout={layout!r} is not available (use libero)"
            )
        check_resolution(resolution)
        for name, flag in (("object_state", object_state), ("render", render)):
            if not isinstance(flag, bool | np.bool_):  # pass 18: object_state="false" was taken as True
                raise ValueError(f"{name} must be True or False, got {flag!r}")
        if init_state is not None and not int(init_state) >= 0:
            raise ValueError(f"init_state must be a non-negative index or None, got {init_state!r}")
        if init_state is not None and not init_state_stride and int(init_state) >= N_FROZEN:
            # with a stride (LeRobot's n_envs batching: k, k+n, ...) the index wraps on purpose; alone it
            # would silently play another state
            raise ValueError(f"init_state must be a frozen index in 0..{N_FROZEN - 1}, got {init_state}")
        self.suite, self.task_id = self.task_spec.suite, self.task_spec.task_id
        self.task = self.task_description = self.task_spec.instruction
        self.resolution, self.render_cameras, self.render_mode = resolution, render, render_mode
        self._max_episode_steps = max_episode_steps or MAX_EPISODE_STEPS[self.suite]
        self.init_state, self.init_state_stride = init_state, init_state_stride
        self._next_frozen = init_state

        self.model = build_model(self.task_spec)
        self.data = mujoco.MjData(self.model)
        self.controller = DeltaEEFController(self.model, self.data)
        self._renderer: mujoco.Renderer | None = None
        self._last_frames: dict[str, np.ndarray] = {}
        self._elapsed = 0
        self._eef_path: list[np.ndarray] = []
        self._touched_obstacle = self._at_object = False
        self._burner = self.model.geom("burner").id if "stove" in self.task_spec.fixtures else None
        # the probe's fixed geometry, looked up once: read every step by `step` (the path and the contacts)
        self._barrier = self.model.geom("barrier").id if self.task_spec.obstacle else None
        self._nominal_xy = self._probe_regions() if self.task_spec.modes else None
        self.object_state = bool(object_state)
        self._objects = ObjectStateReader(self.model) if self.object_state else None

        img = spaces.Box(0, 255, (resolution, resolution, 3), np.uint8)
        obs: dict[str, spaces.Space] = {
            "agent_pos": spaces.Box(-STATE_BOUND, STATE_BOUND, (state_dim(self.object_state),), np.float32)
        }
        if render:
            obs["pixels"] = spaces.Dict(dict.fromkeys(CAMERAS, img))
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Box(-1.0, 1.0, (7,), np.float32)

    # ---- gymnasium API ----------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        options = options or {}
        if "init_state" in options:  # explicit override: an int index or a qpos vector
            index = options["init_state"]
            if np.ndim(index) == 0 and not 0 <= int(index) < N_FROZEN:
                raise ValueError(
                    f"options['init_state'] must be a frozen index in 0..{N_FROZEN - 1}, got {index}"
                )
            qpos = self._frozen_or_vector(index)
        elif self._next_frozen is not None:
            qpos = self._frozen_or_vector(self._next_frozen)
            self._next_frozen += self.init_state_stride
        else:
            layout_seed = seed if seed is not None else int(self.np_random.integers(2**31 - 1))
            qpos = sample_init_state(self.task_spec, self.model, layout_seed, self.layout)
        self._set_state(qpos)
        for _ in range(SETTLE_STEPS):
            self.controller.step(SETTLE_ACTION)
        self._elapsed = 0
        self._eef_path = [self._eef_xy()] if self.task_spec.modes else []
        self._touched_obstacle = self._at_object = False
        return self._observation(), {
            "is_success": self.is_success(),
            "task": self.task,
            "task_id": self.task_id,
        }

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        action = self._validate_action(action)
        self.controller.step(action)
        self._elapsed += 1
        if self.task_spec.modes:  # only the multimodal probe reads the path (episode_mode)
            self._eef_path.append(self._eef_xy())
            # Counted from the hand's first arrival at the object, as the path is (classify_path): the way
            # from home passes close to the barrier and may graze it with a finger before any choice.
            if np.linalg.norm(self._eef_path[-1] - self._nominal_xy[0]) <= AT_OBJECT:
                self._at_object = True
            self._touched_obstacle = self._touched_obstacle or (
                self._at_object and self._obstacle_in_contact()
            )
        success = self.is_success()
        truncated = self._elapsed >= self._max_episode_steps
        info = {"is_success": success, "task": self.task, "task_id": self.task_id}
        return self._observation(), float(success), success, truncated, info

    def render(self) -> np.ndarray:
        """The agentview frame of the current state (reuses the one rendered for the observation)."""
        if "image" not in self._last_frames:
            self._last_frames = self._render_frames()
        return self._last_frames["image"]

    def set_render_cameras(self, on: bool) -> None:
        """Render the cameras into the next observations (True) or skip them (False: no "pixels" key).

        For rollouts that look only at some frames (a policy that plans a chunk every n steps): the
        skipped renders are most of a step's cost. The env must have been built with `render=True`.
        """
        if on and "pixels" not in self.observation_space.spaces:
            raise ValueError("this env was built with render=False; it has no cameras to turn on")
        self.render_cameras = bool(on)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ---- helpers ----------------------------------------------------------------------------------------

    def is_success(self) -> bool:
        """The task's goal predicate on the current state."""
        return bool(self.task_spec.goal(self.model, self.data))

    def episode_mode(self) -> str | None:
        """The strategy of the episode so far (`modes.classify_path` on the hand's path since the reset)
        for a task whose expert chooses between strategies (the multimodal probe); None for other tasks."""
        if not self.task_spec.modes:
            return None
        return classify_path(np.array(self._eef_path), *self._nominal_xy)

    def _probe_regions(self) -> tuple[np.ndarray, np.ndarray]:
        """(2,) m each: the region centres of the probe task's object and target."""
        regions = {name: np.array([x, y]) for name, x, y in self.task_spec.regions}
        return regions[self.task_spec.plan[0].obj], regions[self.task_spec.plan[0].target]

    def episode_touched_obstacle(self) -> bool | None:
        """Whether anything (the carried object, the hand, another object) touched the probe's barrier after
        the hand first reached the object (checked after every step); None for a task without one."""
        return self._touched_obstacle if self.task_spec.modes and self._barrier is not None else None

    def _obstacle_in_contact(self) -> bool:
        # The barrier is welded to the world, so MuJoCo never reports its contact with the (static) table:
        # every contact it is in involves a moving body.
        if self._barrier is None:
            return False
        contacts = self.data.contact[: self.data.ncon]
        return bool(np.any((contacts.geom1 == self._barrier) | (contacts.geom2 == self._barrier)))

    def _eef_xy(self) -> np.ndarray:
        return self.controller.eef_pose()[0][:2].copy()

    def _frozen_or_vector(self, state: int | np.ndarray) -> np.ndarray:
        if np.ndim(state) == 0:
            frozen = frozen_init_states(self.suite, self.task_id, self.layout)
            return frozen[int(state) % len(frozen)].astype(np.float64)
        qpos = np.asarray(state, dtype=np.float64)
        if qpos.shape != (self.model.nq,):
            raise ValueError(f"init_state vector must have shape ({self.model.nq},), got {qpos.shape}")
        return qpos

    def _set_state(self, qpos: np.ndarray) -> None:
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = qpos
        self.data.ctrl[:N_ARM_JOINTS] = qpos[:N_ARM_JOINTS]
        mujoco.mj_forward(self.model, self.data)

    def _validate_action(self, action: np.ndarray) -> np.ndarray:
        arr = np.asarray(action, dtype=np.float64)
        if arr.shape != (7,):
            raise ValueError(
                f"action must have shape (7,) = [dx, dy, dz, drx, dry, drz, grip], got {arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"action must be finite, got {arr.tolist()}")
        return np.clip(arr, -1.0, 1.0)

    def _agent_pos(self) -> np.ndarray:
        pos, quat = self.controller.eef_pose()
        # Orientation relative to "gripper straight down": near zero and continuous in normal use, where
        # the world-frame axis-angle would sit at |angle| = pi and flip sign (a known LIBERO state quirk).
        axis_angle = quat_error(quat, DOWN_QUAT)
        fingers = self.data.qpos[N_ARM_JOINTS : N_ARM_JOINTS + 2]
        proprio = np.concatenate([pos, axis_angle, fingers]).astype(np.float32)
        if self._objects is None:
            return proprio
        return np.concatenate([proprio, self._objects.read(self.data, pos)])

    def _render_frames(self) -> dict[str, np.ndarray]:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.resolution, self.resolution)
            flags = self._renderer.scene.flags
            flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        if self._burner is not None:
            on = TurnOn()(self.model, self.data)
            self.model.geom_rgba[self._burner] = BURNER_ON_RGBA if on else BURNER_OFF_RGBA
        frames = {}
        for key, camera in CAMERAS.items():
            self._renderer.update_scene(self.data, camera=camera)
            frames[key] = self._renderer.render()
        return frames

    def _observation(self) -> dict[str, Any]:
        obs: dict[str, Any] = {"agent_pos": self._agent_pos()}
        self._last_frames = {}
        if self.render_cameras:
            self._last_frames = self._render_frames()
            obs["pixels"] = dict(self._last_frames)
        return obs
