"""Helpers shared by the policy tests: tiny policies and preprocessed batches."""

import torch

from snapflow.policies.tiny import TINY_IMAGE_SIZE, TINY_PI_IMAGE_SIZE, lerobot_features, make_tiny_policy

FAMILIES = ("smolvla", "pi0", "pi05")
TASK = "pick up the red cube and put it on the plate"


def image_size(family: str) -> int:
    return TINY_IMAGE_SIZE if family == "smolvla" else TINY_PI_IMAGE_SIZE


def dataset_stats(state_dim: int = 8, action_dim: int = 7) -> dict:
    def stats(dim: int) -> dict:
        return {
            "mean": torch.zeros(dim),
            "std": torch.ones(dim),
            "min": -torch.ones(dim),
            "max": torch.ones(dim),
            "q01": -torch.ones(dim),
            "q99": torch.ones(dim),
        }

    return {"observation.state": stats(state_dim), "action": stats(action_dim)}


def tiny_student(family: str, assets, **overrides):
    """(policy, preprocessor, postprocessor) of the tiny ``<family>_snapflow`` student."""
    inputs, outputs = lerobot_features(image_size=image_size(family))
    return make_tiny_policy(f"{family}_snapflow", assets, inputs, outputs, dataset_stats(), **overrides)


def raw_batch(
    family: str, batch_size: int = 2, chunk: int = 10, with_action: bool = True, seed: int = 0
) -> dict:
    g = torch.Generator().manual_seed(seed)
    size = image_size(family)
    batch = {
        "observation.images.image": torch.rand(batch_size, 3, size, size, generator=g),
        "observation.images.image2": torch.rand(batch_size, 3, size, size, generator=g),
        "observation.state": torch.randn(batch_size, 8, generator=g),
        "task": [TASK] * batch_size,
    }
    if with_action:
        batch["action"] = torch.randn(batch_size, chunk, 7, generator=g).clamp(-1, 1)
        batch["action_is_pad"] = torch.zeros(batch_size, chunk, dtype=torch.bool)
    return batch
