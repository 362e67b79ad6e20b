"""Closed-loop rollouts of a LeRobot policy checkpoint in mini-LIBERO, the way `lerobot-eval` runs it.

LeRobot's eval pipeline (lerobot/scripts/lerobot_eval.py): raw obs of B envs stacked ->
`preprocess_observation` -> `task` strings -> env preprocessor -> policy preprocessor (loaded from the
checkpoint) -> the policy -> policy postprocessor -> env postprocessor -> `env.step`. Every episode of a
batch shares the step counter, so a new chunk is computed exactly at steps 0, n, 2n, ... (n =
`n_action_steps`): there the observation goes through the pipeline and `policy.predict_action_chunk`, and
the first n actions are executed one per step. That is what `select_action`'s queue does (SmolVLA, PI0 and
PI05 fill it from the same `predict_action_chunk` computation), without preprocessing the n - 1
observations in between that the queue would ignore. The wall time of those calls is the per-call chunk
latency (ms, at the rollout batch size). Episode i of a task starts from frozen init state i, or, with
``held_out=True``, from the layout generator at seed ``HELDOUT_SEED_START + i`` (disjoint from the 50
frozen states and from the demo seeds).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before anything imports mujoco

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from snapflow.sim.chunking import Chunking
from snapflow.sim.init_states import HELDOUT_SEED_START, N_FROZEN
from snapflow.sim.layouts import DEFAULT_LAYOUT, check_layout
from snapflow.sim.tasks import SUITES, canonical_suite


@dataclass(frozen=True)
class SamplerSpec:
    """One way to sample actions: a checkpoint, a number of function evaluations, a multi-step mode.

    Attributes:
        name: label in the report (e.g. teacher_10, snapflow_1).
        policy: a LeRobot ``pretrained_model`` directory (config.json, model.safetensors, processors).
        nfe: denoising steps per chunk (written into num_steps / num_inference_steps).
        mode: for ``*_snapflow`` students: "target_time" or "euler" (at nfe=1: the jump or naive Euler); None keeps the checkpoint's.
        noise_scale: std of the initial noise x_1 (the sampling temperature): 1.0 is the policy's own sampler;
            0.0 integrates the ODE from the origin, one deterministic chunk per observation (a diagnostic: how
            much of a sampler's failures come from drawing the tails of its learnt distribution).
    """

    name: str
    policy: Path
    nfe: int
    mode: str | None = None
    noise_scale: float = 1.0


@dataclass
class LoadedPolicy:
    """A policy with its checkpoint's processors, configured for one sampler."""

    spec: SamplerSpec
    policy: torch.nn.Module
    preprocessor: object
    postprocessor: object
    config: object


@dataclass(frozen=True)
class EpisodeResult:
    task_id: int
    episode: int
    init: int  # frozen init-state index, or the layout seed when held out
    success: bool
    length: int  # control steps until success or truncation
    mode: str | None = None  # the strategy it executed (`MiniLiberoEnv.episode_mode`), multimodal probe only
    touched_obstacle: bool | None = None  # `MiniLiberoEnv.episode_touched_obstacle`, multimodal probe only


@dataclass
class RolloutResult:
    """Episodes of one suite for one sampler plus the chunk latencies (ms) measured while running them."""

    episodes: list[EpisodeResult] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)


def load_policy(spec: SamplerSpec, n_action_steps: int, device: str = "cpu") -> LoadedPolicy:
    """Load ``spec.policy`` like lerobot-eval does, with the sampler's NFE and the given execution horizon."""
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.factory import get_policy_class
    from lerobot.utils.import_utils import register_third_party_plugins

    from snapflow.policies.lerobot_plugin.processor_check import load_checked_processors
    from snapflow.policies.lerobot_plugin.sampler_config import configure_sampler

    register_third_party_plugins()  # finds lerobot_policy_snapflow (our policy types and env type)
    path = Path(spec.policy)
    export = (path / "contract.json").is_file()  # a snapflow-export directory: runs on ONNX Runtime
    if not (path / "config.json").is_file() or not (export or (path / "model.safetensors").is_file()):
        raise FileNotFoundError(
            f"sampler {spec.name!r}: {path} is not a LeRobot pretrained_model directory "
            "(needs config.json and model.safetensors) or a snapflow-export directory (contract.json)"
        )
    if spec.nfe < 1:
        raise ValueError(f"sampler {spec.name!r}: nfe must be >= 1, got {spec.nfe}")
    if not (math.isfinite(spec.noise_scale) and spec.noise_scale >= 0):
        raise ValueError(
            f"sampler {spec.name!r}: noise_scale must be a finite number >= 0, got {spec.noise_scale}"
        )
    cfg = PreTrainedConfig.from_pretrained(path)
    if not 1 <= n_action_steps <= cfg.chunk_size:
        raise ValueError(
            f"n_action_steps={n_action_steps} must be in [1, chunk_size={cfg.chunk_size}] of {path}"
        )
    cfg.n_action_steps = int(n_action_steps)
    if export:
        _check_export_sampler(spec, path)
    else:
        try:
            configure_sampler(cfg, int(spec.nfe), spec.mode)  # the policy side owns its sampler fields
        except ValueError as e:
            raise ValueError(f"sampler {spec.name!r} ({path}): {e}") from e
        cfg.device = device
    policy = get_policy_class(cfg.type).from_pretrained(path, config=cfg)
    policy.eval()
    pre, post = load_checked_processors(cfg, path, device)
    return LoadedPolicy(spec, policy, pre, post, cfg)


def _check_export_sampler(spec: SamplerSpec, path: Path) -> None:
    """An exported graph has its sampler baked in: the sampler's NFE must be the contract's, and no mode."""
    from snapflow.deploy.contract import load_contract

    contract = load_contract(path, check_graph=False)  # the runtime checks the graph's hashes when it loads
    if spec.nfe != contract.nfe or spec.mode is not None or spec.noise_scale != 1.0:
        raise ValueError(
            f"sampler {spec.name!r}: {path} is an export of the {contract.nfe}-NFE sampler; it cannot run "
            f"nfe={spec.nfe}{f' mode={spec.mode}' if spec.mode else ''}"
            f"{f' noise_scale={spec.noise_scale}' if spec.noise_scale != 1.0 else ''}"
        )


def _sync(policy: torch.nn.Module) -> None:
    """Wait for queued GPU work so wall-clock timings cover it (no-op on CPU)."""
    weights = next(policy.parameters(), None)  # an ONNX Runtime policy (export) has none
    if torch.cuda.is_available() and weights is not None and weights.is_cuda:
        torch.cuda.synchronize()


def _stack(observations: list[dict]) -> dict:
    """Stack per-env raw observations the way a gymnasium VectorEnv does (pixels dict, agent_pos)."""
    return {
        "pixels": {k: np.stack([o["pixels"][k] for o in observations]) for k in observations[0]["pixels"]},
        "agent_pos": np.stack([o["agent_pos"] for o in observations]),
    }


def _reset(envs: list, inits: list[int], held_out: bool) -> list[dict]:
    if held_out:
        return [env.reset(seed=init)[0] for env, init in zip(envs, inits, strict=True)]
    return [env.reset(options={"init_state": init})[0] for env, init in zip(envs, inits, strict=True)]


def plan_chunk(
    lp: LoadedPolicy,
    last: list[dict],
    task: list[str],
    env_pre: object,
    env_post: object,
    latencies_ms: list[float],
    **predict_kwargs: object,
) -> tuple[torch.Tensor, np.ndarray]:
    """One chunk for a batch of raw observations through LeRobot's eval pipeline: (the policy's output
    (n, chunk, A) before the postprocessor, env actions (n, chunk, A)); its wall time goes to latencies_ms.

    Under no_grad, not inference_mode: RTC's guidance (``predict_kwargs``) takes a gradient inside
    (torch.enable_grad), as lerobot-rollout runs it.
    """
    from lerobot.envs.utils import preprocess_observation
    from lerobot.utils.constants import ACTION

    batch = preprocess_observation(_stack(last))
    batch["task"] = list(task)
    batch = lp.preprocessor(env_pre(batch))
    t0 = time.perf_counter()
    with torch.no_grad():
        norm = lp.policy.predict_action_chunk(batch, **predict_kwargs)
    _sync(lp.policy)
    latencies_ms.append((time.perf_counter() - t0) * 1e3)
    raw = env_post({ACTION: lp.postprocessor(norm.clone())})[ACTION].to("cpu").numpy()
    return norm, raw


def initial_noise(lp: LoadedPolicy, n: int) -> dict[str, torch.Tensor]:
    """``{"noise": (n, chunk_size, max_action_dim)}`` scaled by the sampler's noise_scale, or ``{}`` at 1.0
    (the policy draws its own). Every LeRobot flow policy's ``predict_action_chunk`` takes ``noise=``
    (upstream modeling_smolvla.py / modeling_pi0.py / modeling_pi05.py)."""
    if lp.spec.noise_scale == 1.0:
        return {}
    shape = (n, lp.config.chunk_size, lp.config.max_action_dim)
    return {"noise": lp.spec.noise_scale * torch.randn(shape, device=lp.config.device)}


def _run_batch(
    lp: LoadedPolicy,
    envs: list,
    env_pre: object,
    env_post: object,
    inits: list[int],
    held_out: bool,
    latencies_ms: list[float],
) -> list[tuple[bool, int]]:
    """Roll out len(inits) episodes in lockstep; returns (success, length) per episode."""
    n = len(inits)
    envs = envs[:n]
    for env in envs:
        env.set_render_cameras(True)
    last = _reset(envs, inits, held_out)  # per env, its latest observation with camera frames
    lp.policy.reset()
    done, success, length = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, int)
    max_steps = envs[0]._max_episode_steps
    task = [env.task_description for env in envs]
    step = 0
    horizon = lp.config.n_action_steps
    while not done.all() and step < max_steps:
        if step % horizon == 0:  # a new chunk from the current observation (the queue is empty here)
            noise = initial_noise(lp, n)
            chunk = plan_chunk(lp, last, task, env_pre, env_post, latencies_ms, **noise)[1][:, :horizon]
        render_next = (step + 1) % horizon == 0  # only the frames a chunk is planned on are rendered
        for i, env in enumerate(envs):
            if done[i]:
                continue
            env.set_render_cameras(render_next)
            o, _, terminated, truncated, info = env.step(chunk[i, step % horizon])
            if render_next:
                last[i] = o
            if terminated or truncated:
                done[i], success[i], length[i] = True, bool(info["is_success"]), step + 1
        step += 1
    for env in envs:
        env.set_render_cameras(True)
    length[~done] = step
    return list(zip(success.tolist(), length.tolist(), strict=True))


def _warm_up(lp: LoadedPolicy, env: object, env_pre: object, calls: int = 2) -> None:
    """Untimed chunk predictions on a real observation (lazy init, allocator, caches) before measuring."""
    from lerobot.envs.utils import preprocess_observation

    obs, _ = env.reset(options={"init_state": 0})
    batch = preprocess_observation(_stack([obs]))
    batch["task"] = [env.task_description]
    batch = lp.preprocessor(env_pre(batch))
    for _ in range(calls):
        lp.policy.reset()
        with torch.inference_mode():
            lp.policy.predict_action_chunk(batch)
    lp.policy.reset()


# Held-out layouts per task, at most: each episode is seconds of MuJoCo on this CPU, so 10 000 per task is
# already days; a larger count is a typo (episodes=1e9 built a billion seeds before any rollout).
MAX_HELD_OUT_EPISODES = 10_000


def episode_inits(episodes: int, held_out: bool) -> list[int]:
    """Frozen init-state indices 0..episodes-1, or held-out layout seeds HELDOUT_SEED_START + i."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if held_out:
        if episodes > MAX_HELD_OUT_EPISODES:
            raise ValueError(
                f"episodes={episodes} held-out episodes per task is more than {MAX_HELD_OUT_EPISODES}: "
                "days of rollouts per task even at the tiny width (a typo, e.g. 1e9?)"
            )
        return [HELDOUT_SEED_START + i for i in range(episodes)]
    if episodes > N_FROZEN:
        more = (
            f"; use held_out=true for up to {MAX_HELD_OUT_EPISODES}"
            if episodes <= MAX_HELD_OUT_EPISODES
            else ""
        )
        raise ValueError(f"episodes={episodes}: only {N_FROZEN} frozen init states per task{more}")
    return list(range(episodes))


def uses_object_state(config: object) -> bool:
    """Whether a policy config's `observation.state` is the 74-D object state (else the 8-D proprio)."""
    from snapflow.sim.object_state import object_state_for_dim

    feature = config.input_features.get("observation.state")
    if feature is None:
        raise ValueError(f"{config.type} policy has no observation.state input; mini-LIBERO needs one")
    return object_state_for_dim(int(feature.shape[0]))


def evaluate_suite(
    lp: LoadedPolicy,
    suite: str,
    episodes: int,
    task_ids: list[int] | None = None,
    held_out: bool = False,
    resolution: int = 128,
    batch_size: int = 1,
    max_steps: int | None = None,
    seed: int = 0,
    progress: bool = True,
    layout: str = DEFAULT_LAYOUT,
    chunking: Chunking | None = None,
) -> RolloutResult:
    """Closed-loop success, episode length and chunk latency of one sampler on one suite.

    `layout` picks the init states: "libero" (per-task regions) or "wide" (the whole-table probe).
    `chunking` runs the episodes under a chunk-scheduling scheme with a simulated inference delay
    (sim/chunking.py) instead of executing `n_action_steps` per chunk with no delay.
    """
    from lerobot.envs.factory import make_env_pre_post_processors

    from snapflow.sim.env import MiniLiberoEnv
    from snapflow.sim.lerobot_env import MiniLiberoEnvConfig

    suite = canonical_suite(suite)
    ids = list(range(len(SUITES[suite]))) if task_ids is None else [int(i) for i in task_ids]
    bad = [i for i in ids if not 0 <= i < len(SUITES[suite])]
    if bad:
        raise ValueError(f"task_ids {bad} out of range for suite {suite!r} (0..{len(SUITES[suite]) - 1})")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    check_layout(layout)
    if chunking is not None:
        chunking.check(lp.config.chunk_size)
    inits = episode_inits(episodes, held_out)
    env_pre, env_post = make_env_pre_post_processors(
        MiniLiberoEnvConfig(task=suite, resolution=resolution), lp.config
    )
    result = RolloutResult()
    bar = tqdm(
        total=len(ids) * episodes,
        desc=f"{lp.spec.name} {suite}",
        unit="ep",
        disable=not progress,
        leave=False,
    )
    for task_id in ids:
        envs = [
            MiniLiberoEnv(
                suite,
                task_id,
                resolution=resolution,
                max_episode_steps=max_steps,
                object_state=uses_object_state(lp.config),
                layout=layout,
            )
            for _ in range(min(batch_size, episodes))
        ]
        try:
            if task_id == ids[0]:
                _warm_up(lp, envs[0], env_pre)
            for start in range(0, episodes, batch_size):
                chunk = inits[start : start + batch_size]
                torch.manual_seed(seed + 7919 * task_id + start)  # same noise stream for every sampler
                args = (lp, envs, env_pre, env_post, chunk, held_out, result.latencies_ms)
                if chunking is None:
                    outcomes = _run_batch(*args)
                else:
                    from snapflow.sim.delayed_rollout import rtc_enabled_on, run_batch_delayed

                    with rtc_enabled_on(lp, chunking):
                        outcomes = run_batch_delayed(*args, chunking)
                for k, (ok, steps) in enumerate(outcomes):
                    mode = envs[k].episode_mode()  # each env stays as its episode ended until the next reset
                    touched = envs[k].episode_touched_obstacle()
                    result.episodes.append(
                        EpisodeResult(task_id, start + k, chunk[k], ok, steps, mode, touched)
                    )
                bar.update(len(chunk))
                bar.set_postfix(success=f"{np.mean([e.success for e in result.episodes]):.2f}")
        finally:
            for env in envs:
                env.close()
    bar.close()
    return result


def benchmark_latency(
    policies: dict[str, LoadedPolicy], suite: str, resolution: int = 128, calls: int = 20, task_id: int = 0
) -> dict[str, list[float]]:
    """Warm batch-1 `predict_action_chunk` wall times (ms) of every sampler, measured interleaved.

    One real observation (frozen init state 0 of ``task_id``), preprocessed once per sampler; the samplers
    take turns call by call, so a change of load on a shared machine hits all of them alike. Two untimed
    warm-up rounds first.
    """
    from lerobot.envs.factory import make_env_pre_post_processors
    from lerobot.envs.utils import preprocess_observation

    from snapflow.sim.env import MiniLiberoEnv
    from snapflow.sim.lerobot_env import MiniLiberoEnvConfig

    if calls < 1:
        raise ValueError(f"calls must be >= 1, got {calls}")
    modes = {uses_object_state(lp.config) for lp in policies.values()}
    if len(modes) != 1:
        raise ValueError(
            "the samplers disagree on the state (8-D proprio vs 74-D object state); time them apart"
        )
    env = MiniLiberoEnv(canonical_suite(suite), task_id, resolution=resolution, object_state=modes.pop())
    obs, _ = env.reset(options={"init_state": 0})
    batches = {}
    for name, lp in policies.items():
        env_pre, _ = make_env_pre_post_processors(
            MiniLiberoEnvConfig(task=suite, resolution=resolution), lp.config
        )
        raw = preprocess_observation(_stack([obs]))
        raw["task"] = [env.task_description]
        batches[name] = lp.preprocessor(env_pre(raw))
    env.close()
    warmup = 2
    times: dict[str, list[float]] = {name: [] for name in policies}
    for i in tqdm(range(warmup + calls), desc="latency (batch 1, interleaved)", unit="round", leave=False):
        for name, lp in policies.items():
            lp.policy.reset()
            t0 = time.perf_counter()
            with torch.inference_mode():
                lp.policy.predict_action_chunk(batches[name])
            _sync(lp.policy)
            if i >= warmup:
                times[name].append((time.perf_counter() - t0) * 1e3)
    return times
