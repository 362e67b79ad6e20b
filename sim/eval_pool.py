"""Closed-loop evaluation of several samplers over several suites on all cores: one job per (sampler, suite,
task), run by a pool of worker processes that each keep the policies they loaded.

Every job is `evaluate_suite(..., task_ids=[task])` with the same seeds it would get in a single process
(the noise seed depends on the task and the episode, not on the worker), so the result does not depend on
`workers`. Each worker runs torch and llvmpipe on one thread: on a 2-core machine two workers use both
cores without oversubscribing them (`threads`, default 1, also applies to a single process). Latency figures from inside a pool are contended; `snapflow-eval`
measures its batch-1 latency benchmark afterwards in the parent, on an idle machine.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

from tqdm import tqdm

from snapflow.sim.chunking import Chunking
from snapflow.sim.evaluate import (
    EpisodeResult,
    LoadedPolicy,
    RolloutResult,
    SamplerSpec,
    evaluate_suite,
    load_policy,
)
from snapflow.sim.layouts import check_layout
from snapflow.sim.tasks import SUITES, canonical_suite

_CACHE: dict[tuple, LoadedPolicy] = {}  # per process: (spec, n_action_steps, device) -> loaded policy


@dataclass(frozen=True)
class EvalSettings:
    """What every job shares (see `evaluate_suite` for the meaning of each field)."""

    episodes: int
    held_out: bool = False
    resolution: int = 128
    batch_size: int = 10
    max_steps: int | None = None
    seed: int = 0
    layout: str = "libero"
    n_action_steps: int = 10
    device: str = "cpu"
    threads: int = 1  # torch intra-op threads per process (more than the free cores collapses torch's pool)
    chunking: Chunking | None = None  # a chunk-scheduling scheme with a simulated delay (sim/chunking.py)


def cached_policy(spec: SamplerSpec, settings: EvalSettings) -> LoadedPolicy:
    """The sampler's policy, loaded once per process."""
    key = (spec, settings.n_action_steps, settings.device)
    if key not in _CACHE:
        _CACHE[key] = load_policy(spec, settings.n_action_steps, device=settings.device)
    return _CACHE[key]


def _set_threads(threads: int) -> None:
    import torch

    os.environ.setdefault("LP_NUM_THREADS", "1")  # llvmpipe's render threads (read when a context is made)
    torch.set_num_threads(threads)


def _job(spec: SamplerSpec, suite: str, task_id: int, settings: EvalSettings) -> tuple:
    lp = cached_policy(spec, settings)
    result = evaluate_suite(
        lp, suite, settings.episodes, task_ids=[task_id], held_out=settings.held_out,
        resolution=settings.resolution, batch_size=settings.batch_size, max_steps=settings.max_steps,
        seed=settings.seed, progress=False, layout=settings.layout, chunking=settings.chunking,
    )  # fmt: skip
    return spec.name, suite, task_id, result


def _jobs(
    specs: dict[str, SamplerSpec], suites: list[str], task_ids: list[int] | None, settings: EvalSettings
) -> list[tuple]:
    jobs = []
    for suite in suites:
        ids = list(range(len(SUITES[suite]))) if task_ids is None else [int(t) for t in task_ids]
        jobs += [(spec, suite, t, settings) for t in ids for spec in specs.values()]  # interleaved per task
    return jobs


def _results(jobs: list[tuple], workers: int) -> Iterator[tuple]:
    threads = jobs[0][-1].threads
    if workers <= 1:
        _set_threads(threads)
        yield from (_job(*job) for job in jobs)
        return
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_set_threads, initargs=(threads,)) as pool:
        futures = [pool.submit(_job, *job) for job in jobs]
        for future in futures:  # in submission order: deterministic aggregation, steady progress
            yield future.result()


def evaluate_many(
    specs: dict[str, SamplerSpec],
    suites: list[str],
    settings: EvalSettings,
    task_ids: list[int] | None = None,
    workers: int = 1,
    progress: bool = True,
) -> dict[str, dict[str, RolloutResult]]:
    """{suite: {sampler: RolloutResult}} for every sampler on every suite (episodes in task order).

    Raises ValueError for an unknown suite, a bad task id or an impossible episode count (before any
    worker starts).
    """
    suites = [canonical_suite(s) for s in suites]
    check_layout(settings.layout)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    jobs = _jobs(specs, suites, task_ids, settings)
    for suite in suites:
        bad = sorted({t for _, s, t, _ in jobs if s == suite and not 0 <= t < len(SUITES[s])})
        if bad:
            raise ValueError(
                f"task_ids {bad} out of range for suite {suite!r} (valid: 0..{len(SUITES[suite]) - 1})"
            )
    out: dict[str, dict[str, RolloutResult]] = {s: {n: RolloutResult() for n in specs} for s in suites}
    total = len(jobs) * settings.episodes
    kind = "held-out seeds" if settings.held_out else "frozen states"
    with tqdm(total=total, desc=f"eval {kind} ({settings.layout})", unit="ep", disable=not progress) as bar:
        for name, suite, _task, result in _results(jobs, workers):
            target = out[suite][name]
            target.episodes += result.episodes
            target.latencies_ms += result.latencies_ms
            bar.update(len(result.episodes))
            done = [e.success for r in out[suite].values() for e in r.episodes]
            bar.set_postfix(suite=suite, success=f"{sum(done) / max(1, len(done)):.2f}")
    for per_suite in out.values():
        for r in per_suite.values():
            r.episodes.sort(key=lambda e: (e.task_id, e.episode))
    return out


def evaluate_chunking(
    spec: SamplerSpec,
    suite: str,
    settings: EvalSettings,
    grid: list[Chunking],
    task_ids: list[int] | None = None,
    workers: int = 1,
    progress: bool = True,
) -> dict[Chunking, RolloutResult]:
    """{chunking: RolloutResult} of one sampler on one suite for every scheme/delay of ``grid`` (the same
    episodes and noise seeds for every point). ValueError for a point the policy's chunk cannot serve."""
    suite = canonical_suite(suite)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    jobs = []
    for chunking in grid:
        jobs += _jobs({spec.name: spec}, [suite], task_ids, replace(settings, chunking=chunking))
    out = {c: RolloutResult() for c in grid}
    by_settings = {replace(settings, chunking=c): c for c in grid}
    with tqdm(
        total=len(jobs) * settings.episodes, desc="chunking sweep", unit="ep", disable=not progress
    ) as bar:
        for (_spec, _suite, _task, job_settings), (_, _, _, result) in zip(
            jobs, _results(jobs, workers), strict=True
        ):
            target = out[by_settings[job_settings]]
            target.episodes += result.episodes
            target.latencies_ms += result.latencies_ms
            bar.update(len(result.episodes))
    for r in out.values():
        r.episodes.sort(key=lambda e: (e.task_id, e.episode))
    return out


__all__ = ["EpisodeResult", "EvalSettings", "cached_policy", "evaluate_chunking", "evaluate_many"]
