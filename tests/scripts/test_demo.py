"""snapflow-demo: refuses clearly without an embedded teacher; runs end to end on a tiny one (slow)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snapflow.policies.embedded import (
    EMBEDDED_DIR,
    MULTIMODAL_DIR,
    VLM_SUBDIR,
    EmbeddedTeacherMissing,
    materialize_teacher,
    package_teacher,
)
from snapflow.scripts.outputs import INCOMPLETE

BIN = Path(sys.executable).parent


def test_missing_embedded_teacher_is_a_clear_error(tmp_path):
    with pytest.raises(EmbeddedTeacherMissing, match="no embedded default teacher"):
        materialize_teacher(tmp_path / "t", source=tmp_path / "nowhere")


def _tokenizer_names(directory: Path) -> list[str]:
    pre = json.loads((directory / "policy_preprocessor.json").read_text())
    return [s["config"]["tokenizer_name"] for s in pre["steps"] if "tokenizer_name" in s.get("config", {})]


def test_packaged_teacher_is_relative_and_materializes_to_a_loadable_policy(tmp_path):
    from snapflow.scripts.tiny import build_tiny_teachers
    from snapflow.sim.evaluate import SamplerSpec, load_policy

    ckpt = build_tiny_teachers(tmp_path / "tiny", ["smolvla"], image_size=64)["smolvla"]
    source = package_teacher(ckpt, tmp_path / "tiny" / "assets" / "tiny_smolvlm", tmp_path / "shipped")
    assert json.loads((source / "config.json").read_text())["vlm_model_name"] == VLM_SUBDIR
    assert _tokenizer_names(source) == [VLM_SUBDIR]
    assert not (source / "train_config.json").exists()
    out = materialize_teacher(tmp_path / "copy", source=source)
    vlm = str((out / VLM_SUBDIR).resolve())
    assert json.loads((out / "config.json").read_text())["vlm_model_name"] == vlm and _tokenizer_names(
        out
    ) == [vlm]
    lp = load_policy(SamplerSpec("teacher_10", out, 10), n_action_steps=10)
    assert lp.config.vlm_model_name == vlm
    with pytest.raises(FileNotFoundError, match="missing"):
        package_teacher(tmp_path / "tiny", tmp_path / "tiny" / "assets" / "tiny_smolvlm", tmp_path / "bad")


@pytest.mark.parametrize(
    ("directory", "make_target", "needed_by"),
    [
        (EMBEDDED_DIR, "make teacher", "make demo needs the embedded teacher"),
        (MULTIMODAL_DIR, "make teacher-multimodal", "snapflow-demo probe=multimodal needs it"),
    ],
    ids=["embedded", "multimodal"],
)
def test_shipped_teachers_are_small_and_documented(directory, make_target, needed_by):
    """The teachers the main job and the probe need are in the repo, small, with the command that made them."""
    files = [f for f in directory.rglob("*") if f.is_file()]
    assert (directory / "model.safetensors").is_file(), needed_by
    assert sum(f.stat().st_size for f in files) < 8 * 2**20, "keep the shipped teachers to a few MB"
    config = json.loads((directory / "config.json").read_text())
    assert config["type"] == "smolvla" and config["vlm_model_name"] == VLM_SUBDIR
    readme = (directory / "README.md").read_text()
    assert make_target in readme and "snapflow-train" in readme and "seed=" in readme


@pytest.mark.slow
def test_demo_runs_end_to_end_on_a_tiny_teacher(tmp_path):
    from snapflow.scripts.tiny import build_tiny_teachers

    teacher = build_tiny_teachers(tmp_path / "tiny", ["smolvla"], image_size=64)["smolvla"]
    out = tmp_path / "demo"
    proc = subprocess.run(
        [
            str(BIN / "snapflow-demo"),
            f"teacher={teacher}",
            f"out={out}",
            "episodes=2",
            "task_ids=[0]",
            "distill_demos_per_task=1",
            "distill_noise_std=0.03",
            "distill_steps=2",
            "distill_batch_size=2",
            "max_steps=20",
            "run_seconds=2",
            "workers=2",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == f"outputs: {out}"
    report = json.loads((out / "report.json").read_text())
    assert set(report["suites"]) == {"spatial", "object", "goal", "long"}  # the default: all four suites
    for suite in report["suites"].values():
        assert set(suite) == {"teacher_10", "naive_1", "snapflow_1", "fm_1"}
        assert all(entry["episodes"] == 2 for entry in suite.values())
    held_out = json.loads((out / "held_out" / "report.json").read_text())
    assert held_out["held_out"] and set(held_out["suites"]) == set(report["suites"])
    assert report["workers"] == 2 and report["layout"] == "libero"
    assert json.loads((out / "data" / "meta" / "collect.json").read_text())["noise_std"] == 0.03
    assert (out / "student" / "model.safetensors").is_file() and (out / "fm" / "model.safetensors").is_file()
    assert (out / "export" / "model.onnx").is_file()
    assert json.loads((out / "run" / "run.json").read_text())["ticks"] > 0
    assert not (out / INCOMPLETE).exists()  # a finished run drops its unfinished-run marker
    again = subprocess.run([str(BIN / "snapflow-demo"), f"teacher={teacher}", f"out={out}"], capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert again.returncode == 2 and "overwrite=true" in again.stderr  # the first run's results are kept
    assert (out / "report.json").is_file()


def test_a_stopped_demo_stops_its_stage_and_leaves_its_folder_marked_unfinished(tmp_path):
    """Newcomer pass 9, V17: a demo stopped mid-run (SIGTERM, as `timeout` sends) stops the processes of its
    running stage, keeps its files, and a rerun names the folder as an unfinished run (not as results)."""
    from snapflow.scripts.tiny import build_tiny_teachers

    teacher = build_tiny_teachers(tmp_path / "tiny", ["smolvla"], image_size=64)["smolvla"]
    out = tmp_path / "demo"
    args = [str(BIN / "snapflow-demo"), f"teacher={teacher}", f"out={out}", "episodes=2", "task_ids=[0]"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (out / INCOMPLETE).exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(5)  # into its first stage (collect)
        assert proc.poll() is None, "the demo ended before it could be killed"
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=60)
    assert "snapflow-demo: stopped (SIGTERM)" in stderr and proc.returncode == 143
    deadline = time.monotonic() + 10  # a stage stopped by SIGTERM ends in about a second
    while _processes_naming(out) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _processes_naming(out), "the stopped demo left its stage running"
    kept = sorted(p.name for p in out.iterdir())
    assert INCOMPLETE in kept
    again = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "unfinished run" in again.stderr and "overwrite=true" in again.stderr
    assert sorted(p.name for p in out.iterdir()) == kept  # nothing deleted by the refusal


def _processes_naming(path: Path) -> list[str]:
    found = subprocess.run(["pgrep", "-af", str(path)], capture_output=True, text=True).stdout
    return [line for line in found.splitlines() if "pgrep" not in line]


def test_embedded_teacher_resolves_everywhere(tmp_path):
    """teacher=embedded, and the shipped folder itself, resolve to a runnable copy (absolute VLM path)."""
    from snapflow.scripts.checkpoints import resolve_pretrained

    for given in ("embedded", str(EMBEDDED_DIR)):
        path = resolve_pretrained(given)
        vlm = json.loads((path / "config.json").read_text())["vlm_model_name"]
        assert Path(vlm).is_absolute() and (Path(vlm) / "config.json").is_file()


def _refused_demo(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    """Run snapflow-demo with `args` into `<tmp_path>/never`, a run its checks must refuse before any stage."""
    out = tmp_path / "never"
    proc = subprocess.run(
        [str(BIN / "snapflow-demo"), *args, f"out={out}"], capture_output=True, text=True, timeout=120
    )
    return proc, out


def test_an_unknown_probe_is_refused_before_anything_is_written(tmp_path):
    proc, out = _refused_demo(tmp_path, "probe=bimodal")
    assert proc.returncode == 2 and "probe='bimodal'" in proc.stderr and "multimodal" in proc.stderr
    assert not out.exists()


@pytest.mark.slow
def test_multimodal_probe_runs_end_to_end_on_a_tiny_teacher(tmp_path):
    from snapflow.scripts.demo_probe import PROBE_SAMPLERS
    from snapflow.scripts.tiny import build_tiny_teachers

    teacher = build_tiny_teachers(tmp_path / "tiny", ["smolvla"], image_size=64)["smolvla"]
    out = tmp_path / "probe"
    proc = subprocess.run(
        [str(BIN / "snapflow-demo"), "probe=multimodal", f"teacher={teacher}", f"out={out}",
         "probe_settings.episodes=1", "probe_settings.distill_demos_per_task=2",
         "probe_settings.offline_demos_per_task=1", "probe_settings.consistency_steps=3", "probe_settings.distill_noise_std=0.01",
         "probe_settings.option.steps=3", "probe_settings.option.consistency_loss=energy", "distill_steps=2", "distill_batch_size=2", "max_steps=20"],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == f"outputs: {out}"
    report = json.loads((out / "report.json").read_text())
    assert list(report["suites"]) == ["multimodal"]
    # The paper's recipe, the k-step option and the option student side by side.
    options = {"snapflow_k_1", "snapflow_option_1", "snapflow_option_2"}
    assert set(report["suites"]["multimodal"]) == {*PROBE_SAMPLERS, *options}
    assert report["samplers"]["snapflow_k_1"]["consistency_steps"] == 3
    recipe, option = report["samplers"]["snapflow_1"], report["samplers"]["snapflow_option_1"]
    assert recipe["consistency_steps"] == 2 and recipe["consistency_loss"] == "mse"
    assert (recipe["steps"], recipe["lr"], recipe["consistency_weight"]) == (2, 2.5e-5, 0.1)
    assert (option["steps"], option["lr"], option["consistency_weight"]) == (3, 3e-4, 1.0)
    assert option["consistency_loss"] == "energy" and report["samplers"]["snapflow_option_2"]["nfe"] == 2
    for entry in report["suites"]["multimodal"].values():
        assert entry["episodes"] == 4 and set(entry["modes"]) == {"near", "far"}
        assert entry["between_modes"] + entry["not_reached"] + sum(entry["modes"].values()) * 4 == 4
    assert "nearest_mode" in report["samplers"]["snapflow_1"]["offline_mse"]
    assert (out / "multimodal_modes.png").is_file()
    collected = json.loads((out / "data" / "meta" / "collect.json").read_text())
    assert collected["noise_std"] == 0.01  # the default demos are paired, diagonal, as the shipped teacher's
    assert collected["paired_modes"] is True and collected["detour"] == "diagonal"


def test_paired_probe_demos_need_an_even_count(tmp_path):
    """probe_settings.paired_modes with an odd demo count is refused before any stage (collect would fail)."""
    proc, out = _refused_demo(
        tmp_path,
        "probe=multimodal",
        "probe_settings.paired_modes=true",
        "probe_settings.distill_demos_per_task=25",
    )
    assert proc.returncode == 2 and "distill_demos_per_task must be even, got 25" in proc.stderr
    assert not out.exists()


def test_probe_detour_is_checked_before_any_stage(tmp_path):
    """A bad probe_settings.detour is named at once (collect would refuse it only after the teacher copy)."""
    proc, out = _refused_demo(tmp_path, "probe=multimodal", "probe_settings.detour=sideways")
    assert proc.returncode == 2 and "probe_settings.detour='sideways' is not valid" in proc.stderr
    assert not out.exists()


def test_the_probe_option_changes_only_its_keys_of_the_recipes_command(tmp_path):
    from omegaconf import OmegaConf

    from snapflow.scripts.demo_probe import _option_cmd, option_overrides

    cfg = OmegaConf.create({"distill_steps": 600, "distill_batch_size": 8})
    values = option_overrides(OmegaConf.create({"steps": 2400, "lr": 1e-4, "consistency_loss": "energy"}))
    cmd = _option_cmd(cfg, tmp_path / "t", tmp_path / "d", tmp_path / "run", values)
    assert [a for a in cmd if a.startswith(("steps=", "save_freq=", "lr=", "batch_size="))] == [
        "batch_size=8",
        "steps=2400",
        "save_freq=2400",
        "lr=0.0001",
    ]
    assert cmd[-1] == "extra=['--policy.snapflow.consistency_loss=energy']" and "method=snapflow" in cmd
    assert option_overrides(None) == {}
