"""The multimodal probe's suite: two expert strategies that both work, an average of them that fails, the
mode recorded in the dataset and read back from an executed path."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from snapflow.sim.env import MiniLiberoEnv, build_model
from snapflow.sim.experts import ScriptedExpert, run_expert
from snapflow.sim.init_states import N_FROZEN, frozen_init_states, sample_init_state, task_regions
from snapflow.sim.modes import (
    AT_OBJECT,
    BETWEEN,
    DETOUR,
    DETOURS,
    MODE_MIN_OFFSET,
    MODES,
    NOT_REACHED,
    classify_path,
    side_offset,
)
from snapflow.sim.record import MODE_KEY, collect_dataset, parse_suites
from snapflow.sim.scene import BARRIER_HALF
from snapflow.sim.tasks import PROBE_SUITES, SUITES, get_task

TASKS = range(len(SUITES["multimodal"]))
START, GOAL = np.array([0.0, -0.17]), np.array([0.0, 0.17])
# A uniform draw of one of two modes: over 400 experts each share lies in 50 % +- 4 std (2.5 %) unless the
# draw is biased.
DRAWS, SHARE_TOLERANCE = 400, 0.10


def _line(x_side: float) -> np.ndarray:
    """A hand path: at the object, sideways to x_side, along that side, then in over the goal."""
    ys = np.linspace(-0.17, 0.17, 35)
    side = np.stack([np.full_like(ys, x_side), ys], axis=1)
    return np.concatenate([[START], side, [GOAL]])


def test_classify_path_names_each_side_the_middle_and_a_path_that_never_got_there() -> None:
    assert classify_path(_line(-DETOUR), START, GOAL) == "near"
    assert classify_path(_line(+DETOUR), START, GOAL) == "far"
    assert classify_path(_line(0.0), START, GOAL) == BETWEEN  # straight into the barrier
    assert classify_path(_line(MODE_MIN_OFFSET * 0.9), START, GOAL) == BETWEEN
    assert classify_path(np.array([[0.3, 0.0], [0.3, 0.1]]), START, GOAL) == NOT_REACHED  # no object
    hover = np.repeat(START[None], 20, axis=0)  # grasped, then never went anywhere
    assert classify_path(hover, START, GOAL) == BETWEEN
    # the way from home to the object does not count, even when it is off to one side
    detour_before = np.concatenate([[[DETOUR, 0.0]], _line(0.0)])
    assert classify_path(detour_before, START, GOAL) == BETWEEN


def test_side_offsets_and_bad_mode() -> None:
    np.testing.assert_allclose(side_offset(START, GOAL, "far"), [DETOUR, 0.0])
    np.testing.assert_allclose(side_offset(GOAL, START, "near"), [-DETOUR, 0.0])  # either direction
    assert DETOUR - BARRIER_HALF[0] > MODE_MIN_OFFSET > BARRIER_HALF[0]
    with pytest.raises(ValueError, match="mode='left'"):
        side_offset(START, GOAL, "left")


@pytest.mark.parametrize("detour", DETOURS)
@pytest.mark.parametrize("task_id", TASKS)
def test_both_strategies_succeed_and_are_read_back_from_the_path(task_id: int, detour: str) -> None:
    env = MiniLiberoEnv("multimodal", task_id, render=False)
    for mode in MODES:
        env.reset(options={"init_state": 1})
        run = run_expert(env, noise_std=0.05, rng=np.random.default_rng(task_id), mode=mode, detour=detour)
        assert run.success and run.mode == mode
        assert env.episode_mode() == mode and env.episode_touched_obstacle() is False
    env.close()


@pytest.mark.parametrize("task_id", TASKS)
def test_the_average_of_the_two_strategies_fails_between_them(task_id: int) -> None:
    """The mean of two mirror-image detours has no sideways motion: the straight carry hits the barrier's flat
    face and never succeeds."""
    env = MiniLiberoEnv("multimodal", task_id, render=False)
    straight = dataclasses.replace(env.task_spec.plan[0], around=None)
    env.task_spec = dataclasses.replace(env.task_spec, plan=(straight,))  # this env instance only
    env.reset(options={"init_state": 1})
    run = run_expert(env)
    assert not run.success and run.mode is None
    assert env.episode_mode() == BETWEEN
    env.close()


def _mean_of_both_modes(task_id: int, detour: str) -> tuple[bool, str, int, bool]:
    """Execute the mean of the two modes' clean expert actions: (success, path class, the first step at which
    the hand is `INTO_BARRIER` along the carry, whether anything touched the barrier)."""
    env = MiniLiberoEnv("multimodal", task_id, render=False)
    env.reset(options={"init_state": 1})
    experts = [ScriptedExpert(env.model, env.data, env.task_spec.plan, mode=m, detour=detour) for m in MODES]
    eef = env.model.site("eef").id
    start, goal = (env.data.body(name).xpos[:2].copy() for name in env.task_spec.objects[:2])
    carry = (goal - start) / np.linalg.norm(goal - start)
    path, success, grasped, reached = [], False, False, env._max_episode_steps
    for step in range(env._max_episode_steps):
        _, _, success, truncated, _ = env.step(np.mean([e.act() for e in experts], axis=0))
        path.append(env.data.site_xpos[eef][:2].copy())
        grasped = grasped or np.linalg.norm(path[-1] - start) <= AT_OBJECT  # home lies beyond, as in classify
        if grasped and (path[-1] - start) @ carry > INTO_BARRIER:
            reached = min(reached, step)
        if success or truncated:
            break
    touched = env.episode_touched_obstacle()
    env.close()
    return success, classify_path(np.array(path), start, goal), reached, touched


# The barrier's near face is 17 - 1.5 = 15.5 cm from the object along the carry: a hand 10 cm along has
# carried the object (3-4 cm wide) into it. Grasp and lift take the experts 41-44 steps; a mean that heads
# into the barrier at once gets there within one 10-action chunk of that, one that waits first does not.
INTO_BARRIER = 0.10  # m
AT_ONCE, WAITS_BEYOND = 60, 90  # steps


@pytest.mark.parametrize("task_id", TASKS)
def test_the_diagonal_detour_makes_the_mean_of_the_modes_harmful(task_id: int) -> None:
    """With lateral detours the mean of the two modes waits beside the start (its sideways moves cancel);
    with diagonal detours it heads straight into the barrier. Both then fail between the modes."""
    waits, heads = _mean_of_both_modes(task_id, "lateral"), _mean_of_both_modes(task_id, "diagonal")
    assert waits[:2] == heads[:2] == (False, BETWEEN)
    assert heads[2] <= AT_ONCE and waits[2] > WAITS_BEYOND
    assert heads[3] is True and waits[3] is True  # both end up pushing the object into it


def test_the_expert_draws_each_mode_uniformly_and_refuses_an_unknown_one() -> None:
    task = get_task("multimodal", 0)
    env = MiniLiberoEnv("multimodal", 0, render=False)
    drawn = [
        ScriptedExpert(env.model, env.data, task.plan, rng=np.random.default_rng(i)).mode
        for i in range(DRAWS)
    ]
    for mode in MODES:
        assert abs(drawn.count(mode) / DRAWS - 1 / len(MODES)) < SHARE_TOLERANCE
    with pytest.raises(ValueError, match="not an expert mode"):
        ScriptedExpert(env.model, env.data, task.plan, mode="over")
    with pytest.raises(ValueError, match="detour='over' is not an expert detour"):
        ScriptedExpert(env.model, env.data, task.plan, detour="over")
    plain = MiniLiberoEnv("goal", 4, render=False)
    assert ScriptedExpert(plain.model, plain.data, plain.task_spec.plan).mode is None
    assert plain.episode_mode() is None and plain.episode_touched_obstacle() is None
    env.close(), plain.close()


def test_layout_is_fixed_the_frozen_states_match_and_the_probe_stays_out_of_suite_all() -> None:
    assert "multimodal" in PROBE_SUITES and "multimodal" not in parse_suites("all")
    for task_id in TASKS:
        task = get_task("multimodal", task_id)
        model = build_model(task)
        frozen = frozen_init_states("multimodal", task_id)
        assert frozen.shape == (N_FROZEN, model.nq)
        np.testing.assert_allclose(
            frozen[N_FROZEN - 1], sample_init_state(task, model, N_FROZEN - 1), atol=1e-6
        )
        regions = task_regions("multimodal", task_id)
        obj, target = task.plan[0].obj, task.plan[0].target
        mid = (np.array(regions[obj][:2]) + np.array(regions[target][:2])) / 2
        np.testing.assert_allclose(mid, task.obstacle, atol=1e-9)  # the barrier is exactly halfway
        with pytest.raises(ValueError, match="fixed layout"):
            sample_init_state(task, model, 0, layout="wide")


def test_dataset_records_the_mode_of_every_episode(tmp_path: Path) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = collect_dataset("multimodal", 2, tmp_path / "mm", task_ids=[0], resolution=32, progress=False)
    ds = LeRobotDataset("local/mm", root=root)
    cols = ds.hf_dataset.select_columns([MODE_KEY, "episode_index"]).with_format("numpy")
    modes = np.concatenate([np.ravel(m) for m in cols[MODE_KEY]])
    episodes = np.asarray(cols["episode_index"])
    for e in set(episodes.tolist()):
        assert len(set(modes[episodes == e].tolist())) == 1  # one strategy per episode
    assert set(modes.tolist()) <= set(range(len(MODES)))


def test_collect_records_the_detour_and_refuses_one_without_modes(tmp_path: Path) -> None:
    import json

    from snapflow.sim.record import PROVENANCE

    root = collect_dataset(
        "multimodal", 1, tmp_path / "mm", task_ids=[1], resolution=32, detour="diagonal", progress=False
    )
    assert json.loads((root / PROVENANCE).read_text())["detour"] == "diagonal"
    with pytest.raises(ValueError, match="detour=lateral applies to a suite whose tasks have modes"):
        collect_dataset("goal", 1, tmp_path / "never", detour="lateral", progress=False)
    with pytest.raises(ValueError, match="detour='up' is not an expert detour"):
        collect_dataset("multimodal", 1, tmp_path / "never", detour="up", progress=False)
    assert not (tmp_path / "never").exists()
