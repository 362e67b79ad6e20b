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
    ok, steps, _ = run_expert(env)
    assert ok, f"expert failed on {suite}/{task_id}"
    assert steps <= env._max_episode_steps


def test_expert_with_noise_on_held_out_seed() -> None:
    import numpy as np

    env = MiniLiberoEnv("object", 5, render=False)
    env.reset(seed=1234)
    ok, _, _ = run_expert(env, noise_std=0.05, rng=np.random.default_rng(0))
    assert ok


def test_noise_is_executed_but_labels_are_clean() -> None:
    """DART: the recorded label is the expert's clean action, the executed one is perturbed."""
    import numpy as np

    env = MiniLiberoEnv("goal", 0, render=False)
    env.reset(options={"init_state": 0})
    executed, labels = [], []
    env_step = env.step

    def step(action):
        executed.append(np.asarray(action).copy())
        return env_step(action)

    env.step = step  # a test-local spy on this env instance, not a change to the env class
    run_expert(
        env, noise_std=0.05, rng=np.random.default_rng(0), on_step=lambda _o, a: labels.append(a.copy())
    )
    executed_arr, labels_arr = np.stack(executed), np.stack(labels)
    assert executed_arr.shape == labels_arr.shape
    # The difference is exactly the noise stream the expert drew (same generator, one (6,) draw per step).
    replay = np.random.default_rng(0)
    noise = np.stack([replay.normal(0.0, 0.05, 6) for _ in range(len(labels_arr))])
    np.testing.assert_allclose(executed_arr[:, :6], np.clip(labels_arr[:, :6] + noise, -1, 1), atol=1e-6)
    assert np.abs(noise).mean() > 0.02  # so the check above is not trivially satisfied
    np.testing.assert_array_equal(executed_arr[:, 6], labels_arr[:, 6])  # the gripper carries no noise


@pytest.mark.slow
@pytest.mark.parametrize("suite", SUITE_NAMES)
def test_expert_sweep_frozen_states(suite: str) -> None:
    from snapflow.sim.bench import expert_success

    for task_id in range(10):
        wins, _ = expert_success(suite, task_id, episodes=50, held_out=False)
        assert wins >= 48, f"{suite}/{task_id}: {wins}/50"
