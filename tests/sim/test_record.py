"""`collect_dataset` / `snapflow-collect` write a LeRobotDataset v3 that LeRobot reads with action chunks."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from snapflow.sim.record import collect_dataset

FPS = 20


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "spatial_tiny"
    return collect_dataset("spatial", 2, out, task_ids=[3], resolution=64, progress=False)


def test_lerobot_loads_it_with_action_chunks(dataset_root: Path) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ds = LeRobotDataset(
        "local/mini_libero_spatial",
        root=dataset_root,
        delta_timestamps={"action": [i / FPS for i in range(10)]},
    )
    assert ds.num_episodes == 2 and ds.fps == FPS
    item = ds[0]
    assert item["action"].shape == (10, 7) and item["action_is_pad"].shape == (10,)
    assert item["observation.state"].shape == (8,)
    assert item["observation.images.image"].shape == (3, 64, 64)
    assert item["observation.images.image2"].shape == (3, 64, 64)
    assert item["task"] == "pick up the red cube closest to the robot and place it on the plate"
    last = ds[len(ds) - 1]
    assert bool(last["action_is_pad"][1:].all()), "chunk past the episode end is padded"
    assert torch.all(item["action"].abs() <= 1)


def test_stats_include_quantiles(dataset_root: Path) -> None:
    stats = json.loads((dataset_root / "meta" / "stats.json").read_text())
    for key in ("action", "observation.state"):
        assert {"mean", "std", "q01", "q99"} <= set(stats[key]), stats[key].keys()
        assert np.array(stats[key]["q99"]).shape == (8 if "state" in key else 7,)


def test_refuses_to_overwrite_and_leaves_no_partial(dataset_root: Path) -> None:
    with pytest.raises(FileExistsError, match="overwrite"):
        collect_dataset("spatial", 1, dataset_root, task_ids=[3], resolution=64, progress=False)
    assert not dataset_root.with_name(dataset_root.name + ".partial").exists()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown suite"):
        collect_dataset("kitchen", 1, "/tmp/never", progress=False)
    with pytest.raises(ValueError, match="task_ids"):
        collect_dataset("goal", 1, "/tmp/never", task_ids=[12], progress=False)


def test_cli_writes_into_out_only(tmp_path: Path) -> None:
    exe = Path(__import__("sys").executable).with_name("snapflow-collect")
    out = tmp_path / "cli_ds"
    proc = subprocess.run(
        [str(exe), "suite=goal", "episodes_per_task=2", f"out={out}", "task_ids=[2]", "resolution=32",
         "noise_std=0.02"],
        check=True, cwd=tmp_path, timeout=120, capture_output=True, text=True,
    )  # fmt: skip
    assert "Map:" not in proc.stdout + proc.stderr  # the datasets library's per-episode bar stays muted
    assert "demos" in proc.stderr  # ours shows
    assert (out / "meta" / "info.json").exists()
    provenance = json.loads(
        (out / "meta" / "collect.json").read_text()
    )  # the settings, recorded with the data
    assert (
        provenance["noise_std"] == 0.02 and provenance["suites"] == ["goal"] and provenance["task_ids"] == [2]
    )
    assert provenance["resolution"] == 32 and provenance["layout"] == "libero" and provenance["seed"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli_ds"], (
        "no hydra outputs/ or .partial left behind"
    )


def test_layout_and_multi_suite_reach_the_demos(tmp_path: Path) -> None:
    """Demos are drawn from the asked layout; one dataset can hold several suites."""
    from snapflow.sim.record import parse_suites, record_demo

    libero = record_demo("object", 2, 0, 32, seed=0, noise_std=0.0, layout="libero")
    wide = record_demo("object", 2, 0, 32, seed=0, noise_std=0.0, layout="wide")
    assert not np.array_equal(libero["observation.images.image"][0], wide["observation.images.image"][0])
    assert parse_suites("all") == ["spatial", "object", "goal", "long"]
    assert parse_suites("libero_goal,spatial") == ["goal", "spatial"]
    with pytest.raises(ValueError, match="layout='narrow'"):
        collect_dataset("goal", 1, tmp_path / "never", layout="narrow", progress=False)
    out = collect_dataset("spatial,goal", 1, tmp_path / "two", task_ids=[0], resolution=32, progress=False)
    tasks = (out / "meta" / "tasks.parquet").is_file() or (out / "meta" / "tasks.jsonl").is_file()
    assert tasks
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ds = LeRobotDataset("local/two", root=out)
    assert ds.num_episodes == 2 and len(ds.meta.tasks) == 2


def test_paired_modes_show_both_strategies_on_one_layout(tmp_path: Path) -> None:
    """paired_modes: episodes 0 and 1 of a multimodal task start from the same layout and take the two modes;
    episode 2 has a new layout. Refused where it cannot hold (no modes, an odd episode count)."""
    from snapflow.sim.modes import MODES
    from snapflow.sim.record import MODE_KEY, record_demo

    demos = [record_demo("multimodal", 0, e, 32, seed=0, noise_std=0.0, paired_modes=True) for e in range(3)]
    first = [d["observation.state"][0] for d in demos]
    assert np.array_equal(demos[0]["observation.images.image"][0], demos[1]["observation.images.image"][0])
    assert np.array_equal(first[0], first[1])
    assert not np.array_equal(
        demos[0]["observation.images.image"][0], demos[2]["observation.images.image"][0]
    )
    assert [MODES[int(d[MODE_KEY][0, 0])] for d in demos] == [MODES[0], MODES[1], MODES[0]]
    with pytest.raises(ValueError, match="paired_modes=true needs a suite whose tasks have modes"):
        collect_dataset("goal", 2, tmp_path / "never", paired_modes=True, progress=False)
    with pytest.raises(ValueError, match="episodes_per_task must be even"):
        collect_dataset("multimodal", 3, tmp_path / "never", paired_modes=True, progress=False)
    assert not (tmp_path / "never").exists()
