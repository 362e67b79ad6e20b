"""Newcomer pass 15 (a fresh clone of f67ea97, issue 15): what its new cases found, each named now."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from snapflow.scripts.lerobot_cli import LAST_CHECKPOINT

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
