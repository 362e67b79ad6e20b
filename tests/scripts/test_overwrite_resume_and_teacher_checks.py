"""What newcomer pass 12 left open: overwrite=true on a user's folder, resume=true with changed extra= flags,
and a distilled student given as a teacher (issue 15)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from snapflow.scripts.checkpoints import LAST_CHECKPOINT, is_distilled
from snapflow.scripts.outputs import INCOMPLETE, RESULTS_MARK, atomic_out, check_out

BIN = Path(sys.executable).parent
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _cli(command: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / command), *args], capture_output=True, text=True, timeout=180)


def test_overwrite_replaces_only_a_snapflow_commands_results(tmp_path: Path) -> None:
    """overwrite=true emptied any folder named by out=, a user's own notes included (pass 12, LOST)."""
    mine = tmp_path / "my_notes"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"holds files that no snapflow command wrote"):
        check_out(mine, overwrite=True)
    assert (mine / "notes.txt").read_text() == "mine"
    with atomic_out(tmp_path / "results", overwrite=False) as partial:
        (partial / "report.json").write_text("{}")
    assert (tmp_path / "results" / RESULTS_MARK).is_file()  # published results carry the mark
    with atomic_out(tmp_path / "results", overwrite=True) as partial:  # so overwrite=true replaces them
        (partial / "report2.json").write_text("{}")
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [RESULTS_MARK, "report2.json"]
    unfinished = tmp_path / "unfinished"  # a killed demo's folder: INCOMPLETE, replaceable when asked
    unfinished.mkdir()
    (unfinished / INCOMPLETE).write_text("snapflow-demo started, not finished\n")
    assert check_out(unfinished, overwrite=True) == unfinished


def test_collect_overwrite_refuses_a_users_folder_before_any_demo(tmp_path: Path) -> None:
    mine = tmp_path / "data"
    mine.mkdir()
    (mine / "calibration.yaml").write_text("kp: 1")
    proc = _cli("snapflow-collect", "suite=spatial", "episodes_per_task=1", f"out={mine}", "overwrite=true")
    assert proc.returncode == 2 and "no snapflow command wrote" in proc.stderr, proc.stderr
    assert [p.name for p in mine.iterdir()] == ["calibration.yaml"]


def _saved_run(tmp_path: Path) -> Path:
    out = tmp_path / "student"
    (out / LAST_CHECKPOINT).mkdir(parents=True)
    saved = {"batch_size": 4, "seed": 1000, "policy": {"optimizer_lr": 1e-4, "snapflow": {
        "alpha": 0.5, "multistep_mode": "target_time", "consistency_steps": 2, "consistency_loss": "mse"}}}  # fmt: skip
    (out / LAST_CHECKPOINT / "train_config.json").write_text(json.dumps(saved))
    return out


def test_resume_refuses_extra_flags_that_differ_from_the_run(tmp_path: Path) -> None:
    """lerobot-train applies a resumed run's command-line flags on top of its saved config: a changed
    extra= flag would switch the run midway without a word (pass 12, not compared before)."""
    from snapflow.scripts.resume_checks import check_resume_values

    cfg = OmegaConf.load(CONFIGS / "distill.yaml")
    cfg.out = str(_saved_run(tmp_path))
    cfg.extra = ["--policy.snapflow.consistency_steps=4"]
    with pytest.raises(ValueError, match=r"from the resumed step on: --policy.snapflow.consistency_steps=4 "
                                         r"\(the run has policy.snapflow.consistency_steps=2\)"):  # fmt: skip
        check_resume_values(cfg, set())
    cfg.extra = ["--policy.optimizer_lr=2e-4", "--policy.snapflow.consistency_loss=energy"]
    with pytest.raises(ValueError, match=r"optimizer_lr=2e-4 .*; --policy.snapflow.consistency_loss=energy"):
        check_resume_values(cfg, set())
    # the same values as saved, however written, and keys the saved config lacks (lerobot-train names those)
    cfg.extra = ["--policy.optimizer_lr=0.0001", "--policy.snapflow.consistency_steps=2", "--wandb.enable=false",
                 "--policy.optimizer_lr=1e-4"]  # fmt: skip
    check_resume_values(cfg, set())


def _student_folder(root: Path, alpha: float, kind: str = "smolvla_snapflow") -> Path:
    """A copied checkpoint's config (no training state beside it): what is_distilled and the checks read."""
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"type": kind, "snapflow": {"alpha": alpha}}))
    return root


def test_a_distilled_student_is_refused_as_the_demos_teacher_and_noted_by_distill(tmp_path: Path, capsys):
    """The demo took a student as teacher= and failed minutes later in its eval stage; distill printed its
    note only for a lerobot-train checkpoint, not for a copied student (pass 12)."""
    from snapflow.scripts import distill

    student = _student_folder(tmp_path / "student", alpha=0.5)
    fm_teacher = _student_folder(tmp_path / "pi0_teacher", alpha=1.0, kind="pi0_snapflow")
    assert is_distilled(student) and not is_distilled(fm_teacher)
    out = tmp_path / "demo"
    proc = _cli("snapflow-demo", f"teacher={student}", f"out={out}")
    assert proc.returncode == 2 and "is a SnapFlow-distilled student (alpha < 1)" in proc.stderr, proc.stderr
    assert not out.exists()
    distill._say_if_student(student)
    assert "student checkpoint (alpha < 1)" in capsys.readouterr().out
    distill._say_if_student(fm_teacher)  # a PI0 tiny teacher (alpha = 1) is a flow-matching teacher
    assert capsys.readouterr().out == ""


def test_eval_checks_the_offline_mse_dataset_before_any_rollout(tmp_path: Path) -> None:
    """dataset= was read only after every rollout, so a wrong one failed at the end (pass 12, late check)."""
    data = tmp_path / "demos"
    (data / "meta" / "episodes").mkdir(parents=True)
    (data / "meta" / "info.json").write_text(json.dumps({"features": {"action": {}}, "total_episodes": 2}))
    (data / "meta" / "stats.json").write_text("{}")
    pq.write_table(pa.table({"task_index": [0]}), data / "meta" / "tasks.parquet")  # its footer is read
    # a missing teacher too: named after the dataset only if the dataset is checked first, before any loading
    base = [f"teacher={tmp_path / 'no_teacher'}", "suites=[goal]", "episodes=1", f"out={tmp_path / 'eval'}"]
    proc = _cli("snapflow-eval", *base, f"dataset={data}", "episodes_for_mse=5")
    assert proc.returncode == 2 and "episodes_for_mse=5 but the dataset has only 2 episodes" in proc.stderr, (
        proc.stderr
    )
    proc = _cli("snapflow-eval", *base, f"dataset={tmp_path / 'nothing'}")
    assert proc.returncode == 2 and "is not a LeRobotDataset" in proc.stderr, proc.stderr
    assert not (tmp_path / "eval").exists()
