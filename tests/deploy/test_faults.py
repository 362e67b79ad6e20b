"""Fault injection wrapper used by `snapflow-run fault=...`, driven through the real control loop."""

import numpy as np
import pytest

from snapflow.deploy.clock import SimulatedClock
from snapflow.deploy.control_loop import ControlLoopConfig, run_control_loop
from snapflow.deploy.faults import FaultInjectingRuntime
from snapflow.deploy.runtime_base import ChunkResult
from snapflow.deploy.safety import SafetyConfig

DIM, HZ = 3, 20.0


class ConstantRuntime:
    """A real (if trivial) runtime: a chunk of 0.5 everywhere, 10 ms reported latency."""

    def predict_chunk(self, observation: dict) -> ChunkResult:
        return ChunkResult(np.full((8, DIM), 0.5, np.float32), {"model": 10.0})

    def reset(self) -> None:
        pass


class RecordingRobot:
    action_dim = DIM

    def __init__(self) -> None:
        self.sent: list[np.ndarray] = []

    def get_observation(self) -> dict:
        return {"task": "hold"}

    def send_action(self, action: np.ndarray) -> None:
        assert np.isfinite(action).all() and (np.abs(action) <= 1.0).all(), action
        self.sent.append(np.asarray(action))

    def close(self) -> None:
        pass


def _run(fault: str) -> tuple[object, RecordingRobot]:
    robot = RecordingRobot()
    cfg = ControlLoopConfig(
        safety=SafetyConfig.box(DIM, max_delta=0.25, stale_after_s=0.2, hold_ticks=2),
        hz=HZ,
        max_ticks=60,
        inference="inline",
        stop_on_fault=False,
    )
    report = run_control_loop(
        FaultInjectingRuntime(ConstantRuntime(), fault, good_chunks=2), robot, SimulatedClock(), cfg
    )
    return report, robot


def test_nan_chunks_are_rejected_and_never_sent():
    report, robot = _run("nan")
    assert report.nonfinite_rejected > 0 and report.watchdog_ticks > 0
    assert np.allclose(robot.sent[-1], 0.0)  # ramped to the safe action


def test_overlimit_actions_are_clamped():
    report, robot = _run("overlimit")
    assert report.clamped_ticks > 0 and max(np.abs(a).max() for a in robot.sent) <= 1.0


def test_crash_ends_at_the_safe_action():
    report, robot = _run("crash")
    assert report.fault is not None and np.allclose(robot.sent[-1], 0.0)


def test_unknown_fault_is_refused():
    with pytest.raises(ValueError, match="unknown fault"):
        FaultInjectingRuntime(ConstantRuntime(), "meltdown")
