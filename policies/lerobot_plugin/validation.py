"""Clear errors for bad policy inputs (wrong keys or shapes, non-finite values) before they reach the model."""

from collections.abc import Sequence

import torch
from lerobot.utils.constants import ACTION, OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS, OBS_STATE
from torch import Tensor

# Images reach a policy as float in [0, 1] (LeRobot's preprocess_observation divides uint8 by 255); a little
# slack for resampling overshoot. Anything else is a raw 0-255 frame that would silently change the actions.
IMAGE_RANGE_SLACK = 1e-3


def validate_batch(config: object, batch: dict[str, Tensor], *, needs_action: bool) -> None:
    """Raise ValueError naming the offending key when a preprocessed batch cannot be what the policy expects."""
    image_keys = list(config.image_features)
    present = [k for k in image_keys if k in batch]
    missing = [k for k in image_keys if k not in batch]
    if missing:  # upstream SmolVLA/PI0 would drop a missing camera and act on the others without a word
        raise ValueError(
            f"the batch has no {missing}: the policy was trained on cameras {image_keys}; got keys {sorted(batch)}"
        )
    for key in present:
        img = batch[key]
        # (B, 3, H, W), or (B, T, 3, H, W) when the policy stacks observation steps in training.
        if img.ndim not in (4, 5) or img.shape[-3] != 3:
            raise ValueError(f"{key} must be a (B, 3, H, W) image batch, got shape {tuple(img.shape)}")
        if not img.is_floating_point():
            raise ValueError(
                f"{key} is {img.dtype}: images must be float in [0, 1] (refused, not rescaled: divide 0-255 "
                "frames by 255, as LeRobot's preprocess_observation does)"
            )
        if not torch.isfinite(img).all():
            raise ValueError(f"{key} contains NaN or infinite values")
        low, high = float(img.min()), float(img.max())
        if low < -IMAGE_RANGE_SLACK or high > 1.0 + IMAGE_RANGE_SLACK:
            raise ValueError(f"{key} has values in [{low:.3g}, {high:.3g}]: images must be float in [0, 1]")
    for key in (OBS_LANGUAGE_TOKENS, OBS_LANGUAGE_ATTENTION_MASK):
        if key not in batch:
            raise ValueError(
                f"missing {key}: the batch did not go through the policy's preprocessor, which tokenises "
                "the 'task' instruction (lerobot-eval and our runtimes call it)"
            )
    _check_state(config.robot_state_feature, batch, needs_action)
    sizes = {k: int(batch[k].shape[0]) for k in (*present, OBS_STATE, OBS_LANGUAGE_TOKENS) if k in batch}
    if len(set(sizes.values())) > 1:
        others = {v for k, v in sizes.items() if k != OBS_LANGUAGE_TOKENS}
        odd_tokens = (
            OBS_LANGUAGE_TOKENS in sizes and len(others) == 1 and sizes[OBS_LANGUAGE_TOKENS] not in others
        )
        hint = " (the language tokens come from 'task': one instruction per batch row)" if odd_tokens else ""
        raise ValueError(f"the batch's entries disagree on the batch size: {sizes}{hint}")
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


def check_queue_batch(queue: Sequence[Tensor] | None, batch: dict[str, Tensor], config: object) -> None:
    """Refuse an observation batch of another size than the queued actions' rows.

    LeRobot's ``select_action`` serves queued actions without looking at the observation, so a new batch of
    envs (or one env after a batch) without ``reset()`` would get the old rows' actions. ValueError names both.
    """
    if not queue:
        return
    rows = next((int(v.shape[0]) for k, v in batch.items() if k in config.input_features), None)
    queued = int(queue[0].shape[0])
    if rows is not None and rows != queued:
        raise ValueError(
            f"select_action got a batch of {rows} observations while its action queue holds actions for "
            f"{queued}: call policy.reset() when a new episode (or batch of envs) starts"
        )


def _check_state(state_ft: object, batch: dict[str, Tensor], needs_action: bool) -> None:
    """``observation.state``: present, (B, D) ((B, T, D) in training), D as built, float32/bf16, finite."""
    if state_ft is None:
        return
    if OBS_STATE not in batch:
        raise ValueError(f"missing {OBS_STATE} (expected shape {tuple(state_ft.shape)})")
    state = batch[OBS_STATE]
    # (B, D) at inference; training batches may carry the observation-step axis, (B, T, D).
    if state.ndim not in ((2, 3) if needs_action else (2,)):  # upstream would broadcast another layout
        raise ValueError(
            f"{OBS_STATE} must be a (B, {state_ft.shape[-1]}) batch, got shape {tuple(state.shape)}"
        )
    if state.shape[-1] != state_ft.shape[-1]:
        raise ValueError(
            f"{OBS_STATE} has {state.shape[-1]} dims but the policy was built for {state_ft.shape[-1]}"
        )
    if state.dtype not in (torch.float32, torch.bfloat16):  # float64/float16 fail inside the model
        raise ValueError(f"{OBS_STATE} is {state.dtype}: the policy takes float32 (convert it first)")
    if not torch.isfinite(state).all():
        raise ValueError(f"{OBS_STATE} contains NaN or infinite values")


def validate_processor_stats(processors: tuple[object, ...], source: object) -> None:
    """Refuse processors whose (un)normaliser has no statistics for a feature it must (un)normalise.

    LeRobot's NormalizerProcessorStep / UnnormalizerProcessorStep skip such a feature silently, so a checkpoint
    whose stats are keyed under other names (e.g. a robot-prefixed ``so100.buffer.action``) would run and
    export with raw, unnormalised actions. Raises ValueError naming the missing and the present keys.
    """
    from lerobot.configs.types import NormalizationMode
    from lerobot.processor.normalize_processor import NormalizerProcessorStep, UnnormalizerProcessorStep

    for processor in processors:
        for step in getattr(processor, "steps", []):
            if not isinstance(step, (NormalizerProcessorStep, UnnormalizerProcessorStep)):
                continue
            stats = step.stats or {}
            missing = [
                key
                for key, ft in step.features.items()
                if step.norm_map.get(ft.type, NormalizationMode.IDENTITY) != NormalizationMode.IDENTITY
                and (step.normalize_observation_keys is None or key in step.normalize_observation_keys)
                and key not in stats
            ]
            if missing:
                raise ValueError(
                    f"{source}: the {type(step).__name__} has no statistics for {missing} "
                    f"(its stats are keyed {sorted(stats)}); the features would pass unnormalised. "
                    "Re-save the processors with stats keyed by the policy's feature names"
                )
