"""Scripted experts solve a sample of tasks from every suite (the full sweep is `bench experts`)."""

import pytest

from snapflow.sim.env import MiniLiberoEnv
from snapflow.sim.experts import run_expert
from snapflow.sim.tasks import SUITE_NAMES

# One pick-and-place per suite plus every articulated primitive (drawer open/close, switch on/off).
SAMPLE = [
    ("spatial", 0),
    ("spatial", 7),
    ("object", 2),
    ("goal", 0),
    ("goal", 1),
    ("goal", 3),
    ("goal", 8),
    ("long", 9),
]


@pytest.mark.parametrize(("suite", "task_id"), SAMPLE, ids=[f"{s}-{t}" for s, t in SAMPLE])
def test_expert_solves_frozen_state_0(suite: str, task_id: int) -> None:
    env = MiniLiberoEnv(suite, task_id, render=False)
    env.reset(options={"init_state": 0})
    ok, steps = run_expert(env)
    assert ok, f"expert failed on {suite}/{task_id}"
    assert steps <= env._max_episode_steps


def test_expert_with_noise_on_held_out_seed() -> None:
    import numpy as np

    env = MiniLiberoEnv("object", 5, render=False)
    env.reset(seed=1234)
    ok, _ = run_expert(env, noise_std=0.05, rng=np.random.default_rng(0))
    assert ok


@pytest.mark.slow
@pytest.mark.parametrize("suite", SUITE_NAMES)
def test_expert_sweep_frozen_states(suite: str) -> None:
    from snapflow.sim.bench import expert_success

    for task_id in range(10):
        wins, _ = expert_success(suite, task_id, episodes=50, held_out=False)
        assert wins >= 48, f"{suite}/{task_id}: {wins}/50"
