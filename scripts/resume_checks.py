"""What `resume=true` must refuse: values the resumed run would ignore.

lerobot-train resumes from ``<out>/checkpoints/last/train_config.json`` and takes every run value from it
(upstream lerobot/scripts/lerobot_train.py), so a changed batch size, learning rate or teacher given with
``resume=true`` would be ignored without a word; these checks name each one instead.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from snapflow.scripts.checkpoints import LAST_CHECKPOINT, read_json, resolve_pretrained

# Keys a resumed run takes from its saved train_config.json: a different value given with resume=true would be
# ignored by lerobot-train, so it is refused instead (steps may change: the run continues up to it).
RESUMED_KEYS = {
    "batch_size": ("batch_size",),
    "seed": ("seed",),
    "save_freq": ("save_freq",),
    "log_freq": ("log_freq",),
    "num_workers": ("num_workers",),
    "alpha": ("policy", "snapflow", "alpha"),
    "consistency_weight": ("policy", "snapflow", "consistency_weight"),
    "lr": ("policy", "optimizer_lr"),
}


def check_resume_values(cfg: object, explicit: set[str]) -> None:
    """ValueError when a key given on the command line (``explicit``) with resume=true differs from the run
    being resumed: lerobot-train would silently continue with the saved value. ``method`` (snapflow | fm) is
    read back from the saved alpha and sampler. Keys the run does not record are not checked."""
    config_file = Path(cfg.out) / LAST_CHECKPOINT / "train_config.json"
    if not config_file.is_file():
        return  # resume_args names the missing checkpoint
    saved = _read_object(config_file)
    recorded: dict[str, object] = {}
    for key, path in RESUMED_KEYS.items():
        value = saved
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        recorded[key] = value
    snapflow = saved.get("policy", {}).get("snapflow") or {}
    if snapflow:
        fm = snapflow.get("alpha") == 1.0 and snapflow.get("multistep_mode") == "euler"
        recorded["method"] = "fm" if fm else "snapflow"
    _check_steps_left(cfg)
    policy = saved.get("policy") or {}
    problems = []  # every ignored value at once, in one message
    if "policy" in explicit and cfg.get("policy"):  # snapflow-train: the family the run trains
        given = str(cfg.policy).removesuffix("_snapflow")
        was = str(policy.get("type", "")).removesuffix("_snapflow")
        if given != was:
            problems.append(f"policy={cfg.policy} (the run trains {was})")
    recorded_root = (saved.get("dataset") or {}).get("root")
    if recorded_root and not Path(recorded_root).exists():  # lerobot-train could not read it either
        raise FileNotFoundError(
            f"resume=true: the run in out={cfg.out} trains on {recorded_root}, which is gone (for "
            "snapflow-distill, its view of the dataset with the teacher's stats, beside the out= it was started "
            "in): put it back, or start a new out="
        )
    if recorded_root:  # snapflow-distill's view: its copied meta must still describe the linked frames
        from snapflow.scripts.teacher_stats import check_view_current

        check_view_current(Path(recorded_root))
    own_view = Path(str(cfg.out).rstrip("/") + ".dataset")
    if (
        recorded_root
        and recorded_root.endswith(".dataset")
        and Path(recorded_root).resolve() != own_view.resolve()
    ):
        print(  # pass 17: a copied run read the original's view without a word (harmless while it exists)
            f"note: the run resumes on {recorded_root}, recorded when it started (a copied or moved run keeps "
            f"reading it, not {own_view})"
        )
    given_root = cfg.get("dataset") if "dataset" in explicit else None
    if given_root and recorded_root and _dataset_source(given_root) != _dataset_source(recorded_root):
        problems.append(f"dataset={cfg.dataset} (the run trains on {_dataset_source(recorded_root)})")
    teacher = _original_teacher(Path(cfg.out))
    if "teacher" in explicit and cfg.get("teacher") and teacher:  # snapflow-distill
        try:  # teacher= is mandatory on the command line, so a resume may pass a placeholder (teacher=unused)
            given_dir = resolve_pretrained(cfg.teacher).resolve()
        except (FileNotFoundError, ValueError):  # a folder that is there but no checkpoint is no placeholder
            given_dir = Path(str(cfg.teacher)).resolve() if Path(str(cfg.teacher)).exists() else None
        if given_dir is not None and given_dir != teacher:
            problems.append(f"teacher={cfg.teacher} (the run was distilled from {teacher})")
    for key in sorted(explicit & set(recorded)):
        given, was = cfg.get(key), recorded[key]
        if given is None or was is None:
            continue
        same = str(given) == str(was) if key == "method" else math.isclose(float(given), float(was))
        if not same:
            problems.append(f"{key}={given} (the run has {key}={was})")
    midway = _changed_extra_flags(saved, [str(f) for f in (cfg.get("extra") or [])])
    if problems or midway:
        parts = [f"these would be ignored: {'; '.join(problems)}"] if problems else []
        parts += [f"these would change it from the resumed step on: {'; '.join(midway)}"] if midway else []
        raise ValueError(
            f"resume=true continues the run in out={cfg.out} as it was started; {'; and '.join(parts)}. "
            "Start a new out= to change them."
        )


def _check_steps_left(cfg: object) -> None:
    """ValueError when steps= does not exceed the resumed run's step (lerobot-train would end at once)."""
    step_file = Path(cfg.out) / "checkpoints" / "last" / "training_state" / "training_step.json"
    if step_file.is_file():
        done = int(_read_object(step_file).get("step", 0))
        if int(cfg.steps) <= done:
            raise ValueError(
                f"resume=true: the run in out={cfg.out} is at step {done}; steps={cfg.steps} must exceed it"
            )


def _changed_extra_flags(saved: dict, extra: list[str]) -> list[str]:
    """The ``extra=`` flags (``--a.b=value``) whose value differs from the saved run's ``a.b``.

    lerobot-train applies command-line flags on top of a resumed config (upstream lerobot/configs/train.py),
    so such a flag would change the run from the resumed step on, while the optimizer and scheduler state
    keep the saved learning rate: neither is the run that was started. A key the saved config lacks is left
    to lerobot-train, which names an unknown key itself."""
    import yaml

    problems = []
    for flag in extra:
        key, sep, given = flag.removeprefix("--").partition("=")
        value: object = saved
        for part in key.split("."):
            value = value.get(part, _ABSENT) if isinstance(value, dict) else _ABSENT
        if not sep or value is _ABSENT:
            continue
        try:  # draccus reads a flag's value as YAML: 1e-4, true, null, [a, b]
            parsed = yaml.safe_load(given)
        except yaml.YAMLError:
            parsed = given
        if not _same_value(parsed, value):
            problems.append(f"{flag} (the run has {key}={json.dumps(value)})")
    return problems


_ABSENT = object()


def _same_value(given: object, saved: object) -> bool:
    """Equal as a resumed config would hold them: numbers up to float rounding (1e-4 == 0.0001)."""
    numbers = (int, float)
    if isinstance(given, numbers) and isinstance(saved, numbers) and not isinstance(given, bool):
        return not isinstance(saved, bool) and math.isclose(float(given), float(saved))
    if isinstance(given, str) and isinstance(saved, numbers) and not isinstance(saved, bool):
        try:  # YAML 1.1 reads 1e-4 (no dot) as a string; draccus still takes it as the number
            return math.isclose(float(given), float(saved))
        except ValueError:
            return False
    if isinstance(given, list) and isinstance(saved, list):
        return len(given) == len(saved) and all(_same_value(g, s) for g, s in zip(given, saved, strict=True))
    return given == saved or str(given) == str(saved)


def _read_object(path: Path) -> dict:
    """The JSON object a checkpoint file holds; ValueError naming the file when it is cut short or not an
    object (json's own message named a line and column, not the file)."""
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise ValueError(f"{path} holds no JSON object; the checkpoint cannot be resumed")
    return raw


def _original_teacher(out: Path) -> Path | None:
    """The checkpoint a run in ``out`` started from. A resumed run records its own checkpoint as
    ``pretrained_path`` (lerobot-train resumes from there; in a copied run, the original's folder), so the
    earliest checkpoint whose config points outside ``out`` tells; None when none does (nothing to compare)."""
    out = out.resolve()
    configs = sorted((out / "checkpoints").glob("[0-9]*/pretrained_model/train_config.json"))
    for config in [*configs, out / LAST_CHECKPOINT / "train_config.json"]:  # the first segment's first
        if not config.is_file():
            continue
        path = (_read_object(config).get("policy") or {}).get("pretrained_path")
        if path and not Path(path).resolve().is_relative_to(out):
            return Path(path).resolve()
    return None


def _dataset_source(root: str | Path) -> Path:
    """The dataset a root reads its episodes from: itself, or for snapflow-distill's view with the teacher's
    stats (``<out>.dataset``, scripts/teacher_stats.py) the dataset its ``data`` link points into."""
    return (Path(root) / "data").resolve().parent


def out_is_new(out: object) -> bool:
    """True when `out` is absent or an empty folder (read when a command starts, for kept_after_interrupt)."""
    path = Path(str(out))
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def kept_after_interrupt(out: str | Path | None, started_empty: bool) -> str:
    """What a Ctrl-C'd snapflow-train / snapflow-distill run leaves in `out`, for run_cli's one line.

    With a checkpoint: its step and the resume command. Before the first one (pass 18 said "keeps its last
    saved checkpoint" when there was none): nothing, and a folder this run filled (`started_empty`: out= was
    absent or empty when the command started, `out_is_new`) is removed, so that the same command
    starts again instead of refusing out= as "files that are not a training run"."""
    import shutil

    if out is None:  # stopped before out= was given: nothing was written
        return "nothing was written"
    out = Path(out)
    last = out / "checkpoints" / "last"
    if (last / "pretrained_model").is_dir():
        step = last.resolve().name.lstrip("0") or "0"  # LeRobot names checkpoints by zero-padded step
        return f"out={out} keeps its checkpoint of step {step}; the same command with resume=true continues from it"
    if started_empty and out.is_dir() and not (out / "checkpoints").is_dir():
        shutil.rmtree(out, ignore_errors=True)
    return f"no checkpoint was saved yet, so nothing was kept in out={out}; the same command starts the run again"
