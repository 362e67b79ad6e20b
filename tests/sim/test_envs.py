"""gymnasium contract of mini-LIBERO: registration, check_env, determinism, observations, bad input."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import snapflow.sim
from snapflow.sim.env import MiniLiberoEnv
from snapflow.sim.init_states import N_FROZEN, frozen_init_states, sample_init_state
from snapflow.sim.tasks import MAX_EPISODE_STEPS, SUITE_NAMES, SUITES, get_task

RES = 64  # CI resolution
ALL_TASKS = [(s, t) for s in SUITE_NAMES for t in range(10)]


def test_import_is_cheap_and_registers_the_id() -> None:
    code = (
        "import sys, snapflow.sim, gymnasium as gym; assert 'mujoco' not in sys.modules; "
        "assert 'snapflow/MiniLibero-v0' in gym.registry"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert snapflow.sim.ENV_ID in gym.registry


def test_suites_have_ten_tasks_with_instructions() -> None:
    for suite in SUITE_NAMES:
        tasks = SUITES[suite]
        assert [t.task_id for t in tasks] == list(range(10))
        assert len({t.instruction for t in tasks}) == 10, f"{suite} instructions must be distinct"
        assert suite in MAX_EPISODE_STEPS


@pytest.mark.parametrize("suite", SUITE_NAMES)
def test_check_env_rendered(suite: str) -> None:
    env = gym.make("snapflow/MiniLibero-v0", suite=suite, task_id=3, resolution=RES)
    try:
        check_env(env.unwrapped, skip_render_check=True)
        obs, info = env.reset(seed=0)
        assert obs["pixels"]["image"].shape == (RES, RES, 3) and obs["pixels"]["image"].dtype == np.uint8
        assert obs["pixels"]["image2"].shape == (RES, RES, 3)
        assert obs["agent_pos"].shape == (8,) and obs["agent_pos"].dtype == np.float32
        assert info["is_success"] is False
        assert env.unwrapped.task_description == env.unwrapped.task == get_task(suite, 3).instruction
        assert env.unwrapped._max_episode_steps == MAX_EPISODE_STEPS[suite]
        assert obs["pixels"]["image"].std() > 5, "agentview should not be blank"
    finally:
        env.close()


@pytest.mark.parametrize(("suite", "task_id"), ALL_TASKS, ids=[f"{s}-{t}" for s, t in ALL_TASKS])
def test_check_env_every_task_physics_only(suite: str, task_id: int) -> None:
    env = MiniLiberoEnv(suite, task_id, render=False)
    check_env(env, skip_render_check=True)
    _, _, _, _, info = env.step(env.action_space.sample())
    assert "is_success" in info
    env.close()


def test_seeded_reset_and_steps_are_deterministic() -> None:
    def rollout() -> list[np.ndarray]:
        env = MiniLiberoEnv("goal", 6, resolution=RES)
        obs, _ = env.reset(seed=7)
        out = [obs["agent_pos"], obs["pixels"]["image"]]
        for a in np.random.default_rng(0).uniform(-1, 1, (5, 7)).astype(np.float32):
            obs, *_ = env.step(a)
            out += [obs["agent_pos"], obs["pixels"]["image2"]]
        env.close()
        return out

    for a, b in zip(rollout(), rollout(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_different_seeds_give_different_layouts() -> None:
    env = MiniLiberoEnv("object", 0, render=False)
    env.reset(seed=1)
    q1 = env.data.qpos.copy()
    env.reset(seed=2)
    assert not np.allclose(q1, env.data.qpos)


@pytest.mark.parametrize("layout", ["libero", "wide"])
@pytest.mark.parametrize("suite", SUITE_NAMES)
def test_frozen_init_states_match_the_generator(suite: str, layout: str) -> None:
    from snapflow.sim.env import build_model

    for task_id in (0, 9):
        task = get_task(suite, task_id)
        frozen = frozen_init_states(suite, task_id, layout)
        model = build_model(task)
        assert frozen.shape == (N_FROZEN, model.nq) and frozen.dtype == np.float32
        for i in (0, N_FROZEN - 1):
            expected = sample_init_state(task, model, i, layout).astype(np.float32)
            np.testing.assert_allclose(frozen[i], expected, atol=1e-6)


def test_layout_reaches_the_env_and_bad_layouts_are_named() -> None:
    libero = MiniLiberoEnv("object", 3, render=False)
    wide = MiniLiberoEnv("object", 3, render=False, layout="wide")
    libero.reset(options={"init_state": 4})
    wide.reset(options={"init_state": 4})
    np.testing.assert_allclose(libero.data.qpos[9:12], frozen_init_states("object", 3)[4][9:12], atol=2e-3)
    np.testing.assert_allclose(
        wide.data.qpos[9:12], frozen_init_states("object", 3, "wide")[4][9:12], atol=2e-3
    )
    assert not np.allclose(libero.data.qpos[9:12], wide.data.qpos[9:12], atol=0.02)
    with pytest.raises(ValueError, match=r"layout='narrow' .* valid: \['libero', 'wide'\]"):
        MiniLiberoEnv("object", 3, render=False, layout="narrow")


def test_init_state_index_and_stride() -> None:
    env = MiniLiberoEnv("spatial", 1, render=False, init_state=2, init_state_stride=3)
    env.reset()
    np.testing.assert_allclose(env.data.qpos[9:12], frozen_init_states("spatial", 1)[2][9:12], atol=2e-3)
    env.reset()  # now state 5
    np.testing.assert_allclose(env.data.qpos[9:12], frozen_init_states("spatial", 1)[5][9:12], atol=2e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"suite": "kitchen"}, "unknown suite 'kitchen'; valid"),
        ({"suite": "spatial", "task_id": 10}, r"unknown task_id 10 .* valid: 0..9"),
        ({"suite": "goal", "task_id": -1}, "valid: 0..9"),
        ({"resolution": 4}, "resolution"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MiniLiberoEnv(render=False, **kwargs)


def test_libero_aliases() -> None:
    assert MiniLiberoEnv("libero_10", 0, render=False).suite == "long"


@pytest.mark.parametrize(
    ("action", "match"),
    [
        (np.zeros(6), r"shape \(7,\)"),
        (np.zeros((1, 7)), r"shape \(7,\)"),
        (np.array([0, 0, np.nan, 0, 0, 0, 1.0]), "finite"),
        (np.array([0, 0, 0, np.inf, 0, 0, 1.0]), "finite"),
    ],
)
def test_bad_actions_raise_clear_errors(action: np.ndarray, match: str) -> None:
    env = MiniLiberoEnv("spatial", 0, render=False)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_truncates_at_max_episode_steps_and_render_returns_agentview() -> None:
    env = MiniLiberoEnv("spatial", 0, resolution=RES, max_episode_steps=3)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(env.render(), obs["pixels"]["image"])
    truncs = [env.step(np.zeros(7, np.float32))[3] for _ in range(3)]
    assert truncs == [False, False, True]
    env.close()


def test_camera_rendering_can_be_skipped_between_planned_frames() -> None:
    env = MiniLiberoEnv("goal", 0, resolution=RES)
    env.reset(options={"init_state": 0})
    env.set_render_cameras(False)
    obs, *_ = env.step(np.zeros(7, np.float32))
    assert "pixels" not in obs and obs["agent_pos"].shape == (8,)
    env.set_render_cameras(True)
    obs, *_ = env.step(np.zeros(7, np.float32))
    assert obs["pixels"]["image"].shape == (RES, RES, 3)
    env.close()
    with pytest.raises(ValueError, match="render=False"):
        MiniLiberoEnv("goal", 0, render=False).set_render_cameras(True)
