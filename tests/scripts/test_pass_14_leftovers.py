"""What newcomer pass 14 left open (issue 15), each named before any work now: a damaged dataset file (a
LeRobot DatasetGenerationError traceback inside lerobot-train), a Hub model offline (a connection error inside
lerobot-train), snapflow-distill's out= under a file (named as its `<out>.dataset` view), dtype= on a bench
checkpoint (ignored), and a note put into a results sub-folder (replaced by overwrite=true)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from snapflow.scripts.dataset_checks import read_dataset_info
from snapflow.scripts.hub_cache import hub_ids
from snapflow.scripts.outputs import RESULTS_MARK, atomic_out, check_out

BIN = Path(sys.executable).parent
STATE = {"dtype": "float32", "shape": [8], "names": None}


def _cli(command: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / command), *args], capture_output=True, text=True, timeout=180, env=env)


def _dataset(root: Path) -> Path:
    """Metadata as snapflow-collect writes it (real parquet files) and one frames file."""
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    info = {"fps": 20, "features": {"observation.state": STATE, "action": {**STATE, "shape": [7]}}}
    (root / "meta" / "info.json").write_text(json.dumps(info))
    (root / "meta" / "stats.json").write_text("{}")
    pq.write_table(pa.table({"task_index": [0]}), root / "meta" / "tasks.parquet")
    pq.write_table(
        pa.table({"episode_index": [0]}), root / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    )
    (root / "data" / "chunk-000").mkdir(parents=True)
    pq.write_table(
        pa.table({"frame_index": list(range(100))}), root / "data" / "chunk-000" / "file-000.parquet"
    )
    return root


def test_a_truncated_dataset_file_is_named_before_any_work(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "ds")
    read_dataset_info(data)  # the intact copy reads
    frames = data / "data" / "chunk-000" / "file-000.parquet"
    frames.write_bytes(frames.read_bytes()[: frames.stat().st_size // 2])  # a copy cut short
    before = sorted(tmp_path.rglob("*"))
    for command, args in (
        ("snapflow-train", ["policy=smolvla", "tiny=true"]),
        ("snapflow-distill", ["teacher=embedded"]),
    ):
        proc = _cli(command, *args, f"dataset={data}", f"out={tmp_path / 'run'}", "steps=2")
        assert proc.returncode == 2 and "data/chunk-000/file-000.parquet cannot be read" in proc.stderr, (
            proc.stderr[-2000:]
        )
        assert "Traceback" not in proc.stderr
    assert sorted(tmp_path.rglob("*")) == before  # no tiny assets, no dataset view, no run folder
    video = data / "videos" / "observation.images.image" / "chunk-000" / "file-000.mp4"
    video.parent.mkdir(parents=True)
    video.write_bytes(b"\0\0\0\x18ftypmp42")  # a header and nothing after it
    frames.unlink()
    pq.write_table(pa.table({"frame_index": [0]}), frames)
    with pytest.raises(
        ValueError, match=r"videos/observation.images.image/chunk-000/file-000.mp4 cannot be read"
    ):
        read_dataset_info(data)


def test_a_hub_model_missing_offline_is_named_before_lerobot_train(tmp_path: Path) -> None:
    """Offline with an empty Hugging Face cache: the VLM (SmolVLA) or tokenizer (PI0 / PI05) is named."""
    data = _dataset(tmp_path / "ds")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    for policy, repo in (
        ("smolvla", "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"),
        ("pi05", "google/paligemma"),
    ):
        proc = _cli("snapflow-train", f"policy={policy}", f"dataset={data}", f"out={tmp_path / 't'}", env=env)
        assert proc.returncode == 2 and repo in proc.stderr and "HF_HUB_OFFLINE" in proc.stderr, proc.stderr
        assert "tiny=true" in proc.stderr and not (tmp_path / "t").exists()
    proc = _cli("snapflow-train", "pretrained=lerobot/smolvla_base", f"dataset={data}", f"out={tmp_path / 't'}",
                env=env)  # fmt: skip
    assert proc.returncode == 2 and "['lerobot/smolvla_base']" in proc.stderr, proc.stderr
    # a local VLM / tokenizer folder needs nothing from the Hub; an upstream PI0 asks for PaliGemma's tokenizer
    assert hub_ids({"type": "smolvla_snapflow", "vlm_model_name": str(tmp_path)}) == []
    assert hub_ids({"type": "pi0"}) == ["google/paligemma-3b-pt-224"]
    assert hub_ids({"type": "pi05_snapflow", "tokenizer_name": str(tmp_path)}) == []


def test_distill_names_out_not_its_dataset_view(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "ds")
    (tmp_path / "notes.txt").write_text("mine")
    proc = _cli(
        "snapflow-distill", "teacher=embedded", f"dataset={data}", f"out={tmp_path / 'notes.txt' / 'run'}"
    )
    assert proc.returncode == 2 and "lies under" in proc.stderr and "which is a file" in proc.stderr
    assert ".dataset" not in proc.stderr, proc.stderr


def test_bench_refuses_dtype_on_a_checkpoint(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"type": "pi0_snapflow", "dtype": "float32"}))
    proc = _cli("snapflow-bench", f"policy={ckpt}", "dtype=bfloat16", f"out={tmp_path / 'b'}")
    assert proc.returncode == 2 and "timed in the dtype it was saved with (float32" in proc.stderr, (
        proc.stderr
    )


def test_a_note_in_a_results_sub_folder_stops_overwrite(tmp_path: Path) -> None:
    with atomic_out(tmp_path / "res", overwrite=False) as partial:
        (partial / "eval").mkdir()
        (partial / "eval" / "report.json").write_text("{}")
    assert (tmp_path / "res" / RESULTS_MARK).read_text().splitlines()[1:] == ["eval/report.json"]
    (tmp_path / "res" / "eval" / "my_notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"holds \['eval/my_notes.txt'\], which the command"):
        check_out(tmp_path / "res", overwrite=True)
    (tmp_path / "res" / "eval" / "my_notes.txt").unlink()
    assert check_out(tmp_path / "res", overwrite=True)  # only what the command wrote: replaceable


def test_every_missing_required_key_is_named_with_what_it_takes() -> None:
    """A required key left at ??? pointed at "the config's comment", which --help does not show (pass 13)."""
    proc = _cli("snapflow-distill", "teacher=embedded")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "dataset= is required: LeRobotDataset root" in proc.stderr and "out= is required: " in proc.stderr
    proc = _cli("snapflow-bench")
    assert proc.returncode == 2 and "policy= is required: smolvla | pi0 | pi05" in proc.stderr, proc.stderr


def test_eval_names_its_loop_values_before_loading_a_policy(tmp_path: Path) -> None:
    """batch_size / n_action_steps / resolution were named by the rollout code, after loading (pass 13)."""
    base = ["teacher=embedded", "suites=[goal]", "episodes=1", f"out={tmp_path / 'e'}"]
    for args, named in (
        (["batch_size=0"], "batch_size must be >= 1, got 0"),
        (["n_action_steps=0"], "n_action_steps must be >= 1, got 0"),
        (["n_action_steps=11"], "n_action_steps=11 must be in [1, chunk_size=10] of sampler 'teacher_10'"),
        (["resolution=8"], "resolution must be an int in [16, 512], got 8"),
    ):
        proc = _cli("snapflow-eval", *base, *args)
        assert proc.returncode == 2 and named in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "e").exists()
