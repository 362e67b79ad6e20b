"""A checkpoint's saved LeRobot processors, loaded and checked against its policy config.

The pipelines (``policy_preprocessor.json`` / ``policy_postprocessor.json`` and their ``*.safetensors``
stats) are plain files a user can edit or damage apart from ``config.json``; LeRobot loads them as they are.
Pass 18 found three silent or unnamed failures: a norm_map edited to IDENTITY ran the policy on raw values
without a word; a stats tensor of the wrong length failed deep inside a tensor operation; a misspelt step
``registry_name`` ended in a Hydra ImportError traceback. `load_checked_processors` names each by file.
"""

from __future__ import annotations

from pathlib import Path

PIPELINE_FILES = ("policy_preprocessor.json", "policy_postprocessor.json")


def load_checked_processors(cfg: object, path: str | Path, device: str = "cpu") -> tuple[object, object]:
    """``(preprocessor, postprocessor)`` of the checkpoint or export at ``path``, as lerobot-eval loads them
    (LeRobot's ``make_pre_post_processors``), after `check_processors`.

    Raises:
        ValueError: naming the pipeline file: a step LeRobot cannot build (an unknown ``registry_name``, a
            config key the step does not take), or any refusal of `check_processors`.
    """
    from lerobot.policies.factory import make_pre_post_processors

    from snapflow.policies.lerobot_plugin.validation import validate_processor_stats

    overrides = {"device_processor": {"device": device}}
    try:
        processors = make_pre_post_processors(
            cfg, pretrained_path=str(path), preprocessor_overrides=overrides
        )
    except (ImportError, TypeError, KeyError) as e:  # LeRobot's registry and step constructors raise these
        raise ValueError(
            f"{path}: its processor pipeline cannot be built: {_unknown_step(Path(path)) or _first_line(e)}; "
            "a damaged or hand-edited file: copy the checkpoint again"
        ) from None
    validate_processor_stats(processors, path)
    check_processors(cfg, processors, path)
    return processors


def check_processors(cfg: object, processors: tuple[object, ...], path: object) -> None:
    """ValueError when a loaded (un)normaliser disagrees with the policy config it runs beside: its norm_map
    differs from ``config.json``'s ``normalization_mapping`` (the policy was trained with the config's), a
    feature's stats have another length than the feature, a std is negative, or the tokenizer's
    ``max_length`` is below 1 (every instruction would be cut to nothing)."""
    from lerobot.processor.normalize_processor import NormalizerProcessorStep, UnnormalizerProcessorStep
    from lerobot.processor.tokenizer_processor import TokenizerProcessorStep

    trained = {_name(k): _name(v) for k, v in dict(cfg.normalization_mapping).items()}
    for processor in processors:
        for step in getattr(processor, "steps", []):
            if isinstance(step, TokenizerProcessorStep) and not int(step.max_length) >= 1:
                raise ValueError(
                    f"{path}: the tokenizer_processor step has max_length={step.max_length}; it must be >= 1 "
                    "(the number of instruction tokens kept): a hand-edited pipeline file"
                )
            if not isinstance(step, (NormalizerProcessorStep, UnnormalizerProcessorStep)):
                continue
            saved = {_name(k): _name(v) for k, v in step.norm_map.items()}
            differs = {k: (v, trained.get(k)) for k, v in saved.items() if trained.get(k, v) != v}
            if differs:
                kind, (now, was) = next(iter(differs.items()))
                raise ValueError(
                    f"{path}: the {type(step).__name__}'s norm_map has {kind}: {now}, but config.json's "
                    f"normalization_mapping has {kind}: {was} (what the policy was trained with): a hand-edited "
                    "pipeline file; copy the checkpoint again"
                )
            _check_stats_shapes(step, path)


PER_DIMENSION_STATS = ("mean", "std", "min", "max")  # one value per dimension (LeRobot adds a scalar count)


def _check_stats_shapes(step: object, path: object) -> None:
    """ValueError naming feature and statistic when a 1-D feature's (state, action) stats are not as long
    as the feature, or a std is negative. LeRobot keeps loaded stats as numpy arrays in ``step.stats``."""
    import numpy as np

    for key, feature in step.features.items():
        if len(tuple(feature.shape)) != 1:
            continue  # images keep per-channel stats of shape (3, 1, 1)
        size = int(feature.shape[0])
        for stat, value in (step.stats or {}).get(key, {}).items():
            if stat not in PER_DIMENSION_STATS:
                continue
            values = np.asarray(value, dtype=float).ravel()
            if values.size != size:
                raise ValueError(
                    f"{path}: the {type(step).__name__}'s {key} {stat} has {values.size} values, the feature "
                    f"{size}: stats of another robot or a damaged stats file; copy the checkpoint again"
                )
            if stat == "std" and ((values < 0).any() or not values.any()):
                # zero in every dimension: every action would be the mean (a constant dimension alone is fine)
                raise ValueError(
                    f"{path}: the {type(step).__name__}'s {key} std is {'negative' if (values < 0).any() else 'zero in every dimension'}: "
                    "damaged stats; copy the checkpoint again (or recompute the dataset's stats)"
                )


def _name(value: object) -> str:
    """An enum's value or a string as saved in JSON (FeatureType.STATE and "STATE" alike)."""
    return str(getattr(value, "value", value))


def _unknown_step(path: Path) -> str | None:
    """'<file> names step <name>, which LeRobot does not know (did you mean ...?)' for the first step whose
    registry_name is not registered (LeRobot's own message lists all 30 registered names), else None."""
    import difflib
    import json

    from lerobot.processor import ProcessorStepRegistry

    known = ProcessorStepRegistry.list()
    for name in PIPELINE_FILES:
        try:
            steps = json.loads((path / name).read_text()).get("steps", [])
        except (OSError, ValueError, AttributeError):
            continue
        for step in steps if isinstance(steps, list) else []:
            step_name = step.get("registry_name") if isinstance(step, dict) else None
            if isinstance(step_name, str) and step_name not in known:
                close = difflib.get_close_matches(step_name, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                return f"{name} names the step {step_name!r}, which LeRobot does not know{hint}"
    return None


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
