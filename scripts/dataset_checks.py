"""Checks of a LeRobotDataset folder before lerobot-train reads it: its metadata files, every parquet footer
and video header, and every frames / video file its episodes point at (each named with its path, where
LeRobot would end in a traceback inside the child process)."""

from __future__ import annotations

from pathlib import Path

from snapflow.scripts.checkpoints import json_object

# The metadata lerobot-train reads besides meta/info.json, each with its older-layout (v2.x) name: one
# missing sent LeRobot to the Hub for it, so offline the run failed as "OfflineModeIsEnabled: Cannot reach
# huggingface.co" without naming the file (meta/stats.json missing trained with no normalisation stats).
DATASET_META = (
    ("meta/tasks.parquet", "meta/tasks.jsonl"),
    ("meta/episodes", "meta/episodes.jsonl"),
    ("meta/stats.json", "meta/episodes_stats.jsonl"),
)


def read_dataset_info(dataset: str | Path) -> dict:
    """A LeRobotDataset's meta/info.json, after checking that the rest of its metadata (`DATASET_META`) is
    there; FileNotFoundError / ValueError naming the dataset and the file. A command calls it up to three
    times (the dataset, its state length, the run's flags): a dataset whose files are unchanged since a
    passing check is not read again (`_CHECKED`, keyed by every file's size and time)."""
    import copy

    key = _fingerprint(Path(dataset))
    if key is None or key not in _CHECKED:
        info = _read_dataset_info(dataset)
        if key is None:
            return info
        _CHECKED[key] = info
    return copy.deepcopy(_CHECKED[key])


_CHECKED: dict[tuple, dict] = {}


def _fingerprint(dataset: Path) -> tuple | None:
    """(folder, every file's path, size and modification time) of a dataset, None when it is not a folder."""
    if not dataset.is_dir():
        return None
    files = sorted(p for p in dataset.rglob("*") if p.is_file())
    return (str(dataset.resolve()), *((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))


def _read_dataset_info(dataset: str | Path) -> dict:
    info = Path(dataset) / "meta" / "info.json"
    if not info.is_file():
        raise FileNotFoundError(
            f"dataset={dataset} is not a LeRobotDataset (no meta/info.json); see snapflow-collect"
        )
    try:
        raw = json_object(info, "features", dict)
    except ValueError as e:
        raise ValueError(f"dataset={dataset}: {e} (not a LeRobotDataset's info.json)") from None
    for name, older in DATASET_META:
        if not ((Path(dataset) / name).exists() or (Path(dataset) / older).exists()):
            raise FileNotFoundError(
                f"dataset={dataset} has no {name}{'/' if '.' not in name else ''} (nor the older {older}): "
                "an incomplete LeRobotDataset; copy it whole, or collect it again with snapflow-collect"
            )
    # absent: not checked (every LeRobotDataset writes it); "twenty" ended in a TypeError inside lerobot-train
    fps = raw.get("fps", 0.0)
    if "fps" in raw and (isinstance(fps, bool) or not isinstance(fps, int | float) or not fps > 0):
        raise ValueError(
            f"dataset={dataset}: meta/info.json has fps={fps!r}; a frame rate in Hz (> 0) is needed"
        )
    from snapflow.scripts.dataset_contents import check_info_fields, check_stats_values

    check_info_fields(Path(dataset), raw)  # before its templates are filled below
    check_stats_values(Path(dataset) / "meta" / "stats.json", raw["features"])
    _check_parquet_files(Path(dataset))
    _check_tables(Path(dataset), raw, fps)
    _check_referenced_files(Path(dataset), raw)
    return raw


def _check_tables(dataset: Path, info: dict, fps: float) -> None:
    """ValueError naming the file: meta/tasks.parquet with no task (an IndexError inside lerobot-train), a
    frames file without a column that info.json declares (a NoneType error inside the collate, pass 17),
    the frames' and episodes' contents (`dataset_contents`, pass 18), or a frame rate unlike fps."""
    import pyarrow.parquet as pq

    from snapflow.scripts.dataset_contents import check_episode_count, check_episode_ranges, check_frames

    tasks = dataset / "meta" / "tasks.parquet"
    task_count = pq.read_metadata(tasks).num_rows if tasks.is_file() else None
    if task_count == 0:
        raise ValueError(
            f"dataset={dataset}: meta/tasks.parquet lists no task; every frame needs its instruction"
        )
    features = info["features"]
    declared = {k for k, f in features.items() if isinstance(f, dict) and f.get("dtype") != "video"}
    frames = sorted(dataset.glob("data/**/*.parquet"))
    for path in frames:
        names = set(pq.read_schema(path).names)
        missing = sorted(declared - names)
        if missing and "episode_index" in names:  # a frames file as LeRobot writes it, a column dropped
            raise ValueError(
                f"dataset={dataset}: {path.relative_to(dataset)} has no column {missing[:4]}, which "
                "meta/info.json declares: a damaged or hand-edited dataset; collect it again with snapflow-collect"
            )
    if not any("episode_index" in pq.read_schema(p).names for p in frames):
        return  # not frames files as LeRobot writes them (a hand-made fixture): left to LeRobot
    count = check_frames(dataset, frames, task_count)
    episodes = sorted((dataset / "meta" / "episodes").glob("**/*.parquet"))
    if episodes:
        check_episode_count(dataset, info, sum(pq.read_metadata(p).num_rows for p in episodes))
        check_episode_ranges(dataset, episodes, count)
    if frames and fps and {"timestamp", "episode_index"} <= declared:
        _check_frame_rate(dataset, frames[0], float(fps))


FPS_TOLERANCE = 0.1  # relative: LeRobot's own timestamp tolerance is 1e-4 s, a hand-edited fps is off by 2x


def _check_frame_rate(dataset: Path, frames: Path, fps: float) -> None:
    """ValueError when the frames of the first episode in `frames` are not 1 / fps apart (an fps edited in
    info.json: chunks and rollouts would run at a rate the demos were not recorded at; pass 17)."""
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(frames, columns=["timestamp", "episode_index"]).to_pydict()
    episode = np.asarray(table["episode_index"])
    stamps = np.asarray(table["timestamp"], dtype=float)[episode == episode[0]] if len(episode) else []
    if len(stamps) < 2:
        return
    step = float(np.median(np.diff(stamps)))
    if abs(step * fps - 1.0) > FPS_TOLERANCE:
        raise ValueError(
            f"dataset={dataset}: meta/info.json says fps={fps:g}, but its frames are {step:.4g} s apart "
            f"({1 / step:.3g} Hz) in {frames.relative_to(dataset)}: fix fps in meta/info.json"
        )


def check_stats_cover(dataset: str | Path, features: dict, keys: tuple[str, ...]) -> None:
    """ValueError naming meta/stats.json when it has no mean/std for one of `keys` that the dataset has:
    lerobot-train then trained those values unnormalised without a word, and only export and eval refused
    the checkpoint afterwards (pass 17). Call it where the dataset's stats become the policy's."""
    from snapflow.scripts.checkpoints import read_json

    path = Path(dataset) / "meta" / "stats.json"
    stats = read_json(path) if path.is_file() else {}
    stats = stats if isinstance(stats, dict) else {}
    lacking = [k for k in keys if k in features and not {"mean", "std"} <= set(stats.get(k) or {})]
    if lacking:
        raise ValueError(
            f"{path} has no mean/std for {lacking}: the policy would train on them unnormalised; recompute "
            "the stats (or collect the dataset again with snapflow-collect)"
        )


def _check_referenced_files(dataset: Path, info: dict) -> None:
    """FileNotFoundError naming the first frames or video file that meta/episodes points at and that is not
    there (LeRobot v3 layout: ``data_path`` / ``video_path`` in info.json, chunk and file indices per episode);
    a missing one ended in a Hub "offline mode" traceback inside lerobot-train, the file never named."""
    import pyarrow.parquet as pq

    episodes = sorted((dataset / "meta" / "episodes").glob("**/*.parquet"))
    templates = {"data": info.get("data_path")}
    videos = [
        k for k, f in info.get("features", {}).items() if isinstance(f, dict) and f.get("dtype") == "video"
    ]
    templates.update({f"videos/{key}": info.get("video_path") for key in videos})
    for prefix, template in templates.items():
        columns = [f"{prefix}/chunk_index", f"{prefix}/file_index"]
        if not isinstance(template, str) or not episodes:
            continue  # an older layout (v2: one file per episode) is left to LeRobot
        for path in episodes:
            if not set(columns) <= set(pq.read_schema(path).names):
                continue
            table = pq.read_table(path, columns=columns).to_pydict()
            for chunk, file in sorted(set(zip(*table.values(), strict=True))):
                name = template.format(chunk_index=chunk, file_index=file, video_key=prefix[len("videos/") :])
                if not (dataset / name).is_file():
                    raise FileNotFoundError(
                        f"dataset={dataset}: {name} is missing (meta/episodes lists episodes in it): an "
                        "incomplete copy; copy the dataset again, or collect it again with snapflow-collect"
                    )


def _check_parquet_files(dataset: Path) -> None:
    """ValueError naming the first file of `dataset` that cannot be opened: a parquet file (frames,
    episodes, tasks) whose footer cannot be read, or a video whose header cannot; a truncated or damaged
    copy, which LeRobot reports only as a DatasetGenerationError or decoder traceback inside lerobot-train.
    Reads footers and headers only, not the rows or frames."""
    import av
    import pyarrow.parquet as pq

    def fail(path: Path, error: Exception) -> ValueError:
        return ValueError(
            f"dataset={dataset}: {path.relative_to(dataset)} cannot be read ({error}); a truncated or "
            "damaged copy: copy the dataset again, or collect it again with snapflow-collect"
        )

    for path in sorted(dataset.glob("**/*.parquet")):
        try:
            pq.read_metadata(path)
        except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError, ArrowIOError an OSError
            raise fail(path, e) from None
    for path in sorted(dataset.glob("videos/**/*.mp4")):
        try:
            av.open(str(path)).close()
        except (OSError, ValueError) as e:  # av's FFmpegError is a ValueError
            raise fail(path, e) from None


def dataset_state_dim(dataset: str | Path) -> int:
    """Length of ``observation.state`` in a LeRobotDataset (meta/info.json); ValueError naming the dataset when
    it has no such feature (the policies here read the robot's state)."""
    features = read_dataset_info(dataset)["features"]
    if "observation.state" not in features:
        raise ValueError(
            f"dataset={dataset} has no observation.state feature (its features: {sorted(features)}); the "
            "policies here read the robot's state"
        )
    return int(features["observation.state"]["shape"][0])
