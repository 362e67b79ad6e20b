"""LeRobot env type `mini_libero`: `lerobot-eval --env.type=mini_libero --env.task=spatial[,goal...]`.

Imported by the repo-root plugin module `lerobot_policy_snapflow` (LeRobot imports it automatically), so
this module must stay cheap: it only defines the config; MuJoCo models are built inside `create_envs`'
factories (inside the worker processes for async envs). Mirrors LeRobot's `LiberoEnv` config: a comma
list of suites, optional `task_ids`, one vector env per task with `n_envs` sub-envs, sub-env k playing
frozen init states k, k + n_envs, ... (LeRobot's LIBERO episode indexing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import gymnasium as gym
from lerobot.configs import FeatureType, PolicyFeature
from lerobot.envs.configs import EnvConfig
from lerobot.envs.utils import _LazyAsyncVectorEnv, freeze_after_episode_end
from lerobot.utils.constants import ACTION, OBS_IMAGES, OBS_STATE

from snapflow.policies.snapflow.config import ConfigError
from snapflow.sim.layouts import DEFAULT_LAYOUT, check_layout
from snapflow.sim.object_state import state_dim
from snapflow.sim.tasks import SUITES, canonical_suite

IMAGE_KEYS = ("image", "image2")  # agentview, wrist: LeRobot's LIBERO camera names


def _make_env(
    suite: str,
    task_id: int,
    resolution: int,
    init_state: int | None,
    stride: int,
    episode_length: int | None,
    object_state: bool = False,
    layout: str = DEFAULT_LAYOUT,
) -> gym.Env:
    from snapflow.sim.env import MiniLiberoEnv  # deferred: builds MuJoCo state

    return MiniLiberoEnv(
        suite,
        task_id,
        resolution=resolution,
        init_state=init_state,
        init_state_stride=stride,
        max_episode_steps=episode_length,
        object_state=object_state,
        layout=layout,
    )


@EnvConfig.register_subclass("mini_libero")
@dataclass
class MiniLiberoEnvConfig(EnvConfig):
    """mini-LIBERO for LeRobot's eval loop.

    Attributes:
        task: comma list of suites (spatial, object, goal, long; libero_* aliases accepted).
        task_ids: restrict every listed suite to these task ids (default: all ten).
        resolution: square image size (px) of both cameras.
        episode_length: override the per-suite max steps (`tasks.MAX_EPISODE_STEPS`).
        init_states: True = episode i starts from frozen init state i; False = layout from the reset seed.
        object_state: the 74-D state with object positions (`snapflow.sim.object_state`), for policies
            trained on such data: `--env.object_state=true`.
        layout: "libero" (per-task 2 cm regions, the default) or "wide" (whole-table probe):
            `--env.layout=wide` (`snapflow.sim.init_states`).
    """

    task: str = "spatial"
    task_ids: list[int] | None = None
    fps: int = 20
    resolution: int = 128
    episode_length: int | None = None
    init_states: bool = True
    object_state: bool = False
    layout: str = DEFAULT_LAYOUT
    features: dict[str, PolicyFeature] = field(default_factory=dict)
    features_map: dict[str, str] = field(
        default_factory=lambda: {
            ACTION: ACTION,
            "agent_pos": OBS_STATE,
            **{f"pixels/{key}": f"{OBS_IMAGES}.{key}" for key in IMAGE_KEYS},
        }
    )

    def __post_init__(self) -> None:
        """Bad values as ConfigError naming the ``--env.`` key: draccus (LeRobot's CLI parser) turns a
        ValueError raised here into "Couldn't instantiate class MiniLiberoEnvConfig" as the last line."""
        if self.fps != 20:
            raise ConfigError(f"mini_libero runs at 20 Hz (LIBERO's control rate); got --env.fps={self.fps}")
        try:  # validate early, with the list of valid names
            suites = [canonical_suite(suite) for suite in self.suites]
        except ValueError as e:
            raise ConfigError(f"--env.task={self.task}: {e}") from None
        if not suites:
            raise ConfigError(f"--env.task={self.task!r} names no suite: give spatial, object, goal or long")
        try:
            check_layout(self.layout)
        except ValueError as e:
            raise ConfigError(f"--env.layout: {e}") from None
        if self.task_ids is not None:  # [] evaluated 0 episodes, logged NaN, then failed on a missing file
            if not self.task_ids:
                raise ConfigError(
                    "--env.task_ids=[] selects no task: list task ids, or leave it unset for all"
                )
            for suite in suites:
                bad = [i for i in self.task_ids if not 0 <= int(i) < len(SUITES[suite])]
                if bad:
                    raise ConfigError(
                        f"--env.task_ids {bad} out of range for suite {suite!r}; valid: 0..{len(SUITES[suite]) - 1}"
                    )
        if self.episode_length is not None and (
            isinstance(self.episode_length, bool)
            or not isinstance(self.episode_length, int)
            or self.episode_length < 1
        ):  # 0 was taken as unset (150 steps), a negative value ended in an empty-stack error mid-rollout
            raise ConfigError(
                f"--env.episode_length={self.episode_length}: an episode cap is a whole number of steps >= 1 "
                "(leave it unset for the suite's own limit)"
            )
        side = self.resolution
        self.features = {
            ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(7,)),
            "agent_pos": PolicyFeature(type=FeatureType.STATE, shape=(state_dim(self.object_state),)),
            **{
                f"pixels/{key}": PolicyFeature(type=FeatureType.VISUAL, shape=(side, side, 3))
                for key in IMAGE_KEYS
            },
        }

    @property
    def suites(self) -> list[str]:
        return [s.strip() for s in str(self.task).split(",") if s.strip()]

    @property
    def gym_kwargs(self) -> dict:
        return {"resolution": self.resolution, "object_state": self.object_state, "layout": self.layout}

    def create_envs(
        self, n_envs: int, use_async_envs: bool = False
    ) -> dict[str, dict[int, gym.vector.VectorEnv]]:
        """{suite: {task_id: VectorEnv with n_envs sub-envs}} for the selected suites and tasks."""
        if not isinstance(n_envs, int) or n_envs <= 0:
            raise ValueError(f"n_envs must be a positive int, got {n_envs!r}")
        out: dict[str, dict[int, gym.vector.VectorEnv]] = {}
        for name in self.suites:
            suite = canonical_suite(name)  # results are grouped under the canonical suite name
            ids = list(range(len(SUITES[suite]))) if self.task_ids is None else list(self.task_ids)
            bad = [i for i in ids if not 0 <= int(i) < len(SUITES[suite])]
            if bad:
                raise ValueError(
                    f"task_ids {bad} out of range for suite {suite!r}; valid: 0..{len(SUITES[suite]) - 1}"
                )
            out.setdefault(suite, {})
            for task_id in ids:
                fns = [
                    partial(
                        _make_env,
                        suite,
                        int(task_id),
                        self.resolution,
                        k if self.init_states else None,
                        n_envs,
                        self.episode_length,
                        self.object_state,
                        self.layout,
                    )
                    for k in range(n_envs)
                ]
                if use_async_envs and n_envs > 1:
                    out[suite][int(task_id)] = _LazyAsyncVectorEnv(fns)
                else:  # frozen after the episode ends, as in the async path, so autoresets of finished
                    # sub-envs never advance their init-state index (episode i keeps init state i)
                    out[suite][int(task_id)] = gym.vector.SyncVectorEnv(
                        [freeze_after_episode_end(fn) for fn in fns],
                        autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP,
                    )
        return out
