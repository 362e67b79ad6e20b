"""The time convention and the samplers (policies/snapflow/flow.py)."""

import pytest
import torch
from lerobot.policies.common.flow_matching import euler_integrate

from snapflow.policies.snapflow.flow import (
    interpolate,
    sample_euler,
    sample_one_step,
    sample_target_time,
    target_velocity,
)


def test_time_convention_t1_is_noise_t0_is_data():
    noise, actions = torch.randn(3, 5, 2), torch.randn(3, 5, 2)
    assert torch.equal(interpolate(noise, actions, torch.ones(3)), noise)
    assert torch.equal(interpolate(noise, actions, torch.zeros(3)), actions)
    # Integrating the exact conditional velocity from noise lands on the data in one step.
    assert torch.allclose(noise - target_velocity(noise, actions), actions)


@pytest.mark.parametrize("sampler", [sample_euler, sample_target_time])
@pytest.mark.parametrize("num_steps", [1, 2, 10])
def test_constant_velocity_is_integrated_exactly(sampler, num_steps):
    noise, c = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    out = sampler(lambda x, t, s: c.expand_as(x), noise, num_steps)
    assert torch.allclose(out, noise - c, atol=1e-6)


def test_euler_with_s_equal_t_reproduces_lerobot_euler_integrate_bitwise():
    w = torch.randn(3, 3)

    def field(x, t):
        return torch.tanh(x @ w) * (1 + t[:, None, None])

    noise = torch.randn(2, 4, 3)
    ours = sample_euler(lambda x, t, s: field(x, t), noise, 10)
    upstream = euler_integrate(field, noise, 10)
    assert torch.equal(ours, upstream)


def test_schedule_passes_next_grid_time_as_target_and_k1_is_the_jump():
    seen = []

    def velocity(x, t, s):
        seen.append((round(t[0].item(), 6), round(s[0].item(), 6)))
        return torch.ones_like(x) * s[:, None, None]

    noise = torch.zeros(1, 2, 1)
    sample_target_time(velocity, noise, 4)
    assert seen == [(1.0, 0.75), (0.75, 0.5), (0.5, 0.25), (0.25, 0.0)]
    seen.clear()
    sample_euler(velocity, noise, 2)
    assert seen == [(1.0, 1.0), (0.5, 0.5)]
    field = torch.randn(1, 2, 1)
    one = sample_one_step(lambda x, t, s: field + s[:, None, None], noise)
    assert torch.equal(one, sample_target_time(lambda x, t, s: field + s[:, None, None], noise, 1))
    with pytest.raises(ValueError, match="num_steps"):
        sample_one_step(lambda x, t, s: x, noise, 2)
