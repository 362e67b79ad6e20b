"""The action envelope comes from the robot, and the loop never leaves it on an arm that is not mini-LIBERO.

The arm is a real `lerobot.robots.Robot` subclass with a fake motor bus (the hardware part): 6 joints in
LeRobot's range_m100_100 mode, a gripper in range_0_100, one joint in degrees from a calibrated range, a
`max_relative_target` and position tracking with lag. It stands at +40 on every joint, far from 0.
Every fault of `deploy/faults.py` runs through the real control loop; every command is checked.
"""

from dataclasses import dataclass

import numpy as np
import pytest
from lerobot.motors.motors_bus import Motor, MotorCalibration, MotorNormMode
from lerobot.robots import RobotConfig

from snapflow.deploy.clock import SimulatedClock
from snapflow.deploy.control_loop import ControlLoopConfig, run_control_loop
from snapflow.deploy.envelope import ABSOLUTE, DELTA, ActionEnvelope, EnvelopeError, resolve_envelope
from snapflow.deploy.faults import FAULTS, FaultInjectingRuntime
from snapflow.deploy.robots import LeRobotRobot, SimRobot
from snapflow.deploy.runtime_base import ChunkResult
from snapflow.deploy.safety import SafetyConfig
from tests.deploy.test_robots import TwoJointRobot

JOINTS = ("j1", "j2", "j3", "j4", "j5", "j6")
MAX_REL = 2.5  # robot units per tick: the arm's max_relative_target
START = 40.0  # every joint's measured position at start (robot units)
RESOLUTION = 4096  # STS3215 ticks per turn
DEG_RANGE = (1024, 3072)  # calibrated raw range of the degrees joint -> [-90, 90] degrees
CHECK_ATOL = 1e-9  # commands are float64 sums; only rounding is tolerated


class FakeBus:
    """The hardware side: motors, calibration and present positions (what LeRobot's bus reads)."""

    def __init__(self) -> None:
        self.model_resolution_table = {"sts3215": RESOLUTION}
        self.motors = {j: Motor(i, "sts3215", MotorNormMode.RANGE_M100_100) for i, j in enumerate(JOINTS, 1)}
        self.motors["wrist_deg"] = Motor(7, "sts3215", MotorNormMode.DEGREES)
        self.motors["gripper"] = Motor(8, "sts3215", MotorNormMode.RANGE_0_100)
        self.calibration = {m: MotorCalibration(i, 0, 0, *DEG_RANGE) for i, m in enumerate(self.motors, 1)}
        self.position = dict.fromkeys(self.motors, START)

    def sync_read(self, register: str) -> dict[str, float]:
        assert register == "Present_Position"
        return dict(self.position)


@RobotConfig.register_subclass("snapflow_test_far_arm")
@dataclass
class FarArmConfig(RobotConfig):
    max_relative_target: float | None = MAX_REL


class FarArm(TwoJointRobot):  # connect / calibrate / disconnect of the test robot; its own joints and bus
    """A position-controlled arm that moves at most 1.5 units per tick toward its target (tracking lag)."""

    config_class = FarArmConfig
    name = "snapflow_test_far_arm"

    def __init__(self, config: FarArmConfig) -> None:
        super().__init__(config)
        self.config, self.bus, self.connected = config, FakeBus(), False  # as real robots keep it

    @property
    def observation_features(self) -> dict:
        return {**{f"{m}.pos": float for m in self.bus.motors}, "wrist": (4, 6, 3)}

    @property
    def action_features(self) -> dict:
        return {f"{m}.pos": float for m in self.bus.motors}

    def get_observation(self) -> dict:
        return {
            **{f"{m}.pos": v for m, v in self.bus.position.items()},
            "wrist": np.zeros((4, 6, 3), np.uint8),
        }

    def send_action(self, action: dict) -> dict:
        for name, target in action.items():
            m = name.removesuffix(".pos")
            pos = self.bus.position[m]
            self.bus.position[m] = pos + float(np.clip(target - pos, -1.5, 1.5))
        return action


class CheckedArm(LeRobotRobot):
    """The adapter, checking every command against the envelope and the measured state at send time."""

    def __init__(self, robot: FarArm, envelope: ActionEnvelope) -> None:
        super().__init__(robot)
        self.env = envelope
        self.sent: list[np.ndarray] = []
        self.worst_jump = 0.0

    def send_action(self, action: np.ndarray) -> None:
        a = np.asarray(action, dtype=np.float64)
        measured = self.measured_action()
        assert np.isfinite(a).all(), f"non-finite command {a}"
        assert (a >= np.array(self.env.low) - CHECK_ATOL).all() and (
            a <= np.array(self.env.high) + CHECK_ATOL
        ).all(), a
        jump = np.abs(a - measured)
        self.worst_jump = max(self.worst_jump, float(jump.max()))
        assert (jump <= np.array(self.env.max_delta) + CHECK_ATOL).all(), f"jump {jump} from {measured}"
        self.sent.append(a)
        super().send_action(a)


class PolicyAtZero:
    """A policy trained on [-1, 1] actions: proposes 0.25 on every joint (the repro's first command),
    then 5 units lower per chunk, so the arm is still moving when a fault strikes."""

    def __init__(self) -> None:
        self.calls = 0

    def predict_chunk(self, observation: dict) -> ChunkResult:
        self.calls += 1
        return ChunkResult(np.full((10, 8), 0.25 - 5.0 * (self.calls - 1), np.float32), {"model": 10.0})

    def reset(self) -> None:
        pass


def _arm(tmp_path) -> FarArm:
    return FarArm(FarArmConfig(id="far", calibration_dir=tmp_path))


def test_envelope_comes_from_the_calibrated_bus_and_max_relative_target(tmp_path):
    env = LeRobotRobot(_arm(tmp_path)).envelope()
    assert env.names[0] == "j1.pos" and env.kinds == (ABSOLUTE,) * 8
    assert env.low[:6] == (-100.0,) * 6 and env.high[:6] == (100.0,) * 6
    np.testing.assert_allclose([env.low[6], env.high[6]], [-90.0 * 4096 / 4095, 90.0 * 4096 / 4095])
    assert (env.low[7], env.high[7]) == (0.0, 100.0) and env.max_delta == (MAX_REL,) * 8


def test_no_limits_no_start(tmp_path):
    bare = ActionEnvelope(("a.pos", "b.vel"), (None, None), (None, None), (ABSOLUTE, DELTA), (None, None))
    with pytest.raises(EnvelopeError, match=r"'a\.pos' has no known limits: pass action_low"):
        resolve_envelope(bare)
    with pytest.raises(EnvelopeError, match=r"'a\.pos' has no rate limit: pass max_delta"):
        resolve_envelope(bare, action_low=-5, action_high=5)
    with pytest.raises(EnvelopeError, match="action_low has 3 values"):
        resolve_envelope(bare, action_low=[1, 2, 3], action_high=5, max_delta=1)
    ok = resolve_envelope(bare, action_low=[-5, -1], action_high=[5, 1], max_delta=0.5)
    assert ok.low == (-5.0, -1.0) and ok.max_delta == (0.5, 0.5)
    robot_env = LeRobotRobot(_arm(tmp_path)).envelope()
    narrowed = resolve_envelope(robot_env, action_low=-500, action_high=30)  # never widened
    assert narrowed.low[0] == -100.0 and narrowed.high[0] == 30.0


def test_sim_envelope_is_deltas_and_an_absolute_gripper():
    robot = SimRobot("goal", 0, resolution=32)
    try:
        env = robot.envelope()
    finally:
        robot.close()
    assert env.kinds == (DELTA,) * 6 + (ABSOLUTE,) and env.low == (-1.0,) * 7 and env.high == (1.0,) * 7


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_matrix_on_a_far_arm_never_leaves_the_envelope(tmp_path, fault):
    arm = _arm(tmp_path)
    env = resolve_envelope(LeRobotRobot(arm).envelope())
    robot = CheckedArm(arm, env)
    runtime = FaultInjectingRuntime(PolicyAtZero(), fault, good_chunks=2, sleep=False, late_ms=180.0)
    cfg = ControlLoopConfig(
        safety=SafetyConfig.from_envelope(env, stale_after_s=0.2, hold_ticks=2),
        hz=20.0,
        max_ticks=80,
        inference="inline",
        queue_low_watermark=2,
        stop_on_fault=False,
    )
    report = run_control_loop(runtime, robot, SimulatedClock(), cfg)
    assert report.ticks == 80 and len(robot.sent) == 80
    first = robot.sent[0]
    np.testing.assert_allclose(first, START - MAX_REL)  # moves toward 0.25 by one rate limit, not 40 units
    assert robot.worst_jump <= MAX_REL + CHECK_ATOL
    if fault in ("nan", "crash", "stall"):  # the watchdog stops the arm where it is: no further motion
        tail = np.array(robot.sent[-10:])
        np.testing.assert_allclose(tail, np.broadcast_to(tail[0], tail.shape), atol=1e-6)


def test_arm_outside_its_envelope_is_refused_before_any_command(tmp_path):
    arm = _arm(tmp_path)
    env = resolve_envelope(LeRobotRobot(arm).envelope(), action_high=[10.0] * 8)  # the arm stands at 40
    robot = CheckedArm(arm, env)
    cfg = ControlLoopConfig(safety=SafetyConfig.from_envelope(env), hz=20.0, max_ticks=5, inference="inline")
    report = run_control_loop(PolicyAtZero(), robot, SimulatedClock(), cfg)
    assert (
        robot.sent == [] and report.stop_reason == "fault" and "outside its action envelope" in report.fault
    )


def test_delta_dims_hold_without_motion():
    cfg = SafetyConfig([-1.0] * 2, [1.0] * 2, [1.0] * 2, None, 0.2, 1, ["delta", "absolute"])
    from snapflow.deploy.safety import SafetyFilter

    f = SafetyFilter(cfg)
    f.step(np.array([0.6, 0.8]), stale=False)
    held = f.step(None, stale=False)
    np.testing.assert_array_equal(held.command, [0.0, 0.8])  # no repeated step; the gripper keeps its grip
