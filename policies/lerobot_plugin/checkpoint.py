"""Loading a SnapFlow student from a flow-matching teacher checkpoint or from its own checkpoint.

Upstream loaders either log missing keys and go on (SmolVLA) or wrap a strict load in a broad try/except
and print a false "Could not load state dict" warning (PI0/PI05), and PI05 even returns random weights when
``model.safetensors`` is absent. Here the only keys allowed to be missing are the zero-initialised
target-time embedding's, anything else (wrong type, missing file, mismatched or unexpected keys, wrong
shapes) raises a ValueError that names the problem.
"""

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from huggingface_hub import hf_hub_download
from safetensors.torch import load_file
from torch import Tensor, nn

logger = logging.getLogger(__name__)

TARGET_TIME_PREFIX = "target_time_embedding."


def resolve_file(pretrained: str | Path, filename: str, **hub_kwargs: object) -> Path:
    """A checkpoint file from a local directory, or from the Hub for users who have it."""
    if os.path.isdir(pretrained):
        path = Path(pretrained) / filename
        if not path.is_file():
            raise ValueError(f"checkpoint directory {pretrained} has no {filename}")
        return path
    hub_keys = ("revision", "cache_dir", "force_download", "proxies", "token", "local_files_only")
    kwargs = {k: v for k, v in hub_kwargs.items() if k in hub_keys}
    return Path(hf_hub_download(repo_id=str(pretrained), filename=filename, **kwargs))


def check_checkpoint_type(pretrained: str | Path, allowed: tuple[str, ...], **hub_kwargs: object) -> str:
    """Read config.json's ``type`` and refuse checkpoints of another policy family."""
    cfg_path = resolve_file(pretrained, "config.json", **hub_kwargs)
    try:
        ckpt_type = json.loads(cfg_path.read_text())["type"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError) as e:
        raise ValueError(f"{cfg_path} is not a LeRobot policy config (no readable 'type'): {e}") from e
    if ckpt_type not in allowed:
        raise ValueError(
            f"checkpoint {pretrained} is a {ckpt_type!r} policy; this policy type loads only {allowed} "
            "checkpoints (a flow-matching teacher of the same family, or a student of this type)"
        )
    return ckpt_type


PROCESSOR_FILES = ("policy_preprocessor.json", "policy_postprocessor.json")  # LeRobot's default names


def check_processor_files(pretrained: str | Path) -> None:
    """ValueError naming a processor pipeline file of a local checkpoint that is present but not JSON.

    LeRobot reads these after the policy (``make_pre_post_processors`` in lerobot/policies/factory.py) and
    a cut-short one ends there in a bare ``JSONDecodeError`` naming no file; checked when the policy loads.
    A missing file is left to LeRobot (a checkpoint may come without processors).
    """
    if not os.path.isdir(pretrained):
        return
    for name in PROCESSOR_FILES:
        path = Path(pretrained) / name
        if not path.is_file():
            continue
        try:
            json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(
                f"{path} is not valid JSON ({e}): the checkpoint's processor pipeline is damaged; "
                "copy the checkpoint again"
            ) from e


def is_resumable_checkpoint(pretrained: str | Path) -> bool:
    """True for a local lerobot-train checkpoint ``<run>/checkpoints/<step>/pretrained_model`` whose sibling
    ``training_state/`` holds the optimizer state: the directory ``lerobot-train --resume=true`` loads
    (upstream lerobot/scripts/lerobot_train.py, lerobot/utils/train_utils.py)."""
    from lerobot.utils.constants import OPTIMIZER_STATE, PRETRAINED_MODEL_DIR, TRAINING_STATE_DIR

    path = Path(pretrained)
    return (
        path.name == PRETRAINED_MODEL_DIR and (path.parent / TRAINING_STATE_DIR / OPTIMIZER_STATE).is_file()
    )


def load_weights(
    policy: nn.Module,
    pretrained: str | Path,
    remap: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None,
    **hub_kwargs: object,
) -> list[str]:
    """Load ``model.safetensors`` into ``policy``; only the target-time embedding may be missing.

    Returns the missing (zero-initialised) target-time keys: all four when starting from a teacher.
    """
    weights_path = resolve_file(pretrained, "model.safetensors", **hub_kwargs)
    try:
        state_dict = load_file(str(weights_path))
    except Exception as e:  # safetensors raises its own error types for truncated or foreign files
        raise ValueError(f"cannot read {weights_path} (corrupt or not a safetensors file): {e}") from e
    if remap is not None:
        state_dict = remap(state_dict)
    own = policy.state_dict()
    bad_shapes = [
        f"{k}: checkpoint {tuple(v.shape)} vs policy {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and own[k].shape != v.shape
    ]
    if bad_shapes:
        raise ValueError(
            f"checkpoint {pretrained} does not match this policy's architecture: {bad_shapes[:5]}"
        )
    missing, unexpected = policy.load_state_dict(state_dict, strict=False)
    missing_model = [k for k in missing if not k.startswith(TARGET_TIME_PREFIX)]
    if missing_model or unexpected:
        raise ValueError(
            f"checkpoint {pretrained} does not match this policy: missing {missing_model[:5]} "
            f"({len(missing_model)}), unexpected {list(unexpected)[:5]} ({len(unexpected)})"
        )
    if missing:
        logger.info(
            "Loaded a flow-matching teacher: %d target-time parameters start from zero-init (%s)",
            len(missing),
            ", ".join(missing),
        )
    return list(missing)
