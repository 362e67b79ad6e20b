"""Safety filter: limits, per-tick delta limits, non-finite rejection and the watchdog state machine."""

import itertools

import numpy as np
import pytest

from snapflow.deploy.safety import SafetyConfig, SafetyFilter, SafetyMode, is_valid_chunk

EXACT_ATOL = 1e-12  # float64 arithmetic on a few additions; anything larger is a logic error


def _cfg(**kw) -> SafetyConfig:
    base = {
        "action_low": [-1.0, -0.5],
        "action_high": [1.0, 0.5],
        "max_delta": [0.1, 0.2],
        "safe_action": [0.0, 0.0],
        "stale_after_s": 0.2,
        "hold_ticks": 2,
    }
    base.update(kw)
    return SafetyConfig(**base)


def test_config_validation():
    with pytest.raises(ValueError, match="same length"):
        _cfg(max_delta=[0.1])
    with pytest.raises(ValueError, match="inside"):
        _cfg(safe_action=[0.0, 0.9])
    with pytest.raises(ValueError, match="max_delta"):
        _cfg(max_delta=[0.1, 0.0])
    with pytest.raises(ValueError, match="finite"):
        _cfg(action_high=[np.inf, 0.5])
    assert SafetyConfig.box(7).action_dim == 7


def test_clamp_to_per_dimension_limits():
    f = SafetyFilter(_cfg(max_delta=[10.0, 10.0]))
    step = f.step(np.array([5.0, -3.0]), stale=False)
    np.testing.assert_allclose(step.command, [1.0, -0.5], atol=EXACT_ATOL)
    assert step.clamped and step.mode == SafetyMode.NORMAL and not step.delta_limited
    inside = f.step(np.array([0.5, 0.25]), stale=False)
    assert not inside.clamped


def test_per_tick_delta_limit():
    f = SafetyFilter(_cfg(), initial_action=[0.0, 0.0])
    commands = [f.step(np.array([1.0, -0.5]), stale=False) for _ in range(12)]
    first = commands[0]
    np.testing.assert_allclose(first.command, [0.1, -0.2], atol=EXACT_ATOL)
    assert first.delta_limited
    prev = np.zeros(2)
    for s in commands:
        assert np.all(np.abs(s.command - prev) <= np.array([0.1, 0.2]) + EXACT_ATOL)
        prev = s.command
    np.testing.assert_allclose(commands[-1].command, [1.0, -0.5], atol=EXACT_ATOL)  # arrives exactly
    assert not commands[-1].delta_limited


def test_nonfinite_action_is_never_sent():
    f = SafetyFilter(_cfg(), initial_action=[0.3, 0.1])
    step = f.step(np.array([np.nan, 0.0]), stale=False)
    assert step.nonfinite and step.mode == SafetyMode.HOLD
    np.testing.assert_array_equal(step.command, [0.3, 0.1])
    assert not is_valid_chunk(np.array([[0.0, np.inf]]), 2)
    assert not is_valid_chunk(np.zeros((3, 3)), 2)
    assert not is_valid_chunk(np.zeros((0, 2)), 2)
    assert is_valid_chunk(np.zeros((3, 2)), 2)


def test_watchdog_holds_then_ramps_to_safe_at_max_delta():
    cfg = _cfg(hold_ticks=2)
    f = SafetyFilter(cfg, initial_action=[0.35, -0.5])
    modes, commands = [], []
    for _ in range(8):
        s = f.step(None, stale=True)
        modes.append(s.mode)
        commands.append(s.command)
    assert modes[:2] == [SafetyMode.WD_HOLD] * 2
    np.testing.assert_array_equal(commands[1], [0.35, -0.5])
    # dim 0 needs ceil(0.35/0.1) = 4 ramp ticks, dim 1 ceil(0.5/0.2) = 3.
    np.testing.assert_allclose(commands[2], [0.25, -0.3], atol=EXACT_ATOL)
    np.testing.assert_allclose(commands[5], [0.0, 0.0], atol=EXACT_ATOL)
    assert modes[2:5] == [SafetyMode.RAMP] * 3
    assert modes[5:] == [SafetyMode.SAFE] * 3  # the arrival tick already counts as SAFE
    for a, b in itertools.pairwise(commands):
        assert np.all(np.abs(b - a) <= np.array(cfg.max_delta) + EXACT_ATOL)
    assert all(m.is_watchdog for m in modes)


def test_hold_when_queue_empty_but_not_stale_and_recovery():
    f = SafetyFilter(_cfg(), initial_action=[0.5, 0.0])
    assert f.step(None, stale=False).mode == SafetyMode.HOLD
    f.step(None, stale=True)
    f.step(None, stale=True)
    ramp = f.step(None, stale=True)
    assert ramp.mode == SafetyMode.RAMP
    back = f.step(np.array([0.9, 0.0]), stale=False)  # a fresh action ends the watchdog, rate-limited
    assert back.mode == SafetyMode.NORMAL
    np.testing.assert_allclose(back.command, ramp.command + np.array([0.1, 0.0]), atol=EXACT_ATOL)
    # The watchdog restarts its hold count after recovering.
    assert f.step(None, stale=True).mode == SafetyMode.WD_HOLD


def test_initial_action_validation():
    with pytest.raises(ValueError):
        SafetyFilter(_cfg(), initial_action=[np.nan, 0.0])
    f = SafetyFilter(_cfg(), initial_action=[3.0, 0.0])  # outside the box: clipped before tick 0
    assert f.within_limits(f.last)
