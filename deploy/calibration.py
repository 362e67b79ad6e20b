"""Calibration observations for static int8: real frames of a LeRobotDataset as the exported graph's inputs.

Static quantisation fixes every activation's int8 range offline, so the ranges must come from the inputs the
robot will see: camera frames, states and instructions of demonstrations (for mini-LIBERO, the dataset
``snapflow-collect`` wrote). Frames are spread evenly over the whole dataset (every task, start to end of
the episodes); the noise input is drawn per frame, as at run time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

CALIBRATION_FRAMES = 32  # ORT's MinMax calibration: ranges settle within a few dozen diverse inputs


def calibration_feeds(
    policy: torch.nn.Module,
    preprocessor: object,
    dataset_root: str | Path,
    frames: int = CALIBRATION_FRAMES,
    seed: int = 0,
) -> list[dict[str, np.ndarray]]:
    """``frames`` graph feeds (batch 1) from ``dataset_root``, preprocessed as the policy preprocesses.

    Raises FileNotFoundError when the directory is not a LeRobotDataset, ValueError when it lacks a camera or
    the state the policy reads, or when ``frames`` < 1.
    """
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata
    from lerobot.utils.constants import OBS_STATE

    from snapflow.deploy.graph import graph_feeds

    root = Path(dataset_root)
    if not (root / "meta" / "info.json").is_file():
        raise FileNotFoundError(f"calibration={root} is not a LeRobotDataset (no meta/info.json)")
    if frames < 1:
        raise ValueError(f"calibration_frames must be >= 1, got {frames}")
    meta = LeRobotDatasetMetadata(repo_id=f"local/{root.name}", root=root)
    keys = [*policy.config.image_features, OBS_STATE]
    missing = [k for k in keys if k not in meta.features]
    if missing:
        raise ValueError(f"calibration={root} has no {missing}; the policy reads {keys}")
    for key, feature in policy.config.image_features.items():  # dataset images are HWC, the policy's CHW
        stored = tuple(meta.features[key]["shape"])
        if sorted(stored) != sorted(feature.shape):
            raise ValueError(
                f"calibration={root}: {key} is {list(stored)} there, the policy takes {list(feature.shape)}; "
                "calibrate on demos recorded at the policy's resolution"
            )
    dataset = LeRobotDataset(repo_id=f"local/{root.name}", root=root, video_backend="pyav")
    picks = np.linspace(0, len(dataset) - 1, num=min(frames, len(dataset))).round().astype(int)
    feeds = []
    for i, index in enumerate(picks):
        frame = dataset[int(index)]
        raw = {k: frame[k].unsqueeze(0) for k in keys} | {"task": [frame["task"]]}
        feeds.append(graph_feeds(policy, preprocessor(raw), seed + i))
    return feeds
