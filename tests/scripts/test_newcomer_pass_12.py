"""What the twelfth fresh-clone newcomer pass found, pinned: snapflow-eval names the key a sampler needs and
refuses a SnapFlow student as the FM control, snapflow-distill names lr=0 and a negative seed before
lerobot-train starts, and decision_spread names a folder that is not a probe output."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from safetensors.numpy import save_file

BIN = Path(sys.executable).parent
EVAL_YAML = Path(__file__).resolve().parents[2] / "configs" / "eval.yaml"


def _eval_cfg(**values):
    cfg = OmegaConf.load(EVAL_YAML)
    for key, value in values.items():
        cfg[key] = value
    return cfg


def _checkpoint(path: Path, alpha: float) -> Path:
    path.mkdir(parents=True)
    config = {
        "type": "smolvla_snapflow",
        "snapflow": {"alpha": alpha},
        "vlm_model_name": str(path),
    }  # local VLM
    (path / "config.json").write_text(json.dumps(config))
    save_file({"w": np.zeros(1, np.float32)}, str(path / "model.safetensors"))  # read before loading
    return path


def test_eval_names_what_each_sampler_needs(tmp_path: Path) -> None:
    """N12 #25 / #28 / #42: the option's sampler named teacher=/student=/fm=; samplers=[] asked for
    student= that was set; a SnapFlow student given as fm= was reported as the FM control."""
    from snapflow.scripts.eval import _samplers

    student = _checkpoint(tmp_path / "student", alpha=0.5)
    with pytest.raises(ValueError, match=r"'snapflow_option_1' has no checkpoint: set student_option="):
        _samplers(_eval_cfg(student=str(student), samplers=["snapflow_option_1"]))
    with pytest.raises(ValueError, match=r"'snapflow_k_1' has no checkpoint: set student_k="):
        _samplers(_eval_cfg(student=str(student), samplers=["snapflow_k_1"]))
    with pytest.raises(ValueError, match=r"samplers=\[\] names no sampler; give at least one of"):
        _samplers(_eval_cfg(student=str(student), samplers=[]))
    with pytest.raises(ValueError, match=r"not the flow-matching control \(snapflow-distill method=fm\)"):
        _samplers(_eval_cfg(fm=str(student), samplers=["fm_1"]))
    fm = _checkpoint(tmp_path / "fm", alpha=1.0)  # what method=fm writes: accepted
    assert list(_samplers(_eval_cfg(fm=str(fm), samplers=["fm_1"]))) == ["fm_1"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["lr=0"], "lr must be > 0, got 0"),
        (["seed=-1"], r"seed must be an integer in \[0, 2\*\*32 - 1\], got -1"),
        (["method=fm", "consistency_weight=1.0"], "consistency_weight=1.0 has no effect"),
        (
            ["method=fm", "extra=['--policy.snapflow.consistency_loss=energy']"],
            "consistency_loss=energy has no",
        ),
    ],
)
def test_distill_names_values_that_crash_or_do_nothing(tmp_path: Path, value: list, message: str) -> None:
    """N12 #3 / #5: a ZeroDivisionError and a numpy traceback from inside lerobot-train after 19 s; #8 / #9:
    consistency settings recorded in the FM control's config without having had any effect."""
    import re

    proc = subprocess.run(
        [str(BIN / "snapflow-distill"), f"teacher={tmp_path / 't'}", f"dataset={tmp_path / 'd'}",
         f"out={tmp_path / 'out'}", *value],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and re.search(message, proc.stderr), proc.stderr[-500:]
    assert not (tmp_path / "out").exists()


def test_decision_spread_names_a_folder_that_is_not_a_probe_output(tmp_path: Path) -> None:
    """N12 #62 / #66: a FileNotFoundError traceback, and one from deep in loading for a moved policy."""

    def spread(run: Path) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "snapflow.sim.decision_spread", str(run), "--draws", "1"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    proc = spread(tmp_path / "nope")
    assert proc.returncode == 2 and "has no report.json" in proc.stderr and "Traceback" not in proc.stderr
    run = tmp_path / "eval"
    run.mkdir()
    moved = tmp_path / "gone" / "pretrained_model"
    (run / "report.json").write_text(json.dumps({"samplers": {"snapflow_1": {"policy": str(moved)}}}))
    proc = spread(run)
    assert proc.returncode == 2 and f"'snapflow_1' names {moved}, no checkpoint (moved?)" in proc.stderr
