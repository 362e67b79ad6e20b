"""The action-chunk queue between the inference thread and the control tick.

Conventions: a chunk is (H, A) actions; row i is meant for the i-th control tick after the observation
(row 0 = the tick at which the observation was read). A chunk that becomes available `delay_s` seconds
after its observation is therefore `d = ceil(delay_s / dt_s)` ticks late, and its first `d` rows are
stale: the robot has already been commanded for those ticks (from the previous chunk, or held). With
`skip_stale=True` those rows are dropped (as LeRobot's RTC `merge`).

Merging *replaces* the pending actions with the new chunk's fresh rows. With `crossfade_steps = n > 0`
the first n new rows are blended with what the old queue would have done on those ticks:

    merged[i] = (1 - w_i) * old[i] + w_i * new[i],   w_i = (i + 1) / (n + 1),   i < n

where old[i] is the i-th pending action, or the last pending / last sent action once the old queue
runs out. Only the first `actions_per_chunk` rows of a chunk are ever used (counted before skipping).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

# ticks; keeps ceil(0.1 / 0.05) == 2 despite float rounding (0.1 / 0.05 = 2.0000000000000004)
_TICK_EPS = 1e-9


def stale_ticks(delay_s: float, dt_s: float) -> int:
    """Number of whole control ticks that elapsed during `delay_s` seconds: ceil(delay_s / dt_s), >= 0."""
    return max(0, math.ceil(delay_s / dt_s - _TICK_EPS))


@dataclass
class MergeInfo:
    """What one merge did (sizes in ticks, jumps in action units, infinity norm over dimensions)."""

    skipped: int  # stale rows dropped from the front of the chunk
    kept: int  # rows now in the queue (0: the whole chunk was stale and the queue was left unchanged)
    replaced: int  # pending rows of the old queue that were discarded
    jump: float | None  # |first merged action - last sent action|, after cross-fade
    raw_jump: float | None  # the same without cross-fade: |first fresh chunk row - last sent action|


class ChunkQueue:
    """A single-consumer action queue fed by whole chunks (not thread-safe: the control thread owns it)."""

    def __init__(
        self,
        dt_s: float,
        actions_per_chunk: int | None = None,
        crossfade_steps: int = 0,
        skip_stale: bool = True,
    ) -> None:
        """
        Args:
            dt_s: control period in seconds (1 / hz).
            actions_per_chunk: use at most this many rows of each chunk (None = all of them).
            crossfade_steps: number of ticks over which a new chunk fades in (0 = hard switch).
            skip_stale: drop the rows whose tick passed while the chunk was being computed.
        """
        if dt_s <= 0:
            raise ValueError(f"dt_s must be > 0, got {dt_s}")
        if actions_per_chunk is not None and actions_per_chunk < 1:
            raise ValueError(f"actions_per_chunk must be >= 1 or None, got {actions_per_chunk}")
        if crossfade_steps < 0:
            raise ValueError(f"crossfade_steps must be >= 0, got {crossfade_steps}")
        self.dt_s = dt_s
        self.actions_per_chunk = actions_per_chunk
        self.crossfade_steps = crossfade_steps
        self.skip_stale = skip_stale
        self._queue: deque[np.ndarray] = deque()
        self.last_popped: np.ndarray | None = None
        self.min_depth: int | None = None  # smallest depth seen right after a pop (None: no pop yet)

    def __len__(self) -> int:
        return len(self._queue)

    def pending(self) -> np.ndarray:
        """Copy of the queued actions, (depth, A); (0, 0) when empty."""
        return np.stack(list(self._queue)) if self._queue else np.zeros((0, 0))

    def clear(self) -> None:
        self._queue.clear()

    def pop(self) -> np.ndarray | None:
        """The action for this tick, or None when the queue is empty."""
        if not self._queue:
            return None
        self.last_popped = self._queue.popleft()
        depth = len(self._queue)
        self.min_depth = depth if self.min_depth is None else min(self.min_depth, depth)
        return self.last_popped

    def merge(self, actions: np.ndarray, delay_s: float, last_sent: np.ndarray | None = None) -> MergeInfo:
        """Replace the pending actions by the fresh rows of a new chunk.

        Args:
            actions: (H, A) chunk, row 0 for the tick of its observation.
            delay_s: seconds from reading the observation to this merge (the chunk's staleness).
            last_sent: the last command actually sent, used for jump statistics and as the cross-fade
                source when the old queue is empty (falls back to the last popped action).
        """
        chunk = np.asarray(actions, dtype=np.float64)
        if self.actions_per_chunk is not None:
            chunk = chunk[: self.actions_per_chunk]
        skipped = min(stale_ticks(delay_s, self.dt_s), len(chunk)) if self.skip_stale else 0
        fresh = chunk[skipped:].copy()
        old = list(self._queue)
        if len(fresh) == 0:  # every row is stale: keep executing the old queue rather than emptying it
            return MergeInfo(skipped=skipped, kept=0, replaced=0, jump=None, raw_jump=None)
        anchor = last_sent if last_sent is not None else self.last_popped
        raw_jump = _inf_norm(fresh[0] - anchor) if len(fresh) and anchor is not None else None
        n_fade = min(self.crossfade_steps, len(fresh))
        if n_fade and (old or anchor is not None):
            for i in range(n_fade):
                ref = old[i] if i < len(old) else (old[-1] if old else anchor)
                w = (i + 1) / (self.crossfade_steps + 1)
                fresh[i] = (1.0 - w) * ref + w * fresh[i]
        jump = _inf_norm(fresh[0] - anchor) if len(fresh) and anchor is not None else None
        self._queue = deque(fresh)
        return MergeInfo(skipped=skipped, kept=len(fresh), replaced=len(old), jump=jump, raw_jump=raw_jump)


def _inf_norm(x: np.ndarray) -> float:
    return float(np.abs(x).max())
