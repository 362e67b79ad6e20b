"""Where a SmolVLA teacher's flow-matching loss lives: by action dimension, chunk position and time bin.

    python -m snapflow.policies.loss_breakdown <pretrained_model dir> <LeRobotDataset dir> [samples]

A diagnostic for a teacher whose 10-step samples are worse than its one-step mean (README, "Result"). The
flow-matching loss of a perfectly fitted model is zero where the demonstrated action is a function of the
observation; what stays is the part the observation cannot explain. A large loss at chunk positions 1..k-1
but not at position 0 means the later actions of a demonstrated chunk are random given the observation
(e.g. corrections of action noise injected after it), and a 10-step sampler reproduces that randomness.
Losses are in normalised action units, per element, over valid (non-padded) entries; upstream's
``VLAFlowMatching.forward`` (lerobot/policies/smolvla/modeling_smolvla.py) computes them.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import torch

TIME_BINS = (0.0, 0.1, 0.3, 0.6, 1.0)  # t = 1 is pure noise (SmolVLA's convention)
BATCH = 32


def loss_breakdown(checkpoint: str, dataset_root: str, samples: int = 256, seed: int = 0) -> dict:
    """{"by_dim": [D], "by_position": [chunk], "by_time": {bin: loss}, "mean": float} over ``samples`` frames
    drawn without replacement (seeded), t ~ U(0.001, 1). ValueError for a policy that is not SmolVLA."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata
    from lerobot.policies.factory import get_policy_class, make_pre_post_processors

    from snapflow.scripts.checkpoints import read_policy_config

    kind = read_policy_config(Path(checkpoint))["type"]
    if kind not in ("smolvla", "smolvla_snapflow"):
        raise ValueError(
            f"{checkpoint} is a {kind} policy; the breakdown reads SmolVLA's flow-matching model"
        )
    policy = get_policy_class(kind).from_pretrained(checkpoint).eval()
    pre, _ = make_pre_post_processors(policy.config, pretrained_path=checkpoint)
    chunk = policy.config.chunk_size
    fps = LeRobotDatasetMetadata("local/data", root=dataset_root).fps
    dataset = LeRobotDataset(
        "local/data",
        root=dataset_root,
        video_backend="pyav",
        delta_timestamps={"action": [i / fps for i in range(chunk)]},
    )
    g = torch.Generator().manual_seed(seed)
    frames = torch.randperm(len(dataset), generator=g)[: min(samples, len(dataset))].tolist()
    dims = policy.config.action_feature.shape[0]
    total = {"dim": torch.zeros(dims), "pos": torch.zeros(chunk), "bin": torch.zeros(len(TIME_BINS) - 1)}
    count = {"valid": torch.zeros(()), "pos": torch.zeros(chunk), "bin": torch.zeros(len(TIME_BINS) - 1)}
    with torch.no_grad():
        for start in range(0, len(frames), BATCH):
            losses, valid, t = _batch_losses(policy, pre, dataset, frames[start : start + BATCH], g, dims)
            total["dim"] += (losses * valid).sum((0, 1))
            total["pos"] += (losses * valid).sum((0, 2))
            count["valid"] += valid.sum()
            count["pos"] += valid.sum((0, 2))
            per_sample = (losses * valid).sum((1, 2)) / (valid.sum((1, 2)) * dims).clamp_min(1)
            k = torch.bucketize(t, torch.tensor(TIME_BINS[1:-1]))
            total["bin"].index_add_(0, k, per_sample)
            count["bin"].index_add_(0, k, torch.ones_like(per_sample))
    names = [f"{lo}-{hi}" for lo, hi in itertools.pairwise(TIME_BINS)]
    return {
        "by_dim": (total["dim"] / count["valid"]).tolist(),
        "by_position": (total["pos"] / (count["pos"] * dims).clamp_min(1)).tolist(),
        "by_time": dict(zip(names, (total["bin"] / count["bin"].clamp_min(1)).tolist(), strict=True)),
        "mean": float(total["dim"].sum() / (count["valid"] * dims)),
    }


def _batch_losses(policy, pre, dataset, frames, g, dims) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(losses (B, chunk, D), valid mask (B, chunk, 1), t (B,)) of one batch, as SmolVLAPolicy.forward does."""
    items = [dataset[i] for i in frames]
    batch = {
        k: torch.stack([it[k] for it in items]) for k, v in items[0].items() if isinstance(v, torch.Tensor)
    }
    batch["task"] = [it["task"] for it in items]
    batch = pre(batch)
    t = torch.rand(len(frames), generator=g) * 0.999 + 0.001
    images, img_masks = policy.prepare_images(batch)
    losses = policy.model.forward(
        images,
        img_masks,
        batch["observation.language.tokens"],
        batch["observation.language.attention_mask"],
        policy.prepare_state(batch),
        policy.prepare_action(batch),
        None,
        t,
    )[:, :, :dims]
    valid = (~batch["action_is_pad"]).float()[:, :, None]
    return losses, valid, t


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (2, 3):
        sys.exit("usage: python -m snapflow.policies.loss_breakdown <pretrained_model> <dataset> [samples]")
    torch.set_num_threads(1)
    result = loss_breakdown(argv[0], argv[1], int(argv[2]) if len(argv) == 3 else 256)
    print("loss by action dim     ", [round(x, 3) for x in result["by_dim"]])
    print("loss by chunk position ", [round(x, 3) for x in result["by_position"]])
    print("loss by time bin       ", {k: round(v, 3) for k, v in result["by_time"].items()})
    print(f"mean {result['mean']:.3f}")


if __name__ == "__main__":
    main()
