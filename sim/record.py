"""Scripted demonstrations written as a LeRobotDataset v3 (what `lerobot-train --dataset.root=` reads).

Features match the env's policy-side names: `observation.images.image` (agentview) and
`observation.images.image2` (wrist), uint8 HWC, `observation.state` (8), `action` (7), plus the task's
instruction as `task` on every frame; 20 fps. LeRobot computes the stats (min/max/mean/std/quantiles).
A dataset of a suite whose expert chooses between strategies (the `multimodal` probe) also has `mode`:
int64 (1,), the index in `modes.MODES` of the episode's strategy, the same on every frame of an episode
(LeRobot keeps no custom per-episode columns; policies ignore a key outside observation.* / action).

Demo layouts come from the init-state generator with seeds disjoint from the frozen evaluation states
(0..49) and the held-out seeds (1000+): `DEMO_SEED_BASE + 10_000 * seed + 100 * episode + attempt`.
A failed demo (success predicate false at the end) is dropped and retried with the next attempt seed.
`paired_modes` (suites with a choice of strategy): episodes 2k and 2k+1 of a task share one layout and take
the two modes in turn, so every demonstrated layout shows both strategies and no mode can be read off the
layout; otherwise the expert draws the mode per episode and a network can tie it to layout details.
Writing is atomic: everything goes to `<out>.partial`, renamed to `<out>` only after `finalize()`.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from snapflow.sim.controller import CONTROL_HZ
from snapflow.sim.layouts import DEFAULT_LAYOUT, check_layout
from snapflow.sim.modes import DETOURS, MODES
from snapflow.sim.object_state import state_dim
from snapflow.sim.tasks import SUITE_NAMES, SUITES, canonical_suite, check_task_ids

DEMO_SEED_BASE = 100_000
MODE_KEY = "mode"
NO_MODE = -1  # `mode` of a task without a choice in a dataset that mixes both
# DART noise above which the experts fail often (measured on goal/0, 4 episodes: 3 of 4 succeed at 0.2,
# 0 of 4 at 0.5): a note at collect time, a hint when a demo runs out of attempts
NOISY = 0.2
MAX_NOISE_STD = 0.5
MAX_ATTEMPTS = 20  # retries per demo before giving up (experts succeed >= 95 %, so 20 never runs out)
PROVENANCE = "meta/collect.json"  # the collection settings, beside LeRobot's meta/info.json
DEFAULT_NOISE_STD = 0.05  # normalised action units, executed only (labels are clean); experts still succeed


def dataset_features(resolution: int, video: bool, object_state: bool = False, modes: bool = False) -> dict:
    """LeRobotDataset feature spec for mini-LIBERO demos (state of 8, or 74 with object state; `mode`
    when `modes`)."""
    image = {
        "dtype": "video" if video else "image",
        "shape": (resolution, resolution, 3),
        "names": ["height", "width", "channels"],
    }
    return {
        "observation.images.image": image,
        "observation.images.image2": dict(image),
        "observation.state": {"dtype": "float32", "shape": (state_dim(object_state),), "names": None},
        "action": {"dtype": "float32", "shape": (7,), "names": None},
    } | ({MODE_KEY: {"dtype": "int64", "shape": (1,), "names": None}} if modes else {})


def record_demo(
    suite: str,
    task_id: int,
    episode: int,
    resolution: int,
    seed: int,
    noise_std: float,
    object_state: bool = False,
    layout: str = DEFAULT_LAYOUT,
    paired_modes: bool = False,
    detour: str = DETOURS[0],
) -> dict[str, np.ndarray | str | int]:
    """One successful expert demo as stacked arrays; retries with new layouts until it succeeds.

    With `paired_modes` on a task with a choice, episode `e` uses the layout of episode `e - e % 2` and
    mode `MODES[e % 2]` (module docstring); the action noise stays per episode. `detour` is the expert's way
    to its side on such a task (`modes.DETOURS`)."""
    from snapflow.sim.env import MiniLiberoEnv
    from snapflow.sim.experts import run_expert

    env = MiniLiberoEnv(suite, task_id, resolution=resolution, object_state=object_state, layout=layout)
    paired = paired_modes and bool(env.task_spec.modes)
    layout_episode, chosen = (episode - episode % 2, MODES[episode % 2]) if paired else (episode, None)
    try:
        for attempt in range(MAX_ATTEMPTS):
            frames: list[tuple[dict, np.ndarray]] = []
            obs, _ = env.reset(seed=DEMO_SEED_BASE + 10_000 * seed + 100 * layout_episode + attempt)
            rng = np.random.default_rng([seed, task_id, episode, attempt])
            ok, _, mode = run_expert(
                env,
                noise_std=noise_std,
                rng=rng,
                on_step=frames_append(frames),
                obs=obs,
                mode=chosen,
                detour=detour,
            )
            if ok:
                return {
                    "observation.images.image": np.stack([o["pixels"]["image"] for o, _ in frames]),
                    "observation.images.image2": np.stack([o["pixels"]["image2"] for o, _ in frames]),
                    "observation.state": np.stack([o["agent_pos"] for o, _ in frames]),
                    "action": np.stack([a for _, a in frames]).astype(np.float32),
                    MODE_KEY: np.full((len(frames), 1), MODES.index(mode) if mode else NO_MODE, np.int64),
                    "task": env.task,
                    "attempts": attempt + 1,
                }
    finally:
        env.close()
    hint = f" (noise_std={noise_std} is above {NOISY}: lower it)" if noise_std > NOISY else ""
    raise RuntimeError(f"expert failed {MAX_ATTEMPTS} times on {suite}/{task_id} episode {episode}{hint}")


def frames_append(frames: list) -> object:
    """A callback that records (observation, action) pairs into `frames` (bound now, not at call time)."""
    return lambda o, a: frames.append((o, a))


def _jobs(
    suites: list[str],
    task_ids: list[int] | None,
    episodes: int,
    resolution: int,
    seed: int,
    noise_std: float,
    object_state: bool,
    layout: str,
    paired_modes: bool,
    detour: str,
) -> list[tuple]:
    return [
        (suite, t, e, resolution, seed, noise_std, object_state, layout, paired_modes, detour)
        for suite in suites
        for t in (range(len(SUITES[suite])) if task_ids is None else task_ids)
        for e in range(episodes)
    ]


def parse_suites(suite: str) -> list[str]:
    """`"spatial"`, `"spatial,goal"` or `"all"` -> canonical suite names; ValueError for an unknown one."""
    names = SUITE_NAMES if suite.strip() == "all" else [s for s in suite.split(",") if s.strip()]
    if not names:
        raise ValueError(f"suite must name at least one suite (or 'all'), got {suite!r}")
    return list(dict.fromkeys(canonical_suite(s) for s in names))


def _run(jobs: list[tuple], workers: int) -> Iterator[dict]:
    if workers <= 1:
        yield from (record_demo(*job) for job in jobs)
        return
    os.environ.setdefault("LP_NUM_THREADS", "1")  # one llvmpipe thread per worker on small machines
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("forkserver")) as pool:
        yield from pool.map(record_demo, *zip(*jobs, strict=True))


def collect_dataset(
    suite: str,
    episodes_per_task: int,
    out: str | Path,
    task_ids: list[int] | None = None,
    resolution: int = 128,
    seed: int = 0,
    workers: int = 1,
    video: bool = False,
    noise_std: float = DEFAULT_NOISE_STD,
    overwrite: bool = False,
    progress: bool = True,
    object_state: bool = False,
    layout: str = DEFAULT_LAYOUT,
    paired_modes: bool = False,
    detour: str = DETOURS[0],
) -> Path:
    """Record `episodes_per_task` successful expert demos per task into a LeRobotDataset at `out`.

    `suite` is one suite, a comma list or "all" (one multi-task dataset, as LIBERO's four suites are
    trained together); `task_ids` restricts every listed suite. `object_state` records the 74-D state of
    `object_state.py` instead of the 8-D proprio state; `layout` is "libero" or "wide" (`init_states.py`);
    `paired_modes` shows both strategies on every layout of a task with a choice (module docstring; needs such
    a suite and an even `episodes_per_task`); `detour` is how its expert leaves for a side (`modes.DETOURS`;
    anything but the default needs such a suite). Returns the dataset root, whose `meta/collect.json` records
    these settings (LeRobot's info.json has no place for them; the noise in particular decides how random the
    demonstrated chunks are). Raises FileExistsError if `out` exists and `overwrite` is False, or if a
    `<out>.partial` exists that this package did not make.
    """
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from tqdm import tqdm

    suites = parse_suites(suite)
    check_layout(layout)
    fixed = [s for s in suites if any(task.regions for task in SUITES[s])]
    if fixed and layout != "libero":  # refused here, before a .partial folder exists
        raise ValueError(
            f"the {fixed[0]} suite has a fixed layout; layout={layout!r} is not available (use libero)"
        )
    from snapflow.sim.env import check_resolution

    check_resolution(resolution)
    ids = check_task_ids(task_ids, suites)
    if episodes_per_task < 1:
        raise ValueError(f"episodes_per_task must be >= 1, got {episodes_per_task}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if not (np.isfinite(noise_std) and 0 <= noise_std < MAX_NOISE_STD):
        raise ValueError(
            f"noise_std must be in [0, {MAX_NOISE_STD}) (0 = no DART noise; the experts failed every demo at "
            f"{MAX_NOISE_STD}), got {noise_std}"
        )
    if noise_std > NOISY:
        print(f"note: noise_std={noise_std} is above {NOISY}: the experts fail often there, and each failed demo "
              f"is retried with a new layout (up to {MAX_ATTEMPTS} times)", flush=True)  # fmt: skip
    if workers > (os.cpu_count() or 1):
        print(f"note: workers={workers} on {os.cpu_count()} CPU cores: more processes than cores only adds "
              "memory (each renders its own scenes)", flush=True)  # fmt: skip
    modes = any(task.modes for s in suites for task in SUITES[s])
    if paired_modes and not modes:
        raise ValueError(f"paired_modes=true needs a suite whose tasks have modes (multimodal); got {suites}")
    if detour not in DETOURS:
        raise ValueError(f"detour={detour!r} is not an expert detour; valid: {list(DETOURS)}")
    if detour != DETOURS[0] and not modes:
        raise ValueError(
            f"detour={detour} applies to a suite whose tasks have modes (multimodal); got {suites}"
        )
    if paired_modes and episodes_per_task % 2:
        raise ValueError(
            f"paired_modes=true shows each layout in both modes: episodes_per_task must be even, got "
            f"{episodes_per_task}"
        )
    out = Path(out).expanduser().resolve()
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=true to replace it")
    from snapflow.scripts.outputs import fresh_partial, mark_partial, publish_partial

    # leftovers of an interrupted collection are cleared; a user's own <out>.partial is refused
    partial = fresh_partial(out.with_name(out.name + ".partial"), create=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    if video:  # the AV1 encoder (SVT-AV1) prints ~40 "Svt[info]" lines per video; SVT_LOG=3 shows them again
        os.environ.setdefault("SVT_LOG", "1")
    ds = LeRobotDataset.create(
        repo_id=f"local/mini_libero_{'_'.join(suites)}",
        fps=CONTROL_HZ,
        features=dataset_features(resolution, video, object_state, modes),
        root=partial,
        robot_type="panda",
        use_videos=video,
    )
    mark_partial(partial)
    jobs = _jobs(
        suites,
        ids,
        episodes_per_task,
        resolution,
        seed,
        noise_std,
        object_state,
        layout,
        paired_modes,
        detour,
    )
    bar = tqdm(
        total=len(jobs),
        desc=f"mini-LIBERO {','.join(suites)} demos ({layout})",
        unit="demo",
        disable=not progress,
    )
    dropped = 0  # failed expert demos that were discarded and retried
    keys = list(dataset_features(resolution, video, object_state, modes))
    # LeRobot's save_episode runs a Hugging Face `datasets` Map per episode, whose own progress bar would
    # print one "Map: 100%" line per demo between ours; muted for the collection, restored after.
    from datasets.utils import logging as datasets_logging

    bars_were_on = datasets_logging.is_progress_bar_enabled()
    datasets_logging.disable_progress_bar()
    try:
        for demo in _run(jobs, workers):
            for i in range(len(demo["action"])):
                ds.add_frame({key: demo[key][i] for key in keys} | {"task": demo["task"]})
            ds.save_episode()
            dropped += int(demo["attempts"]) - 1
            bar.set_postfix(dropped=dropped)
            bar.update(1)
        bar.close()
        ds.finalize()
        settings = {"suites": suites, "task_ids": ids, "episodes_per_task": episodes_per_task, "seed": seed,
                    "noise_std": noise_std, "resolution": resolution, "layout": layout,
                    "object_state": object_state, "video": video, "paired_modes": paired_modes,
                    "detour": detour}  # fmt: skip
        (partial / PROVENANCE).write_text(json.dumps(settings, indent=2))
    except BaseException:  # a failed or interrupted collection leaves no half-written dataset behind
        with contextlib.suppress(Exception):  # close LeRobot's buffered metadata writer first: at exit it
            ds.finalize()  # flushed meta/episodes/ back into the removed folder, without our mark (pass 17)
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        if bars_were_on:
            datasets_logging.enable_progress_bar()
    publish_partial(partial, out)
    return out
