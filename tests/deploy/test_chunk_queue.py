"""Chunk queue: order, stale-row skipping by latency, cross-fade values, actions_per_chunk."""

import numpy as np
import pytest

from snapflow.deploy.chunk_queue import ChunkQueue, stale_ticks

EXACT_ATOL = 1e-12  # a few float64 multiply-adds
DT = 0.05  # s, 20 Hz


def _chunk(start: float, n: int, dim: int = 2) -> np.ndarray:
    """Rows start, start + 1, ...: each value names its row."""
    return np.repeat((start + np.arange(n, dtype=float))[:, None], dim, axis=1)


def _drain(q: ChunkQueue) -> list[float]:
    out = []
    while (a := q.pop()) is not None:
        out.append(float(a[0]))
    return out


def test_stale_ticks_is_ceil_of_latency_over_dt():
    assert stale_ticks(0.0, DT) == 0
    assert stale_ticks(0.001, DT) == 1
    assert stale_ticks(0.05, DT) == 1
    assert stale_ticks(0.1, DT) == 2  # 0.1 / 0.05 is 2.0000000000000004 in float64
    assert stale_ticks(0.12, DT) == 3
    assert stale_ticks(-1.0, DT) == 0


def test_pop_order_and_empty():
    q = ChunkQueue(DT)
    assert q.pop() is None
    info = q.merge(_chunk(0, 4), delay_s=0.0)
    assert (info.skipped, info.kept, info.replaced) == (0, 4, 0)
    assert q.min_depth is None
    assert _drain(q) == [0, 1, 2, 3]
    assert q.last_popped is not None and q.last_popped[0] == 3
    assert q.min_depth == 0


def test_merge_skips_stale_rows_by_latency_and_replaces_queue():
    q = ChunkQueue(DT)
    q.merge(_chunk(0, 10), delay_s=0.0)
    q.pop()
    q.pop()
    info = q.merge(_chunk(100, 10), delay_s=0.12)  # ceil(0.12 / 0.05) = 3 stale rows
    assert (info.skipped, info.kept, info.replaced) == (3, 7, 8)
    assert _drain(q) == [103, 104, 105, 106, 107, 108, 109]
    assert info.raw_jump == pytest.approx(103 - 1)  # from the last popped action (row 1)


def test_skip_stale_off_keeps_all_rows():
    q = ChunkQueue(DT, skip_stale=False)
    info = q.merge(_chunk(0, 5), delay_s=0.3)
    assert info.skipped == 0 and _drain(q) == [0, 1, 2, 3, 4]


def test_all_stale_chunk_leaves_queue_unchanged():
    q = ChunkQueue(DT)
    q.merge(_chunk(0, 3), delay_s=0.0)
    info = q.merge(_chunk(100, 4), delay_s=0.5)  # 10 ticks late, only 4 rows
    assert info.kept == 0 and info.skipped == 4
    assert _drain(q) == [0, 1, 2]


def test_actions_per_chunk_counts_before_skipping():
    q = ChunkQueue(DT, actions_per_chunk=5)
    q.merge(_chunk(0, 50), delay_s=0.05)  # first 5 rows, minus 1 stale
    assert _drain(q) == [1, 2, 3, 4]


def test_crossfade_values():
    q = ChunkQueue(DT, crossfade_steps=3)
    q.merge(np.zeros((10, 2)), delay_s=0.0)
    q.pop()
    info = q.merge(np.ones((6, 2)), delay_s=0.0, last_sent=np.zeros(2))
    # w_i = (i + 1) / (n + 1) = 0.25, 0.5, 0.75, then the new chunk unchanged.
    np.testing.assert_allclose(_drain(q), [0.25, 0.5, 0.75, 1.0, 1.0, 1.0], atol=EXACT_ATOL)
    assert info.jump == pytest.approx(0.25)
    assert info.raw_jump == pytest.approx(1.0)


def test_crossfade_extends_short_old_queue_with_its_last_row_and_uses_last_sent_when_empty():
    q = ChunkQueue(DT, crossfade_steps=3)
    q.merge(np.array([[0.0], [0.4]]), delay_s=0.0)
    q.merge(np.full((4, 1), 1.2), delay_s=0.0)
    # old rows 0.0, 0.4, then 0.4 repeated
    expected = [0.75 * 0.0 + 0.25 * 1.2, 0.5 * 0.4 + 0.5 * 1.2, 0.25 * 0.4 + 0.75 * 1.2, 1.2]
    np.testing.assert_allclose(_drain(q), expected, atol=EXACT_ATOL)
    # Empty old queue: fade from the last sent command.
    q.merge(np.full((2, 1), 1.0), delay_s=0.0, last_sent=np.array([0.2]))
    np.testing.assert_allclose(_drain(q), [0.4, 0.6], atol=EXACT_ATOL)


def test_constructor_validation():
    with pytest.raises(ValueError):
        ChunkQueue(0.0)
    with pytest.raises(ValueError):
        ChunkQueue(DT, actions_per_chunk=0)
    with pytest.raises(ValueError):
        ChunkQueue(DT, crossfade_steps=-1)
