"""Values a newcomer gets wrong are refused by name before any work starts (and before anything is
written or deleted): single values for lists, non-booleans, non-finite numbers, out-of-range ids, a
layout a suite does not have, main-job keys the probe would ignore, an out that already holds results."""

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from omegaconf import OmegaConf

from snapflow.scripts.cli_values import as_list, strict_bool

BIN = Path(sys.executable).parent
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_as_list_and_strict_bool() -> None:
    assert as_list(None) is None and as_list(0) == [0] and as_list("spatial") == ["spatial"]
    assert as_list(OmegaConf.create({"x": [1, 2]}).x) == [1, 2]
    assert (
        strict_bool("true", "k") is True and strict_bool(0, "k") is False and strict_bool(False, "k") is False
    )
    with pytest.raises(ValueError, match="held_out='maybe' is not a boolean"):
        strict_bool("maybe", "held_out")


def test_sim_refuses_a_layout_the_suite_lacks_and_bad_collect_values(tmp_path: Path) -> None:
    from snapflow.sim.env import MiniLiberoEnv
    from snapflow.sim.record import collect_dataset

    with pytest.raises(ValueError, match="fixed layout"):
        MiniLiberoEnv("multimodal", 0, layout="wide")
    with pytest.raises(ValueError, match="fixed layout"):
        collect_dataset("multimodal", 1, tmp_path / "a", layout="wide", progress=False)
    with pytest.raises(ValueError, match=r"task_ids \[5\] out of range .* 0\.\.3"):
        collect_dataset("multimodal", 1, tmp_path / "b", task_ids=[5], progress=False)
    with pytest.raises(ValueError, match="episodes_per_task must be >= 1"):
        collect_dataset("goal", 0, tmp_path / "c", task_ids=[0], progress=False)
    for bad in (float("nan"), float("inf"), -0.1):
        with pytest.raises(ValueError, match=r"noise_std must be in \[0, 0.5\)"):
            collect_dataset("goal", 1, tmp_path / "d", noise_std=bad, progress=False)
    with pytest.raises(ValueError, match=r"task_ids=\[\] selects no task"):
        collect_dataset("goal", 1, tmp_path / "e", task_ids=[], progress=False)
    with pytest.raises(ValueError, match="workers must be >= 1, got -1"):
        collect_dataset("goal", 1, tmp_path / "f", task_ids=[0], workers=-1, progress=False)
    assert not list(tmp_path.iterdir())  # nothing written, not even a .partial folder


def test_eval_names_the_suite_range_of_task_ids() -> None:
    from snapflow.sim.eval_pool import EvalSettings, evaluate_many
    from snapflow.sim.evaluate import SamplerSpec

    settings = EvalSettings(1, False, 64, 1, None, 0, "libero", 10, "cpu", 1)
    spec = {"teacher_10": SamplerSpec("teacher_10", Path("/never"), 10)}
    with pytest.raises(
        ValueError, match=r"task_ids \[5\] out of range for suite 'multimodal' \(valid: 0\.\.3\)"
    ):
        evaluate_many(spec, ["multimodal"], settings, task_ids=[5])


def _dataset_meta(root: Path, without: str | None = None) -> Path:
    """The metadata files `read_dataset_info` checks (as snapflow-collect writes them), less ``without``."""
    (root / "meta" / "episodes").mkdir(parents=True)
    for name, text in (("info.json", '{"features": {}}'), ("stats.json", "{}")):
        (root / "meta" / name).write_text(text)
    pq.write_table(pa.table({"task_index": [0]}), root / "meta" / "tasks.parquet")  # its footer is read
    if without is not None:
        target = root / "meta" / without
        target.rmdir() if target.is_dir() else target.unlink()
    return root


def _demo_cfg(**overrides: object) -> object:
    cfg = OmegaConf.load(CONFIGS / "demo.yaml")
    cfg.pop("defaults"), cfg.pop("hydra")
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value)
    return cfg


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"probe": "bimodal"}, "not a probe"),
        ({"probe": "multimodal", "episodes": 2}, r"ignores \['episodes'\]"),
        ({"probe": "multimodal", "task_ids": [0]}, r"ignores \['task_ids'\]"),
        ({"probe": "multimodal", "probe_settings.episodes": 0}, "probe_settings.episodes must be >= 1"),
        ({"probe": "multimodal", "probe_settings.episodes": 51}, "<= 50"),
        ({"probe": "multimodal", "probe_settings.consistency_steps": "abc"}, "consistency_steps"),
        ({"probe": "multimodal", "probe_settings.option.consistency_loss": "huber"}, "consistency_loss"),
        ({"probe": "multimodal", "probe_settings.option.steps": 2.5}, "option.steps"),
        ({"probe": "multimodal", "probe_settings.option.lr": "fast"}, "option.lr"),
        ({"probe": "multimodal", "probe_settings.option.weight": 1}, "option.weight is not an option"),
        ({"distill_steps": -3}, "distill_steps must be >= 1"),
        ({"max_steps": 0}, "max_steps must be >= 1"),
    ],
)
def test_demo_checks_every_value_before_a_stage(overrides: dict, match: str) -> None:
    from snapflow.scripts.demo import check_values

    with pytest.raises(ValueError, match=match):
        check_values(_demo_cfg(**overrides))


def test_demo_keeps_earlier_results_when_the_teacher_is_missing(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "report.json").write_text("{}")
    proc = subprocess.run(
        [str(BIN / "snapflow-demo"), "teacher=/nonexistent", f"out={out}", "overwrite=true"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "/nonexistent" in proc.stderr
    assert (out / "report.json").read_text() == "{}"


def test_tiny_refuses_an_out_with_models_and_a_bad_image_size(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("earlier")
    for args, match in (
        ([f"out={tmp_path}"], "overwrite=true"),
        ([f"out={tmp_path / 'n'}", "image_size=0"], "image_size"),
    ):
        proc = subprocess.run(
            [str(BIN / "snapflow-tiny"), *args], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 2 and match in proc.stderr
    assert (tmp_path / "keep.txt").read_text() == "earlier" and not (tmp_path / "n").exists()


def test_tiny_overwrite_replaces_the_folder_whole_and_points_at_its_own_assets(tmp_path: Path) -> None:
    import json

    from transformers import AutoTokenizer

    from snapflow.scripts.tiny import _body

    out = tmp_path / "tiny"
    settings = {"out": str(out), "image_size": 32, "seed": 0}
    _body(OmegaConf.create({**settings, "families": ["smolvla"], "overwrite": False}))
    (out / "notes.txt").write_text("a user's file beside the first build")
    with pytest.raises(FileExistsError, match=r"holds \['notes.txt'\], which the command"):  # never deleted
        _body(OmegaConf.create({**settings, "families": ["pi0"], "overwrite": True}))
    (out / "notes.txt").unlink()
    _body(OmegaConf.create({**settings, "families": ["pi0"], "overwrite": True}))
    from snapflow.scripts.outputs import RESULTS_MARK

    kept = sorted(p.name for p in out.iterdir())
    assert kept == [RESULTS_MARK, "assets", "pi0_teacher"]  # nothing of the old one left
    assert not out.with_name("tiny.partial").exists()
    name = json.loads((out / "pi0_teacher" / "config.json").read_text())["tokenizer_name"]
    assert name == str((out / "assets" / "tiny_paligemma_tokenizer").resolve())
    AutoTokenizer.from_pretrained(name)  # the recorded path is the renamed folder's, and it loads


def test_resume_refuses_values_the_resumed_run_would_ignore(tmp_path: Path) -> None:
    import json

    from snapflow.scripts.checkpoints import LAST_CHECKPOINT
    from snapflow.scripts.resume_checks import check_resume_values

    out = tmp_path / "student"
    (out / LAST_CHECKPOINT).mkdir(parents=True)
    saved = {"batch_size": 4, "seed": 1000, "policy": {"optimizer_lr": 2.5e-5}}
    saved["policy"]["snapflow"] = {"alpha": 0.5, "multistep_mode": "target_time", "consistency_weight": 0.1}
    (out / LAST_CHECKPOINT / "train_config.json").write_text(json.dumps(saved))
    cfg = OmegaConf.load(CONFIGS / "distill.yaml")
    cfg.out, cfg.alpha, cfg.batch_size, cfg.method = str(out), 0.5, 4, "fm"
    check_resume_values(cfg, {"alpha", "batch_size", "steps"})  # the same values, and steps may grow
    with pytest.raises(ValueError, match=r"would be ignored: method=fm \(the run has method=snapflow\)"):
        check_resume_values(cfg, {"method"})
    check_resume_values(cfg, set())  # method=fm here is not from the command line: nothing to compare
    _dataset_meta(tmp_path)  # what distill reads before the resume
    proc = subprocess.run(
        [str(BIN / "snapflow-distill"), "teacher=embedded", f"dataset={tmp_path}", f"out={out}",
         "resume=true", "lr=1e-4"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "would be ignored: lr=0.0001 (the run has lr=2.5e-05)" in proc.stderr, (
        proc.stderr
    )


def test_distill_refuses_before_touching_out_and_run_names_bad_values(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "x").write_text("earlier")
    proc = subprocess.run(
        [str(BIN / "snapflow-distill"), "teacher=embedded", f"dataset={tmp_path}", f"out={out}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "holds files that are not a training run (x)" in proc.stderr
    assert not Path(str(out) + ".dataset").exists()  # the dataset view next to out was not (re)written
    (out / "checkpoints").mkdir()  # what lerobot-train leaves: continued with resume=true
    proc = subprocess.run(
        [str(BIN / "snapflow-distill"), "teacher=embedded", f"dataset={tmp_path}", f"out={out}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "already holds a run" in proc.stderr and "resume=true" in proc.stderr
    proc = subprocess.run(
        [str(BIN / "snapflow-distill"), "teacher=embedded", f"dataset={tmp_path}", f"out={out / 'x'}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "is a file; choose a new out=" in proc.stderr  # newcomer pass 12
    for args, match in (
        (["policy=/nonexistent"], "no checkpoint or export directory"),
        (["policy=/nonexistent", "hz=inf"], "hz=inf: the control rate must be a finite number > 0 Hz"),
    ):
        proc = subprocess.run([str(BIN / "snapflow-run"), *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and match in proc.stderr, proc.stderr[-500:]


@pytest.mark.parametrize(
    ("name", "overrides", "match"),
    [
        ("collect", {"episodes_per_task": "abc"}, "episodes_per_task='abc' is not a number"),
        ("eval", {"held_out": "maybe"}, "held_out='maybe' is not a boolean"),
        ("distill", {"resume": "maybe"}, "resume='maybe' is not a boolean"),
        ("export", {"opset": "abc"}, "opset='abc' is not a number"),
        ("demo", {"probe_settings.episodes": "abc"}, "probe_settings.episodes='abc' is not a number"),
        ("run", {"hz": "nan"}, "hz=nan is not a number"),
        ("eval", {"resolution": "abc"}, "resolution='abc' is not a number"),  # null by default
        ("collect", {"task_ids": "abc"}, "task_ids='abc' is not a number"),
        (
            "distill",
            {"aplha": 0.3},
            r"unknown key aplha= \(did you mean alpha\?\); this command takes: teacher, ",
        ),  # +aplha=0.3
        ("demo", {"probe_settings.episode": 5}, "unknown key probe_settings.episode="),
    ],
)
def test_every_command_converts_values_to_their_types_by_name(name: str, overrides: dict, match: str) -> None:
    from snapflow.scripts.cli_values import check_types

    cfg = OmegaConf.load(CONFIGS / f"{name}.yaml")
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    with pytest.raises(ValueError, match=match):
        check_types(cfg, name)


def test_collect_takes_a_list_of_suites_as_the_demo_passes_it(tmp_path: Path) -> None:
    """snapflow-demo starts `snapflow-collect suite=[a,b]`: the one-value check must let `suite` be a list
    (it once refused it, and every `make demo` failed at its collect stage)."""
    import json
    import subprocess

    out = tmp_path / "data"
    proc = subprocess.run(
        [str(BIN / "snapflow-collect"), "suite=[spatial,goal]", "episodes_per_task=1", "task_ids=[0]",
         "resolution=32", f"out={out}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-800:]
    assert json.loads((out / "meta" / "info.json").read_text())["total_episodes"] == 2
    from snapflow.scripts.dataset_checks import read_dataset_info

    read_dataset_info(out)  # what collect writes passes the training commands' metadata check


def test_single_values_become_lists_and_repeats_are_refused() -> None:
    from snapflow.scripts.cli_values import check_types, check_unique

    cfg = OmegaConf.load(CONFIGS / "eval.yaml")
    OmegaConf.update(cfg, "suites", "spatial")
    OmegaConf.update(cfg, "task_ids", 0)  # default null: typed by name
    check_types(cfg, "eval")
    assert list(cfg.suites) == ["spatial"] and list(cfg.task_ids) == [0]
    with pytest.raises(ValueError, match=r"task_ids lists \['0'\] more than once"):
        check_unique("task_ids", [0, 0, 1])


def test_demo_refuses_suites_and_task_ids_before_deleting_earlier_results(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "report.json").write_text("{}")
    for bad in ("task_ids=[12]", "suites=[spatal]", "task_ids=[0,0]"):
        proc = subprocess.run(
            [str(BIN / "snapflow-demo"), f"out={out}", "overwrite=true", bad],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 2, (bad, proc.stderr[-500:])
    assert (out / "report.json").read_text() == "{}"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"image_sizes": (0,)}, "image_sizes must be in"),
        ({"dtype": "bogus"}, "dtype must be"),
        ({"device": "tpu"}, "device must be"),
    ],
)
def test_bench_config_refuses_bad_values(overrides: dict, match: str) -> None:
    from snapflow.deploy.bench import BenchConfig

    with pytest.raises(ValueError, match=match):
        BenchConfig(policy="smolvla", **overrides)


def test_bench_always_records_its_torch_baseline() -> None:
    """torch eager is always measured (every ratio's baseline), so the config says so; runtimes=[] is named."""
    from snapflow.deploy.bench import BenchConfig

    with pytest.raises(ValueError, match=r"runtimes=\[\] measures nothing"):
        BenchConfig(policy="smolvla", runtimes=())
    assert tuple(BenchConfig(policy="smolvla", runtimes=("onnxruntime",)).runtimes) == (
        "torch",
        "onnxruntime",
    )


def test_env_refuses_an_init_state_beyond_the_frozen_ones_unless_striding() -> None:
    from snapflow.sim.env import MiniLiberoEnv
    from snapflow.sim.init_states import N_FROZEN

    with pytest.raises(ValueError, match=f"0..{N_FROZEN - 1}"):
        MiniLiberoEnv("goal", 0, init_state=N_FROZEN, render=False)
    env = MiniLiberoEnv("goal", 0, render=False)
    with pytest.raises(ValueError, match="options\\['init_state'\\]"):
        env.reset(options={"init_state": 73})
    env.close()
    strided = MiniLiberoEnv("goal", 0, init_state=N_FROZEN + 1, init_state_stride=2, render=False)
    strided.reset()  # LeRobot's n_envs batching wraps on purpose
    strided.close()


def test_a_truncated_weights_file_is_named_before_loading(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from snapflow.policies.weights_file import check_weights_file

    good = tmp_path / "model.safetensors"
    save_file({"w": torch.zeros(64, 64)}, str(good))
    check_weights_file(good)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(ValueError, match="truncated"):
        check_weights_file(cut)
    (tmp_path / "junk.safetensors").write_bytes(b"\x01\x02")
    with pytest.raises(ValueError, match="cannot read"):
        check_weights_file(tmp_path / "junk.safetensors")


def test_a_failed_lerobot_train_ends_in_one_line_and_exit_1(capsys: pytest.CaptureFixture) -> None:
    from snapflow.scripts.cli_values import run_cli
    from snapflow.scripts.lerobot_cli import run_lerobot_train

    with pytest.raises(SystemExit) as stop:  # the real lerobot-train refuses an unknown flag
        run_cli(lambda: run_lerobot_train(["--no_such_flag=1"]) and None)
    assert stop.value.code == 1
    err = capsys.readouterr().err  # the child's stderr passed on, then our one line
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: lerobot-train exited with code") and "Traceback" not in err
    # the child's own reason in that line, not only 600 lines above it (pass 16)
    assert last.startswith(
        "error: lerobot-train exited with code 2: unrecognized arguments: --no_such_flag=1"
    )


@pytest.mark.parametrize(
    ("name", "argv", "match"),
    [
        (
            "collect",
            ["episdoes=3"],
            "unknown key episdoes= (did you mean episodes_per_task?); this command takes: suite,",
        ),
        ("distill", ["overwrite=true"], "unknown key overwrite=; this command takes: teacher"),
        (
            "demo",
            ["probe_settings.episode=3"],
            "unknown key probe_settings.episode= (did you mean episodes?); probe_settings takes",
        ),
        (
            "demo",
            ["probe_settings.option.weight=1"],
            "probe_settings.option.weight= (did you mean consistency_weight?); probe_settings.option takes",
        ),
        # newcomer pass 12: a Hydra struct error (exit 1) in one order, the sub-key dropped in the other
        ("demo", ["probe_settings.option=null", "probe_settings.option.lr=1e-4"], "option=null drops"),
        (
            "demo",
            ["probe_settings.option.lr=1e-4", "probe_settings.option=null"],
            "so probe_settings.option.lr=",
        ),
        ("demo", ["probe_settings.option=null", "+probe_settings.option.lr=1e-4"], "give one of the two"),
        ("demo", ["probe_settings.option=null", "probe_settings.optional=1"], "unknown key"),
        ("train", ["extra=--policy.optimizer_lr=1e-4"], "\"extra=['--policy.optimizer_lr=1e-4']\""),
        ("eval", ["+sampler_defs.mine={policy: x}", "exports={a: b}", "hydra.run.dir=."], None),  # open dicts
        ("export", ["--help"], None),
        ("run", ["seconds=2", "seconds=3"], "seconds= is given twice; give it once"),  # Hydra keeps the last
    ],
)
def test_argv_is_checked_against_the_config_before_hydra(name: str, argv: list, match: str | None) -> None:
    from snapflow.scripts.cli_values import argv_problem

    problem = argv_problem(name, argv)
    assert problem is None if match is None else match in problem


def test_a_device_this_machine_lacks_is_named() -> None:
    import torch

    from snapflow.scripts.cli_values import check_device

    check_device(None)
    check_device("cpu")
    with pytest.raises(ValueError, match="device='tpu': choose one of cpu, cuda"):
        check_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device is available here"):
            check_device("cuda")
    proc = subprocess.run(
        [str(BIN / "snapflow-collect"), "suite=spatial", "episdoes=3", "out=/nonexistent/x"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown key episdoes=")


@pytest.mark.parametrize(
    ("name", "overrides", "match"),
    [
        ("collect", {"episodes_per_task": 1.5}, "episodes_per_task=1.5 is not a whole number"),
        ("eval", {"resolution": float("nan")}, "resolution=nan is not a number"),
        ("distill", {"alpha": "abc"}, "alpha='abc' is not a number"),
    ],
)
def test_numbers_are_whole_where_they_must_be_and_named_when_not_numbers(name, overrides, match) -> None:
    from snapflow.scripts.cli_values import check_types

    cfg = OmegaConf.load(CONFIGS / f"{name}.yaml")
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value)
    with pytest.raises(ValueError, match=match):
        check_types(cfg, name)
    run = OmegaConf.load(CONFIGS / "run.yaml")
    run.seconds = "2.5"
    check_types(run, "run")
    assert run.seconds == 2.5  # seconds may be fractional


def test_resume_refuses_a_finished_step_count_another_family_and_another_teacher(tmp_path: Path) -> None:
    import json

    from snapflow.scripts.checkpoints import LAST_CHECKPOINT
    from snapflow.scripts.resume_checks import check_resume_values

    out = tmp_path / "run"
    (out / LAST_CHECKPOINT).mkdir(parents=True)
    (out / "checkpoints/last/training_state").mkdir(parents=True)
    (out / "checkpoints/last/training_state/training_step.json").write_text(json.dumps({"step": 40}))
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "config.json").write_text('{"type": "smolvla"}')
    saved = {"policy": {"type": "smolvla_snapflow", "pretrained_path": str(teacher)}}
    (out / LAST_CHECKPOINT / "train_config.json").write_text(json.dumps(saved))
    other = tmp_path / "other_teacher"
    other.mkdir()
    (other / "config.json").write_text('{"type": "smolvla"}')
    cfg = OmegaConf.create({"out": str(out), "steps": 40, "policy": "pi0", "teacher": str(other)})
    with pytest.raises(ValueError, match="is at step 40; steps=40 must exceed it"):
        check_resume_values(cfg, set())
    cfg.steps = 80
    with pytest.raises(ValueError, match=r"would be ignored: policy=pi0 \(the run trains smolvla\)"):
        check_resume_values(cfg, {"policy"})
    with pytest.raises(ValueError, match=r"would be ignored: teacher=.* \(the run was distilled from"):
        check_resume_values(cfg, {"teacher"})
    cfg.teacher = str(teacher)
    check_resume_values(cfg, {"teacher"})  # the same teacher resumes
    # After one resume lerobot-train records the run's own checkpoint as pretrained_path: the original
    # teacher is read from the earliest checkpoint, so resuming again with it is not refused ...
    first = out / "checkpoints" / "000020" / "pretrained_model"
    first.mkdir(parents=True)
    (first / "train_config.json").write_text(json.dumps(saved))
    resumed = {"policy": {"type": "smolvla_snapflow", "pretrained_path": str(out / LAST_CHECKPOINT)}}
    (out / LAST_CHECKPOINT / "train_config.json").write_text(json.dumps(resumed))
    check_resume_values(cfg, {"teacher"})
    # A resume on another dataset is named; distill's view of the same dataset (its data link) is not.
    data, view = tmp_path / "data", tmp_path / "run.dataset"
    (data / "data").mkdir(parents=True)
    view.mkdir()
    (view / "data").symlink_to(data / "data")
    (out / LAST_CHECKPOINT / "train_config.json").write_text(
        json.dumps({**resumed, "dataset": {"root": str(view)}})
    )
    cfg.dataset = str(data)
    check_resume_values(cfg, {"dataset"})
    cfg.dataset = str(other)
    with pytest.raises(
        ValueError, match=r"would be ignored: dataset=.*other_teacher \(the run trains on .*data\)"
    ):
        check_resume_values(cfg, {"dataset"})
    # ... and every ignored value is named at once.
    cfg.teacher, cfg.batch_size = str(other), 3
    (out / LAST_CHECKPOINT / "train_config.json").write_text(json.dumps({**resumed, "batch_size": 2}))
    with pytest.raises(
        ValueError, match=r"teacher=.*other_teacher .*; batch_size=3 \(the run has batch_size=2\)"
    ):
        check_resume_values(cfg, {"teacher", "batch_size"})


def test_an_export_dir_is_named_where_a_checkpoint_is_needed_and_a_swapped_student_too(
    tmp_path: Path,
) -> None:
    from snapflow.deploy.bench import BenchConfig, build_policy
    from snapflow.scripts.checkpoints import resolve_pretrained
    from snapflow.scripts.eval import _samplers

    export = tmp_path / "export"
    export.mkdir()
    (export / "contract.json").write_text("{}")
    with pytest.raises(ValueError, match="is a snapflow-export directory"):
        resolve_pretrained(export)
    with pytest.raises(ValueError, match="is a snapflow-export directory"):
        build_policy(BenchConfig(policy=str(export)), None)
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "config.json").write_text('{"type": "smolvla"}')
    with pytest.raises(ValueError, match="size=real applies to family names"):
        build_policy(BenchConfig(policy=str(teacher), size="real"), None)
    cfg = OmegaConf.load(CONFIGS / "eval.yaml")
    cfg.student, cfg.out = str(teacher), str(tmp_path / "ev")
    with pytest.raises(
        ValueError, match="is not a \\*_snapflow student \\(teacher and student swapped\\?\\)"
    ):
        _samplers(cfg)
    cfg.student, cfg.exports = None, "just/a/path"
    with pytest.raises(ValueError, match="exports must map sampler names to export dirs"):
        _samplers(cfg)


def test_export_refuses_an_opset_the_exporter_cannot_write() -> None:
    from snapflow.scripts.export import _body

    cfg = OmegaConf.load(CONFIGS / "export.yaml")
    cfg.policy, cfg.out, cfg.opset = "x", "y", 7
    with pytest.raises(ValueError, match="opset=7: choose 18 to 23"):
        _body(cfg)


def _cli(command: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / command), *args], capture_output=True, text=True, timeout=180, cwd=cwd)


@pytest.mark.parametrize(
    "command, args, match",
    [
        ("snapflow-export", ["policy=/nonexistent", "out={tmp}/e", "fps=0"], "fps=0: the control rate"),
        ("snapflow-export", ["policy=/nonexistent", "out={tmp}/e", "image_size=[64]"],
         r"image_size=\[64\] is a list; image_size takes a single value"),
        ("snapflow-run", ["policy=/nonexistent", "inference=xx"],
         "inference=xx: choose one of auto, thread, inline, inline_blocking"),
        ("snapflow-eval", ["teacher=embedded", "out={tmp}/v", "inference_delay=[3]"],
         "inference_delay set the chunking sweep; add chunking=\\[...\\] or drop them"),
        ("snapflow-eval", ["exports={int8:", "{tmp}/x}", "out={tmp}/v"],
         r"exports=\{int8: is cut short .* quote the whole value"),
        ("snapflow-collect", ["suite=goal", "episodes_per_task=1", "task_ids=[0]", "out={tmp}/f/info.json",
                              "overwrite=true"], r"out=.*info.json is a file: out= names a folder"),
        ("snapflow-collect", ["suite=goal", "episodes_per_task=1", "out="], "out= is empty: name a folder"),
        ("snapflow-distill", ["teacher=embedded", "dataset={tmp}/f", "out={tmp}/d", "num_processes=0"],
         "num_processes must be >= 1, got 0"),
        ("snapflow-distill", ["teacher=embedded", "dataset={tmp}/bad", "out={tmp}/d"],
         r"dataset=.*bad: .*info.json is not valid JSON"),
        ("snapflow-bench", ["policy=smolvla", "size=tiny", "nfe=[1,abc]", "out={tmp}/b"],
         "nfe='abc' is not a number"),
        ("snapflow-collect", ["suite=goal", "episodes_per_task=1", "task_ids=[0]", "out={tmp}/f/info.json/d"],
         r"lies under .*info.json, which is a file"),
        ("snapflow-train", ["policy=smolvla_snapflow", "tiny=true", "dataset={tmp}/f", "out={tmp}/t"],
         r"a \*_snapflow student comes from snapflow-distill"),
        ("snapflow-eval", ["teacher=embedded", "suites=[]", "out={tmp}/v"], r"suites=\[\] names no suite"),
        ("snapflow-demo", ["run_seconds=0", "out={tmp}/demo"], "run_seconds must be > 0"),
        ("snapflow-demo", ["distill_noise_std=-0.1", "out={tmp}/demo"], "distill_noise_std must be a finite"),
        ("snapflow-demo", ["probe=multimodal", "distill_noise_std=0.05", "out={tmp}/demo"],
         r"probe=multimodal ignores \['distill_noise_std'\]: set .*probe_settings.distill_noise_std"),
        ("snapflow-export", ["policy={tmp}/badcfg", "out={tmp}/e"], r"badcfg/config.json is not valid JSON"),
    ],
)  # fmt: skip
def test_newcomer_pass_4_values_are_named_before_any_work(tmp_path: Path, command, args, match) -> None:
    """Cases a fresh-clone newcomer pass found accepted, ignored or ending in a traceback: one named line,
    exit 2, nothing written (the collect cases point out= at a file inside a folder of results)."""
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "info.json").write_text("{}")
    (tmp_path / "bad" / "meta").mkdir(parents=True)
    (tmp_path / "bad" / "meta" / "info.json").write_text("{")  # a dataset whose info.json is cut short
    (tmp_path / "badcfg").mkdir()
    (tmp_path / "badcfg" / "config.json").write_text("{")  # a checkpoint whose config.json is cut short
    proc = _cli(command, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert proc.returncode == 2, proc.stderr
    import re

    assert re.search(match, proc.stderr) and "Traceback" not in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "bad", "badcfg", "config.json", "f", "info.json", "info.json", "meta",
    ]  # fmt: skip


def test_extra_flags_may_not_repeat_what_the_command_sets() -> None:
    """steps=2 extra=['--steps=6'] trained 6 steps without a word (LeRobot keeps the last flag)."""
    from snapflow.scripts.lerobot_cli import check_extra_flags

    args = ["--policy.type=smolvla", "--dataset.root=data", "--output_dir=out", "--steps=2", "--batch_size=2"]
    check_extra_flags(args, ["--policy.optimizer_lr=1e-4"])  # a key the command leaves alone passes
    with pytest.raises(ValueError, match=r"extra=\['--steps=6'\] sets what this command already passes"):
        check_extra_flags(args, ["--steps=6"])


def test_resume_names_a_truncated_checkpoint_file(tmp_path: Path) -> None:
    """resume=true checks the weights and optimizer state it will load, naming a cut-short file."""
    from safetensors.torch import save_file

    from snapflow.scripts.lerobot_cli import resume_args

    model = tmp_path / "checkpoints" / "last" / "pretrained_model"
    state = model.parent / "training_state"
    model.mkdir(parents=True)
    state.mkdir()
    (model / "train_config.json").write_text("{}")
    for path in (model / "model.safetensors", state / "optimizer_state.safetensors"):
        save_file({"w": torch.zeros(64)}, path)
    assert resume_args(tmp_path)[0] == "--resume=true"  # whole files pass
    data = (state / "optimizer_state.safetensors").read_bytes()
    (state / "optimizer_state.safetensors").write_bytes(data[:-10])
    with pytest.raises(ValueError, match=r"optimizer_state\.safetensors: truncated.*start a new out="):
        resume_args(tmp_path)
    (tmp_path / "checkpoints" / "000002").mkdir()  # the way on names the run's earlier checkpoint (pass 15)
    with pytest.raises(ValueError, match=r"earlier checkpoint \(000002\): point checkpoints/last at it"):
        resume_args(tmp_path)
    (state / "optimizer_state.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"optimizer_state\.safetensors is missing"):
        resume_args(tmp_path)


@pytest.mark.parametrize(
    "command, args",
    [
        ("snapflow-export", ["policy={ckpt}", "out={ckpt}"]),
        ("snapflow-eval", ["student={ckpt}", "samplers=[snapflow_1]", "out={ckpt}"]),
        ("snapflow-eval", ["student={tmp}/other", "dataset={ckpt}", "out={tmp}"]),  # out= holds an input
        ("snapflow-run", ["policy={ckpt}", "robot=sim", "task=spatial/0", "out={ckpt}"]),
        ("snapflow-demo", ["teacher={ckpt}", "out={tmp}"]),
    ],
)  # fmt: skip
def test_overwrite_never_replaces_what_the_command_reads(tmp_path: Path, command, args) -> None:
    """overwrite=true with out= at (or above) the checkpoint or dataset the command reads deleted it (exit 0);
    now refused by name before any work, the input intact."""
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    export = command in (
        "snapflow-eval",
        "snapflow-run",
    )  # they run exports; export and the demo read checkpoints
    names = ["config.json", "model.safetensors", *(["contract.json"] if export else [])]
    for (
        name
    ) in names:  # a checkpoint (export's policy, the demo's teacher) or an export, as the refusal needs
        (ckpt / name).write_text('{"type": "smolvla"}' if name == "config.json" else "{}")
    (tmp_path / "other").mkdir()
    filled = [a.replace("{ckpt}", str(ckpt)).replace("{tmp}", str(tmp_path)) for a in args]
    proc = _cli(command, *filled, "overwrite=true")
    assert proc.returncode == 2, proc.stderr
    assert "an input of this command: writing the results there would delete it" in proc.stderr, proc.stderr
    assert sorted(p.name for p in ckpt.iterdir()) == sorted(names)


def _trt_usable() -> bool:
    from snapflow.deploy.tensorrt_engine import trt_usable

    return trt_usable()[0]


@pytest.mark.parametrize(
    "command, args, match",
    [
        ("snapflow-eval", ["teacher=embedded", "out={tmp}/v", "threads=0"], "threads must be >= 1, got 0"),
        ("snapflow-run", ["policy=/nonexistent", "threads=0"], "threads must be >= 1, got 0"),
        ("snapflow-eval", ["teacher=embedded", "out={tmp}/v", "latency_calls=-1"],
         r"latency_calls must be in \[0, 10000\] \(0 = in-rollout timing only\), got -1"),
        ("snapflow-eval", ["teacher=embedded", "out={tmp}/v", "dataset={tmp}/ds", "mse_stride=0"],
         "mse_stride must be >= 1, got 0"),
        ("snapflow-eval", ["teacher=embedded", "out={tmp}/v", "dataset={tmp}/ds", "mse_stride=-2"],
         "mse_stride must be >= 1, got -2"),
        ("snapflow-eval", ["teacher=embedded", "out={tmp}/v", "dataset={tmp}/ds", "mse_max_samples=0"],
         "mse_max_samples must be >= 1, got 0"),
        ("snapflow-eval", ["teacher=embedded", "out={tmp}/v", "dataset={tmp}/ds", "episodes_for_mse=0"],
         "episodes_for_mse must be >= 1, got 0"),
        ("snapflow-run", ["policy=/nonexistent", "fault=nan", "fault_after=-1"], "fault_after must be >= 0"),
        ("snapflow-run", ["policy=/nonexistent", "robot=sim", "task=spatial/0", "robot_config={tmp}/none.yaml"],
         r"robot_config=.*none.yaml is only read with robot=lerobot \(robot=sim\)"),
        ("snapflow-run", ["policy=/nonexistent", "robot=lerobot", "task=pick", "robot_config={tmp}/none.yaml"],
         r"robot_config=.*none.yaml: no such file"),
        ("snapflow-run", ["policy=/nonexistent", "robot=sim", "task=spatial"],
         r"task=spatial: with robot=sim the task is <suite>/<task id>, e.g. spatial/0"),
        ("snapflow-run", ["policy=/nonexistent", "robot=sim", "task=spatial/10"],
         r"task=spatial/10: the task id must be in 0..9"),
        pytest.param(
            "snapflow-bench", ["policy=smolvla", "size=tiny", "nfe=[1]", "runtimes=[tensorrt]", "repeats=1",
                               "warmup=0", "out={tmp}/k07"], "runtimes lists tensorrt, which cannot run here",
            marks=pytest.mark.skipif(_trt_usable(), reason="TensorRT runs here: the bench times it"),
        ),
        pytest.param(
            "snapflow-export", ["policy=embedded", "tensorrt=true", "out={tmp}/x12"],
            "tensorrt=true but TensorRT cannot run here",
            marks=pytest.mark.skipif(_trt_usable(), reason="TensorRT runs here: the export builds an engine"),
        ),
        ("snapflow-bench", ["policy=smolvla", "size=tiny", "nfe=[1]", "runtimes=[torch]", "image_sizes=[50]",
                            "repeats=1", "warmup=0", "out={tmp}/k10"],
         r"image_sizes=\[50\]: image_size=50: must be a multiple of 32 px"),
        ("snapflow-bench", ["policy=pi0", "size=tiny", "nfe=[1]", "image_sizes=[64]", "out={tmp}/k11"],
         r"image_sizes=\[64\]: image_sizes applies to SmolVLA only"),
        ("snapflow-bench", ["policy=smolvla", "size=tiny", "opset=12", "out={tmp}/k17"],
         "opset=12: choose 18 to 23"),
        ("snapflow-collect", ["suite=spatial", "episodes_per_task=1", "task_ids=0", "resolution=32", "seed=-5",
                              "out={tmp}/c17"], "seed must be >= 0, got -5"),
        ("snapflow-train", ["out={tmp}/run", "dataset={tmp}/ds", "steps=30", "resume=true"],
         r"run/checkpoints/last/pretrained_model/train_config.json is not valid JSON \(Expecting"),
        ("snapflow-train", ["policy=smolvla", "dataset={tmp}/no_episodes", "out={tmp}/t"],
         r"dataset=.*no_episodes has no meta/episodes/ \(nor the older meta/episodes.jsonl\)"),
        ("snapflow-train", ["policy=smolvla", "dataset={tmp}/no_tasks", "out={tmp}/t"],
         r"dataset=.*no_tasks has no meta/tasks.parquet \(nor the older meta/tasks.jsonl\)"),
        ("snapflow-distill", ["teacher=embedded", "dataset={tmp}/no_stats", "out={tmp}/d"],
         r"dataset=.*no_stats has no meta/stats.json"),
    ],
)  # fmt: skip
def test_newcomer_pass_8_values_are_named_before_any_work(tmp_path: Path, command, args, match) -> None:
    """Cases a fresh-clone newcomer pass found ending in a traceback, taken silently (threads=0, a negative
    fault_after or latency_calls, a robot_config the sim ignores, task=spatial without its id, a bench runtime
    or image size that cannot run) or named without the key or the file (seed=-5, a cut-short
    train_config.json, a dataset missing its episodes, tasks or stats): one named line, exit 2, nothing
    written."""
    import re

    _dataset_meta(tmp_path / "ds")
    for missing in ("episodes", "tasks.parquet", "stats.json"):
        name = {"episodes": "no_episodes", "tasks.parquet": "no_tasks", "stats.json": "no_stats"}[missing]
        _dataset_meta(tmp_path / name, without=missing)
    config = tmp_path / "run" / "checkpoints" / "last" / "pretrained_model" / "train_config.json"
    config.parent.mkdir(parents=True)
    config.write_text('{\n  "dataset": {\n    "repo_id": "local/ds",\n    "root": "/data",\n')  # cut short
    before = sorted(tmp_path.rglob("*"))
    proc = _cli(command, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert re.search(match, proc.stderr) and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert sorted(tmp_path.rglob("*")) == before  # no out, no .partial, no dataset view


def test_newcomer_pass_8_python_values_are_named() -> None:
    """Through the Python API: a 0-row observation batch is named as such (not as task=[]), a state that is
    not numbers names its key, and the offline MSE refuses a stride or sample cap below 1 (was taken as 1)."""
    from snapflow.deploy.observation import to_lerobot_batch
    from snapflow.policies.lerobot_plugin.observation_check import check_observation_batch
    from snapflow.policies.offline_mse import offline_action_mse

    features = {"observation.state": [8], "observation.images.image": [3, 4, 4]}
    empty = {"observation.state": torch.zeros(0, 8), "observation.images.image": torch.zeros(0, 3, 4, 4)}
    with pytest.raises(ValueError, match="the observation batch has 0 rows"):
        check_observation_batch(empty, [], features)
    one_row = {k: torch.zeros(1, *v.shape[1:]) for k, v in empty.items()}
    check_observation_batch(one_row, ["pick it up"], features)  # the same batch with a row passes
    with pytest.raises(ValueError, match=r"observation\.state must be numbers .*could not convert string"):
        to_lerobot_batch({"observation.state": ["a"] * 8, "task": "x"})
    with pytest.raises(ValueError, match="agent_pos must be numbers"):
        to_lerobot_batch({"agent_pos": ["a"] * 8, "task": "x"})
    for stride, cap, match in (
        (0, 200, "mse_stride must be >= 1, got 0"),
        (10, 0, "mse_max_samples must be >= 1"),
    ):
        with pytest.raises(ValueError, match=match):
            offline_action_mse(None, None, None, "/nonexistent", stride=stride, max_samples=cap)


def test_run_json_records_the_policy_and_the_task(tmp_path: Path) -> None:
    """run.json said how a run went but not what ran: it now records the policy (as loaded) and the task."""
    import json

    from snapflow.scripts.checkpoints import resolve_pretrained

    proc = _cli(
        "snapflow-run", "policy=embedded", "robot=sim", "task=spatial/3", "seconds=1", f"out={tmp_path}/r"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["task"] == "spatial/3" and run["policy"] == str(resolve_pretrained("embedded"))


@pytest.mark.parametrize(
    "command, args, match",
    [
        ("snapflow-distill", ["teacher=embedded", "dataset={tmp}/ds", "out={tmp}/ds", "steps=2"],
         r"out=.*/ds is .*/ds, an input of this command"),
        ("snapflow-train", ["policy=smolvla", "tiny=true", "dataset={tmp}/ds", "out={tmp}", "steps=2"],
         r"out=.* holds .*/ds, an input of this command"),
        ("snapflow-bench", ["policy={tmp}/ckpt", "size=tiny", "out={tmp}/ckpt", "overwrite=true"],
         r"out=.*/ckpt is .*/ckpt, an input of this command"),
        ("snapflow-train", ["policy=smolvla", "dataset={tmp}/ds", "out={tmp}/t", "steps=2",
                            "extra=['--steps=4']"], r"configs/<command>.yaml\) instead"),
        ("snapflow-train", ["policy=smolvla", "tiny=true", "dataset={tmp}/nostate", "out={tmp}/t"],
         r"nostate has no observation.state feature \(its features: \['action'\]\)"),
    ],
)  # fmt: skip
def test_newcomer_pass_9_values_are_named_before_any_work(tmp_path: Path, command, args, match) -> None:
    """out= at the dataset (distill said "already holds a run; resume=true") or at the checkpoint a bench
    times (it wrote into it); an extra= clash no longer suggests lr=, which snapflow-train does not have."""
    import json
    import re

    state = {"dtype": "float32", "shape": [8], "names": None}
    info = {"features": {"observation.state": state, "action": {**state, "shape": [7]}}}
    (_dataset_meta(tmp_path / "ds") / "meta" / "info.json").write_text(json.dumps(info))
    (_dataset_meta(tmp_path / "nostate") / "meta" / "info.json").write_text('{"features": {"action": {}}}')
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text('{"type": "smolvla"}')
    before = sorted(tmp_path.rglob("*"))
    proc = _cli(command, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert re.search(match, proc.stderr) and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "lr=" not in proc.stderr
    assert sorted(tmp_path.rglob("*")) == before


def test_newcomer_pass_9_python_inputs_are_named(tmp_path: Path) -> None:
    """A state given as a Python list (the check said "has shape ()"), a state of None (read as NaN), and
    load_runtime on a file or an empty local path (LeRobot asked the Hub)."""
    from snapflow.deploy.observation import to_lerobot_batch
    from snapflow.deploy.runtimes import load_runtime
    from snapflow.policies.lerobot_plugin.observation_check import check_observation_batch

    features = {"observation.state": [8]}
    with pytest.raises(ValueError, match=r"observation\.state is a list: the policy takes a torch tensor"):
        check_observation_batch({"observation.state": [0.0] * 8}, ["pick"], features)
    with pytest.raises(ValueError, match=r"observation\.state is None: the robot's state is missing"):
        to_lerobot_batch({"observation.state": None, "task": "x"})
    (tmp_path / "notes.md").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        load_runtime(tmp_path / "notes.md")
    with pytest.raises(FileNotFoundError, match="no checkpoint or export directory there"):
        load_runtime(tmp_path / "missing")
