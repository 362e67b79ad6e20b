"""Raw robot / sim observations -> the LeRobot observation batch a policy preprocessor expects."""

import numpy as np
import torch
from lerobot.envs.utils import preprocess_observation


def to_lerobot_batch(raw: dict) -> dict:
    """One raw observation -> a batch of one in LeRobot's keys, images float (1, 3, H, W) in [0, 1].

    Accepts the mini-LIBERO / gymnasium layout (``pixels`` dict of HxWx3 uint8, ``agent_pos``) and LeRobot's
    dataset-frame layout (``observation.images.<cam>`` HxWx3 uint8, ``observation.state``), plus ``task``.
    """
    if not isinstance(raw, dict):
        raise ValueError(
            f"the observation must be a dict (pixels / agent_pos / task, or LeRobot's keys), got {type(raw).__name__}"
        )
    if "task" not in raw or not isinstance(raw["task"], str) or not raw["task"].strip():
        raise ValueError("the observation needs a non-empty 'task' string (the language instruction)")
    if "pixels" in raw or "agent_pos" in raw:
        pixels = raw.get("pixels")
        if pixels is not None and not isinstance(pixels, dict):
            raise ValueError(
                f"pixels must be a dict of camera name -> HxWx3 uint8 image, got {type(pixels).__name__}"
            )
        for name, img in (pixels or {}).items():
            shape, dtype = np.shape(img), np.asarray(img).dtype
            if len(shape) != 3 or shape[-1] != 3 or dtype != np.uint8:
                raise ValueError(f"pixels.{name} must be an HxWx3 uint8 image, got {tuple(shape)} {dtype}")
        if "agent_pos" in raw:
            _numbers("agent_pos", raw["agent_pos"])
        batch = preprocess_observation({k: v for k, v in raw.items() if k != "task"})
    else:
        batch = {}
        for key, value in raw.items():
            if key.startswith("observation.images."):
                img = torch.as_tensor(np.asarray(value))
                if img.ndim != 3 or img.shape[-1] != 3 or img.dtype != torch.uint8:
                    raise ValueError(
                        f"{key} must be an HxWx3 uint8 image, got {tuple(img.shape)} {img.dtype}"
                    )
                batch[key] = img.permute(2, 0, 1).unsqueeze(0).float() / 255.0
            elif key.startswith("observation."):
                batch[key] = torch.as_tensor(_numbers(key, value)).unsqueeze(0)
    for key, value in batch.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ValueError(f"{key} contains NaN or infinite values")
    batch["task"] = [raw["task"]]
    return batch


def _numbers(key: str, value: object) -> np.ndarray:
    """``value`` as float32, or ValueError naming ``key`` (numpy's own message names the value, not the key)."""
    # numpy would make None a NaN, and the error would blame the values instead of their absence
    if value is None:
        raise ValueError(f"{key} is None: the robot's state is missing from the observation")
    if np.asarray(value).dtype == np.bool_:  # as the student's preprocessor: a bool state is a wiring mistake
        raise ValueError(f"{key} has dtype bool: the robot's state must be numbers (float)")
    try:
        return np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{key} must be numbers (the robot's state), got {value!r:.80}: {e}") from None


def check_features(batch: dict, expected: dict[str, tuple[int, ...]]) -> None:
    """Every feature the policy reads is in ``batch`` (from ``to_lerobot_batch``) with its shape, without the
    batch axis: ValueError naming the key, the shape expected and the keys given. A camera the policy was
    trained with must not silently be missing (upstream SmolVLA would run on the cameras left)."""
    given = sorted(k for k in batch if k != "task")
    for key, shape in expected.items():
        if key not in batch:
            raise ValueError(f"the observation has no {key} (shape {list(shape)}); it has {given}")
        got = tuple(batch[key].shape[1:])
        if got != tuple(shape):
            raise ValueError(f"{key} has shape {list(got)}, the policy expects {list(shape)}")
