"""Pre-flight check: does the robot's observation fit what the policy was trained and exported for?

Run once by `snapflow-run` before the loop starts, on a real observation of the robot. Camera names,
image sizes and the state length are compared with the policy's `input_features` (the config.json that
every LeRobot checkpoint and every snapflow export directory carries), so a 64 px export driven at
128 px, a renamed camera or a longer state is refused with a message that names the feature, instead of
a rejected first chunk deep inside the loop.

Raw observations come in two spellings: the mini-LIBERO env's (`pixels/<cam>`, `agent_pos`) and LeRobot's
dataset-frame keys (`observation.images.<cam>`, `observation.state`); both are read.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

STATE, IMAGES = "observation.state", "observation.images."


class PreflightError(ValueError):
    """The robot's observation does not fit the policy; the loop must not start."""


def policy_features(policy_dir: str | Path) -> dict[str, tuple[int, ...]]:
    """{feature name: shape} of a checkpoint's or export's visual and state inputs (config.json)."""
    path = Path(policy_dir) / "config.json"
    if not path.is_file():
        raise PreflightError(f"{policy_dir} has no config.json: not a LeRobot checkpoint or snapflow export")
    feats = json.loads(path.read_text()).get("input_features", {})
    return {
        k: tuple(int(d) for d in v["shape"]) for k, v in feats.items() if v.get("type") in ("VISUAL", "STATE")
    }


def observation_features(obs: dict) -> dict[str, tuple[int, ...]]:
    """{feature name: shape} of a raw robot observation, in LeRobot's names (images as C, H, W)."""
    out: dict[str, tuple[int, ...]] = {}
    cams = dict(obs.get("pixels", {}))
    cams.update({k.removeprefix(IMAGES): v for k, v in obs.items() if k.startswith(IMAGES)})
    for cam, img in cams.items():
        arr = np.asarray(img)
        out[IMAGES + cam] = (arr.shape[-1], *arr.shape[:2]) if arr.ndim == 3 else tuple(arr.shape)
    state = obs.get(STATE, obs.get("agent_pos"))
    if state is not None:
        out[STATE] = tuple(np.asarray(state).shape)
    return out


def check_observation(policy_dir: str | Path, obs: dict) -> None:
    """Raise PreflightError naming every feature whose presence or shape disagrees with the policy.

    The policy's images must all be present at exactly its size; extra cameras are allowed (unused).
    """
    want, got = policy_features(policy_dir), observation_features(obs)
    problems = []
    for name, shape in sorted(want.items()):
        if name not in got:
            problems.append(f"{name} missing (the robot gives {sorted(got)})")
        elif got[name] != shape:
            problems.append(f"{name} has shape {list(got[name])}, the policy expects {list(shape)}")
    if problems:
        raise PreflightError(f"observation does not fit {policy_dir}: " + "; ".join(problems))


def policy_resolution(policy_dir: str | Path) -> int | None:
    """The square camera size (px) the policy expects, or None if its images differ or it has none."""
    sizes = {
        shape[-1]
        for name, shape in policy_features(policy_dir).items()
        if name.startswith(IMAGES) and len(shape) == 3 and shape[-1] == shape[-2]
    }
    return sizes.pop() if len(sizes) == 1 else None
