"""The demonstrated modes of a multimodal dataset as reference chunks: the offline "error to the nearest
demonstrated mode".

Plain offline MSE compares a prediction with the one chunk its demo recorded, so a sampler that commits
to the *other* demonstrated strategy is scored as badly as one that averages the two. Here each held-out
frame also gets, for every other mode, the recorded chunk of the nearest frame (end-effector position and
fingers, `observation.state[[0, 1, 2, 6, 7]]`) of the same task in an episode of that mode; the nearest-mode
error is the smallest chunk MSE over the frame's own chunk and those. A mean-seeking sampler is far from
every mode where the demos split, a mode-keeping one near one of them. Needs the dataset's `mode` column
(`sim/record.py`, multimodal suite).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

MODE_KEY = "mode"  # the same column name as sim/record.MODE_KEY (the policies package imports no sim code)
STATE_DIMS = [0, 1, 2, 6, 7]  # eef position (m) and the two finger joints (m)


class ModeReference:
    """Every frame's recorded action chunk of a dataset with a `mode` column, indexed for nearest lookups.

    Args:
        root: the LeRobotDataset root.
        chunk: chunk length H (the policy's chunk_size).

    Raises:
        KeyError: the dataset has no `mode` column (it is not a multimodal dataset).
    """

    def __init__(self, root: str | Path, chunk: int) -> None:
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        ds = LeRobotDataset(repo_id=f"local/{Path(root).name}", root=root)
        if MODE_KEY not in ds.features:
            raise KeyError(f"{root} has no {MODE_KEY!r} column: not a multimodal dataset (snapflow-collect)")
        cols = ds.hf_dataset.select_columns(
            ["observation.state", "action", MODE_KEY, "episode_index", "frame_index", "task_index"]
        ).with_format("numpy")
        self.state = np.stack(cols["observation.state"])[:, STATE_DIMS].astype(np.float32)
        actions = np.stack(cols["action"]).astype(np.float32)
        self.mode = np.concatenate([np.ravel(m) for m in cols[MODE_KEY]]).astype(int)
        self.episode = np.asarray(cols["episode_index"], int)
        self.task = np.asarray(cols["task_index"], int)
        frame = np.asarray(cols["frame_index"], int)
        self._row = {(int(e), int(f)): i for i, (e, f) in enumerate(zip(self.episode, frame, strict=True))}
        # chunk i = actions[i : i + H] within its episode; steps past the episode's end are masked out
        n = len(actions)
        idx = np.arange(n)[:, None] + np.arange(chunk)[None, :]
        inside = (idx < n) & (self.episode[np.minimum(idx, n - 1)] == self.episode[:, None])
        self.chunks = torch.from_numpy(actions[np.minimum(idx, n - 1)])  # (N, H, A)
        self.valid = torch.from_numpy(inside.astype(np.float32))  # (N, H)

    def others(self, episode: int, frame: int) -> list[int]:
        """Rows of the nearest frames (same task, other episodes) of every mode other than this frame's."""
        i = self._row[(int(episode), int(frame))]
        rows = []
        for m in sorted(set(self.mode.tolist()) - {int(self.mode[i])}):
            pool = np.flatnonzero(
                (self.mode == m) & (self.task == self.task[i]) & (self.episode != self.episode[i])
            )
            if pool.size:
                rows.append(int(pool[np.argmin(np.linalg.norm(self.state[pool] - self.state[i], axis=1))]))
        return rows

    def nearest_mode_error(
        self, pred: torch.Tensor, episodes: torch.Tensor, frames: torch.Tensor
    ) -> torch.Tensor:
        """(B,) smallest masked chunk MSE of `pred` (B, H, A, dataset units) over each frame's own chunk and
        its other-mode references."""
        out = []
        for b in range(pred.shape[0]):
            rows = [
                self._row[(int(episodes[b]), int(frames[b]))],
                *self.others(int(episodes[b]), int(frames[b])),
            ]
            ref, valid = self.chunks[rows], self.valid[rows]  # (K, H, A), (K, H)
            h = min(ref.shape[1], pred.shape[1])
            per_step = ((pred[b, None, :h] - ref[:, :h]) ** 2).mean(-1) * valid[:, :h]
            out.append((per_step.sum(1) / valid[:, :h].sum(1).clamp_min(1)).min())
        return torch.stack(out)
