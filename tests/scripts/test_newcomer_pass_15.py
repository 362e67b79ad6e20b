"""Newcomer pass 15 (a fresh clone of f67ea97, issue 15): what its new cases found, each named now."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from snapflow.scripts.checkpoints import LAST_CHECKPOINT

BIN = Path(sys.executable).parent
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _cli(command: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / command), *args], capture_output=True, text=True, timeout=180, cwd=cwd)


def test_resume_refuses_a_teacher_that_is_there_but_no_checkpoint(tmp_path: Path) -> None:
    """teacher=<an export folder> on resume=true was taken as a placeholder and resumed without a word."""
    from snapflow.scripts.resume_checks import check_resume_values

    teacher, out = tmp_path / "teacher", tmp_path / "run"
    first = out / "checkpoints" / "000004" / "pretrained_model"
    first.mkdir(parents=True)
    (out / "checkpoints" / "last").symlink_to("000004")
    (tmp_path / "data").mkdir()
    saved = {"dataset": {"root": str(tmp_path / "data")}, "policy": {"pretrained_path": str(teacher)}}
    (first / "train_config.json").write_text(json.dumps(saved))
    export = tmp_path / "export"
    export.mkdir()
    (export / "contract.json").write_text("{}")
    cfg = OmegaConf.load(CONFIGS / "distill.yaml")
    cfg.out, cfg.dataset, cfg.resume = str(out), str(tmp_path / "data"), True
    cfg.teacher = str(export)
    with pytest.raises(ValueError, match=r"teacher=.*export \(the run was distilled from .*teacher\)"):
        check_resume_values(cfg, {"teacher"})
    cfg.teacher = "unused"  # a placeholder that names nothing stays allowed (teacher= is mandatory)
    check_resume_values(cfg, {"teacher"})


def test_bench_takes_a_training_run_folder_as_the_other_commands_do(tmp_path: Path) -> None:
    """policy=<distill out> ended in "[Errno 2] ... config.json" where eval / run / export take it."""
    run = tmp_path / "student"
    (run / LAST_CHECKPOINT).mkdir(parents=True)
    config = {"type": "pi0_snapflow", "dtype": "float32"}
    (run / LAST_CHECKPOINT / "config.json").write_text(json.dumps(config))
    # dtype= is refused by name after the folder resolves to its checkpoint (it read config.json of the run)
    proc = _cli("snapflow-bench", f"policy={run}", "dtype=bfloat16", f"out={tmp_path / 'b'}")
    assert proc.returncode == 2 and "saved with (float32, its config.json)" in proc.stderr, proc.stderr
    proc = _cli("snapflow-bench", f"policy={tmp_path}", f"out={tmp_path / 'b'}")
    assert proc.returncode == 2 and f"no LeRobot checkpoint at {tmp_path}" in proc.stderr, proc.stderr


def test_a_hydra_quoted_tilde_is_named(tmp_path: Path) -> None:
    """out='~/x' (quoted for Hydra inside shell quotes) wrote a folder named "~" in the working folder."""
    for arg in ("out='~/pass15'", 'out="~/pass15"', "student='~/.cache/x'"):
        proc = _cli("snapflow-eval", "teacher=embedded", arg, cwd=tmp_path)
        assert proc.returncode == 2 and "~ is not expanded inside quotes" in proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("command", "args", "named"),
    [
        ("snapflow-eval", ["teacher=embedded", "suites=[goal]", "task_ids=[0.5]"], "task_ids takes whole task numbers, got [0.5]"),
        ("snapflow-eval", ["teacher=embedded", "suites=[goal]", "task_ids=[true]"], "task_ids takes whole task numbers"),
        ("snapflow-eval", ["teacher=embedded", "suites=[goal]", "task_ids=[10]"], "task_ids [10] out of range"),
        ("snapflow-collect", ["suite=goal", "task_ids=[0.5]"], "task_ids takes whole task numbers, got [0.5]"),
        ("snapflow-distill", ["teacher=embedded", "dataset={tmp}/none", "steps=1e12"], "steps must be <= 1e+08"),
        ("snapflow-train", ["tiny=true", "dataset={tmp}/none", "steps=1000000000"], "steps must be <= 1e+08"),
        ("snapflow-export", ["policy=embedded", "nfe=1000"], "must be in [1, 100]"),
        ("snapflow-export", ["policy=embedded"], "is a 'smolvla' checkpoint: export needs a *_snapflow policy"),
        ("snapflow-eval", ["exports={g: {tmp}/none}", "samplers=[g]"], "none does not exist (or is not a folder)"),
        ("snapflow-collect", ["suite=goal", "out=/proc/snapflow-pass-15"], "cannot be written (no folder can be made"),
    ],
)  # fmt: skip
def test_pass_15_values_are_named_before_any_work(tmp_path: Path, command, args, named) -> None:
    """task_ids=[0.5] was truncated to 0 (collect) or refused after the rollouts (eval), [true] read as 1;
    steps=1e12 and nfe=1000 started without a word; an upstream checkpoint was refused after the export
    began; a missing export folder was "no contract.json"; /proc said "No such file or directory"."""
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if not any(a.startswith("out=") for a in args):
        args.append(f"out={tmp_path / 'out'}")
    proc = _cli(command, *args)
    assert proc.returncode == 2 and named in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[
        -2000:
    ]
    assert "[2/3]" not in proc.stdout and "episode" not in proc.stdout
    assert not (tmp_path / "out").exists()


def test_eval_names_a_damaged_weights_file_before_loading(tmp_path: Path) -> None:
    """A truncated model.safetensors was named by the loader, seconds in; a missing one read as "corrupt"."""
    from safetensors.torch import save_file

    student = tmp_path / "student"
    student.mkdir()
    config = {"type": "smolvla_snapflow", "snapflow": {"alpha": 0.5}, "vlm_model_name": str(tmp_path)}
    (student / "config.json").write_text(json.dumps(config))
    save_file({"w": torch.zeros(64)}, student / "model.safetensors")
    data = (student / "model.safetensors").read_bytes()
    (student / "model.safetensors").write_bytes(data[:-10])
    args = [f"student={student}", "samplers=[snapflow_1]", "suites=[goal]", f"out={tmp_path / 'e'}"]
    proc = _cli("snapflow-eval", *args)
    assert proc.returncode == 2 and "sampler 'snapflow_1': cannot read" in proc.stderr, proc.stderr
    assert "truncated" in proc.stderr
    (student / "model.safetensors").unlink()
    proc = _cli("snapflow-eval", *args)
    assert proc.returncode == 2 and "model.safetensors is missing" in proc.stderr, proc.stderr
