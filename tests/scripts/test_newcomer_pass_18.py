"""Newcomer pass 18 (a fresh clone of f45d61f, issue 15): what its cases found outside the dataset checks
(those are in test_dataset_checks_pass_18.py), each named or handled now."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from snapflow.scripts.cli_values import run_cli
from snapflow.scripts.outputs import RESULTS_MARK, check_out
from snapflow.scripts.resume_checks import kept_after_interrupt, out_is_new

BIN = Path(sys.executable).parent


# --- Ctrl-C in a training run --------------------------------------------------------------------------


def test_ctrl_c_before_the_first_checkpoint_says_nothing_was_kept(tmp_path: Path) -> None:
    """train and distill said "keeps its last saved checkpoint" when none had been saved (out/ was gone)."""
    out = tmp_path / "run"
    assert out_is_new(out)
    out.mkdir()
    (out / "wandb").mkdir()  # what a run may write before its first checkpoint
    kept = kept_after_interrupt(out, started_empty=True)
    assert kept.startswith("no checkpoint was saved yet") and "starts the run again" in kept
    assert not out.exists()  # the same command may start again: nothing of this run is left in the way


def test_ctrl_c_never_removes_a_folder_the_run_did_not_start_in(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert not out_is_new(out)
    kept_after_interrupt(out, started_empty=False)
    assert (out / "notes.txt").read_text() == "mine"


def test_ctrl_c_after_a_checkpoint_names_its_step(tmp_path: Path) -> None:
    out = tmp_path / "run"
    (out / "checkpoints" / "000040" / "pretrained_model").mkdir(parents=True)
    (out / "checkpoints" / "last").symlink_to("000040")
    kept = kept_after_interrupt(out, started_empty=True)
    assert "checkpoint of step 40" in kept and "resume=true" in kept
    assert (out / "checkpoints" / "000040").is_dir()


def test_run_cli_prints_what_the_command_says_it_kept(capsys) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as stop:
        run_cli(interrupted, interrupted=lambda: "nothing was kept here")
    assert stop.value.code == 130
    assert capsys.readouterr().err.strip() == "stopped by Ctrl-C: nothing was kept here"


def test_ctrl_c_in_a_distillation_before_its_first_checkpoint(demos: Path, tmp_path: Path) -> None:
    """The whole pass-18 case: Ctrl-C (to the process group, as a terminal sends it) once lerobot-train has
    started, long before the first checkpoint: one line that says nothing was kept, and no out= or dataset
    view left to refuse the same command's rerun."""
    import os
    import signal

    out = tmp_path / "student"
    command = [str(BIN / "snapflow-distill"), "teacher=embedded", f"dataset={demos}", f"out={out}", "steps=500",
               "save_freq=400"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, process_group=0,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    for line in proc.stdout:  # "running: ... lerobot_train_entry.py ..." once the child is started
        if line.startswith("running:"):
            break
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "stopped by Ctrl-C: no checkpoint was saved yet" in err.splitlines()[-1], err[-2000:]
    assert not out.exists() and not Path(f"{out}.dataset").exists()


# --- a distillation's dataset view after the dataset changed --------------------------------------------


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from snapflow.sim.record import collect_dataset

    out = tmp_path_factory.mktemp("p18") / "ds"
    collect_dataset("goal", 1, out, task_ids=[0], resolution=32, progress=False)
    return out


def test_a_view_of_a_dataset_collected_again_is_refused(demos: Path, tmp_path: Path) -> None:
    """Collected again with overwrite=true, then distill resume=true trained on the new frames through the
    view's old copied meta, without a word."""
    from snapflow.scripts.checkpoints import resolve_pretrained
    from snapflow.scripts.teacher_stats import check_view_current, dataset_with_teacher_stats

    dataset = tmp_path / "ds"
    shutil.copytree(demos, dataset)
    view = dataset_with_teacher_stats(dataset, resolve_pretrained("embedded"), tmp_path / "student.dataset")
    check_view_current(view)  # unchanged: passes
    info = json.loads((dataset / "meta" / "info.json").read_text())
    info["total_frames"] += 1  # any change of the source's meta, as a new collect makes
    (dataset / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"has changed since this run started .*start a new out="):
        check_view_current(view)


# --- a checkpoint's processor files ---------------------------------------------------------------------


def _edited_teacher(tmp_path: Path, edit) -> Path:
    from snapflow.scripts.checkpoints import resolve_pretrained

    copy = tmp_path / "teacher"
    shutil.copytree(resolve_pretrained("embedded"), copy)
    edit(copy)
    return copy


def _edit_step(registry_name: str, change) -> callable:
    def edit(checkpoint: Path) -> None:
        path = checkpoint / "policy_preprocessor.json"
        pipeline = json.loads(path.read_text())
        step = next(s for s in pipeline["steps"] if s["registry_name"] == registry_name)
        change(step)
        path.write_text(json.dumps(pipeline))

    return edit


def _short_state_mean(checkpoint: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = next(checkpoint.glob("policy_preprocessor_step_*_normalizer_processor.safetensors"))
    stats = load_file(path)
    stats["observation.state.mean"] = stats["observation.state.mean"][:7].contiguous()
    save_file(stats, path)


def _identity(step: dict) -> None:
    step["config"]["norm_map"]["ACTION"] = "IDENTITY"


@pytest.mark.parametrize(
    ("edit", "match"),
    [  # each ran silently or ended in a traceback that did not name the file
        (_edit_step("normalizer_processor", _identity), r"norm_map has ACTION: IDENTITY, but config.json"),
        (_edit_step("to_batch_processor", lambda s: s.update(registry_name="to_batch_procesor")),
         r"names the step 'to_batch_procesor', which LeRobot does not know \(did you mean 'to_batch_processor'"),
        (_edit_step("tokenizer_processor", lambda s: s["config"].update(max_length=0)), r"max_length=0; it must be >= 1"),
        (_short_state_mean, r"observation.state mean has 7 values, the feature 8"),
    ],
)  # fmt: skip
def test_an_edited_processor_pipeline_is_named(tmp_path: Path, edit, match: str) -> None:
    from snapflow.deploy.runtimes import load_processors

    teacher = _edited_teacher(tmp_path, edit)
    with pytest.raises(ValueError, match=match):
        load_processors(teacher)


def test_eval_loads_processors_through_the_same_check(tmp_path: Path) -> None:
    from snapflow.sim.evaluate import SamplerSpec, load_policy

    teacher = _edited_teacher(tmp_path, _edit_step("normalizer_processor", _identity))
    with pytest.raises(ValueError, match=r"norm_map has ACTION: IDENTITY"):
        load_policy(SamplerSpec("teacher_10", str(teacher), 10), n_action_steps=10)


# --- building a tiny policy -----------------------------------------------------------------------------


def _stats(action_dim: int = 7, action_std: float = 1.0, action: bool = True) -> dict:
    stats = {"observation.state": {"mean": torch.zeros(8), "std": torch.ones(8)}}
    if action:
        stats["action"] = {"mean": torch.zeros(action_dim), "std": torch.full((action_dim,), action_std)}
    return stats


@pytest.mark.parametrize(
    ("stats", "match"),
    [  # no action stats ran unnormalised; zero std gave the mean for every action; 8-long failed in a matmul
        (_stats(action=False), r"no statistics for \['action'\]"),
        (_stats(action_std=0.0), r"action std is zero in every dimension"),
        (_stats(action_dim=8), r"action mean has 8 values, the feature 7"),
    ],
)
def test_make_tiny_policy_names_bad_dataset_stats(tiny_assets: Path, stats: dict, match: str) -> None:
    from snapflow.policies.tiny import lerobot_features, make_tiny_policy

    inputs, outputs = lerobot_features(image_size=32)
    make_tiny_policy("smolvla_snapflow", tiny_assets, inputs, outputs, dataset_stats=_stats())  # passes
    with pytest.raises(ValueError, match=match):
        make_tiny_policy("smolvla_snapflow", tiny_assets, inputs, outputs, dataset_stats=stats)


@pytest.mark.parametrize("key", ["image_size", "state_dim", "action_dim"])
def test_lerobot_features_refuses_sizes_below_one(key: str) -> None:
    from snapflow.policies.tiny import lerobot_features

    with pytest.raises(ValueError, match=rf"{key} must be an integer >= 1, got 0"):
        lerobot_features(**{key: 0})


# --- the gymnasium env ----------------------------------------------------------------------------------


def test_gym_make_refuses_a_flag_given_as_a_string() -> None:
    """object_state="false" was taken as True (a 74-D state for an 8-D policy)."""
    import gymnasium as gym

    from snapflow.sim import ENV_ID

    with pytest.raises(ValueError, match=r"object_state must be True or False, got 'false'"):
        gym.make(ENV_ID, suite="goal", task_id=0, object_state="false")


# --- results folders ------------------------------------------------------------------------------------


def test_an_emptied_results_mark_is_named(tmp_path: Path) -> None:
    """An empty .snapflow-results read as "holds ?'s results"."""
    out = tmp_path / "results"
    out.mkdir()
    (out / "report.json").write_text("{}")
    (out / RESULTS_MARK).write_text("")
    with pytest.raises(
        FileExistsError, match=r"has an empty .snapflow-results, which should name the command"
    ):
        check_out(out, True)
    assert (out / "report.json").is_file()


@pytest.mark.parametrize(
    ("files", "named"),
    [  # pass 18: both were "files that no snapflow command wrote"
        (("tiny_smolvlm/config.json",), "the tiny VLM and tokenizer that snapflow-train tiny=true builds"),
        (("config.json", "model.safetensors"), "is a LeRobot checkpoint"),
    ],
)
def test_folders_of_snapflow_train_are_named_as_such(tmp_path: Path, files: tuple, named: str) -> None:
    out = tmp_path / "folder"
    for name in files:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("{}")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match=rf"{named}.*results never replace it"):
            check_out(out, overwrite)


# --- the async policy server ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "said"),
    [  # each ended in a draccus, ZeroDivisionError or gRPC traceback
        ("--port=99999", "Port must be between 1 and 65535"),
        ("--fps=0", "--fps must be > 0"),
        ("--host=", "--host is empty"),
    ],
)
def test_policy_server_names_a_bad_flag(flag: str, said: str) -> None:
    proc = subprocess.run(
        [str(BIN / "snapflow-policy-server"), flag], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[
        -2000:
    ]


def test_policy_server_names_a_port_in_use() -> None:
    from snapflow.scripts.policy_server import check_server_flags

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=rf"cannot listen on 127.0.0.1:{port}"):
            check_server_flags(["--host=127.0.0.1", f"--port={port}"])


def test_add_observation_check_says_updated_when_it_was_there(tmp_path: Path, capsys) -> None:
    """Pass 17's left list: it said "added" when the check was already in the pipeline."""
    from snapflow.policies.lerobot_plugin.add_observation_check import main
    from snapflow.scripts.checkpoints import resolve_pretrained

    checkpoint = tmp_path / "student"
    shutil.copytree(resolve_pretrained("embedded"), checkpoint)
    assert main([str(checkpoint)]) == 0 and capsys.readouterr().out.startswith("added ")
    assert main([str(checkpoint)]) == 0 and capsys.readouterr().out.startswith("updated ")
