"""Distil with the teacher's normalisation: a dataset view whose stats are the teacher's.

`lerobot-train` builds a student's normaliser and unnormaliser from the *dataset's* stats
(lerobot/scripts/lerobot_train.py: the `normalizer_processor` / `unnormalizer_processor` overrides on a
fresh run). Distilling on any other dataset than the teacher's would then change what the student's
normalised actions mean: at initialisation it would no longer equal its teacher in raw action units. Rather
than patching LeRobot, `snapflow-distill` hands it a view of the dataset (its files linked, its meta copied)
whose `meta/stats.json` carries the teacher's stats for the normalised features. `renormalize=true` skips
the view and lets the dataset's stats win, as plain `lerobot-train` would.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

NORMALIZED = ("observation.state", "action")  # the features SmolVLA / PI0 / PI05 normalise with stats
# Written into every view: only a folder carrying it is ever replaced or removed (a user's dataset that
# happens to sit at <out>.dataset is refused, never deleted).
VIEW_MARKER = ".snapflow_dataset_view"


def teacher_stats(teacher: Path) -> dict[str, dict[str, list]]:
    """{feature: {stat: values}} of the teacher's normaliser (its saved preprocessor state)."""
    from safetensors.torch import load_file

    files = sorted(Path(teacher).glob("policy_preprocessor_step_*_normalizer_processor.safetensors"))
    if not files:
        raise FileNotFoundError(
            f"{teacher} has no normaliser state (policy_preprocessor_step_*_normalizer_processor)"
        )
    stats: dict[str, dict[str, list]] = {}
    for key, tensor in load_file(files[0]).items():
        feature, _, stat = key.rpartition(".")
        stats.setdefault(feature, {})[stat] = tensor.tolist()
    return stats


def dataset_with_teacher_stats(dataset: Path, teacher: Path, view: Path) -> Path:
    """A view of `dataset` at `view` whose stats for `NORMALIZED` features are the teacher's.

    Raises:
        ValueError: the teacher has no stats for a normalised feature, or their length differs from the
            dataset's feature (a teacher for another robot); the message names the feature. Also when the
            dataset and the view are the same folder or one holds the other.
        FileExistsError: something that is not an earlier view already sits at `view`.
    """
    dataset, view = Path(dataset).resolve(), Path(view)
    if view.resolve() == dataset or view.resolve() in dataset.parents or dataset in view.resolve().parents:
        raise ValueError(
            f"dataset={dataset} is where this run writes its dataset view ({view}, next to out=): "
            "choose another out="
        )
    if view.exists() and not (view / VIEW_MARKER).is_file():
        raise FileExistsError(
            f"{view} exists and is not a dataset view of snapflow-distill (it writes one there, next to "
            "out=): move it or choose another out="
        )
    stats = json.loads((dataset / "meta" / "stats.json").read_text())
    info = json.loads((dataset / "meta" / "info.json").read_text())
    theirs = teacher_stats(teacher)
    for feature in NORMALIZED:
        if feature not in theirs or "mean" not in theirs[feature]:
            raise ValueError(
                f"teacher {teacher} has no normalisation stats for {feature!r} (has {sorted(theirs)})"
            )
        want = info["features"][feature]["shape"][0]
        if len(theirs[feature]["mean"]) != want:
            raise ValueError(
                f"{feature!r}: the teacher's stats have {len(theirs[feature]['mean'])} values, "
                f"the dataset's feature has {want}"
            )
        stats[feature] = {**stats.get(feature, {}), **theirs[feature]}
    shutil.rmtree(view, ignore_errors=True)
    (view / "meta").mkdir(parents=True)
    for entry in dataset.iterdir():
        if entry.name != "meta":
            (view / entry.name).symlink_to(entry)
    for entry in (dataset / "meta").iterdir():
        target = view / "meta" / entry.name
        if entry.is_dir():
            shutil.copytree(entry, target)
        elif entry.name != "stats.json":
            shutil.copy2(entry, target)
    (view / "meta" / "stats.json").write_text(json.dumps(stats, indent=2))
    (view / VIEW_MARKER).write_text(
        f"a view of {dataset} with its teacher's stats, written by snapflow-distill\n"
        f"{_DIGEST_LINE}{meta_digest(dataset)}\n"
    )
    return view


_DIGEST_LINE = "source meta sha256: "  # the marker's line recording the source's meta when the view was made


def meta_digest(dataset: Path) -> str:
    """sha256 over every file under `dataset`/meta (names and bytes): changes when the dataset is collected
    again, when its episodes, tasks, info or stats change."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for p in (Path(dataset) / "meta").rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(dataset)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def check_view_current(view: Path) -> None:
    """ValueError when the dataset a view was made of has changed since (pass 18: collected again with
    overwrite=true, then resume=true trained on the new frames through the old copied meta, without a word).
    A view from before the digest was recorded is not checked."""
    marker = Path(view) / VIEW_MARKER
    lines = marker.read_text().splitlines() if marker.is_file() else []
    recorded = next((line[len(_DIGEST_LINE) :] for line in lines if line.startswith(_DIGEST_LINE)), None)
    source = (Path(view) / "data").resolve().parent
    if recorded and (source / "meta").is_dir() and meta_digest(source) != recorded:
        raise ValueError(
            f"resume=true: dataset {source} has changed since this run started (collected again?): its view "
            f"{view} describes the old episodes, so the run cannot continue on it; start a new out="
        )


def remove_view(view: Path) -> None:
    """Delete a view this module wrote (it carries VIEW_MARKER); anything else is left alone."""
    if (Path(view) / VIEW_MARKER).is_file():
        shutil.rmtree(view)
