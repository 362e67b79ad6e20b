"""Newcomer pass 16 (a fresh clone of 4aa0364, issue 15): what its new cases found, each named now."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from safetensors.numpy import save_file

from snapflow.policies.weights_file import check_stats_files
from snapflow.scripts.dataset_checks import read_dataset_info

BIN = Path(sys.executable).parent
STATE = {"dtype": "float32", "shape": [8], "names": None}


def _cli(command: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / command), *args], capture_output=True, text=True, timeout=180)


def test_nan_normalisation_stats_are_named_as_the_checkpoints(tmp_path: Path) -> None:
    """NaN stats made every observation NaN, refused as "observation.state contains NaN" (the sim's fault)."""
    student = tmp_path / "student"
    student.mkdir()
    config = {"type": "smolvla_snapflow", "snapflow": {"alpha": 0.5}, "vlm_model_name": str(tmp_path)}
    (student / "config.json").write_text(json.dumps(config))
    save_file({"w": np.zeros(4, np.float32)}, str(student / "model.safetensors"))
    stats = student / "policy_preprocessor_step_5_normalizer_processor.safetensors"
    save_file({"observation.state.mean": np.zeros(8, np.float32)}, str(stats))
    check_stats_files(student)  # finite stats pass
    save_file({"observation.state.mean": np.full(8, np.nan, np.float32)}, str(stats))
    with pytest.raises(
        ValueError, match=r"NaN or infinite normalisation stats for \['observation.state.mean'\]"
    ):
        check_stats_files(student)
    proc = _cli(
        "snapflow-eval",
        f"student={student}",
        "samplers=[snapflow_1]",
        "suites=[goal]",
        f"out={tmp_path / 'e'}",
    )
    assert (
        proc.returncode == 2
        and "sampler 'snapflow_1'" in proc.stderr
        and "normalizer_processor" in proc.stderr
    )
    assert "Traceback" not in proc.stderr and not (tmp_path / "e").exists()


def test_a_frames_file_the_episodes_point_at_is_named_when_missing(tmp_path: Path) -> None:
    """A deleted data/ file ended in a Hub "offline mode" traceback inside lerobot-train, the file not named."""
    data = tmp_path / "ds"
    (data / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    info = {
        "fps": 20,
        "features": {"observation.state": STATE, "action": {**STATE, "shape": [7]}},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
    }
    (data / "meta" / "info.json").write_text(json.dumps(info))
    (data / "meta" / "stats.json").write_text("{}")
    pq.write_table(pa.table({"task_index": [0]}), data / "meta" / "tasks.parquet")
    episodes = {"episode_index": [0, 1], "data/chunk_index": [0, 0], "data/file_index": [0, 1]}
    pq.write_table(pa.table(episodes), data / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    (data / "data" / "chunk-000").mkdir(parents=True)
    for index in (0, 1):
        pq.write_table(pa.table({"index": [index]}), data / "data" / "chunk-000" / f"file-00{index}.parquet")
    read_dataset_info(data)  # whole: passes
    (data / "data" / "chunk-000" / "file-001.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"data/chunk-000/file-001.parquet is missing"):
        read_dataset_info(data)
    proc = _cli("snapflow-distill", "teacher=embedded", f"dataset={data}", f"out={tmp_path / 'run'}")
    assert proc.returncode == 2 and "file-001.parquet is missing" in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "run").exists()


def test_a_snapflow_setting_misspelt_in_extra_is_named_before_lerobot_train(tmp_path: Path) -> None:
    """--policy.snapflow.alpah=0.3 ended in LeRobot's 600-line usage 20 s in, the typo not in the last line."""
    proc = _cli("snapflow-distill", "teacher=embedded", f"dataset={tmp_path}", f"out={tmp_path / 'run'}",
                "extra=['--policy.snapflow.alpah=0.3']")  # fmt: skip
    assert (
        proc.returncode == 2
        and "--policy.snapflow.alpah is no SnapFlow setting (did you mean 'alpha'?)" in (proc.stderr)
    ), proc.stderr[-2000:]
    assert "running:" not in proc.stdout


def test_nan_dataset_stats_and_a_huge_latency_count_are_named(tmp_path: Path) -> None:
    """NaN in meta/stats.json ended as "action contains NaN" inside lerobot-train; latency_calls=1e9 ran a
    6000-hour loop after the rollouts."""
    data = tmp_path / "ds"
    (data / "meta" / "episodes").mkdir(parents=True)
    (data / "meta" / "info.json").write_text(
        json.dumps({"fps": 20, "features": {"action": {**STATE, "shape": [7]}}})
    )
    pq.write_table(pa.table({"task_index": [0]}), data / "meta" / "tasks.parquet")
    (data / "meta" / "stats.json").write_text('{"action": {"mean": [0.0, NaN], "std": [1.0, 1.0]}}')
    with pytest.raises(ValueError, match=r"stats.json: action mean holds NaN or infinite numbers"):
        read_dataset_info(data)
    proc = _cli(
        "snapflow-eval", "teacher=embedded", "suites=[goal]", "latency_calls=1e9", f"out={tmp_path / 'e'}"
    )
    assert proc.returncode == 2 and "latency_calls must be in [0, 10000]" in proc.stderr, proc.stderr[-2000:]


def test_the_camera_size_note_does_not_advise_what_eval_refuses(tmp_path: Path, capsys) -> None:
    """The note advised resolution= to evaluate a 128 px student beside its 64 px teacher; eval refuses that."""
    from snapflow.scripts.distill import _say_if_other_camera_size

    teacher = tmp_path / "teacher"
    teacher.mkdir()
    image = {"observation.images.image": {"type": "VISUAL", "shape": [3, 64, 64]}}
    (teacher / "config.json").write_text(json.dumps({"input_features": image}))
    info = {"features": {"observation.images.image": {"shape": [128, 128, 3]}}}
    _say_if_other_camera_size(teacher, info, "demos")
    note = capsys.readouterr().out
    assert "128 px cameras" in note and "collect at 64 px" in note and "resolution=" not in note
