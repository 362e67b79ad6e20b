"""Newcomer pass 18's hand-edited datasets: each reached lerobot-train and failed there without naming the
file (or trained on wrong values); `read_dataset_info` names each now, before any work."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from snapflow.scripts.dataset_checks import read_dataset_info


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real scripted demos (goal/0, 32 px) as a LeRobotDataset v3."""
    from snapflow.sim.record import collect_dataset

    out = tmp_path_factory.mktemp("p18d") / "ds"
    collect_dataset("goal", 2, out, task_ids=[0], resolution=32, progress=False)
    return out


def _copy(demos: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(demos, tmp_path / "ds"))


def _edit_json(path: Path, change) -> None:
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


def _edit_parquet(path: Path, column: str, change) -> None:
    table = pq.read_table(path)
    values = table[column].to_pylist()
    change(values)
    field = table.schema.field(column)
    table = table.set_column(table.schema.get_field_index(column), field, pa.array(values, type=field.type))
    pq.write_table(table, path)


def _frames(ds: Path) -> Path:
    return next(ds.glob("data/**/*.parquet"))


def _episodes(ds: Path) -> Path:
    return next((ds / "meta" / "episodes").glob("**/*.parquet"))


def test_our_codebase_version_is_lerobots() -> None:
    from lerobot.datasets.dataset_metadata import CODEBASE_VERSION

    from snapflow.scripts import dataset_contents

    assert dataset_contents.CODEBASE_VERSION == CODEBASE_VERSION


def test_a_collected_dataset_passes(demos: Path) -> None:
    assert read_dataset_info(demos)["total_episodes"] == 2


def _info(key: str, value: object):
    return lambda ds: _edit_json(ds / "meta" / "info.json", lambda info: info.update({key: value}))


def _stat(feature: str, name: str, value: object):
    return lambda ds: _edit_json(
        ds / "meta" / "stats.json", lambda stats: stats[feature].update({name: value})
    )


def _flat_std(ds: Path) -> None:
    _edit_json(ds / "meta" / "stats.json", lambda stats: stats["action"]["std"].__setitem__(0, 0.0))


def _shuffle(values: list) -> None:
    values[3], values[4] = values[4], values[3]


def _nan_action(values: list) -> None:
    values[5] = [float("nan")] * len(values[5])


def _past_the_end(values: list) -> None:
    values[-1] += 7


CASES = [  # (edit, the words of the error); what LeRobot did before in the comment
    (_info("codebase_version", "v2.1"), r"codebase_version='v2.1'; this LeRobot reads v3.0 .*convert_dataset_v21_to_v30"),  # empty error line
    (_info("chunks_size", 0), r"chunks_size=0; the files per chunk folder, an integer >= 1"),
    (_info("data_path", "data/{episode_chunk:03d}/x.parquet"), r"data_path=.*cannot fill \(KeyError: 'episode_chunk'\).*\{chunk_index\}"),  # our own KeyError
    (_info("total_episodes", 5), r"total_episodes=5, but meta/episodes lists 2"),  # a Hub traceback offline
    (_stat("action", "mean", [0.0] * 6), r"action mean has 6 values, but the feature has 7"),
    (_stat("action", "std", "abc"), r"action std is 'abc', not numbers"),
    (_stat("observation.state", "std", [-1.0] * 8), r"observation.state std is negative"),  # trained silently
    (_flat_std, r"action std is 0 in dimension 0 while its min < max"),  # trained silently
    (lambda ds: _edit_parquet(_frames(ds), "timestamp", lambda v: v.__setitem__(2, float("nan"))), r"timestamp is NaN or infinite in episode 0"),  # trained silently
    (lambda ds: _edit_parquet(_frames(ds), "timestamp", _shuffle), r"timestamps are not increasing in episode 0"),  # blamed on fps
    (lambda ds: _edit_parquet(_frames(ds), "action", _nan_action), r"action holds NaN or infinite values in episode 0, frame 5"),  # row not named
    (lambda ds: _edit_parquet(_frames(ds), "task_index", lambda v: v.__setitem__(0, 3)), r"task_index 3 in episode 0, but meta/tasks.parquet has 1 task"),
    (lambda ds: _edit_parquet(_episodes(ds), "dataset_to_index", _past_the_end), r"gives episode 1 the frames \d+..\d+, but data/ holds \d+ frames"),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "match"), CASES)
def test_a_hand_edited_dataset_is_named(demos: Path, tmp_path: Path, edit, match: str) -> None:
    ds = _copy(demos, tmp_path)
    edit(ds)
    with pytest.raises(ValueError, match=match) as refused:
        read_dataset_info(ds)
    assert f"{ds}" in str(refused.value)  # the dataset (or its file) is named


def test_the_checks_read_every_frames_file_once_per_command(demos: Path, monkeypatch) -> None:
    """A dataset unchanged since a passing check is not read again (a command asks up to three times)."""
    from snapflow.scripts import dataset_contents

    read_dataset_info(demos)
    calls = []
    monkeypatch.setattr(dataset_contents, "check_frames", lambda *a: calls.append(a) or 0)
    read_dataset_info(demos)
    assert calls == []
