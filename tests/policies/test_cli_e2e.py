"""End to end through LeRobot's real CLIs on a tiny LeRobotDataset generated here.

lerobot-train a tiny SmolVLA teacher -> lerobot-train smolvla_snapflow from it -> load the student the way
lerobot-eval does (plugin discovered by distribution name in a fresh process) -> one 1-NFE action chunk.
The same for pi05_snapflow through training.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .helpers import TASK, dataset_stats, tiny_student

BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "WANDB_MODE": "disabled"}
CMD_TIMEOUT_S = 600  # generous: a 2-step lerobot-train is ~20 s here, but CI machines are shared


def make_dataset(root: Path, episodes: int = 2, frames: int = 16, size: int = 64) -> Path:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    img = {"dtype": "image", "shape": (size, size, 3), "names": ["height", "width", "channels"]}
    features = {
        "observation.images.image": img,
        "observation.images.image2": img,
        "observation.state": {"dtype": "float32", "shape": (8,), "names": None},
        "action": {"dtype": "float32", "shape": (7,), "names": None},
    }
    ds = LeRobotDataset.create(repo_id="local/tiny", fps=20, features=features, root=root, use_videos=False)
    rng = np.random.default_rng(0)
    for _ in range(episodes):
        for _ in range(frames):
            ds.add_frame(
                {
                    "observation.images.image": rng.integers(0, 255, (size, size, 3), dtype=np.uint8),
                    "observation.images.image2": rng.integers(0, 255, (size, size, 3), dtype=np.uint8),
                    "observation.state": rng.standard_normal(8).astype(np.float32),
                    "action": rng.uniform(-1, 1, 7).astype(np.float32),
                    "task": TASK,
                }
            )
        ds.save_episode()
    ds.finalize()
    return root


def run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=CMD_TIMEOUT_S)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{cmd[0]} failed:\n{out[-4000:]}"
    return out


def train_cmd(dataset: Path, out: Path, policy_args: list[str], steps: int = 2) -> list[str]:
    return [
        str(BIN / "lerobot-train"),
        *policy_args,
        "--policy.device=cpu",
        "--policy.push_to_hub=false",
        "--dataset.repo_id=local/tiny",
        f"--dataset.root={dataset}",
        f"--steps={steps}",
        "--batch_size=2",
        "--num_workers=0",
        f"--output_dir={out}",
        f"--save_freq={steps}",
        "--log_freq=1",
        "--wandb.enable=false",
    ]


def smolvla_args(tiny_assets: Path) -> list[str]:
    return [
        f"--policy.vlm_model_name={tiny_assets / 'tiny_smolvlm'}",
        "--policy.load_vlm_weights=false",
        "--policy.num_vlm_layers=4",
        "--policy.chunk_size=10",
        "--policy.n_action_steps=10",
        "--policy.max_state_dim=16",
        "--policy.max_action_dim=16",
        "--policy.resize_imgs_with_padding=[64,64]",
    ]


LOAD_AND_ACT = """
import sys, torch
from lerobot.utils.import_utils import register_third_party_plugins
register_third_party_plugins()  # what lerobot-eval does: finds lerobot_policy_snapflow by its name
from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies.factory import get_policy_class, make_pre_post_processors
path = sys.argv[1]
cfg = PreTrainedConfig.from_pretrained(path)
policy = get_policy_class(cfg.type).from_pretrained(path, config=cfg)
pre, post = make_pre_post_processors(cfg, pretrained_path=path)
obs = {"observation.images.image": torch.rand(3, 64, 64), "observation.images.image2": torch.rand(3, 64, 64),
       "observation.state": torch.zeros(8), "task": "pick up the red cube and put it on the plate"}
chunk = post(policy.predict_action_chunk(pre(obs)))
print("TYPE", cfg.type, "NFE", cfg.num_steps, "CHUNK", tuple(chunk.shape), "FINITE", bool(torch.isfinite(chunk).all()))
"""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data") / "tiny")


def test_smolvla_teacher_then_snapflow_student_through_lerobot_cli(dataset, tiny_assets, tmp_path):
    run(train_cmd(dataset, tmp_path / "teacher", ["--policy.type=smolvla", *smolvla_args(tiny_assets)]))
    teacher = tmp_path / "teacher" / "checkpoints" / "last" / "pretrained_model"
    assert (teacher / "model.safetensors").exists()

    log = run(
        train_cmd(
            dataset,
            tmp_path / "student",
            [
                "--policy.type=smolvla_snapflow",
                f"--policy.pretrained_path={teacher}",
                *smolvla_args(tiny_assets),
                "--policy.snapflow.consistency_weight=0.2",
            ],
        )
    )
    assert "target-time parameters start from zero-init" in log
    assert re.search(r"loss_fm", log) and re.search(r"loss_sc", log) and re.search(r"phi_gap", log)
    # The target-time embedding's gap is readable in the console log from the first log steps (it is ~1e-4).
    ppm = [float(v) for v in re.findall(r"phi_gap_ppm:([0-9.]+)", log)]
    assert ppm and ppm[-1] > 0.0, ppm
    student = tmp_path / "student" / "checkpoints" / "last" / "pretrained_model"
    out = run([sys.executable, "-c", LOAD_AND_ACT, str(student)])
    assert "TYPE smolvla_snapflow NFE 1 CHUNK (1, 10, 7) FINITE True" in out


def test_pi05_snapflow_trains_from_a_teacher_through_lerobot_cli(dataset, tiny_assets, tmp_path):
    student, pre, post = tiny_student("pi05", tiny_assets)
    teacher = tmp_path / "pi05_teacher"
    student.save_pretrained(teacher)
    pre.save_pretrained(teacher)
    post.save_pretrained(teacher)
    log = run(
        train_cmd(
            dataset,
            tmp_path / "student",
            [
                "--policy.type=pi05_snapflow",
                f"--policy.pretrained_path={teacher}",
                "--policy.paligemma_variant=tiny_vlm",
                "--policy.action_expert_variant=tiny_expert",
                "--policy.image_resolution=[32,32]",
                f"--policy.tokenizer_name={tiny_assets / 'tiny_paligemma_tokenizer'}",
                "--policy.tokenizer_max_length=48",
                "--policy.chunk_size=10",
                "--policy.n_action_steps=10",
                "--policy.max_state_dim=16",
                "--policy.max_action_dim=16",
            ],
        )
    )
    assert "loss_sc" in log and "Could not load state dict" not in log
    assert (tmp_path / "student" / "checkpoints" / "last" / "pretrained_model" / "model.safetensors").exists()


def test_dataset_stats_helper_is_consistent():
    assert set(dataset_stats()) == {"observation.state", "action"}


@pytest.mark.slow
def test_gradient_checkpointing_through_lerobot_train_gives_the_same_losses(dataset, tiny_assets, tmp_path):
    """`--policy.gradient_checkpointing=true` trains smolvla_snapflow through lerobot-train with the losses of
    the run without it (same seed); the unit test in test_students.py covers all three families."""
    losses = {}
    for gc in ("false", "true"):
        log = run(
            train_cmd(
                dataset,
                tmp_path / f"gc_{gc}",
                [
                    "--policy.type=smolvla_snapflow",
                    *smolvla_args(tiny_assets),
                    f"--policy.gradient_checkpointing={gc}",
                    "--seed=1000",
                ],
            )
        )
        losses[gc] = re.findall(r"loss:([0-9.]+)", log)
    assert len(losses["true"]) >= 2 and losses["true"] == losses["false"], losses


@pytest.mark.parametrize(
    "flag, named",
    [
        ("--policy.snapflow.alpha=1.5", "snapflow.alpha must be in [0, 1], got 1.5"),
        ("--policy.num_steps=0", "policy.num_steps (the NFE) must be an integer >= 1, got 0"),
    ],
)
def test_lerobot_train_names_a_bad_snapflow_value(tmp_path, flag, named):
    """lerobot-train parses --policy through a union that kept only "Couldn't instantiate class" of a
    ValueError; ConfigError's message reaches the user (draccus, LeRobot's parser)."""
    proc = subprocess.run(
        [str(BIN / "lerobot-train"), "--policy.type=smolvla_snapflow", flag, "--policy.device=cpu",
         "--dataset.repo_id=local/none", f"--dataset.root={tmp_path / 'none'}", f"--output_dir={tmp_path / 'o'}"],
        capture_output=True, text=True, timeout=CMD_TIMEOUT_S, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert proc.returncode != 0 and named in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
    assert not (tmp_path / "o").exists()
