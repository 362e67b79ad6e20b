"""A cheap integrity check of a safetensors file, without torch or LeRobot (the commands run it before any
heavy import, so that a damaged checkpoint is named in a second, not after the model code loads)."""

from __future__ import annotations

from pathlib import Path


def check_weights_file(path: str | Path) -> None:
    """Cheap integrity check of a ``model.safetensors`` without loading it: the header parses and the file
    is as long as the header says (a truncated copy fails here). ValueError naming the file otherwise,
    FileNotFoundError when it is not there."""
    import json
    import struct

    path = Path(path)
    if not path.is_file():  # named as missing, not as corrupt
        raise FileNotFoundError(f"{path} is missing (an incomplete checkpoint)")
    try:
        with path.open("rb") as f:
            (header_len,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(header_len))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except Exception as e:  # a short read, foreign bytes or a bad header
        raise ValueError(f"cannot read {path} (corrupt or not a safetensors file): {e}") from e
    if path.stat().st_size < 8 + header_len + end:
        raise ValueError(
            f"cannot read {path}: truncated ({path.stat().st_size} bytes, the header needs {8 + header_len + end})"
        )


def check_stats_files(pretrained: str | Path) -> None:
    """ValueError naming the file and key when a checkpoint's (un)normaliser stats (LeRobot's
    ``policy_*_normalizer_processor.safetensors``) hold NaN or infinite values: every observation would
    become NaN after normalisation and be refused as the sim's or robot's fault. Reads them with numpy."""
    import json

    import numpy as np
    from safetensors.numpy import load_file

    for pipeline in sorted(Path(pretrained).glob("policy_*processor.json")):  # pass 16: LeRobot named it bare
        try:
            steps = json.loads(pipeline.read_text()).get("steps", [])
        except (ValueError, AttributeError):
            continue  # a damaged pipeline file is LeRobot's to name while loading
        for step in steps if isinstance(steps, list) else []:
            state = step.get("state_file") if isinstance(step, dict) else None
            if isinstance(state, str) and not (pipeline.parent / state).is_file():
                raise FileNotFoundError(
                    f"{pipeline} names {state}, which is missing from {pipeline.parent}: the checkpoint is "
                    "incomplete; copy it again (the file holds the dataset's normalisation stats)"
                )
    for path in sorted(Path(pretrained).glob("policy_*normalizer_processor.safetensors")):
        check_weights_file(path)
        bad = sorted(key for key, value in load_file(path).items() if not np.isfinite(value).all())
        if bad:
            raise ValueError(
                f"{path} holds NaN or infinite normalisation stats for {bad[:4]}: the stats the checkpoint was "
                "trained with are damaged; copy the checkpoint again (or recompute the dataset's stats)"
            )
