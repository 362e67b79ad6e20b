"""What a LeRobotDataset's files say, checked against each other before lerobot-train reads them.

`dataset_checks.read_dataset_info` checks that the files are there and can be opened; this module checks
their contents: info.json's layout fields, the stats' values, the frames' timestamps, numbers and task
indices, and the episodes' frame ranges. Each of these, hand-edited or damaged, reached lerobot-train in
newcomer pass 18 and ended there in a traceback that did not name the file (a Hub "offline" error, an empty
BackwardCompatibilityError, a KeyError of our own), or trained without a word on wrong values.
"""

from __future__ import annotations

from pathlib import Path

# LeRobot's lerobot.datasets.dataset_metadata.CODEBASE_VERSION, not imported here (6 s of imports before a
# command's first check); a test compares the two, so a LeRobot upgrade cannot leave it behind.
CODEBASE_VERSION = "v3.0"
PER_DIMENSION_STATS = ("mean", "std", "min", "max")  # one value per dimension of a 1-D feature
TEMPLATE_FIELDS = {
    "data_path": ("chunk_index", "file_index"),
    "video_path": ("video_key", "chunk_index", "file_index"),
}


def check_info_fields(dataset: Path, info: dict) -> None:
    """ValueError naming the field of meta/info.json: a codebase_version other than LeRobot's, a chunks_size
    below 1, or a data_path / video_path template with a placeholder LeRobot does not fill."""
    where = f"dataset={dataset}: meta/info.json"
    version = info.get("codebase_version", CODEBASE_VERSION)  # absent: a hand-made info.json, left to LeRobot
    if version != CODEBASE_VERSION:
        raise ValueError(
            f"{where} has codebase_version={version!r}; this LeRobot reads {CODEBASE_VERSION} datasets: convert "
            "it with `python -m lerobot.scripts.convert_dataset_v21_to_v30` (from v2.1), or collect it again"
        )
    chunks = info.get("chunks_size", 1000)
    if isinstance(chunks, bool) or not isinstance(chunks, int) or chunks < 1:
        raise ValueError(f"{where} has chunks_size={chunks!r}; the files per chunk folder, an integer >= 1")
    for field, names in TEMPLATE_FIELDS.items():
        template = info.get(field)
        if template is None:
            continue  # video_path is null for a dataset without videos
        try:
            if not isinstance(template, str):
                raise TypeError(type(template).__name__)
            template.format(**{name: 0 if name != "video_key" else "k" for name in names})
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise ValueError(
                f"{where} has {field}={template!r}, which LeRobot cannot fill ({type(e).__name__}: {e}); its "
                f"placeholders are {', '.join('{' + n + '}' for n in names)}"
            ) from None


def check_episode_count(dataset: Path, info: dict, listed: int) -> None:
    """ValueError when info.json's total_episodes differs from the episodes meta/episodes lists (more sent
    LeRobot to the Hub for the rest; offline, a connection traceback)."""
    total = info.get("total_episodes")
    if total is not None and total != listed:
        raise ValueError(
            f"dataset={dataset}: meta/info.json says total_episodes={total!r}, but meta/episodes lists {listed}: "
            "a damaged or hand-edited dataset; copy it again or collect it again with snapflow-collect"
        )


def check_stats_values(path: Path, features: dict) -> None:
    """ValueError naming feature and statistic of meta/stats.json: a value that is not a number, NaN or
    infinite, a per-dimension statistic of another length than a 1-D feature, a negative std, or a std of 0
    where min < max (the feature varies, so every normalised value would be divided by LeRobot's eps)."""
    import numpy as np

    from snapflow.scripts.checkpoints import read_json

    if not path.is_file():  # the older layout (episodes_stats.jsonl) is left to LeRobot
        return
    stats = read_json(path)
    for feature, entries in stats.items() if isinstance(stats, dict) else []:
        arrays = {}
        for name, value in entries.items() if isinstance(entries, dict) else []:
            try:
                arrays[name] = np.asarray(value, dtype=float).ravel()
            except (TypeError, ValueError):
                raise ValueError(
                    f"{path}: {feature} {name} is {value!r}, not numbers (a damaged stats file)"
                ) from None
            if not np.isfinite(arrays[name]).all():
                raise ValueError(
                    f"{path}: {feature} {name} holds NaN or infinite numbers (a damaged stats file); recompute "
                    "the stats, or copy / collect the dataset again"
                )
        shape = (
            (features.get(feature) or {}).get("shape") if isinstance(features.get(feature), dict) else None
        )
        _check_stat_shapes(path, feature, arrays, shape)


def _check_stat_shapes(path: Path, feature: str, arrays: dict, shape: object) -> None:
    if isinstance(shape, list) and len(shape) == 1 and feature not in ("timestamp", "frame_index", "index"):
        for name in PER_DIMENSION_STATS:
            if name in arrays and arrays[name].size != shape[0]:
                raise ValueError(
                    f"{path}: {feature} {name} has {arrays[name].size} values, but the feature has {shape[0]} "
                    "(meta/info.json): stats of another dataset; recompute them or collect the dataset again"
                )
    std = arrays.get("std")
    if std is None:
        return
    if (std < 0).any():
        raise ValueError(f"{path}: {feature} std is negative; a damaged stats file: recompute the stats")
    low, high = arrays.get("min"), arrays.get("max")
    if low is not None and high is not None and low.shape == high.shape == std.shape:
        flat = (std == 0) & (high > low)
        if flat.any():
            raise ValueError(
                f"{path}: {feature} std is 0 in dimension {int(flat.argmax())} while its min < max: inconsistent "
                "stats (normalising would divide by LeRobot's eps); recompute the stats"
            )


def check_frames(dataset: Path, frames: list[Path], tasks: int | None) -> int:
    """Frames in `frames` (data/**/*.parquet), after checking them; ValueError naming the file and episode
    for a NaN timestamp, timestamps that do not increase within an episode, a NaN or infinite action or state,
    or a task_index that meta/tasks.parquet does not have (`tasks` rows; None: not checked)."""
    import numpy as np
    import pyarrow.parquet as pq

    count = 0
    for path in frames:
        names = set(pq.read_schema(path).names)
        columns = [c for c in ("timestamp", "episode_index", "frame_index", "task_index") if c in names]
        table = pq.read_table(
            path, columns=columns + [c for c in ("action", "observation.state") if c in names]
        )
        count += table.num_rows
        where = f"dataset={dataset}: {path.relative_to(dataset)}"
        episode = np.asarray(table["episode_index"]) if "episode_index" in names else np.zeros(table.num_rows)
        frame = np.asarray(table["frame_index"]) if "frame_index" in names else np.arange(table.num_rows)
        for column in ("action", "observation.state"):
            if column in names and table.num_rows:
                values = np.asarray(table[column].combine_chunks().flatten(), dtype=float).reshape(
                    table.num_rows, -1
                )
                bad = ~np.isfinite(values).all(axis=1)
                if bad.any():
                    row = int(bad.argmax())
                    raise ValueError(
                        f"{where}: {column} holds NaN or infinite values in episode {int(episode[row])}, frame "
                        f"{int(frame[row])}: a damaged dataset; collect it again"
                    )
        if "timestamp" in names:
            _check_timestamps(where, np.asarray(table["timestamp"], dtype=float), episode)
        if "task_index" in names and tasks is not None:
            task = np.asarray(table["task_index"])
            outside = (task < 0) | (task >= tasks)
            if outside.any():
                row = int(outside.argmax())
                raise ValueError(
                    f"{where}: task_index {int(task[row])} in episode {int(episode[row])}, but meta/tasks.parquet "
                    f"has {tasks} task(s) (0..{tasks - 1}): a damaged or hand-edited dataset"
                )
    return count


def _check_timestamps(where: str, stamps: object, episode: object) -> None:
    import numpy as np

    if not np.isfinite(stamps).all():
        row = int((~np.isfinite(stamps)).argmax())
        raise ValueError(
            f"{where}: timestamp is NaN or infinite in episode {int(episode[row])}: a damaged dataset"
        )
    same = episode[1:] == episode[:-1]
    back = same & (np.diff(stamps) <= 0)
    if back.any():
        raise ValueError(
            f"{where}: timestamps are not increasing in episode {int(episode[1:][back][0])} (frames out of order "
            "or repeated): a damaged or hand-edited dataset; collect it again"
        )


def check_episode_ranges(dataset: Path, episodes: list[Path], frames: int) -> None:
    """ValueError naming the episode whose dataset_from_index / dataset_to_index in meta/episodes point
    outside the `frames` rows of data/ (LeRobot indexed past the end inside a worker)."""
    import pyarrow.parquet as pq

    for path in episodes:
        if not {"dataset_from_index", "dataset_to_index"} <= set(pq.read_schema(path).names):
            continue
        table = pq.read_table(path, columns=["episode_index", "dataset_from_index", "dataset_to_index"])
        for ep, low, high in zip(*table.to_pydict().values(), strict=True):
            if not (0 <= low < high <= frames):
                raise ValueError(
                    f"dataset={dataset}: {path.relative_to(dataset)} gives episode {ep} the frames "
                    f"{low}..{high}, but data/ holds {frames} frames: a damaged or hand-edited dataset"
                )
