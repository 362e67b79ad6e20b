"""Closed-loop rollouts under a chunk-scheduling scheme with a simulated inference delay: the loop that
drives `sim/chunking.py`'s schedules, with the same pipeline and per-episode seeds as `evaluate._run_batch`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from snapflow.sim.chunking import Chunking, DelayedRollout, PlannedChunk, rtc_horizon
from snapflow.sim.evaluate import LoadedPolicy, _reset, plan_chunk


def run_batch_delayed(
    lp: LoadedPolicy,
    envs: list,
    env_pre: object,
    env_post: object,
    inits: list[int],
    held_out: bool,
    latencies_ms: list[float],
    chunking: Chunking,
) -> list[tuple[bool, int]]:
    """As `evaluate._run_batch`, under a chunk-scheduling scheme with a simulated inference delay
    (sim/chunking.py); (success, length) per episode. The rtc scheme needs `rtc_enabled_on` around it."""
    n = len(inits)
    envs = envs[:n]
    for env in envs:
        env.set_render_cameras(True)
    last = _reset(envs, inits, held_out)
    lp.policy.reset()
    roll = DelayedRollout(chunking, lp.config.chunk_size, n, lp.config.action_feature.shape[0])
    done, success, length = np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, int)
    max_steps, task, tick = envs[0]._max_episode_steps, [env.task_description for env in envs], 0

    def infer(**rtc_kwargs: object) -> PlannedChunk:
        norm, raw = plan_chunk(lp, last, task, env_pre, env_post, latencies_ms, **rtc_kwargs)
        return PlannedChunk(tick, raw, norm)

    def step(actions: np.ndarray, render: bool) -> None:
        nonlocal tick
        for i, env in enumerate(envs):
            if done[i]:
                continue
            env.set_render_cameras(render)
            o, _, terminated, truncated, info = env.step(actions[i])
            if render:
                last[i] = o
            if terminated or truncated:
                done[i], success[i], length[i] = True, bool(info["is_success"]), tick + 1
        roll.executed(actions)
        tick += 1

    def running() -> bool:
        return not done.all() and tick < max_steps

    s = chunking.execute_steps
    if chunking.scheme == "sync":
        while running():
            chunk = infer()
            for _ in range(chunking.delay):  # the robot waits for the chunk
                if running():
                    step(roll.hold(), render=False)
            for j in range(s):
                if running():
                    step(chunk.raw[:, j], render=j == s - 1)
    else:
        pending: list[PlannedChunk] = []
        released: list[PlannedChunk] = []
        while running():
            if roll.request_ticks(tick):
                pending.append(infer(**roll.rtc_kwargs(tick, released)))
            while pending and pending[0].tick + chunking.delay <= tick:
                released = [*released[-lp.config.chunk_size :], pending.pop(0)]
            step(roll.action(tick, released), render=roll.request_ticks(tick + 1))
    for env in envs:
        env.set_render_cameras(True)
    length[~done] = tick
    return list(zip(success.tolist(), length.tolist(), strict=True))


@contextmanager
def rtc_enabled_on(lp: LoadedPolicy, chunking: Chunking | None) -> Iterator[None]:
    """For the rtc scheme: the policy's RTC config on for the block, as lerobot-rollout sets it."""
    if chunking is None or chunking.scheme != "rtc":
        yield
        return
    from lerobot.policies.rtc.configuration_rtc import RTCConfig

    if not (callable(getattr(lp.policy, "supports_rtc", None)) and lp.policy.supports_rtc()):
        raise ValueError(f"sampler {lp.spec.name!r}: a {lp.config.type!r} policy does not support RTC")
    lp.policy.config.rtc_config = RTCConfig(execution_horizon=rtc_horizon(chunking, lp.config.chunk_size))
    lp.policy.init_rtc_processor()
    try:
        yield
    finally:
        lp.policy.config.rtc_config = None  # _rtc_enabled() is False again
