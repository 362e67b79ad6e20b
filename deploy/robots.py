"""Robots the control loop can drive, behind one small interface.

- `Robot`: `get_observation() -> dict`, `send_action(np.ndarray)`, `close()`, `envelope()` (what the
  actions mean and where they may go, `envelope.py`). Optional, read with `getattr`:
  `measured_action() -> np.ndarray` (the measured state in action units, NaN where unmeasured; the
  safety filter rate-limits absolute targets from it), `is_success: bool | None` and `done: bool`.
- `SimRobot`: the mini-LIBERO gymnasium env (`snapflow/MiniLibero-v0`). `send_action` steps the env
  once (one 20 Hz control step); observations are the env's raw dict plus `"task"`, the instruction.
- `LeRobotRobot`: any `lerobot.robots.Robot`, built from its LeRobot config with
  `make_robot_from_config`. Observations use LeRobot's dataset-frame keys (`observation.state`,
  `observation.images.<camera>`) plus `"task"`; actions are mapped onto `action_features` in order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from snapflow.deploy.envelope import ABSOLUTE, DELTA, ActionEnvelope, lerobot_envelope

if TYPE_CHECKING:
    from lerobot.robots import Robot as LeRobotBase
    from lerobot.robots import RobotConfig

MINI_LIBERO_ENV_ID = "snapflow/MiniLibero-v0"
# mini-LIBERO's action (sim/controller.py): six delta end-effector steps and an absolute gripper command,
# all normalised to [-1, 1]. A full-range change per tick is allowed (the controller scales and clips).
SIM_ACTION_NAMES = ("dx", "dy", "dz", "drx", "dry", "drz", "gripper")
SIM_MAX_DELTA = 1.0


@runtime_checkable
class Robot(Protocol):
    """The robot side of the control loop."""

    def get_observation(self) -> dict:
        """The latest raw observation (plus "task": str when the robot knows its instruction)."""
        ...

    def send_action(self, action: np.ndarray) -> None:
        """Command one action (A,) in the robot's action units; the loop guarantees it is safe."""
        ...

    def close(self) -> None:
        """Release the robot (disconnect, close the env)."""
        ...

    def envelope(self) -> ActionEnvelope:
        """Names, kinds and (where known) limits and rate limits of the actions."""
        ...


class SimRobot:
    """The mini-LIBERO sim as a robot (closed loop; success from `info["is_success"]`)."""

    def __init__(
        self,
        suite: str = "spatial",
        task_id: int = 0,
        resolution: int = 128,
        init_state: int | None = None,
        seed: int | None = 0,
        env_id: str = MINI_LIBERO_ENV_ID,
        task: str | None = None,
        auto_reset: bool = False,
        object_state: bool = False,
        layout: str = "libero",
    ) -> None:
        """
        Args:
            suite, task_id, resolution, init_state: forwarded to `gymnasium.make(env_id, ...)`.
            seed: seed of the first `reset`.
            task: instruction override (default: the env's `task_description`).
            auto_reset: when an episode ends, start the next one at once (the next frozen init state)
                instead of ignoring further actions; `episodes` / `successes` count the finished
                episodes, and a change of `episodes` tells the control loop to drop the old plan.
            object_state: observe the 74-D object state (`snapflow.sim.object_state`), not the 8-D proprio.
            layout: "libero" or "wide" init states (`snapflow.sim.init_states`).
        """
        import gymnasium as gym

        import snapflow.sim  # noqa: F401  (registers the gymnasium ids)

        self.env = gym.make(
            env_id,
            suite=suite,
            task_id=task_id,
            resolution=resolution,
            init_state=init_state,
            init_state_stride=int(auto_reset and init_state is not None),
            object_state=object_state,
            layout=layout,
        )
        self._obs, self._info = self.env.reset(seed=seed)
        self.task = task if task is not None else str(getattr(self.env.unwrapped, "task_description", ""))
        self.done = False
        self.is_success: bool | None = bool(self._info.get("is_success", False))
        self.steps = 0
        self.total_reward = 0.0
        self.auto_reset = auto_reset
        self.episodes = 0  # finished episodes
        self.successes = 0  # finished episodes that succeeded

    @property
    def action_dim(self) -> int:
        return int(np.prod(self.env.action_space.shape))

    def envelope(self) -> ActionEnvelope:
        """[-1, 1] per dim; dims 0-5 are motion commands (0 = stay), the gripper an absolute command."""
        space = self.env.action_space
        kinds = (DELTA,) * 6 + (ABSOLUTE,)
        return ActionEnvelope(
            SIM_ACTION_NAMES,
            tuple(map(float, space.low)),
            tuple(map(float, space.high)),
            kinds,
            (SIM_MAX_DELTA,) * len(kinds),
        )

    def get_observation(self) -> dict:
        # Copies: the inference thread reads this while the next env.step may reuse the env's buffers.
        return {**_copy_arrays(self._obs), "task": self.task}

    def send_action(self, action: np.ndarray) -> None:
        if self.done:  # gymnasium forbids stepping a finished episode; the loop stops on `done`
            return
        obs, reward, terminated, truncated, info = self.env.step(np.asarray(action, dtype=np.float32))
        self._obs, self._info = obs, info
        self.steps += 1
        self.total_reward += float(reward)
        self.is_success = bool(info.get("is_success", False)) or bool(self.is_success)
        if terminated or truncated:
            self.episodes += 1
            self.successes += int(self.is_success)
            if self.auto_reset:  # the next observation is already the next episode's first
                self._obs, self._info = self.env.reset()
                self.is_success = bool(self._info.get("is_success", False))
            else:
                self.done = True

    def close(self) -> None:
        self.env.close()


class LeRobotRobot:
    """Adapter from a LeRobot `Robot` (dict actions/observations) to our array interface."""

    def __init__(self, robot: LeRobotBase, task: str = "", connect: bool = True) -> None:
        """
        Args:
            robot: a LeRobot robot instance (e.g. from `make_robot_from_config`).
            task: the instruction added to every observation under "task".
            connect: call `robot.connect()` unless it is already connected.
        """
        self.robot = robot
        self.task = task
        if connect and not robot.is_connected:
            robot.connect()
        feats = robot.action_features
        self.action_names: list[str] = [k for k, v in feats.items() if v is float]
        if len(self.action_names) != len(feats):
            raise ValueError(f"only float action features are supported, got {feats}")
        obs_feats = robot.observation_features
        self.state_names: list[str] = [k for k, v in obs_feats.items() if v is float]
        self.camera_names: list[str] = [k for k, v in obs_feats.items() if isinstance(v, tuple)]

    @classmethod
    def from_config(cls, config: RobotConfig, task: str = "") -> LeRobotRobot:
        """Build the robot from its LeRobot config (`--robot.type=...`) and connect it."""
        from lerobot.robots.utils import make_robot_from_config

        return cls(make_robot_from_config(config), task=task)

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    def envelope(self) -> ActionEnvelope:
        """Calibrated ranges and `max_relative_target` where LeRobot has them (`envelope.lerobot_envelope`)."""
        return lerobot_envelope(self.robot, self.action_names)

    def measured_action(self) -> np.ndarray:
        """Measured position per action (NaN where the robot reports none), read fresh on every call.

        Robots with a motor bus are read through it (positions only, a few ms), others through their full
        `get_observation()`; an action "<x>" is measured by the observation feature of the same name.
        """
        bus = getattr(self.robot, "bus", None)
        if bus is not None and hasattr(bus, "sync_read"):
            raw = {f"{k}.pos": v for k, v in bus.sync_read("Present_Position").items()}
        else:
            raw = self.robot.get_observation()
        return np.array([float(raw[n]) if n in raw else np.nan for n in self.action_names], dtype=np.float64)

    def get_observation(self) -> dict:
        raw: dict[str, Any] = self.robot.get_observation()
        obs: dict[str, Any] = {
            "observation.state": np.asarray([raw[k] for k in self.state_names], dtype=np.float32),
            "task": self.task,
        }
        for cam in self.camera_names:
            obs[f"observation.images.{cam}"] = np.array(raw[cam])  # a copy, read by another thread
        return obs

    def send_action(self, action: np.ndarray) -> None:
        values = np.asarray(action, dtype=np.float64).reshape(-1)
        if values.shape[0] != len(self.action_names):
            raise ValueError(f"expected {len(self.action_names)} action values, got {values.shape[0]}")
        self.robot.send_action({k: float(v) for k, v in zip(self.action_names, values, strict=True)})

    def close(self) -> None:
        if self.robot.is_connected:
            self.robot.disconnect()


def _copy_arrays(tree: dict) -> dict:
    """Copy of a nested dict with every numpy array copied."""
    out: dict = {}
    for k, v in tree.items():
        out[k] = _copy_arrays(v) if isinstance(v, dict) else (v.copy() if isinstance(v, np.ndarray) else v)
    return out
