"""Offline action error of a policy + sampler on held-out demonstrations of a LeRobotDataset.

For frames of the chosen episodes (every ``stride``-th frame), the policy predicts a full action chunk
(H, A) from the recorded observation and instruction; the error is the squared difference to the recorded
actions a[t : t+H] in the dataset's own (unnormalised) units, averaged over action dims and over the valid
(not past-the-end, ``action_is_pad``) steps of the chunk, then over frames. This is the SnapFlow paper's Table 2
metric; it is only a proxy (naive 1-step can have lower MSE and lower closed-loop success).
Use demos the policy never trained on, e.g. a dataset collected with another seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

BATCH = 8  # frames per policy call


@dataclass(frozen=True)
class OfflineMSE:
    mean: float
    median: float
    p90: float
    samples: int  # frames evaluated
    nearest_mode: float | None = None  # mean error to the nearest demonstrated mode (multimodal data only)


def held_out_episodes(total: int, count: int) -> list[int]:
    """The last ``count`` episode indices of a dataset with ``total`` episodes."""
    if count < 1:
        raise ValueError(f"episodes_for_mse must be >= 1, got {count}")
    if count > total:
        raise ValueError(f"episodes_for_mse={count} but the dataset has only {total} episodes")
    return list(range(total - count, total))


def offline_action_mse(
    policy: torch.nn.Module,
    preprocessor: object,
    postprocessor: object,
    dataset_root: str | Path,
    episodes: int = 5,
    stride: int = 10,
    max_samples: int = 200,
    seed: int = 0,
    noise: Callable[[int], dict] | None = None,
) -> OfflineMSE:
    """Chunk MSE of ``policy`` (already configured with its NFE) on the last ``episodes`` demos; on a
    dataset with a `mode` column also the error to the nearest demonstrated mode (`mode_reference.py`).
    ``noise(batch_size)`` gives extra ``predict_action_chunk`` kwargs (the sampler's scaled initial noise)."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata
    from lerobot.utils.constants import ACTION, OBS_STATE

    # named with snapflow-eval's keys, as held_out_episodes does; checked before the dataset is opened
    if stride < 1:
        raise ValueError(f"mse_stride must be >= 1, got {stride}")
    if max_samples < 1:
        raise ValueError(f"mse_max_samples must be >= 1, got {max_samples}")
    root = Path(dataset_root)
    if not (root / "meta" / "info.json").is_file():
        raise FileNotFoundError(f"{root} is not a LeRobotDataset (no meta/info.json)")
    meta = LeRobotDatasetMetadata(repo_id=f"local/{root.name}", root=root)
    chunk = int(policy.config.chunk_size)
    ds = LeRobotDataset(
        repo_id=f"local/{root.name}",
        root=root,
        episodes=held_out_episodes(meta.total_episodes, episodes),
        delta_timestamps={ACTION: [i / meta.fps for i in range(chunk)]},
    )
    frames = list(range(0, len(ds), stride))[:max_samples]
    reference = None
    if "mode" in meta.features:
        from snapflow.policies.mode_reference import ModeReference

        reference = ModeReference(root, chunk)
    nearest: list[torch.Tensor] = []
    keys = [*policy.config.image_features, OBS_STATE, "task"]
    errors: list[torch.Tensor] = []
    torch.manual_seed(seed)
    for batch in DataLoader(Subset(ds, frames), batch_size=BATCH, shuffle=False, num_workers=0):
        obs = preprocessor({k: batch[k] for k in keys})
        policy.reset()
        with torch.inference_mode():
            kwargs = noise(len(batch[ACTION])) if noise is not None else {}
            pred = postprocessor(policy.predict_action_chunk(obs, **kwargs)).to("cpu").float()  # (B, H, A)
        target = batch[ACTION].float()  # (B, H, A)
        valid = (~batch[f"{ACTION}_is_pad"]).float()  # (B, H)
        per_step = ((pred[:, : target.shape[1]] - target) ** 2).mean(-1)  # (B, H)
        errors.append((per_step * valid).sum(1) / valid.sum(1).clamp_min(1))
        if reference is not None:
            nearest.append(reference.nearest_mode_error(pred, batch["episode_index"], batch["frame_index"]))
    if not errors:
        raise ValueError(f"no frames selected from {root}")
    err = torch.cat(errors)
    near = float(torch.cat(nearest).mean()) if nearest else None
    return OfflineMSE(float(err.mean()), float(err.median()), float(torch.quantile(err, 0.9)), len(err), near)
