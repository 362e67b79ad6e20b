"""LeRobot checkpoints as our commands find and read them: a `pretrained_model` folder, a training run
(its checkpoints/last), or `embedded` (the shipped teacher, copied with absolute VLM paths so that LeRobot
loads its local SmolVLM instead of asking the Hub); their JSON files read with the file named on error."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

LAST_CHECKPOINT = Path("checkpoints") / "last" / "pretrained_model"


EMBEDDED = "embedded"  # teacher=embedded: the default teacher shipped in policies/assets/
MATERIALIZED_DIR = Path.home() / ".cache" / "snapflow" / "teachers"  # runnable copies of shipped teachers


def resolve_pretrained(path: str | Path) -> Path:
    """A runnable ``pretrained_model`` dir, given it, a training output dir (checkpoints/last) or "embedded".

    A shipped teacher (``embedded``, or a folder like policies/assets/mini_libero_smolvla_teacher whose VLM
    path is relative to itself) is copied to ``MATERIALIZED_DIR`` with absolute VLM paths, so LeRobot
    finds its local SmolVLM instead of asking the Hub for a model id.
    """
    from snapflow.policies.embedded import EMBEDDED_DIR, VLM_SUBDIR, materialize_teacher
    from snapflow.policies.weights_file import check_stats_files

    if str(path) == EMBEDDED:
        return materialize_teacher(MATERIALIZED_DIR / EMBEDDED, source=EMBEDDED_DIR)
    if path is None or not str(path).strip():  # Path("") is "." and was searched as the working folder
        raise ValueError(f"an empty checkpoint path: name a checkpoint folder (or {EMBEDDED})")
    p = Path(path)
    if (p / "contract.json").is_file():
        raise ValueError(
            f"{p} is a snapflow-export directory (an ONNX graph): this needs the LeRobot checkpoint it was "
            "exported from (snapflow-eval runs exports with exports={name: dir})"
        )
    for candidate in (p, p / LAST_CHECKPOINT):
        if (candidate / "config.json").is_file():
            config = read_policy_config(candidate)
            check_stats_files(candidate)  # missing or NaN stats named at the user's path, in every command
            if config.get("vlm_model_name") == VLM_SUBDIR and (candidate / VLM_SUBDIR).is_dir():
                name = hashlib.sha256(str(candidate.resolve()).encode()).hexdigest()[:12]
                return materialize_teacher(MATERIALIZED_DIR / name, source=candidate)
            return candidate
    raise FileNotFoundError(
        f"no LeRobot checkpoint at {p}: expected {p}/config.json or {p / LAST_CHECKPOINT}/config.json "
        f"(or {EMBEDDED} for the shipped teacher)"
    )


def read_json(path: Path) -> object:
    """The JSON value in ``path``; ValueError naming the file when it is not valid JSON (a truncated or
    hand-edited file: json's own message gives a line and column but not the file)."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:  # binary bytes were named without the file
        raise ValueError(f"{path} is not valid JSON ({e})") from None


def json_object(path: Path, key: str, kind: type) -> dict:
    """The JSON object in ``path`` whose ``key`` is a ``kind``; ValueError naming the file otherwise (a
    truncated or hand-edited file). Callers add what the file should have been."""
    raw = read_json(path)
    if not isinstance(raw, dict) or not isinstance(raw.get(key), kind):
        raise ValueError(f"{path} has no {key!r}")
    return raw


def read_policy_config(directory: Path) -> dict:
    """``<directory>/config.json`` of a LeRobot checkpoint; ValueError naming the file when it is not a JSON
    object with a policy ``type``."""
    try:
        return json_object(directory / "config.json", "type", str)
    except ValueError as e:
        raise ValueError(f"{e}: not a usable LeRobot policy checkpoint") from None


def is_distilled(pretrained: str | Path) -> bool:
    """True for a *_snapflow checkpoint trained with the consistency loss (alpha < 1): a SnapFlow student,
    never a flow-matching teacher. PI0/PI05 tiny teachers are *_snapflow types trained with alpha = 1 (plain
    flow matching), as is the FM control, and stay valid teachers."""
    config = read_json(Path(pretrained) / "config.json")
    if not isinstance(config, dict):
        return False  # not a policy config; the loader names the file
    alpha = (config.get("snapflow") or {}).get("alpha", 1.0)
    return str(config.get("type", "")).endswith("_snapflow") and float(alpha) < 1.0
