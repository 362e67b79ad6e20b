"""The `mini_libero` LeRobot env type: config/features contract, create_envs, and a real `lerobot-eval` run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from lerobot.configs import FeatureType
from lerobot.envs.configs import EnvConfig
from lerobot.envs.factory import make_env_config
from lerobot.envs.utils import env_to_policy_features, preprocess_observation

import snapflow.sim.lerobot_env  # noqa: F401  (registers the type)
from snapflow.policies.snapflow.config import ConfigError
from snapflow.sim.lerobot_env import MiniLiberoEnvConfig

RES = 64


def test_registered_under_mini_libero() -> None:
    assert EnvConfig.get_choice_class("mini_libero") is MiniLiberoEnvConfig
    cfg = make_env_config("mini_libero", task="libero_spatial,goal", task_ids=[0, 1], resolution=RES)
    assert cfg.type == "mini_libero" and cfg.fps == 20 and cfg.init_states


def test_features_match_what_the_env_emits() -> None:
    cfg = MiniLiberoEnvConfig(task="goal", task_ids=[2], resolution=RES)
    envs = cfg.create_envs(n_envs=2, use_async_envs=False)
    vec = envs["goal"][2]
    try:
        obs, info = vec.reset(seed=[0, 1])
        assert "is_success" in info
        for key, feature in cfg.features.items():
            if key == "action":
                assert vec.single_action_space.shape == feature.shape
                continue
            value = obs
            for part in key.split("/"):
                value = value[part]
            assert value.shape[1:] == feature.shape, key
        policy_features = env_to_policy_features(cfg)
        batch = preprocess_observation(obs)
        for key, feature in policy_features.items():
            if feature.type is not FeatureType.ACTION:
                assert tuple(batch[key].shape[1:]) == feature.shape, key
        assert set(policy_features) == {
            "action",
            "observation.state",
            "observation.images.image",
            "observation.images.image2",
        }
        assert list(vec.call("task_description")) == ["turn on the stove"] * 2
        assert vec.call("_max_episode_steps")[0] > 0
        obs, *_ = vec.step(np.zeros((2, 7), np.float32))
    finally:
        vec.close()


def test_episode_k_uses_frozen_state_k() -> None:
    from snapflow.sim.init_states import frozen_init_states

    vec = MiniLiberoEnvConfig(task="object", task_ids=[4], resolution=RES).create_envs(2)["object"][4]
    try:
        vec.reset(seed=[0, 0])
        frozen = frozen_init_states("object", 4)
        for k, env in enumerate(vec.envs):
            np.testing.assert_allclose(env.unwrapped.data.qpos[9:11], frozen[k][9:11], atol=3e-3)
    finally:
        vec.close()


def test_next_rollout_uses_the_next_frozen_states() -> None:
    """Autoresets of finished sub-envs must not skip init states: rollout r, sub-env k plays k + r * n."""
    from lerobot.envs.utils import NEW_ROLLOUT_OPTION

    from snapflow.sim.init_states import frozen_init_states

    cfg = MiniLiberoEnvConfig(task="spatial", task_ids=[5], resolution=RES, episode_length=2)
    vec = cfg.create_envs(2)["spatial"][5]
    frozen = frozen_init_states("spatial", 5)
    try:
        vec.reset(seed=[0, 1], options={NEW_ROLLOUT_OPTION: True})
        for _ in range(4):  # truncates at step 2, then the vector env autoresets (replayed, frozen)
            vec.step(np.zeros((2, 7), np.float32))
        vec.reset(seed=[2, 3], options={NEW_ROLLOUT_OPTION: True})
        for k, env in enumerate(vec.envs):
            np.testing.assert_allclose(env.unwrapped.data.qpos[9:11], frozen[2 + k][9:11], atol=3e-3)
    finally:
        vec.close()


def test_bad_task_names() -> None:
    """Refused when the config is built (ConfigError: draccus would hide a ValueError's message)."""
    with pytest.raises(ConfigError, match="unknown suite"):
        MiniLiberoEnvConfig(task="spatial,kitchen")
    with pytest.raises(ConfigError, match=r"task_ids \[10\] out of range for suite 'goal'"):
        MiniLiberoEnvConfig(task="goal", task_ids=[10])
    with pytest.raises(ConfigError, match=r"--env.task_ids=\[\] selects no task"):
        MiniLiberoEnvConfig(task="spatial", task_ids=[])
    with pytest.raises(ConfigError, match="names no suite"):
        MiniLiberoEnvConfig(task=" , ")
    for bad in (0, -3):  # 0 was taken as unset, -3 failed mid-rollout
        with pytest.raises(
            ConfigError, match=rf"--env.episode_length={bad}: an episode cap is a whole number"
        ):
            MiniLiberoEnvConfig(task="spatial", episode_length=bad)
    assert MiniLiberoEnvConfig(task="spatial", episode_length=5).episode_length == 5


def test_lerobot_eval_names_empty_task_ids_at_parse_time(tmp_path: Path) -> None:
    """`--env.task_ids=[]` evaluated 0 episodes, logged NaN and ended in a FileNotFoundError; now LeRobot's
    parser stops on it with our message (a ValueError would read "Couldn't instantiate class ...")."""
    exe = Path(sys.executable).with_name("lerobot-eval")
    cmd = [str(exe), f"--policy.path={tmp_path / 'nonexistent'}", "--env.type=mini_libero", "--env.task=spatial",
           "--env.task_ids=[]", "--eval.n_episodes=1", f"--output_dir={tmp_path / 'eval'}"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MUJOCO_GL": "egl"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "--env.task_ids=[] selects no task" in output, output[-2000:]
    assert "Traceback" not in output and not (tmp_path / "eval").exists()


def _tiny_act_checkpoint(path: Path) -> None:
    """A randomly initialised, tiny ACT policy with our features, saved with its processors."""
    import torch
    from lerobot.configs import PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    image = PolicyFeature(type=FeatureType.VISUAL, shape=(3, RES, RES))
    cfg = ACTConfig(
        input_features={
            "observation.state": PolicyFeature(type=FeatureType.STATE, shape=(8,)),
            "observation.images.image": image,
            "observation.images.image2": image,
        },
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(7,))},
        chunk_size=5,
        n_action_steps=5,
        dim_model=32,
        n_heads=2,
        dim_feedforward=64,
        n_encoder_layers=1,
        n_decoder_layers=1,
        use_vae=False,
        pretrained_backbone_weights=None,
        device="cpu",
    )
    policy = ACTPolicy(cfg)
    stats = {
        "observation.state": {"mean": torch.zeros(8), "std": torch.ones(8)},
        "action": {"mean": torch.zeros(7), "std": torch.ones(7)},
    }
    for key in ("observation.images.image", "observation.images.image2"):
        stats[key] = {"mean": torch.zeros(3, 1, 1), "std": torch.ones(3, 1, 1)}
    pre, post = make_pre_post_processors(cfg, dataset_stats=stats)
    policy.save_pretrained(path)
    pre.save_pretrained(path)
    post.save_pretrained(path)


def test_lerobot_eval_cli_writes_eval_info(tmp_path: Path) -> None:
    ckpt, out = tmp_path / "act", tmp_path / "eval"
    _tiny_act_checkpoint(ckpt)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MUJOCO_GL": "egl"}
    exe = Path(sys.executable).with_name("lerobot-eval")
    cmd = [
        str(exe),
        f"--policy.path={ckpt}",
        "--env.type=mini_libero",
        "--env.task=spatial",
        "--env.task_ids=[0]",
        f"--env.resolution={RES}",
        "--env.episode_length=10",
        "--eval.n_episodes=1",
        "--eval.batch_size=1",
        "--policy.device=cpu",
        f"--output_dir={out}",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    info = json.loads((out / "eval_info.json").read_text())
    assert "per_task" in info or "overall" in info, info.keys()
    assert info["overall"]["n_episodes"] == 1


def test_layout_reaches_the_lerobot_env_config() -> None:
    """`--env.layout=wide` builds envs that replay the wide probe's frozen states; bad values are named."""
    from snapflow.sim.init_states import frozen_init_states

    vec = MiniLiberoEnvConfig(task="object", task_ids=[4], resolution=RES, layout="wide").create_envs(1)[
        "object"
    ][4]
    try:
        vec.reset(seed=[0])
        env = vec.envs[0].unwrapped
        assert env.layout == "wide"
        np.testing.assert_allclose(
            env.data.qpos[9:11], frozen_init_states("object", 4, "wide")[0][9:11], atol=3e-3
        )
    finally:
        vec.close()
    assert MiniLiberoEnvConfig(task="goal").layout == "libero"
    with pytest.raises(ConfigError, match="layout='narrow'"):
        MiniLiberoEnvConfig(task="goal", layout="narrow")
