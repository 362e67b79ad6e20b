"""Robot adapters: a LeRobot `Robot` (a real subclass of LeRobot's ABC, not a mock) behind our interface."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from lerobot.robots import Robot, RobotConfig

from snapflow.deploy.clock import SimulatedClock
from snapflow.deploy.control_loop import ControlLoopConfig, run_control_loop
from snapflow.deploy.robots import LeRobotRobot
from snapflow.deploy.robots import Robot as RobotProtocol
from snapflow.deploy.runtime_base import ChunkResult
from snapflow.deploy.safety import SafetyConfig


@RobotConfig.register_subclass("snapflow_test_two_joint")
@dataclass
class TwoJointRobotConfig(RobotConfig):
    """Config of a two-joint position-controlled test robot with one camera."""


class TwoJointRobot(Robot):
    """A minimal, complete LeRobot robot: two joints ("a.pos", "b.pos") that jump to their targets."""

    config_class = TwoJointRobotConfig
    name = "snapflow_test_two_joint"

    def __init__(self, config: TwoJointRobotConfig) -> None:
        super().__init__(config)
        self.connected = False
        self.pos = {"a.pos": 0.0, "b.pos": 0.0}
        self.sent: list[dict] = []

    @property
    def observation_features(self) -> dict:
        return {"a.pos": float, "b.pos": float, "wrist": (4, 6, 3)}

    @property
    def action_features(self) -> dict:
        return {"a.pos": float, "b.pos": float}

    @property
    def is_connected(self) -> bool:
        return self.connected

    def connect(self, calibrate: bool = True) -> None:
        self.connected = True

    @property
    def is_calibrated(self) -> bool:
        return True

    def calibrate(self) -> None:
        pass

    def configure(self) -> None:
        pass

    def get_observation(self) -> dict:
        return {**self.pos, "wrist": np.full((4, 6, 3), 7, np.uint8)}

    def send_action(self, action: dict) -> dict:
        self.sent.append(action)
        self.pos.update(action)
        return action

    def disconnect(self) -> None:
        self.connected = False


def _robot(tmp_path: Path) -> TwoJointRobot:
    return TwoJointRobot(TwoJointRobotConfig(id="test", calibration_dir=tmp_path))


def test_lerobot_adapter_maps_observations_and_actions(tmp_path):
    robot = LeRobotRobot(_robot(tmp_path), task="pick")
    assert isinstance(robot, RobotProtocol) and robot.robot.is_connected and robot.action_dim == 2
    obs = robot.get_observation()
    assert set(obs) == {"observation.state", "observation.images.wrist", "task"}
    assert obs["observation.state"].dtype == np.float32 and obs["task"] == "pick"
    assert obs["observation.images.wrist"].shape == (4, 6, 3)
    robot.send_action(np.array([0.25, -0.5]))
    assert robot.robot.sent == [{"a.pos": 0.25, "b.pos": -0.5}]
    np.testing.assert_array_equal(robot.get_observation()["observation.state"], [0.25, -0.5])
    with pytest.raises(ValueError, match="expected 2"):
        robot.send_action(np.zeros(3))
    robot.close()
    assert not robot.robot.is_connected


def test_lerobot_adapter_from_config_through_make_robot_from_config(tmp_path, monkeypatch):
    # make_robot_from_config finds the robot class next to its config class (LeRobot's plugin rule);
    # expose this test module under a package-like name so that lookup succeeds.
    import sys

    monkeypatch.setitem(sys.modules, "snapflow_test_robot_pkg", sys.modules[__name__])
    monkeypatch.setattr(TwoJointRobotConfig, "__module__", "snapflow_test_robot_pkg.config_two_joint")
    robot = LeRobotRobot.from_config(TwoJointRobotConfig(id="test", calibration_dir=tmp_path), task="t")
    assert isinstance(robot.robot, TwoJointRobot) and robot.robot.is_connected
    robot.close()


class _ConstantRuntime:
    def reset(self) -> None:
        pass

    def predict_chunk(self, observation: dict) -> ChunkResult:
        assert observation["observation.state"].shape == (2,)
        return ChunkResult(np.tile([[2.0, -0.2]], (5, 1)).astype(np.float32), {"model": 10.0})


def test_loop_drives_a_lerobot_robot_within_limits(tmp_path):
    clock = SimulatedClock()
    safety = SafetyConfig([-1.0, -1.0], [1.0, 1.0], [0.3, 0.3], [0.0, 0.0])
    cfg = ControlLoopConfig(safety=safety, hz=30.0, max_ticks=12, inference="inline")
    robot = LeRobotRobot(_robot(tmp_path), task="t")
    report = run_control_loop(_ConstantRuntime(), robot, clock, cfg)
    targets = np.array([[d["a.pos"], d["b.pos"]] for d in robot.robot.sent])
    assert len(targets) == 12 and report.ticks == 12
    assert (np.abs(targets) <= 1.0).all() and (np.abs(np.diff(targets, axis=0)) <= 0.3 + 1e-9).all()
    np.testing.assert_allclose(targets[-1], [1.0, -0.2])  # joint a clamped to its limit


class _ZeroRuntime:
    """Zero actions (no motion) for the 7-D mini-LIBERO action space; remembers the last observation."""

    def __init__(self) -> None:
        self.last_obs: dict | None = None

    def reset(self) -> None:
        pass

    def predict_chunk(self, observation: dict) -> ChunkResult:
        self.last_obs = observation
        return ChunkResult(np.zeros((10, 7), np.float32), {"model": 0.0})


def test_sim_robot_real_clock_smoke():
    """The one real-clock test: the real sim at 20 Hz for 1 s. Loose bounds only (shared CI CPU)."""
    gym = pytest.importorskip("gymnasium")
    pytest.importorskip("snapflow.sim")
    from snapflow.deploy.clock import MonotonicClock
    from snapflow.deploy.robots import MINI_LIBERO_ENV_ID, SimRobot

    if MINI_LIBERO_ENV_ID not in gym.registry:
        pytest.skip(f"{MINI_LIBERO_ENV_ID} is not registered")
    robot = SimRobot(suite="spatial", task_id=0, resolution=64)
    runtime = _ZeroRuntime()
    try:
        cfg = ControlLoopConfig(safety=SafetyConfig.box(7), hz=20.0, seconds=1.0, queue_low_watermark=3)
        report = run_control_loop(runtime, robot, MonotonicClock(), cfg)
    finally:
        robot.close()
    assert report.stop_reason == "seconds" and report.fault is None
    assert 10 <= report.ticks <= 20 and robot.steps == report.ticks  # 20 deadlines in 1 s, minus misses
    assert report.success is False  # zero actions never solve a task
    assert runtime.last_obs is not None and runtime.last_obs["task"] == robot.task != ""
    assert runtime.last_obs["pixels"]["image"].shape == (64, 64, 3)
    assert runtime.last_obs["agent_pos"].shape == (8,)


def test_sim_robot_auto_reset_runs_episode_after_episode() -> None:
    """With auto_reset the sim starts the next frozen init state instead of ignoring actions."""
    from snapflow.deploy.robots import SimRobot
    from snapflow.sim.tasks import MAX_EPISODE_STEPS

    robot = SimRobot(suite="spatial", task_id=0, resolution=32, init_state=0, auto_reset=True)
    try:
        first = robot.get_observation()["agent_pos"].copy()
        for _ in range(MAX_EPISODE_STEPS["spatial"]):
            robot.send_action(np.array([1, 0, 0, 0, 0, 0, -1], np.float32))
        assert robot.episodes == 1 and robot.successes == 0  # pushing forward never succeeds
        # the next episode started at once: its first observation is back at the home pose
        np.testing.assert_allclose(robot.get_observation()["agent_pos"], first, atol=1e-3)
        assert robot.env.unwrapped._next_frozen == 2  # episode 2 plays frozen state 1
        for _ in range(5):
            robot.send_action(np.zeros(7, np.float32))
        assert robot.steps == MAX_EPISODE_STEPS["spatial"] + 5 and not robot.done
    finally:
        robot.close()
