"""The 74-D object-state observation: layout, consistency with MuJoCo, and the state-length contract."""

import numpy as np
import pytest

from snapflow.sim.env import MiniLiberoEnv
from snapflow.sim.lerobot_env import MiniLiberoEnvConfig
from snapflow.sim.object_state import (
    FIXTURE_JOINTS,
    OBJECT_SLOTS,
    OBJECT_STATE_DIM,
    PROPRIO_DIM,
    SLOT_SIZE,
    object_state_for_dim,
    policy_uses_object_state,
    state_dim,
)
from snapflow.sim.record import dataset_features
from snapflow.sim.tasks import get_task

RES = 32  # images are not under test here


@pytest.mark.parametrize(("suite", "task_id"), [("object", 3), ("goal", 8), ("spatial", 0)])
def test_layout_matches_mujoco(suite: str, task_id: int) -> None:
    plain = MiniLiberoEnv(suite, task_id, resolution=RES, render=False)
    env = MiniLiberoEnv(suite, task_id, resolution=RES, render=False, object_state=True)
    try:
        base, _ = plain.reset(options={"init_state": 4})
        obs, _ = env.reset(options={"init_state": 4})
        state = obs["agent_pos"]
        assert state.shape == (OBJECT_STATE_DIM,) and state.dtype == np.float32
        assert env.observation_space["agent_pos"].contains(state)
        np.testing.assert_array_equal(state[:PROPRIO_DIM], base["agent_pos"])  # same proprio as without it
        slots = state[PROPRIO_DIM : PROPRIO_DIM + SLOT_SIZE * len(OBJECT_SLOTS)].reshape(
            len(OBJECT_SLOTS), SLOT_SIZE
        )
        eef = state[:3]
        present = set(get_task(suite, task_id).objects)
        for name, slot in zip(OBJECT_SLOTS, slots, strict=True):
            if name in present:
                assert slot[0] == 1.0
                np.testing.assert_allclose(slot[1:], env.data.body(name).xpos - eef, atol=1e-6)
            else:
                assert not slot.any(), f"{name} is absent from {suite}/{task_id}: its slot must be zeros"
        names = {env.model.joint(j).name for j in range(env.model.njnt)}
        for value, joint in zip(state[-len(FIXTURE_JOINTS) :], FIXTURE_JOINTS, strict=True):
            expected = env.data.joint(joint).qpos[0] if joint in names else 0.0
            np.testing.assert_allclose(value, expected, atol=1e-6)
        # the relative positions follow the gripper: move it and the slots change by minus the eef motion
        for _ in range(5):
            obs, *_ = env.step(np.array([1, 0, 0, 0, 0, 0, -1], np.float32))
        moved = obs["agent_pos"]
        k = OBJECT_SLOTS.index(next(iter(sorted(present))))
        base_at = PROPRIO_DIM + SLOT_SIZE * k + 1
        np.testing.assert_allclose(
            moved[base_at : base_at + 3] - state[base_at : base_at + 3], -(moved[:3] - state[:3]), atol=2e-3
        )  # objects at rest, 2 mm settling
    finally:
        plain.close()
        env.close()


def test_state_length_contract() -> None:
    assert state_dim(False) == PROPRIO_DIM == 8 and state_dim(True) == OBJECT_STATE_DIM == 74
    assert object_state_for_dim(8) is False and object_state_for_dim(74) is True
    with pytest.raises(ValueError, match="not a mini-LIBERO state"):
        object_state_for_dim(10)


def test_policy_dirs_declare_it_in_config_json(tmp_path) -> None:
    import json

    def policy(name: str, features: dict):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"input_features": features}))
        return tmp_path / name

    assert policy_uses_object_state(policy("objects", {"observation.state": {"shape": [74]}})) is True
    assert policy_uses_object_state(policy("proprio", {"observation.state": {"shape": [8]}})) is False
    with pytest.raises(ValueError, match=r"no observation\.state"):
        policy_uses_object_state(policy("stateless", {"observation.images.image": {"shape": [3, 64, 64]}}))
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        policy_uses_object_state(tmp_path / "missing")


def test_dataset_and_lerobot_env_features_follow_it() -> None:
    assert dataset_features(64, False, object_state=True)["observation.state"]["shape"] == (74,)
    assert dataset_features(64, False)["observation.state"]["shape"] == (8,)
    cfg = MiniLiberoEnvConfig(task="object", object_state=True)
    assert cfg.features["agent_pos"].shape == (74,)
    assert cfg.gym_kwargs["object_state"] is True
    envs = cfg.create_envs(n_envs=1)
    try:
        obs, _ = envs["object"][0].reset(seed=0)
        assert obs["agent_pos"].shape == (1, 74)
    finally:
        for vec in envs["object"].values():
            vec.close()
