"""Chunk schedules under a simulated inference delay (sim/chunking.py), checked action by action."""

import numpy as np
import pytest
import torch

from snapflow.sim.chunking import GRIPPER, OPEN, Chunking, DelayedRollout, PlannedChunk

C, A = 10, 7


def _chunk(tick: int, value: float, n: int = 1) -> PlannedChunk:
    """A chunk whose action at offset j is value + j (all dims), so every pick is identifiable."""
    raw = (value + np.arange(C, dtype=np.float32))[None, :, None].repeat(n, 0).repeat(A, 2)
    return PlannedChunk(tick, raw, torch.from_numpy(raw.copy()))


def test_hold_is_zero_motion_with_the_last_gripper_command():
    roll = DelayedRollout(Chunking("async", 2), C, 2, A)
    hold = roll.hold()
    assert np.all(hold[:, :GRIPPER] == 0) and np.all(hold[:, GRIPPER] == OPEN)
    roll.executed(np.ones((2, A), np.float32))
    assert np.all(roll.hold()[:, GRIPPER] == 1.0) and np.all(roll.hold()[:, :GRIPPER] == 0)


def test_async_switches_to_the_new_chunk_at_its_delay_offset():
    roll = DelayedRollout(Chunking("async", delay=2, execute_steps=5), C, 1, A)
    old, new = _chunk(0, 0.0), _chunk(5, 100.0)
    assert roll.request_ticks(0) and roll.request_ticks(5) and not roll.request_ticks(3)
    assert roll.action(6, [old])[0, 0] == 6.0  # still the old chunk during the delay
    assert roll.action(7, [old, new])[0, 0] == 102.0  # new chunk, offset 2 = the delay


def test_crossfade_blends_the_first_actions_after_a_switch():
    roll = DelayedRollout(Chunking("crossfade", delay=1, execute_steps=5, crossfade_steps=2), C, 1, A)
    old, new = _chunk(0, 0.0), _chunk(5, 100.0)
    w = 1 / 3
    assert roll.action(6, [old, new])[0, 0] == pytest.approx((1 - w) * 6.0 + w * 101.0)
    w = 2 / 3
    assert roll.action(7, [old, new])[0, 0] == pytest.approx((1 - w) * 7.0 + w * 102.0)
    assert roll.action(8, [old, new])[0, 0] == 103.0


def test_ensemble_weights_older_predictions_higher():
    roll = DelayedRollout(Chunking("ensemble", delay=0, ensemble_decay=0.5), C, 1, A)
    a, b = _chunk(3, 0.0), _chunk(4, 100.0)
    w = np.exp(-0.5 * np.arange(2))
    expected = (w[0] * 2.0 + w[1] * 101.0) / w.sum()  # tick 5: offsets 2 and 1
    assert roll.action(5, [a, b])[0, 0] == pytest.approx(expected)
    assert roll.action(13, [a, b])[0, 0] == 109.0  # chunk a has run out (offset 10)


def test_rtc_passes_the_unexecuted_rest_of_the_current_chunk():
    roll = DelayedRollout(Chunking("rtc", delay=2, execute_steps=5), C, 1, A)
    kwargs = roll.rtc_kwargs(5, [_chunk(0, 0.0)])
    assert kwargs["inference_delay"] == 2 and kwargs["execution_horizon"] == C - 5
    assert kwargs["prev_chunk_left_over"][0, :, 0].tolist() == [5.0, 6.0, 7.0, 8.0, 9.0]
    assert roll.rtc_kwargs(0, []) == {}
    assert DelayedRollout(Chunking("async", 2), C, 1, A).rtc_kwargs(5, [_chunk(0, 0.0)]) == {}


@pytest.mark.parametrize(
    ("chunking", "message"),
    [
        (Chunking("async", delay=6, execute_steps=5), "needs 11 actions"),
        (Chunking("sync", delay=4, execute_steps=11), "needs 11 actions"),
        (Chunking("ensemble", delay=10), "inference_delay < chunk_size"),
    ],
)
def test_schedules_the_chunk_cannot_serve_are_refused(chunking, message):
    with pytest.raises(ValueError, match=message):
        chunking.check(C)


def test_bad_scheme_or_values_are_named():
    with pytest.raises(ValueError, match="scheme"):
        Chunking("wait")
    with pytest.raises(ValueError, match="inference_delay"):
        Chunking("sync", delay=-1)


def test_snapflow_run_auto_picks_sync_up_to_the_measured_delay():
    from snapflow.scripts.run import SYNC_MAX_DELAY_TICKS, auto_mode

    tick_ms = 50.0  # 20 Hz
    assert auto_mode(8.0, 20) == "inline_blocking"  # within one tick
    assert auto_mode(SYNC_MAX_DELAY_TICKS * tick_ms, 20) == "inline_blocking"  # 4 ticks: sync measured best
    assert auto_mode(SYNC_MAX_DELAY_TICKS * tick_ms + 1, 20) == "thread"  # beyond what was measured
