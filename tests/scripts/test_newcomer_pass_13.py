"""Newcomer pass 13 (issue 15, fresh clone of 980a14c): each misleading, silent or lost case, pinned."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from snapflow.scripts.cli_values import check_types
from snapflow.scripts.outputs import RESULTS_MARK, atomic_out, check_out

BIN = Path(sys.executable).parent
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _cli(command: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / command), *args], capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize(
    "command, args, match",
    [
        ("snapflow-collect", ["suite=goal", "episodes_per_task=null"], "episodes_per_task=null: .* takes a value"),
        ("snapflow-collect", ["suite=goal", "episodes_per_task=true"], "episodes_per_task=true is a boolean"),
        ("snapflow-collect", ["suite=goal", "debug=yes"], "debug='yes' is not a boolean"),
        ("snapflow-run", ["policy=/nonexistent", "task=goal/0", "seconds=null"], "seconds=null: seconds takes a value"),
        ("snapflow-run", ["policy=/nonexistent", "task=goal/0", "fault=explode"], "fault='explode' is not a fault"),
        ("snapflow-run", ["policy=/nonexistent", "task=goal/0", "fault_after=5"], "fault_after=5 goes with fault="),
        ("snapflow-run", ["policy=/nonexistent", "task=goal/0", "realtime_priority=500"], "priorities are 1..99"),
        ("snapflow-export", ["policy=/nonexistent", "calibration_frames=8"], "calibration_frames= goes with"),
        ("snapflow-export", ["policy=/nonexistent", "out=FULL"], "no LeRobot checkpoint at /nonexistent"),
        ("snapflow-bench", ["policy=smolvla", "dtype=bfloat16"], "dtype=bfloat16 applies to pi0 / pi05 only"),
        ("snapflow-distill", ["teacher=embedded", "dataset=/nonexistent", "out=/tmp/x", "num_processes=2"],
         "num_processes=2 needs launcher=accelerate"),
    ],
    ids=["null-number", "bool-number", "debug-yes", "run-null", "fault", "fault-after", "priority", "calib-frames",
         "export-policy-first", "bench-dtype", "num-processes"],
)  # fmt: skip
def test_values_are_named_before_any_work(command, args, match, tmp_path: Path) -> None:
    """Pass 13: key=null gave a TypeError traceback, episodes=true ran 1 episode, debug=yes a traceback; run's
    fault= was named after loading, fault_after / realtime_priority=500 / calibration_frames / bench dtype were
    ignored, num_processes=2 with the python launcher ran one process, and export named a full out= before a
    missing policy."""
    full = tmp_path / "full"  # a folder that already holds something: named after a missing policy
    full.mkdir()
    (full / "notes.txt").write_text("x")
    args = [a.replace("out=FULL", f"out={full}") for a in args]
    if not any(a.startswith("out=") for a in args):  # a missing out= is named first (with every missing key)
        args = [*args, f"out={tmp_path / 'out'}"]
    proc = _cli(command, *args)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and re.search(match, last), proc.stderr[-2000:]


def test_null_stays_allowed_where_it_means_something() -> None:
    cfg = OmegaConf.load(CONFIGS / "run.yaml")
    cfg.init_state = None  # a seeded layout
    check_types(cfg, "run")
    demo = OmegaConf.load(CONFIGS / "demo.yaml")
    demo.probe_settings.option.lr = None  # the recipe's value
    check_types(demo, "demo")


def test_out_rules_symlink_user_files_and_unwritable(tmp_path: Path) -> None:
    """Pass 13: a user's folder got "pass overwrite=true" (then refused); files a user added to a results folder
    went with overwrite=true (LOST); out= a symlink failed after the work; an unwritable parent failed at the end."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("x")
    with pytest.raises(FileExistsError) as refused:
        check_out(mine, overwrite=False)
    assert "no snapflow command wrote" in str(refused.value) and "pass overwrite=true" not in str(
        refused.value
    )
    with atomic_out(tmp_path / "res", overwrite=False) as partial:
        (partial / "report.json").write_text("{}")
    (tmp_path / "res" / "my_analysis.txt").write_text("mine")
    with pytest.raises(
        FileExistsError, match=r"holds \['my_analysis.txt'\], which the command .* did not write"
    ):
        check_out(tmp_path / "res", overwrite=True)
    (tmp_path / "res" / "my_analysis.txt").unlink()
    assert check_out(tmp_path / "res", overwrite=True)  # only what the command wrote: replaceable
    assert (tmp_path / "res" / RESULTS_MARK).read_text().splitlines()[1:] == ["report.json"]
    (tmp_path / "link").symlink_to(tmp_path / "res")
    with pytest.raises(ValueError, match="is a symbolic link"):
        check_out(tmp_path / "link", overwrite=True)
    with pytest.raises(
        PermissionError, match="cannot be written"
    ):  # /proc takes no new folder, even for root
        check_out("/proc/snapflow-pass-13/out", overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "link",
        "mine",
        "res",
    ]  # the write check left nothing


def test_a_copied_run_that_was_resumed_names_its_real_teacher(tmp_path: Path) -> None:
    """Pass 13: a copied run resumed once was said to be distilled from the original folder's checkpoint."""
    from snapflow.scripts.resume_checks import _original_teacher

    teacher = tmp_path / "teacher"
    teacher.mkdir()
    run = tmp_path / "copy"
    for step, source in (
        ("000010", teacher),
        ("000020", tmp_path / "original/checkpoints/000010/pretrained_model"),
    ):
        ckpt = run / "checkpoints" / step / "pretrained_model"
        ckpt.mkdir(parents=True)
        (ckpt / "train_config.json").write_text(json.dumps({"policy": {"pretrained_path": str(source)}}))
    (run / "checkpoints" / "last").symlink_to("000020")
    assert _original_teacher(run) == teacher.resolve()


def test_checkpoint_kinds_are_named(tmp_path: Path, capsys) -> None:
    """Pass 13: an FM control given as student= was reported as SnapFlow; policy='' searched the working folder;
    bench on an upstream checkpoint ended in an AttributeError; a 128 px dataset for a 64 px teacher, no note."""
    from snapflow.scripts.checkpoints import resolve_pretrained
    from snapflow.scripts.distill import _say_if_other_camera_size

    fm = tmp_path / "fm"
    fm.mkdir()
    (fm / "config.json").write_text(json.dumps({"type": "smolvla_snapflow", "snapflow": {"alpha": 1.0}}))
    proc = _cli("snapflow-eval", f"student={fm}", "suites=[goal]", "episodes=1", f"out={tmp_path / 'e'}")
    assert proc.returncode == 2 and "not a SnapFlow student; pass it as fm=" in proc.stderr, proc.stderr[
        -2000:
    ]
    with pytest.raises(ValueError, match="an empty checkpoint path"):
        resolve_pretrained("  ")
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    (upstream / "config.json").write_text(json.dumps({"type": "smolvla"}))
    proc = _cli(
        "snapflow-bench", f"policy={upstream}", "runtimes=[torch]", "nfe=[1]", f"out={tmp_path / 'b'}"
    )
    assert proc.returncode == 2 and "is an upstream smolvla checkpoint" in proc.stderr, proc.stderr[-2000:]
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "config.json").write_text(
        json.dumps(
            {"type": "smolvla", "input_features": {"observation.images.image": {"shape": [3, 64, 64]}}}
        )
    )
    _say_if_other_camera_size(
        teacher, {"features": {"observation.images.image": {"shape": [128, 128, 3]}}}, "d"
    )
    assert "has 128 px cameras (observation.images.image), the teacher 64 px" in capsys.readouterr().out


def test_a_failed_int8_parity_is_said(tmp_path: Path) -> None:
    """Pass 13: an int8 graph beyond its parity tolerance was deployed and run without a word."""
    from snapflow.deploy.contract import quantized_parity_failure

    (tmp_path / "parity.json").write_text(
        json.dumps(
            {
                "passed": True,
                "int8": {"method": "int8", "max_abs_err": 0.17, "tolerance": 0.1, "passed": False},
            }
        )
    )
    assert "differs from torch by up to 0.17 (> its parity tolerance 0.1" in quantized_parity_failure(
        tmp_path
    )
    (tmp_path / "parity.json").write_text(json.dumps({"passed": True, "int8": {"passed": True}}))
    assert quantized_parity_failure(tmp_path) is None


def test_held_out_episode_counts_are_bounded() -> None:
    """Pass 13: episodes=1e9 held_out=true built a billion seeds, 0.5 GB/s, before any rollout."""
    from snapflow.sim.evaluate import MAX_HELD_OUT_EPISODES, episode_inits

    assert len(episode_inits(3, held_out=True)) == 3
    with pytest.raises(ValueError, match="held-out episodes per task is more than"):
        episode_inits(MAX_HELD_OUT_EPISODES + 1, held_out=True)


def test_train_names_assets_that_is_a_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "meta" / "episodes").mkdir(parents=True)
    (data / "meta" / "info.json").write_text(json.dumps({"features": {"observation.state": {"shape": [8]}}}))
    (data / "meta" / "stats.json").write_text("{}")
    pq.write_table(pa.table({"task_index": [0]}), data / "meta" / "tasks.parquet")  # its footer is read
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    proc = _cli("snapflow-train", "policy=smolvla", f"dataset={data}", f"out={tmp_path / 't'}", "steps=2",
                "tiny=true", f"assets={notes}")  # fmt: skip
    assert proc.returncode == 2 and "is a file: assets= names a folder" in proc.stderr, proc.stderr[-2000:]
    proc = _cli("snapflow-train", "policy=smolvla", f"dataset={data}", f"out={tmp_path / 't'}", "steps=2",
                "tiny=true", "tiny_width=0")  # fmt: skip
    assert proc.returncode == 2 and "tiny_width must be a multiple of 16" in proc.stderr, proc.stderr[-2000:]


@pytest.mark.parametrize(
    "command, args, match",
    [
        ("snapflow-run", ["policy=", "task=goal/0"], "policy= is empty"),
        ("snapflow-bench", ["policy=", "runtimes=[torch]"], "policy= is empty"),
        ("snapflow-eval", ["teacher=embedded", "fm=/x", "samplers=[naive_1]"], r"fm= is set but samplers=\['naive_1'\]"),
        ("snapflow-eval", ["teacher=embedded", "samplers=[naive_1]", "episodes=1000000000"],
         r"episodes=1000000000: only 50 frozen init states per task$"),
        ("snapflow-train", ["policy=smolvla", "dataset=/x", "tiny_width=8"], "tiny_width=8 goes with tiny=true"),
        ("snapflow-run", ["policy=/x", "task=goal/0", "out=~/quoted"], "~ is not expanded inside quotes"),
    ],
    ids=["run-empty", "bench-empty", "unused-fm", "frozen-count", "tiny-width", "tilde"],
)  # fmt: skip
def test_pass_14_cases_are_named(command, args, match, tmp_path: Path) -> None:
    """Pass 14 (fresh clone of 87f46ac): run / bench with policy='' searched the working folder; fm= beside
    samplers=[naive_1] was not evaluated without a word; episodes=1e9 advised held_out=true, refused too;
    tiny_width without tiny=true was ignored; a quoted ~ ended in Hydra's lexer error."""
    if not any(a.startswith("out=") for a in args) and command != "snapflow-bench":
        args = [*args, f"out={tmp_path / 'out'}"]
    proc = _cli(command, *args)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith("error: ") and re.search(match, last), proc.stderr[-2000:]


def test_resume_names_a_missing_dataset_view(tmp_path: Path) -> None:
    """Pass 14: a copied run whose <out>.dataset view was moved blamed dataset= instead of the missing view."""
    from snapflow.scripts.checkpoints import LAST_CHECKPOINT
    from snapflow.scripts.resume_checks import check_resume_values

    out = tmp_path / "copy"
    (out / LAST_CHECKPOINT).mkdir(parents=True)
    saved = {"dataset": {"root": str(tmp_path / "student.dataset")}, "policy": {}}
    (out / LAST_CHECKPOINT / "train_config.json").write_text(json.dumps(saved))
    cfg = OmegaConf.load(CONFIGS / "distill.yaml")
    cfg.out, cfg.dataset = str(out), str(tmp_path / "data")
    with pytest.raises(FileNotFoundError, match=r"trains on .*student.dataset, which is gone"):
        check_resume_values(cfg, {"dataset"})
