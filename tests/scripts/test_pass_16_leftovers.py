"""What newcomer pass 16 left (issue 15, docs/NEWCOMER_PASSES.md), each named or quiet now."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from snapflow.policies.embedded import EMBEDDED_DIR
from snapflow.policies.weights_file import check_stats_files
from snapflow.scripts.cli_values import argv_problem
from snapflow.scripts.outputs import check_out

BIN = Path(sys.executable).parent
UNNORMALIZER = "policy_postprocessor_step_0_unnormalizer_processor.safetensors"


def _cli(command: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / command), *args], capture_output=True, text=True, timeout=180, cwd=cwd)


def test_a_missing_normaliser_file_is_named_at_the_users_path(tmp_path: Path) -> None:
    """LeRobot named the file while loading, with no next step, and at the cached copy's path."""
    from snapflow.scripts.checkpoints import resolve_pretrained

    teacher = tmp_path / "teacher"
    shutil.copytree(EMBEDDED_DIR, teacher)
    (teacher / UNNORMALIZER).unlink()
    for check in (check_stats_files, resolve_pretrained):
        with pytest.raises(
            FileNotFoundError, match=rf"{teacher}/policy_postprocessor.json names {UNNORMALIZER}"
        ):
            check(teacher)
    proc = _cli("snapflow-export", f"policy={teacher}", f"out={tmp_path / 'x'}")
    assert proc.returncode == 2 and "the checkpoint is incomplete; copy it again" in proc.stderr, proc.stderr[
        -2000:
    ]


def test_bench_names_the_key_below_its_bound() -> None:
    """batch=0 gave "repeats, batch and threads must be >= 1" without saying which one was wrong."""
    from snapflow.deploy.bench import BenchConfig

    for key, value, low in (("batch", 0, 1), ("threads", 0, 1), ("repeats", -1, 1), ("warmup", -1, 0)):
        with pytest.raises(ValueError, match=rf"^{key}={value}: must be >= {low}$"):
            BenchConfig(policy="smolvla", **{key: value})


def test_a_training_run_as_results_folder_is_named_as_such(tmp_path: Path) -> None:
    """eval out=<a distillation run> called it "files that no snapflow command wrote"."""
    (tmp_path / "run" / "checkpoints" / "last").mkdir(parents=True)
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match=r"is a training run .*results never replace it"):
            check_out(tmp_path / "run", overwrite)


def test_export_names_static_int8_without_calibration_and_an_empty_task(tmp_path: Path) -> None:
    """quantize=int8_static without calibration= read as if calibration= were the extra key; task='' was named
    by the tokenizer after the export had started."""
    proc = _cli("snapflow-export", "policy=embedded", f"out={tmp_path / 'x'}", "quantize=int8_static")
    assert (
        proc.returncode == 2 and "quantize=int8_static needs calibration=<LeRobotDataset dir>" in proc.stderr
    )
    proc = _cli("snapflow-export", "policy=embedded", f"out={tmp_path / 'x'}", "calibration=/data")
    assert proc.returncode == 2 and "calibration=/data goes with quantize=int8_static only" in proc.stderr
    proc = _cli("snapflow-export", "policy=embedded", f"out={tmp_path / 'x'}", "task=")
    assert proc.returncode == 2 and "task='': the parity check tokenises an instruction" in proc.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("name", "argv", "hint"),
    [
        ("eval", ["suite=goal"], "(did you mean suites?)"),
        ("eval", ["sampler=[a]"], "(did you mean samplers?)"),  # a whole name before another's word
        ("collect", ["episodes=3"], "(did you mean episodes_per_task?)"),  # a word of the name
        ("bench", ["nfes=[1]"], "(did you mean nfe?)"),
    ],
)
def test_an_unknown_key_gets_a_did_you_mean(name: str, argv: list, hint: str) -> None:
    problem = argv_problem(name, argv)
    assert problem is not None and problem.startswith(f"unknown key {argv[0].split('=')[0]}= {hint}; ")


def test_collect_notes_heavy_noise_and_more_workers_than_cores(tmp_path: Path) -> None:
    """noise_std=5 and workers=64 on two cores ran without a word (the experts then fail, memory grows)."""
    proc = _cli("snapflow-collect", "suite=goal", "noise_std=0.3", "workers=999", "paired_modes=true",
                f"out={tmp_path / 'd'}")  # fmt: skip
    assert "note: noise_std=0.3 is above 0.2" in proc.stdout, proc.stdout
    assert "note: workers=999 on" in proc.stdout and "more processes than cores" in proc.stdout
    assert proc.returncode == 2 and "paired_modes=true needs a suite whose tasks have modes" in proc.stderr


def test_collect_video_prints_no_encoder_info_lines(tmp_path: Path) -> None:
    """SVT-AV1 printed about 40 "Svt[info]" lines per video."""
    proc = _cli("snapflow-collect", "suite=goal", "task_ids=[0]", "episodes_per_task=1", "resolution=32",
                "video=true", f"out={tmp_path / 'd'}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Svt[info]" not in proc.stdout + proc.stderr
    info = json.loads((tmp_path / "d" / "meta" / "info.json").read_text())
    assert info["features"]["observation.images.image"]["dtype"] == "video"


def test_policy_server_help_writes_no_logs_folder(tmp_path: Path) -> None:
    """Upstream's module makes ./logs/ when imported, so --help left a folder behind."""
    proc = _cli("snapflow-policy-server", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "--port" in proc.stdout, proc.stderr[-2000:]
    assert not (tmp_path / "logs").exists()
