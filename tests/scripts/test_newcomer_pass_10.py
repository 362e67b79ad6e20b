"""What the tenth fresh-clone newcomer pass found, pinned: a user's `<out>.partial` folder is never deleted,
a mistyped local path is not taken for a Hub id, and values are named before any work."""

import subprocess
import sys
from pathlib import Path

import pytest

from snapflow.scripts.outputs import PARTIAL_MARK, RESULTS_MARK, atomic_out

BIN = Path(sys.executable).parent


def test_a_users_partial_folder_is_refused_and_kept_an_interrupted_runs_is_cleared(tmp_path: Path) -> None:
    """H10 / H113: collect (its own .partial) and every atomic_out command (eval, export, run, tiny)."""
    from snapflow.sim.record import collect_dataset

    for name in ("collected", "results"):
        mine = tmp_path / f"{name}.partial"
        mine.mkdir()
        (mine / "notes.txt").write_text("my notes")
        with pytest.raises(
            FileExistsError, match=r"results\.partial exists and was not left by|collected\.partial exists"
        ):
            if name == "collected":
                collect_dataset("spatial", 1, tmp_path / name, task_ids=[0], resolution=32, progress=False)
            else:
                with atomic_out(tmp_path / name, overwrite=False):
                    pass
        assert (mine / "notes.txt").read_text() == "my notes" and not (tmp_path / name).exists()
    from snapflow.scripts.outputs import check_out

    with pytest.raises(
        FileExistsError, match=r"results\.partial exists"
    ):  # pass 11: before any work, not after
        check_out(tmp_path / "results", overwrite=True)
    left = tmp_path / "again.partial"  # what a killed run of ours leaves: cleared, and the result has no mark
    left.mkdir()
    (left / PARTIAL_MARK).touch()
    (left / "stale.txt").write_text("half-written")
    with atomic_out(tmp_path / "again", overwrite=False) as partial:
        (partial / "result.txt").write_text("done")
    kept = sorted(p.name for p in (tmp_path / "again").iterdir())
    assert kept == [RESULTS_MARK, "result.txt"] and not left.exists()
    out = collect_dataset("spatial", 1, tmp_path / "ds", task_ids=[0], resolution=32, progress=False)
    assert not (out / PARTIAL_MARK).exists() and not out.with_name("ds.partial").exists()


def test_a_mistyped_local_path_is_named_not_sent_to_the_hub() -> None:
    """H105 / P40 / P29 / P13: load_runtime (and so snapflow-run) on a typo, an empty path, threads < 0."""
    from snapflow.deploy.runtimes import load_runtime

    with pytest.raises(FileNotFoundError, match=r"outputs/exprt: no local folder of that name"):
        load_runtime("outputs/exprt")  # org/name-shaped: tried on the Hub (offline here), then named
    with pytest.raises(ValueError, match="the policy path is empty"):
        load_runtime("")
    with pytest.raises(ValueError, match=r"threads=-1: a whole number"):
        load_runtime("outputs/exprt", threads=-1)


def test_raw_observations_of_the_wrong_kind_are_named() -> None:
    """P21 / P38 / P36: None, pixels as one array, a bool state (the student's preprocessor refuses it too)."""
    import numpy as np

    from snapflow.deploy.observation import to_lerobot_batch

    image = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="the observation must be a dict"):
        to_lerobot_batch(None)
    with pytest.raises(ValueError, match="pixels must be a dict of camera name"):
        to_lerobot_batch({"pixels": image, "agent_pos": np.zeros(8), "task": "x"})
    with pytest.raises(ValueError, match="agent_pos has dtype bool"):
        to_lerobot_batch({"pixels": {"image": image}, "agent_pos": np.zeros(8, bool), "task": "x"})
    with pytest.raises(ValueError, match=r"observation\.state has dtype bool"):
        to_lerobot_batch(
            {"observation.images.image": image, "observation.state": np.zeros(8, bool), "task": "x"}
        )


def test_values_checked_against_what_they_apply_to() -> None:
    """H42 / H44 (sampler fields), H80 / H87 (snapflow-run against the chunk), H103 (bench train=true)."""
    from omegaconf import OmegaConf

    from snapflow.deploy.bench import BenchConfig
    from snapflow.scripts.eval_checks import sampler_nfe as _sampler_nfe
    from snapflow.scripts.eval_checks import sampler_number as _sampler_number
    from snapflow.scripts.run import check_chunk_values

    with pytest.raises(ValueError, match=r"sampler 'x': noise_scale='abc' is not a number"):
        _sampler_number("x", "noise_scale", "abc")
    with pytest.raises(ValueError, match=r"sampler 'x': nfe=2.7 is not a whole number"):
        _sampler_nfe("x", 2.7)
    assert _sampler_nfe("x", "2") == 2 and _sampler_number("x", "noise_scale", "0.5") == 0.5

    def run(**values):
        base = {"actions_per_chunk": None, "crossfade_steps": 0, "queue_low_watermark": None}
        check_chunk_values(OmegaConf.create(base | values), chunk=10)

    run(crossfade_steps=9, queue_low_watermark=9)  # the largest that still run a row as predicted
    with pytest.raises(ValueError, match=r"crossfade_steps=20: choose 0..9"):
        run(crossfade_steps=20)
    with pytest.raises(ValueError, match=r"queue_low_watermark=5: choose 0..4"):
        run(actions_per_chunk=5, queue_low_watermark=5)
    with pytest.raises(ValueError, match=r"actions_per_chunk=11: choose 1..10"):
        run(actions_per_chunk=11)
    from snapflow.scripts.cli_values import check_types

    for key in (
        "queue_low_watermark",
        "actions_per_chunk",
    ):  # pass 11, K12 / K13: named before the policy loads
        with pytest.raises(ValueError, match=rf"{key}='abc' is not a number"):
            check_types(OmegaConf.create({key: "abc"}), "run")
    with pytest.raises(ValueError, match=r"train=true with batch=1"):
        BenchConfig(policy="smolvla", train=True, batch=1)
    BenchConfig(policy="smolvla", train=True, batch=2)


def test_demo_values_the_main_job_would_ignore_are_refused(tmp_path: Path) -> None:
    """H29: probe_settings without probe= used to start the main job without a word."""
    out = tmp_path / "never"
    proc = subprocess.run(
        [str(BIN / "snapflow-demo"), "probe_settings.episodes=2", "suites=[spatial]", f"out={out}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "probe_settings.episodes applies to probe=multimodal only" in proc.stderr
    assert not out.exists()


def test_demo_takes_a_training_run_folder_as_teacher(tmp_path: Path) -> None:
    """H39: teacher=<lerobot-train output dir> passed the demo's check, then failed on <dir>/config.json."""
    from omegaconf import OmegaConf

    from snapflow.scripts.demo import _teacher
    from snapflow.scripts.demo_probe import probe_teacher
    from snapflow.scripts.tiny import build_tiny_teachers

    built = build_tiny_teachers(tmp_path / "tiny", ["smolvla"], image_size=32)["smolvla"]
    run = tmp_path / "run"
    (run / "checkpoints" / "last").mkdir(parents=True)
    built.rename(run / "checkpoints" / "last" / "pretrained_model")  # the layout lerobot-train writes
    cfg = OmegaConf.create({"teacher": str(run)})
    for resolve in (_teacher, probe_teacher):
        resolved = Path(resolve(cfg, tmp_path / "out"))
        assert (resolved / "config.json").is_file() and resolved.parent.name == "last"
        assert resolved.name == "pretrained_model"
