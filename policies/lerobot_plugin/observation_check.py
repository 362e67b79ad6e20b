"""A preprocessor step that names a bad observation before LeRobot's own steps fail on it.

LeRobot's policy preprocessors (upstream lerobot/processor/*.py) end a missing instruction in
``KeyError: 'task'`` (tokenizer step) and a state of the wrong length in a tensor-size error (normaliser
step). `snapflow-export` puts this step first in the export's ``policy_preprocessor.json`` (after the
rename step), and `snapflow-distill` in every student checkpoint it writes, so every path through those
processors (``lerobot-eval``/``lerobot-rollout`` with ``--policy.path=<export or checkpoint>``, our runtimes,
a user's own ``pre(obs)``) gets a ValueError that names the key. Registered as ``snapflow_observation_check``
when the plugin is imported (LeRobot imports ``lerobot_policy_*`` plugins itself), so only processors of our
own policy types carry it: an upstream teacher's checkpoint stays loadable without this package.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lerobot.processor import ProcessorStep, ProcessorStepRegistry, TransitionKey

STEP_NAME = "snapflow_observation_check"
CAMERA_PREFIX = "observation.images."


def check_observation_batch(observation: dict, task: Any, features: dict[str, list[int]]) -> None:
    """ValueError naming what is wrong: a feature of ``features`` ({key: shape without batch axis}) missing,
    of another shape (batched or not) or not floating point (an integer state or uint8 image would be
    normalised as numbers of another scale without a word), a batch of 0 rows, or ``task`` missing, None or
    blank."""
    missing = [k for k in features if k not in observation]
    if missing:
        raise ValueError(
            f"the observation has no {missing}: the policy reads {list(features)}; got {sorted(observation)}"
        )
    for key, shape in features.items():
        if not hasattr(observation[key], "shape"):  # a list or a scalar: LeRobot's steps take tensors/arrays
            raise ValueError(
                f"{key} is a {type(observation[key]).__name__}: the policy takes a torch tensor of shape "
                f"{tuple(shape)} or (B, {', '.join(map(str, shape))}), or a numpy array of shape "
                f"(B, {', '.join(map(str, shape))})"
            )
        got = tuple(observation[key].shape)
        # (B, T, ...) is a training batch's layout (lerobot-train runs these processors on resume)
        if got[-len(shape) :] != tuple(shape) or len(got) - len(shape) not in (0, 1, 2):
            raise ValueError(
                f"{key} has shape {got}: the policy takes {tuple(shape)} (with or without a batch axis)"
            )
        if isinstance(observation[key], np.ndarray) and len(got) == len(
            shape
        ):  # LeRobot batches tensors only
            raise ValueError(
                f"{key} is a numpy array of shape {got} without a batch axis: give it one "
                f"({(1, *shape)}), or pass a torch tensor (which may omit it)"
            )
        if not _is_floating(observation[key]):
            raise ValueError(
                f"{key} has dtype {observation[key].dtype}: the policy takes floating point "
                "(images scaled to [0, 1], the state in the robot's units)"
            )
    empty = sorted(
        k for k, s in features.items() if len(observation[k].shape) > len(s) and observation[k].shape[0] == 0
    )
    if empty:  # checked before the task: a 0-row batch's task=[] is not what is wrong
        raise ValueError(f"the observation batch has 0 rows ({', '.join(empty)}): there is nothing to act on")
    texts = [task] if isinstance(task, str) else list(task) if isinstance(task, list | tuple) else None
    if texts is None or not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
        raise ValueError(
            f"task={task!r}: the policy needs the instruction as 'task' (a non-empty string, or one per batch row)"
        )
    batched = {
        k: int(observation[k].shape[0]) for k, s in features.items() if len(observation[k].shape) > len(s)
    }
    rows = set(batched.values())
    if len(rows) > 1:
        raise ValueError(f"the observation's entries disagree on the batch size: {batched}")
    if isinstance(task, list | tuple) and rows and rows != {len(texts)}:
        raise ValueError(
            f"task has {len(texts)} instructions for a batch of {sorted(rows)} rows: give one per row"
        )


def _is_floating(value: Any) -> bool:
    """True for a float torch tensor or numpy array (and for anything else: shape checks cover those)."""
    if isinstance(value, torch.Tensor):
        return value.is_floating_point()
    if isinstance(value, np.ndarray):
        return bool(np.issubdtype(value.dtype, np.floating))
    return True


def unused_cameras(observation: dict, features: dict[str, list[int]]) -> list[str]:
    """Camera keys of ``observation`` the policy does not read (LeRobot policies ignore them)."""
    return sorted(k for k in observation if k.startswith(CAMERA_PREFIX) and k not in features)


@ProcessorStepRegistry.register(STEP_NAME)
@dataclass
class ObservationCheckStep(ProcessorStep):
    """Checks, changes nothing. ``features``: {observation key: shape without the batch axis}."""

    features: dict[str, list[int]] = field(default_factory=dict)
    task_key: str = "task"
    _warned: bool = field(default=False, init=False, repr=False)

    def __call__(self, transition: dict) -> dict:
        observation = transition.get(TransitionKey.OBSERVATION) or {}
        extra = transition.get(TransitionKey.COMPLEMENTARY_DATA) or {}
        check_observation_batch(observation, extra.get(self.task_key), self.features)
        if not self._warned and (unused := unused_cameras(observation, self.features)):
            # a robot may carry more cameras than the policy reads, so this is legal; say it once
            # a warning, not a log line: a host's logging config (Hydra's disables existing loggers) can mute logs
            warnings.warn(
                f"the policy ignores {unused}: it reads the cameras {self._cameras()}", stacklevel=2
            )
            self._warned = True
        return transition

    def _cameras(self) -> list[str]:
        return [k for k in self.features if k.startswith(CAMERA_PREFIX)]

    def get_config(self) -> dict[str, Any]:
        return {"features": self.features, "task_key": self.task_key}

    def transform_features(self, features: dict) -> dict:
        return features


def features_of(config: dict) -> dict[str, list[int]]:
    """{key: shape} of the camera (VISUAL) and STATE input features of a LeRobot policy ``config.json``."""
    return {
        key: [int(d) for d in spec["shape"]]
        for key, spec in config.get("input_features", {}).items()
        if spec.get("type") in ("VISUAL", "STATE")
    }


def add_to_checkpoint(pretrained_model: Path) -> None:
    """Insert the check into ``<pretrained_model>/policy_preprocessor.json`` (features from its config.json);
    idempotent. A directory without both files is left alone (a checkpoint still being written)."""
    processor, config = pretrained_model / "policy_preprocessor.json", pretrained_model / "config.json"
    if not (processor.is_file() and config.is_file()):
        return
    features = features_of(json.loads(config.read_text()))
    updated = insert_into(json.loads(processor.read_text()), features)
    tmp = processor.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(updated, indent=2))
    tmp.replace(processor)  # atomic: a reader sees the old or the new pipeline, never half of one


def insert_into(preprocessor_json: dict, features: dict[str, list[int]]) -> dict:
    """``policy_preprocessor.json`` with the check first, or right after a rename step that renames something
    (the check names the policy's keys); a check already there is replaced (a re-export). First matters for an
    observation without any ``observation.*`` key: LeRobot's rename step would refuse it as "requires an
    observation in the transition" without naming what is missing."""
    steps = [s for s in preprocessor_json.get("steps", []) if s.get("registry_name") != STEP_NAME]
    at = next(
        (
            i + 1
            for i, s in enumerate(steps)
            if s.get("registry_name") == "rename_observations_processor"
            and s.get("config", {}).get("rename_map")
        ),
        0,
    )
    check = {"registry_name": STEP_NAME, "config": {"features": features, "task_key": "task"}}
    return {**preprocessor_json, "steps": [*steps[:at], check, *steps[at:]]}
