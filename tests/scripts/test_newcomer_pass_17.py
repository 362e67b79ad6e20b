"""Newcomer pass 17 (a fresh clone of e83194e, issue 15): what its new cases found, each named or kept now."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from omegaconf import OmegaConf

from snapflow.scripts.cli_values import run_cli
from snapflow.scripts.dataset_checks import read_dataset_info
from snapflow.scripts.outputs import PARTIAL_MARK, check_out, mark_results

BIN = Path(sys.executable).parent


def _cli(command: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / command), *args], capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real scripted demo (goal/0, 32 px) as a LeRobotDataset v3."""
    from snapflow.sim.record import collect_dataset

    out = tmp_path_factory.mktemp("p17") / "ds"
    collect_dataset("goal", 1, out, task_ids=[0], resolution=32, progress=False)
    return out


def _copy(demos: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "ds"
    shutil.copytree(demos, copy)
    return copy


def test_overwrite_never_replaces_another_commands_results(tmp_path: Path, monkeypatch) -> None:
    """eval overwrite=true deleted an ONNX export; run overwrite=true a collected dataset (LOST)."""
    monkeypatch.setattr(sys, "argv", [str(BIN / "snapflow-eval")])  # check_out as snapflow-eval runs it
    export = tmp_path / "export"
    export.mkdir()
    (export / "model.onnx").write_bytes(b"graph")
    mark_results(export, "snapflow-export")
    with pytest.raises(
        FileExistsError, match="holds snapflow-export's results: overwrite=true replaces only"
    ):
        check_out(export, True)
    assert (export / "model.onnx").read_bytes() == b"graph"
    proc = _cli("snapflow-run", "policy=embedded", "seconds=1", f"out={export}", "overwrite=true")
    assert proc.returncode == 2 and "holds snapflow-export's results" in proc.stderr, proc.stderr[-2000:]
    assert (export / "model.onnx").is_file()


def test_ctrl_c_ends_in_one_line_with_what_was_kept(capsys) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as stop:
        run_cli(interrupted)
    assert stop.value.code == 130
    assert capsys.readouterr().err.startswith("stopped by Ctrl-C: ")


def test_an_interrupted_collect_leaves_nothing_the_next_run_refuses(tmp_path: Path) -> None:
    """A Ctrl-C in the first demos left <out>.partial/meta/episodes/ without our mark (LeRobot's writer
    flushed it back after the folder was removed), and the rerun blamed the user for it."""
    out = tmp_path / "d"
    partial = tmp_path / "d.partial"
    proc = subprocess.Popen([str(BIN / "snapflow-collect"), "suite=goal", "task_ids=[0,1]", "episodes_per_task=40",
                             "resolution=32", f"out={out}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_default_sigint)  # fmt: skip
    deadline = time.time() + 120
    while not (partial / "meta" / "info.json").is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    time.sleep(2.0)  # a few demos saved (about 3 a second): LeRobot's buffered writers hold episodes
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "stopped by Ctrl-C" in err.decode(), err.decode()[-2000:]
    assert "Traceback" not in err.decode()
    assert not partial.exists() or (partial / PARTIAL_MARK).is_file()


def _default_sigint() -> None:
    """SIGINT at its default in the child, whatever the test runner inherited: a shell that starts a job in
    the background (`make test &`, a CI wrapper) ignores SIGINT, the child inherits that, and Python then
    installs no KeyboardInterrupt handler (the collect ran on to 70/80 demos after SIGINT in one CI run)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_binary_json_files_are_named(tmp_path: Path) -> None:
    from snapflow.scripts.checkpoints import read_policy_config

    (tmp_path / "config.json").write_bytes(bytes(range(200, 256)) * 4)
    with pytest.raises(ValueError, match=rf"{tmp_path}/config.json is not valid JSON"):
        read_policy_config(tmp_path)


def test_damaged_datasets_are_named_before_training(demos: Path, tmp_path: Path) -> None:
    """A dropped column, an empty tasks file, fps "twenty" or an fps edited to 10 failed inside lerobot-train
    (or trained at the wrong rate); a stats file without action trained actions unnormalised."""
    from snapflow.scripts.dataset_checks import check_stats_cover

    ds = _copy(demos, tmp_path)
    info_file = ds / "meta" / "info.json"
    info = json.loads(info_file.read_text())
    for fps, match in (
        ("twenty", "fps='twenty'; a frame rate in Hz"),
        (10, r"fps=10, but its frames are 0.05 s"),
    ):
        info_file.write_text(json.dumps({**info, "fps": fps}))
        with pytest.raises(ValueError, match=match):
            read_dataset_info(ds)
    info_file.write_text(json.dumps(info))
    tasks = ds / "meta" / "tasks.parquet"
    table = pq.read_table(tasks)
    pq.write_table(table.slice(0, 0), tasks)
    with pytest.raises(ValueError, match=r"meta/tasks.parquet lists no task"):
        read_dataset_info(ds)
    pq.write_table(table, tasks)
    frames = next(ds.glob("data/**/*.parquet"))
    pq.write_table(pq.read_table(frames).drop_columns(["observation.state"]), frames)
    with pytest.raises(
        ValueError, match=r"has no column \['observation.state'\], which meta/info.json declares"
    ):
        read_dataset_info(ds)
    stats_file = ds / "meta" / "stats.json"
    stats = json.loads(stats_file.read_text())
    stats_file.write_text(json.dumps({k: v for k, v in stats.items() if k != "action"}))
    with pytest.raises(ValueError, match=r"has no mean/std for \['action'\]"):
        check_stats_cover(ds, info["features"], ("action", "observation.state"))


def test_export_checks_its_calibration_dataset_first(demos: Path, tmp_path: Path) -> None:
    ds = _copy(demos, tmp_path)
    next(ds.glob("data/**/*.parquet")).unlink()
    proc = _cli("snapflow-export", "policy=embedded", "quantize=int8_static", f"calibration={ds}",
                f"out={tmp_path / 'x'}")  # fmt: skip
    assert proc.returncode == 2 and f"calibration={ds}: data/" in proc.stderr, proc.stderr[-2000:]


def test_train_refuses_a_student_a_second_policy_and_a_foreign_assets_folder(
    demos: Path, tmp_path: Path
) -> None:
    """Each ran without a word: a SnapFlow student trained on as a teacher, policy=pi0 ignored beside
    pretrained=, the tiny VLM built inside a dataset."""
    student = tmp_path / "student"
    student.mkdir()
    (student / "config.json").write_text(json.dumps({"type": "smolvla_snapflow", "snapflow": {"alpha": 0.5}}))
    run = ("snapflow-train", f"dataset={demos}", "steps=1")
    proc = _cli(*run, f"pretrained={student}", f"out={tmp_path / 'a'}")
    assert proc.returncode == 2 and "is a SnapFlow-distilled student" in proc.stderr, proc.stderr[-2000:]
    proc = _cli(*run, "policy=pi0", f"pretrained={student}", f"out={tmp_path / 'b'}")
    assert proc.returncode == 2 and "both choose the policy" in proc.stderr, proc.stderr[-2000:]
    proc = _cli(*run, "tiny=true", f"assets={demos}", f"out={tmp_path / 'c'}")
    assert proc.returncode == 2 and "holds other files and no earlier tiny build" in proc.stderr
    assert not (demos / "tiny_smolvlm").exists()


def test_eval_names_a_state_length_the_policy_does_not_take(tmp_path: Path) -> None:
    """A 74-D object-state dataset for an 8-D teacher failed after every rollout."""
    from snapflow.sim.record import collect_dataset

    ds = collect_dataset(
        "goal", 1, tmp_path / "obj", task_ids=[0], resolution=32, object_state=True, progress=False
    )
    proc = _cli("snapflow-eval", "teacher=embedded", "samplers=[teacher_10]", f"dataset={ds}", "episodes_for_mse=1",
                "suites=[goal]", "episodes=1", f"out={tmp_path / 'e'}")  # fmt: skip
    assert proc.returncode == 2 and "takes 8-D: the offline MSE needs" in proc.stderr, proc.stderr[-2000:]
    assert "eval frozen states" not in proc.stderr + proc.stdout  # before any rollout


def test_values_are_named_one_by_one() -> None:
    """seconds=0 was reported as "hz=1 and seconds=0" (hz a placeholder); inference_delay=-1 as four rules."""
    from snapflow.scripts.run import check_values
    from snapflow.sim.chunking import Chunking

    cfg = OmegaConf.load(Path(__file__).parents[2] / "configs" / "run.yaml")
    cfg.policy, cfg.seconds = "embedded", 0
    with pytest.raises(ValueError, match=r"^seconds=0: the run's length must be > 0 s$"):
        check_values(cfg)
    with pytest.raises(ValueError, match=r"^inference_delay=-1: must be >= 0$"):
        Chunking(delay=-1)


def test_an_unbatched_numpy_observation_is_named() -> None:
    from snapflow.policies.lerobot_plugin.observation_check import check_observation_batch

    features = {"observation.state": [8]}
    with pytest.raises(ValueError, match=r"numpy array of shape \(8,\) without a batch axis"):
        check_observation_batch({"observation.state": np.zeros(8, np.float32)}, "go", features)
    check_observation_batch({"observation.state": torch.zeros(8)}, "go", features)  # a tensor may omit it
    check_observation_batch({"observation.state": np.zeros((1, 8), np.float32)}, "go", features)


def test_run_names_a_missing_normaliser_file(tmp_path: Path) -> None:
    from snapflow.policies.embedded import materialize_teacher

    teacher = materialize_teacher(tmp_path / "teacher")  # absolute VLM paths: a checkpoint as training writes
    next(teacher.glob("policy_preprocessor_step_*_normalizer_processor.safetensors")).unlink()
    proc = _cli("snapflow-run", f"policy={teacher}", "seconds=1", f"out={tmp_path / 'r'}")
    assert proc.returncode == 2 and "the checkpoint is incomplete; copy it again" in proc.stderr


def test_extra_snapflow_values_and_noise_are_named_first(tmp_path: Path) -> None:
    """alpha=abc failed inside lerobot-train 15 s in; noise_std=5 ended in a traceback after 20 attempts."""
    from snapflow.scripts.lerobot_cli import _child_error

    proc = _cli("snapflow-distill", "teacher=embedded", f"dataset={tmp_path}", f"out={tmp_path / 'r'}",
                "extra=['--policy.snapflow.alpha=abc']")  # fmt: skip
    assert proc.returncode == 2 and "Couldn't parse 'abc' into a float" in proc.stderr, proc.stderr[-2000:]
    draccus = "usage: ...\nerror: `policy`: Could not decode the value\n    PreTrainedConfig: bad 'abc'\n"
    assert _child_error(draccus) == "`policy`: Could not decode the value PreTrainedConfig: bad 'abc'"
    proc = _cli("snapflow-collect", "suite=goal", "noise_std=5", f"out={tmp_path / 'd'}")
    assert proc.returncode == 2 and "noise_std must be in [0, 0.5)" in proc.stderr, proc.stderr[-2000:]


def test_a_copied_distillation_says_which_view_it_resumes_on(tmp_path: Path, capsys) -> None:
    from snapflow.scripts.resume_checks import check_resume_values

    original = tmp_path / "run.dataset"
    original.mkdir()
    config = tmp_path / "copy" / "checkpoints" / "last" / "pretrained_model" / "train_config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"dataset": {"root": str(original)}}))
    check_resume_values(OmegaConf.create({"out": str(tmp_path / "copy"), "steps": 10}), set())
    assert f"note: the run resumes on {original}" in capsys.readouterr().out
