"""snapflow-train -> snapflow-distill -> snapflow-eval on a tiny SmolVLA and a tiny mini-LIBERO dataset.

Real LeRobot training loop (lerobot-train subprocesses), real MuJoCo rollouts, no mocks. The hydra mains
run in this process (their lerobot-train children are separate processes), which saves a Python start-up
per command. Resume is checked against LeRobot's checkpoint layout (common/train_utils.py):
<out>/checkpoints/<step:06d>/{pretrained_model, training_state/{optimizer_state.safetensors,
training_step.json, scheduler_state.json, rng_state.safetensors}}.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from snapflow.scripts import distill, train
from snapflow.scripts import eval as eval_script
from snapflow.scripts.checkpoints import resolve_pretrained
from snapflow.scripts.lerobot_cli import (
    architecture_flags,
    family_of,
    launcher_prefix,
    resume_args,
    teacher_flags,
    tiny_flags,
)
from snapflow.sim.report import validate_report
from snapflow.sim.stats import percentile, wilson_interval

CKPT = Path("checkpoints")
ARCH_KEYS = (
    "vlm_model_name",
    "num_vlm_layers",
    "chunk_size",
    "n_action_steps",
    "max_state_dim",
    "max_action_dim",
    "resize_imgs_with_padding",
)


def cli(main: object, monkeypatch: pytest.MonkeyPatch, *overrides: str) -> None:
    """Run a hydra console entry point in-process with ``overrides`` as its command line."""
    monkeypatch.setattr(sys, "argv", ["snapflow", *overrides])
    main()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny dataset (1 task x 2 demos, 64 px), a 2-step tiny SmolVLA teacher and a 2-step student."""
    from snapflow.sim.record import collect_dataset

    root = tmp_path_factory.mktemp("pipeline")
    mp = pytest.MonkeyPatch()
    try:
        data = collect_dataset("spatial", 2, root / "data", task_ids=[0], resolution=64, seed=0)
        cli(
            train.main,
            mp,
            "policy=smolvla",
            "tiny=true",
            f"assets={root / 'assets'}",
            f"dataset={data}",
            f"out={root / 'teacher'}",
            "steps=2",
            "batch_size=2",
            "save_freq=2",
            "log_freq=1",
            "device=cpu",
        )
        cli(
            distill.main,
            mp,
            f"teacher={root / 'teacher'}",
            f"dataset={data}",
            f"out={root / 'student'}",
            "steps=2",
            "save_freq=1",
            "log_freq=1",
            "device=cpu",
        )
    finally:
        mp.undo()
    return {"root": root, "data": data, "teacher": root / "teacher", "student": root / "student"}


def test_wilson_interval_known_values():
    assert [round(x, 3) for x in wilson_interval(8, 10)] == [0.490, 0.943]
    assert [round(x, 3) for x in wilson_interval(0, 10)] == [0.0, 0.278]
    assert [round(x, 3) for x in wilson_interval(10, 10)] == [0.722, 1.0]
    assert [round(x, 3) for x in wilson_interval(40, 50)] == [0.670, 0.888]
    for n in range(1, 301):  # 0/50 once gave ci_low = 6.9e-18 > 0 = success, and the report refused itself
        for k in (0, n):
            low, high = wilson_interval(k, n)
            assert low <= k / n <= high
    with pytest.raises(ValueError):
        wilson_interval(3, 0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0 and percentile([1.0, 2.0], 90) == pytest.approx(1.9)


def test_episode_inits_frozen_and_held_out_are_disjoint():
    from snapflow.sim.evaluate import episode_inits
    from snapflow.sim.init_states import HELDOUT_SEED_START, N_FROZEN

    assert episode_inits(3, held_out=False) == [0, 1, 2]
    held = episode_inits(60, held_out=True)
    assert held[0] == HELDOUT_SEED_START and not set(held) & set(range(N_FROZEN))
    with pytest.raises(ValueError, match="held_out=true"):
        episode_inits(N_FROZEN + 1, held_out=False)


def test_validate_report_rejects_schema_violations():
    good = {
        "suites": {
            "spatial": {
                "teacher_10": {
                    "success": 0.5,
                    "ci_low": 0.2,
                    "ci_high": 0.8,
                    "episodes": 10,
                    "mean_episode_length": 90.0,
                    "latency_ms": 12.0,
                }
            }
        },
        "offline_mse": {"teacher_10": 0.01},
    }
    validate_report(good)
    entry = good["suites"]["spatial"]["teacher_10"]
    for bad_entry in (
        {**entry, "success": 1.5, "ci_high": 1.6},
        {**entry, "episodes": 0},
        {k: v for k, v in entry.items() if k != "latency_ms"},
        {**entry, "ci_low": 0.6},
    ):
        with pytest.raises(ValueError):
            validate_report({**good, "suites": {"spatial": {"teacher_10": bad_entry}}})
    with pytest.raises(ValueError, match="offline_mse"):
        validate_report({**good, "offline_mse": {"teacher_10": float("nan")}})
    with pytest.raises(ValueError):
        validate_report({"suites": {}, "offline_mse": {}})


def test_launcher_and_flag_helpers(tmp_path):
    assert launcher_prefix("python")[-1].endswith("lerobot_train_entry.py")
    multi = launcher_prefix("accelerate", 2)
    assert multi[1:3] == ["launch", "--multi_gpu"] and "--num_processes=2" in multi
    with pytest.raises(ValueError, match="launcher"):
        launcher_prefix("slurm")
    assert family_of("pi05_snapflow") == "pi05"
    with pytest.raises(ValueError, match="not supported"):
        family_of("act")
    flags = architecture_flags(
        {
            "chunk_size": 10,
            "resize_imgs_with_padding": [64, 64],
            "use_cache": True,
            "empty_cameras": None,
            "optimizer_lr": 1.0,
        },
        "smolvla",
    )
    assert flags == [
        "--policy.chunk_size=10",
        "--policy.resize_imgs_with_padding=[64,64]",
        "--policy.use_cache=true",
        "--policy.load_vlm_weights=false",
    ]
    (tmp_path / "act").mkdir()
    (tmp_path / "act" / "config.json").write_text(json.dumps({"type": "act"}))
    with pytest.raises(ValueError, match="'act' is not supported"):
        teacher_flags(tmp_path / "act")
    with pytest.raises(FileNotFoundError, match="no LeRobot checkpoint"):
        resolve_pretrained(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        resume_args(tmp_path)


def test_tiny_flags_train_everything_and_fit_the_state(tmp_path):
    flags = tiny_flags("smolvla", tmp_path / "assets", state_dim=74, width=128)
    assert "--policy.train_expert_only=false" in flags and "--policy.freeze_vision_encoder=false" in flags
    assert "--policy.max_state_dim=74" in flags  # the 74-D object state is not truncated to 16
    vlm = json.loads((tmp_path / "assets" / "tiny_smolvlm" / "config.json").read_text())
    assert vlm["text_config"]["hidden_size"] == 128
    assert "--policy.max_state_dim=16" in tiny_flags("smolvla", tmp_path / "assets", width=128)
    with pytest.raises(ValueError, match="width-128 tiny SmolVLM, not 64"):
        tiny_flags("smolvla", tmp_path / "assets", width=64)


def test_training_log_has_no_torchcodec_traceback(runs):
    """Our lerobot-train children pick pyav explicitly and mute LeRobot's backend probe (was 214 lines)."""
    import subprocess

    cmd = [str(Path(sys.executable).parent / "snapflow-train"), "policy=smolvla", "tiny=true",
           f"assets={runs['root'] / 'assets'}", f"dataset={runs['data']}", f"out={runs['root'] / 'quiet'}",
           "steps=1", "batch_size=2", "device=cpu"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "--dataset.video_backend=pyav" in log and "libtorchcodec" not in log and "Traceback" not in log


def test_tiny_teacher_trains_its_vlm(runs):
    """From scratch the VLM must learn too (upstream SmolVLA's default freezes it): the optimizer holds it."""
    ckpt = runs["teacher"] / CKPT / "last"
    config = json.loads((ckpt / "pretrained_model" / "config.json").read_text())
    assert config["train_expert_only"] is False and config["freeze_vision_encoder"] is False
    # AdamW keeps moments only for parameters that received gradients (frozen ones get no state)
    state = load_file(ckpt / "training_state" / "optimizer_state.safetensors")
    optimized = len({k.split("/")[1] for k in state if k.endswith("/exp_avg")})
    weights = load_file(ckpt / "pretrained_model" / "model.safetensors")
    outside_vlm = [k for k in weights if ".vlm." not in k]
    assert optimized > len(outside_vlm), "only the expert side is optimised: the tiny VLM stayed frozen"


def test_student_inherits_teacher_architecture(runs):
    teacher = json.loads((resolve_pretrained(runs["teacher"]) / "config.json").read_text())
    student = json.loads((resolve_pretrained(runs["student"]) / "config.json").read_text())
    assert teacher["type"] == "smolvla" and student["type"] == "smolvla_snapflow"
    assert {k: student[k] for k in ARCH_KEYS} == {k: teacher[k] for k in ARCH_KEYS}
    assert student["num_steps"] == 1 and student["optimizer_lr"] == pytest.approx(2.5e-5)


def test_eval_two_samplers_closed_loop_report(runs, monkeypatch):
    out = runs["root"] / "eval"
    cli(
        eval_script.main,
        monkeypatch,
        f"teacher={runs['teacher']}",
        f"student={runs['student']}",
        "samplers=[teacher_10,snapflow_1,teacher_10_zero_noise]",
        "suites=[spatial]",
        "task_ids=[0]",
        "episodes=2",
        "max_steps=12",
        "resolution=64",
        "batch_size=2",
        "n_action_steps=5",
        "latency_calls=2",
        "workers=2",
        f"out={out}",
        f"dataset={runs['data']}",
        "episodes_for_mse=1",
        "mse_max_samples=4",
    )
    report = json.loads((out / "report.json").read_text())
    validate_report(report)
    spatial = report["suites"]["spatial"]
    assert set(spatial) == {"teacher_10", "snapflow_1", "teacher_10_zero_noise"}
    assert set(report["offline_mse"]) == set(spatial)
    assert report["samplers"]["teacher_10_zero_noise"]["noise_scale"] == 0.0
    for entry in spatial.values():
        assert entry["episodes"] == 2 and 0 < entry["mean_episode_length"] <= 12 and entry["latency_ms"] > 0
        assert 1 <= entry["latency_calls"] <= 3  # a chunk at steps 0, 5, 10 while an episode runs
        assert entry["latency_source"] == "benchmark_b1" and entry["rollout_latency_ms"] > 0
    assert {b["calls"] for b in report["latency_benchmark"].values()} == {2}
    assert report["latency_ratio_teacher10_snapflow1"] > 0
    share = report["latency_cpu_share"]  # how much of its threads' CPU the latency pass got (None: too short)
    assert share is None or 0 < share <= 1.5
    assert report["n_action_steps"] == 5 and report["held_out"] is False
    assert report["workers"] == 2 and report["layout"] == "libero"
    assert report["samplers"]["teacher_10"]["nfe"] == 10 and report["samplers"]["snapflow_1"]["nfe"] == 1
    assert [e["init"] for e in report["episode_results"]["spatial"]["teacher_10"]] == [0, 1]
    for name in ("report.md", "success_by_suite.png", "success_vs_nfe.png", "latency_vs_nfe.png"):
        assert (out / name).stat().st_size > 0
    with pytest.raises(SystemExit) as refused:  # the report above is kept: a second run into out is refused
        cli(
            eval_script.main, monkeypatch, f"teacher={runs['teacher']}", "samplers=[teacher_10]", f"out={out}"
        )
    assert refused.value.code == 2 and (out / "report.json").is_file()


def test_eval_pool_matches_one_process_and_layout_reaches_the_envs(runs, monkeypatch):
    """workers=2 gives the same episodes as workers=1; layout=wide changes the rollouts' init states."""
    from snapflow.scripts.checkpoints import resolve_pretrained
    from snapflow.sim.eval_pool import EvalSettings, evaluate_many
    from snapflow.sim.evaluate import SamplerSpec
    from snapflow.sim.init_states import frozen_init_states

    specs = {"teacher_2": SamplerSpec("teacher_2", resolve_pretrained(runs["teacher"]), 2)}
    settings = EvalSettings(episodes=2, resolution=64, batch_size=2, max_steps=6, n_action_steps=5)
    one = evaluate_many(specs, ["goal"], settings, task_ids=[0, 1], workers=1, progress=False)
    two = evaluate_many(specs, ["goal"], settings, task_ids=[0, 1], workers=2, progress=False)
    assert one["goal"]["teacher_2"].episodes == two["goal"]["teacher_2"].episodes
    assert [e.task_id for e in two["goal"]["teacher_2"].episodes] == [0, 0, 1, 1]
    import snapflow.sim.env as sim_env

    built = []

    class RecordingEnv(sim_env.MiniLiberoEnv):  # the real env, remembering the state it was reset to
        def reset(self, **kw):
            out = super().reset(**kw)
            built.append((self.layout, self.data.qpos[9:11].copy()))
            return out

    monkeypatch.setattr(sim_env, "MiniLiberoEnv", RecordingEnv)
    wide = EvalSettings(episodes=1, resolution=64, batch_size=1, max_steps=2, n_action_steps=5, layout="wide")
    evaluate_many(specs, ["goal"], wide, task_ids=[4], workers=1, progress=False)
    layout, qpos = built[-1]
    assert layout == "wide"
    np.testing.assert_allclose(qpos, frozen_init_states("goal", 4, "wide")[0][9:11], atol=3e-3)
    with pytest.raises(ValueError, match="layout="):
        evaluate_many(
            specs, ["goal"], EvalSettings(episodes=1, layout="narrow"), task_ids=[0], progress=False
        )


def test_eval_chunking_sweep_writes_every_scheme_and_delay(runs, monkeypatch, tmp_path):
    """snapflow-eval chunking=... on the tiny student: every (scheme, delay) point in report.json, RTC run
    through the student's predict_action_chunk with the leftover of the current chunk."""
    from snapflow.policies.lerobot_plugin.modeling_smolvla_snapflow import SmolVLASnapFlowPolicy

    calls = []
    original = SmolVLASnapFlowPolicy.sample_chunk

    def recording(self, args, noise=None, **rtc):
        calls.append((rtc.get("inference_delay"), None if rtc.get("prev_chunk_left_over") is None else
                      tuple(rtc["prev_chunk_left_over"].shape), self._rtc_enabled()))  # fmt: skip
        return original(self, args, noise, **rtc)

    monkeypatch.setattr(SmolVLASnapFlowPolicy, "sample_chunk", recording)
    out = tmp_path / "sweep"
    cli(
        eval_script.main, monkeypatch, f"student={runs['student']}", "samplers=[snapflow_1]", "suites=[spatial]",
        "task_ids=[0]", "episodes=2", "batch_size=2", "max_steps=12", "latency_calls=0",
        "chunking=[sync,async,crossfade,ensemble,rtc]", "inference_delay=[0,2]", "execute_steps=5", f"out={out}",
    )  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert report["resolution"] == 64  # no resolution= given: the camera size the student was trained at
    assert list(report["chunking"]) == ["sync", "async", "crossfade", "ensemble", "rtc"]
    for per_delay in report["chunking"].values():
        assert list(per_delay) == ["0", "2"]
        assert all(e["episodes"] == 2 and 0 <= e["ci_low"] <= e["success"] <= e["ci_high"] <= 1
                   for e in per_delay.values())  # fmt: skip
    assert report["chunking_meta"]["execute_steps"] == 5
    assert (out / "success_vs_delay.png").stat().st_size > 0
    rtc = [c for c in calls if c[2]]
    assert rtc and {c[0] for c in rtc if c[1] is not None} == {0, 2}
    assert all(c[1] == (2, 5, 7) for c in rtc if c[1] is not None)  # the rest of a 10-action chunk after 5
    with pytest.raises(SystemExit) as refused:  # delay + execute_steps beyond the chunk: a usage error
        cli(
            eval_script.main, monkeypatch, f"student={runs['student']}", "samplers=[snapflow_1]",
            "chunking=[async]", "inference_delay=[8]", f"out={tmp_path / 'bad'}",
        )  # fmt: skip
    assert refused.value.code == 2


def test_noise_scale_zero_is_one_deterministic_chunk_per_observation(runs):
    """noise_scale=0 integrates from the origin (the same chunk whatever the seed); 1.0 keeps the policy's own
    noise (the chunk changes with the seed); a negative or NaN scale and an export with a scale are named."""
    from lerobot.envs.factory import make_env_pre_post_processors

    from snapflow.scripts.checkpoints import resolve_pretrained
    from snapflow.sim.env import MiniLiberoEnv
    from snapflow.sim.evaluate import SamplerSpec, initial_noise, load_policy, plan_chunk
    from snapflow.sim.lerobot_env import MiniLiberoEnvConfig

    teacher = resolve_pretrained(runs["teacher"])
    env = MiniLiberoEnv("spatial", 0, resolution=64)
    obs, _ = env.reset(options={"init_state": 0})
    chunks = {}
    for scale in (0.0, 1.0):
        lp = load_policy(SamplerSpec("t", teacher, 2, None, scale), n_action_steps=5)
        pre, post = make_env_pre_post_processors(
            MiniLiberoEnvConfig(task="spatial", resolution=64), lp.config
        )
        for seed in (0, 1):
            torch.manual_seed(seed)
            lp.policy.reset()
            noise = initial_noise(lp, 1)
            assert (scale == 1.0) == (noise == {})
            chunks[scale, seed] = plan_chunk(lp, [obs], [env.task_description], pre, post, [], **noise)[0]
    env.close()
    assert torch.equal(chunks[0.0, 0], chunks[0.0, 1])
    assert not torch.allclose(chunks[1.0, 0], chunks[1.0, 1])
    for bad in (-0.5, float("nan")):
        with pytest.raises(ValueError, match="noise_scale"):
            load_policy(SamplerSpec("t", teacher, 2, None, bad), n_action_steps=5)


def test_snapflow_run_takes_a_training_out_dir_as_every_command_does(runs, tmp_path):
    """policy=<distill out dir> runs its checkpoints/last (export and eval take such a dir; run did not)."""
    student = Path(runs["student"])  # given as parent/name from its grandparent: the Hub-id form org/name
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "snapflow-run"), f"policy={student.parent.name}/{student.name}",
         "robot=sim", "task=spatial/0", "seconds=1", f"out={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=300, cwd=student.parent.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "run" / "run.json").read_text())["ticks"] > 0


def test_tiny_refuses_an_unknown_family_before_writing(monkeypatch, tmp_path):
    from snapflow.scripts import tiny

    with pytest.raises(SystemExit) as refused:
        cli(tiny.main, monkeypatch, f"out={tmp_path / 'tiny'}", "families=[foo]")
    assert refused.value.code == 2 and not (tmp_path / "tiny").exists()


def test_eval_rejects_bad_input(runs, monkeypatch, tmp_path, capsys):
    from hydra import compose, initialize_config_dir

    import snapflow.configs
    from snapflow.sim.evaluate import SamplerSpec, load_policy

    with initialize_config_dir(config_dir=str(Path(snapflow.configs.__file__).parent), version_base=None):
        cfg = compose("eval", [f"teacher={runs['teacher']}", f"out={tmp_path}", "samplers=[snapflow1]"])
        with pytest.raises(ValueError, match="did you mean 'snapflow_1'"):
            eval_script._samplers(cfg)
        cfg = compose("eval", [f"teacher={runs['teacher']}", f"out={tmp_path}", "samplers=[snapflow_1]"])
        with pytest.raises(ValueError, match="no checkpoint"):
            eval_script._samplers(cfg)
        cfg = compose("eval", [f"teacher={runs['student']}", f"out={tmp_path}", "samplers=[teacher_10]"])
        with pytest.raises(ValueError, match=r"is a SnapFlow-distilled student .* pass it as student="):
            eval_script._samplers(cfg)
        cfg = compose("eval", [f"teacher={runs['teacher']}", f"out={tmp_path}", "samplers=[teacher_10]"])
        cfg.resolution = 32  # the tiny teacher was trained at 64 px: legal, and said
        assert eval_script._resolution(cfg, eval_script._samplers(cfg)) == 32
        assert "note: resolution=32 px, but {'teacher_10': 64}" in capsys.readouterr().out
        cfg = compose("eval", [f"teacher={tmp_path / 'nope'}", f"out={tmp_path}"])
        with pytest.raises(FileNotFoundError, match="no LeRobot checkpoint"):
            eval_script._samplers(cfg)
    with pytest.raises(FileNotFoundError, match="pretrained_model"):
        load_policy(SamplerSpec("x", tmp_path, 1), n_action_steps=5)
    with pytest.raises(SystemExit):  # hydra reports the ValueError and exits non-zero
        cli(
            eval_script.main, monkeypatch, f"teacher={runs['teacher']}", "suites=[kitchen]", f"out={tmp_path}"
        )


def test_resume_after_interrupted_distillation_keeps_optimizer_state(runs, monkeypatch, capfd):
    """Interrupt after step 1 (drop checkpoint 2), resume to 3 steps, check the optimizer continued exactly.

    The resumed step-2 gradient differs from the original run's (the restored RNG is also drawn by the new
    DataLoader iterator), so instead of comparing step-2 moments across runs we check that the resumed
    AdamW moments follow from checkpoint 1's *exactly*: m2 = b1 m1 + (1-b1) g and v2 = b2 v1 + (1-b2) g^2
    with g recovered from m2; a fresh optimizer (m1 = v1 = 0) fails this by ~100 %.
    """
    resumed = runs["root"] / "resumed"
    shutil.copytree(runs["student"], resumed, symlinks=True)
    shutil.rmtree(resumed / CKPT / "000002")
    (resumed / CKPT / "last").unlink()
    os.symlink("000001", resumed / CKPT / "last")
    cli(
        distill.main,
        monkeypatch,
        "teacher=unused",
        f"dataset={runs['data']}",
        f"out={resumed}",
        "resume=true",
        "steps=3",
    )

    # Continuing its own run is not "distilling from a student" (policies/lerobot_plugin/student.py).
    assert "already trained" not in capfd.readouterr().err
    state = lambda run, step: run / CKPT / f"{step:06d}" / "training_state"  # noqa: E731
    assert json.loads((state(resumed, 3) / "training_step.json").read_text())["step"] == 3
    assert json.loads((state(resumed, 2) / "scheduler_state.json").read_text())["last_epoch"] == 2
    m_1 = load_file(state(runs["student"], 1) / "optimizer_state.safetensors")
    m_2 = load_file(state(resumed, 2) / "optimizer_state.safetensors")
    original_2 = load_file(state(runs["student"], 2) / "optimizer_state.safetensors")
    assert set(m_2) == set(m_1) == set(original_2)
    b1, b2 = json.loads((state(resumed, 2) / "optimizer_param_groups.json").read_text())[0]["betas"]
    params = sorted({k.split("/")[1] for k in m_1})
    for p in params:
        assert m_2[f"state/{p}/step"].item() == original_2[f"state/{p}/step"].item() == 2
        m1, v1 = m_1[f"state/{p}/exp_avg"].double(), m_1[f"state/{p}/exp_avg_sq"].double()
        m2, v2 = m_2[f"state/{p}/exp_avg"].double(), m_2[f"state/{p}/exp_avg_sq"].double()
        g = (m2 - b1 * m1) / (1 - b1)
        torch.testing.assert_close(b2 * v1 + (1 - b2) * g * g, v2, rtol=1e-4, atol=1e-12)


def test_distilling_from_a_students_checkpoint_says_so(runs, capsys):
    """teacher=<a student's run checkpoint> loads silently (it looks like a resume to the policy), so the CLI
    says that this distillation starts from a student, not from a flow-matching teacher."""
    distill._say_if_student(runs["student"] / CKPT / "last" / "pretrained_model")
    assert "student checkpoint" in capsys.readouterr().out
    distill._say_if_student(runs["teacher"] / CKPT / "last" / "pretrained_model")
    assert capsys.readouterr().out == ""


def test_student_checkpoints_name_a_bad_observation(runs):
    """Every checkpoint snapflow-distill wrote has the observation check first in its preprocessor, so a
    user's ``pre(obs)`` on a checkpoint names the missing task or the wrong state instead of LeRobot's
    ``KeyError: 'task'`` / tensor-size error; the teacher's (upstream smolvla) processors stay untouched."""
    import torch
    from lerobot.processor import PolicyProcessorPipeline

    for step in ("000001", "000002"):
        names = [
            s["registry_name"]
            for s in json.loads(
                (runs["student"] / CKPT / step / "pretrained_model" / "policy_preprocessor.json").read_text()
            )["steps"]
        ]
        assert "snapflow_observation_check" in names[:2], names
    teacher_steps = (
        runs["teacher"] / CKPT / "last" / "pretrained_model" / "policy_preprocessor.json"
    ).read_text()
    assert "snapflow_observation_check" not in teacher_steps
    pre = PolicyProcessorPipeline.from_pretrained(
        runs["student"] / CKPT / "last" / "pretrained_model", config_filename="policy_preprocessor.json"
    )
    image = torch.zeros(1, 3, 64, 64)
    obs = {"observation.images.image": image, "observation.images.image2": image}
    with pytest.raises(ValueError, match="task=None"):
        pre({**obs, "observation.state": torch.zeros(1, 8)})
    with pytest.raises(ValueError, match=r"observation.state has shape \(1, 7\)"):
        pre({**obs, "observation.state": torch.zeros(1, 7), "task": ["pick"]})
    assert pre({**obs, "observation.state": torch.zeros(1, 8), "task": ["pick"]})  # a good one passes


def test_the_check_can_be_added_to_a_checkpoint_we_did_not_write(runs, tmp_path):
    """A student trained by raw lerobot-train keeps its teacher's processors; the README's command adds the
    check (here to a copy of the upstream teacher), run as a user runs it. Not a checkpoint: exit 2, nothing
    changed."""
    import torch
    from lerobot.processor import PolicyProcessorPipeline

    ckpt = shutil.copytree(runs["teacher"] / CKPT / "last" / "pretrained_model", tmp_path / "ckpt")
    (tmp_path / "empty").mkdir()
    command = [sys.executable, "-m", "snapflow.policies.lerobot_plugin.add_observation_check"]
    refused = subprocess.run([*command, str(ckpt), str(tmp_path / "empty")], capture_output=True, text=True)
    assert refused.returncode == 2 and "empty/config.json is not a readable JSON file" in refused.stderr
    assert "snapflow_observation_check" not in (ckpt / "policy_preprocessor.json").read_text()
    for _ in range(2):  # idempotent
        done = subprocess.run([*command, str(ckpt)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    steps = json.loads((ckpt / "policy_preprocessor.json").read_text())["steps"]
    assert [s["registry_name"] for s in steps].count("snapflow_observation_check") == 1
    pre = PolicyProcessorPipeline.from_pretrained(ckpt, config_filename="policy_preprocessor.json")
    image = torch.zeros(1, 3, 64, 64)
    with pytest.raises(ValueError, match="task=None"):
        pre({"observation.images.image": image, "observation.images.image2": image,
             "observation.state": torch.zeros(1, 8)})  # fmt: skip


def test_loss_breakdown_splits_the_teachers_loss(runs, tmp_path):
    """The diagnostic behind the teacher's recipe (README, "The embedded teacher"): per action dimension,
    chunk position and time bin; its mean is the mean of the per-dimension losses."""
    from snapflow.policies.loss_breakdown import loss_breakdown

    teacher = runs["teacher"] / CKPT / "last" / "pretrained_model"
    result = loss_breakdown(str(teacher), str(runs["data"]), samples=8)
    chunk = json.loads((teacher / "config.json").read_text())["chunk_size"]
    assert len(result["by_dim"]) == 7 and len(result["by_position"]) == chunk
    assert all(math.isfinite(x) and x > 0 for x in result["by_dim"] + result["by_position"])
    assert result["mean"] == pytest.approx(sum(result["by_dim"]) / 7, rel=1e-5)
    (tmp_path / "config.json").write_text(json.dumps({"type": "pi0"}))
    with pytest.raises(ValueError, match="is a pi0 policy"):
        loss_breakdown(str(tmp_path), str(runs["data"]))


@pytest.mark.slow
def test_distill_under_accelerate_two_cpu_processes(runs, monkeypatch):
    """DDP (gloo) with 2 CPU processes: the frozen VLM stays bit-identical, the target-time MLP trains."""
    out = runs["root"] / "ddp"
    cli(
        distill.main,
        monkeypatch,
        f"teacher={runs['teacher']}",
        f"dataset={runs['data']}",
        f"out={out}",
        "steps=3",
        "batch_size=2",
        "save_freq=3",
        "device=cpu",
        "launcher=accelerate",
        "num_processes=2",
    )
    teacher = load_file(resolve_pretrained(runs["teacher"]) / "model.safetensors")
    student = load_file(resolve_pretrained(out) / "model.safetensors")
    vlm = [k for k in teacher if ".vlm." in k]
    assert vlm and all(torch.equal(teacher[k], student[k]) for k in vlm)
    assert any(not torch.equal(teacher[k], student[k]) for k in teacher if "action_out_proj" in k)
    assert student["target_time_embedding.out_proj.weight"].abs().max() > 0  # zero-init layer moved
    state = json.loads((out / CKPT / "last" / "training_state" / "training_step.json").read_text())
    assert state["num_processes"] == 2 and state["step"] == 3


def _normalizer_stats(checkpoint: Path, kind: str) -> dict[str, torch.Tensor]:
    file = next(checkpoint.glob(f"policy_{kind}_step_*_*normalizer_processor.safetensors"))
    return {k: v for k, v in load_file(file).items() if k.startswith(("action.", "observation.state."))}


def test_distill_on_a_foreign_dataset_keeps_the_teachers_normalisation(runs, monkeypatch):
    """A student distilled on another suite's demos normalises exactly as its teacher (renormalize=false)."""
    from snapflow.sim.record import collect_dataset

    root = runs["root"]
    foreign = collect_dataset(
        "goal", 1, root / "foreign", task_ids=[0], resolution=64, seed=3, progress=False
    )
    teacher = resolve_pretrained(runs["teacher"])
    for flag, same in (("renormalize=false", True), ("renormalize=true", False)):
        out = root / f"foreign_student_{same}"
        cli(distill.main, monkeypatch, f"teacher={teacher}", f"dataset={foreign}", f"out={out}", "steps=1",
            "save_freq=1", "device=cpu", flag)  # fmt: skip
        student = out / CKPT / "last" / "pretrained_model"
        for kind in ("preprocessor", "postprocessor"):
            mine, theirs = _normalizer_stats(student, kind), _normalizer_stats(teacher, kind)
            assert set(mine) == set(theirs)
            equal = all(torch.equal(mine[k], theirs[k]) for k in theirs)
            assert equal == same, f"{flag}: {kind} stats equal={equal}"


def test_cpu_share_tells_a_shared_core_from_an_idle_one():
    """The latency pass's note: a stretch that got half its thread's CPU time reads 0.5."""
    import torch

    from snapflow.scripts.eval import CONTENDED_CPU_SHARE, _cpu_share

    threads = torch.get_num_threads()
    assert _cpu_share(2.0, 2.0 * threads) == pytest.approx(1.0)
    half = _cpu_share(2.0, 1.0 * threads)
    assert half == pytest.approx(0.5) and half < CONTENDED_CPU_SHARE
    assert _cpu_share(0.01, 0.01) is None  # too short to tell


def test_distill_never_deletes_a_folder_at_its_view_path(runs, tmp_path):
    """A user's dataset that sits at <out>.dataset (where distill writes its view) is refused, not wiped; a
    run refused before its first checkpoint leaves no view behind."""
    from snapflow.scripts.teacher_stats import VIEW_MARKER, dataset_with_teacher_stats, remove_view

    teacher = resolve_pretrained(runs["teacher"])
    dataset = shutil.copytree(runs["data"], tmp_path / "run.dataset")
    files = sorted(p.relative_to(dataset) for p in dataset.rglob("*"))
    with pytest.raises(ValueError, match="is where this run writes its dataset view"):
        dataset_with_teacher_stats(dataset, teacher, dataset)
    other = tmp_path / "taken.dataset"
    (other / "meta").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="is not a dataset view of snapflow-distill"):
        dataset_with_teacher_stats(dataset, teacher, other)
    remove_view(other)  # not a view: left alone
    assert other.is_dir() and sorted(p.relative_to(dataset) for p in dataset.rglob("*")) == files
    view = dataset_with_teacher_stats(dataset, teacher, tmp_path / "mine.dataset")
    assert (view / VIEW_MARKER).is_file() and dataset_with_teacher_stats(dataset, teacher, view) == view
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("snapflow-distill")), f"teacher={teacher}", f"dataset={dataset}",
         f"out={tmp_path / 'd09'}", "steps=2", "extra=['--policy.type=pi0_snapflow']"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2 and "sets what this command already passes" in proc.stderr, proc.stderr
    assert not (tmp_path / "d09.dataset").exists() and not (tmp_path / "d09").exists()
