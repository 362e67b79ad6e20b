"""snapflow-demo: refuses clearly without an embedded teacher; runs end to end on a tiny one (slow)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from snapflow.policies.embedded import EmbeddedTeacherMissing, materialize_teacher

BIN = Path(sys.executable).parent


def test_missing_embedded_teacher_is_a_clear_error(tmp_path):
    with pytest.raises(EmbeddedTeacherMissing, match="no embedded default teacher"):
        materialize_teacher(tmp_path / "t", source=tmp_path / "nowhere")


def test_materialized_teacher_points_at_its_own_vlm(tmp_path):
    from snapflow.scripts.tiny import build_tiny_teachers

    ckpt = build_tiny_teachers(tmp_path / "tiny", ["smolvla"], image_size=64)["smolvla"]
    source = tmp_path / "shipped"
    import shutil

    shutil.copytree(ckpt, source)
    shutil.copytree(tmp_path / "tiny" / "assets" / "tiny_smolvlm", source / "smolvlm")
    out = materialize_teacher(tmp_path / "copy", source=source)
    assert json.loads((out / "config.json").read_text())["vlm_model_name"] == str((out / "smolvlm").resolve())
    pre = json.loads((out / "policy_preprocessor.json").read_text())
    assert any(s.get("config", {}).get("tokenizer_name") == str((out / "smolvlm").resolve()) for s in pre["steps"])


@pytest.mark.slow
def test_demo_runs_end_to_end_on_a_tiny_teacher(tmp_path):
    from snapflow.scripts.tiny import build_tiny_teachers

    teacher = build_tiny_teachers(tmp_path / "tiny", ["smolvla"], image_size=64)["smolvla"]
    out = tmp_path / "demo"
    proc = subprocess.run(
        [str(BIN / "snapflow-demo"), f"teacher={teacher}", f"out={out}", "episodes=2", "task_ids=[0]",
         "distill_demos_per_task=1", "distill_steps=2", "distill_batch_size=2", "max_steps=20", "run_seconds=2",
         "workers=1"], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == f"outputs: {out}"
    report = json.loads((out / "report.json").read_text())
    assert set(report["suites"]["spatial"]) == {"teacher_10", "naive_1", "snapflow_1"}
    assert (out / "student" / "model.safetensors").is_file() and (out / "export" / "model.onnx").is_file()
    assert json.loads((out / "run.json").read_text())["ticks"] > 0
