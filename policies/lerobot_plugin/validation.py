"""Clear errors for bad policy inputs (wrong keys or shapes, non-finite values) before they reach the model."""

import torch
from lerobot.utils.constants import ACTION, OBS_STATE
from torch import Tensor


def validate_batch(config: object, batch: dict[str, Tensor], *, needs_action: bool) -> None:
    """Raise ValueError naming the offending key when a preprocessed batch cannot be what the policy expects."""
    image_keys = list(config.image_features)
    present = [k for k in image_keys if k in batch]
    if image_keys and not present:
        raise ValueError(
            f"no image in the batch: expected at least one of {image_keys}, got keys {sorted(batch)}"
        )
    for key in present:
        img = batch[key]
        # (B, 3, H, W), or (B, T, 3, H, W) when the policy stacks observation steps in training.
        if img.ndim not in (4, 5) or img.shape[-3] != 3:
            raise ValueError(f"{key} must be a (B, 3, H, W) image batch, got shape {tuple(img.shape)}")
        if img.is_floating_point() and not torch.isfinite(img).all():
            raise ValueError(f"{key} contains NaN or infinite values")
    state_ft = config.robot_state_feature
    if state_ft is not None:
        if OBS_STATE not in batch:
            raise ValueError(f"missing {OBS_STATE} (expected shape {tuple(state_ft.shape)})")
        state = batch[OBS_STATE]
        if state.shape[-1] != state_ft.shape[-1]:
            raise ValueError(
                f"{OBS_STATE} has {state.shape[-1]} dims but the policy was built for {state_ft.shape[-1]}"
            )
        if not torch.isfinite(state).all():
            raise ValueError(f"{OBS_STATE} contains NaN or infinite values")
    if needs_action:
        if ACTION not in batch:
            raise ValueError(f"training batch has no {ACTION!r}")
        action_dim = config.action_feature.shape[-1]
        if batch[ACTION].shape[-1] != action_dim:
            raise ValueError(
                f"{ACTION} has {batch[ACTION].shape[-1]} dims but the policy outputs {action_dim}"
            )
        if not torch.isfinite(batch[ACTION]).all():
            raise ValueError(f"{ACTION} contains NaN or infinite values")
