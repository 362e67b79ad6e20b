"""Flow-matching time convention and the three samplers of a target-time (SnapFlow) model.

Convention (LeRobot / openpi, used everywhere in this package):
    t = 1 is pure noise, t = 0 is the clean action chunk,
    x_t = t * noise + (1 - t) * actions,   conditional velocity u_t = noise - actions.

A SnapFlow network F(x_t, t, s) predicts the *average* velocity that carries x_t from time t to an earlier
target time s:  x_s = x_t - (t - s) * F(x_t, t, s).  With s = t it is the ordinary instantaneous velocity
(the teacher's), with (t=1, s=0) it is a one-step jump.

All samplers share one signature ``(velocity, noise, num_steps, time_batch=None) -> actions`` where
``velocity`` is a ``VelocityFn``: ``(x_t (B,H,A), t (B,), s (B,)) -> (B,H,A)``. ``time_batch=1`` passes t and s
as (1,) tensors that broadcast over the batch: an exported graph then holds its time embeddings as
constants (no float64 sinusoid and no dependence on the symbolic batch size). The time grid is the one of LeRobot's
``euler_integrate`` (``dt = -1/K``, ``t_k = 1 + k*dt`` in float32) so that plain Euler here reproduces the
upstream loop bit for bit.
"""

from collections.abc import Callable
from itertools import pairwise

import torch
from torch import Tensor

VelocityFn = Callable[[Tensor, Tensor, Tensor], Tensor]


def interpolate(noise: Tensor, actions: Tensor, t: Tensor) -> Tensor:
    """x_t = t * noise + (1 - t) * actions, with t of shape (B,)."""
    t = t[:, None, None]
    return t * noise + (1 - t) * actions


def target_velocity(noise: Tensor, actions: Tensor) -> Tensor:
    """Conditional flow-matching target u_t = noise - actions (independent of t)."""
    return noise - actions


def _time_grid(num_steps: int, batch_size: int, device: torch.device) -> list[Tensor]:
    """Times t_0 = 1 > t_1 > ... > t_K = 0 as (B,) float32 tensors, exactly as LeRobot's euler_integrate."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    dt = -1.0 / num_steps
    times = [1.0 + step * dt for step in range(num_steps)] + [0.0]
    return [torch.tensor(t, dtype=torch.float32, device=device).expand(batch_size) for t in times]


def sample_one_step(
    velocity: VelocityFn, noise: Tensor, num_steps: int = 1, time_batch: int | None = None
) -> Tensor:
    """1-NFE jump from t=1 to s=0: x_0 = x_1 - F(x_1, 1, 0)."""
    if num_steps != 1:
        raise ValueError(f"sample_one_step is the 1-NFE sampler; got num_steps={num_steps}")
    t_one, t_zero = _time_grid(1, time_batch or noise.shape[0], noise.device)
    return noise - velocity(noise, t_one, t_zero)


def sample_target_time(
    velocity: VelocityFn, noise: Tensor, num_steps: int, time_batch: int | None = None
) -> Tensor:
    """K-step schedule that uses the target time: step k jumps t_k -> s = t_{k+1}.

    With K = 1 this is exactly ``sample_one_step``.
    """
    grid = _time_grid(num_steps, time_batch or noise.shape[0], noise.device)
    x_t = noise
    dt = -1.0 / num_steps
    for t, s in pairwise(grid):
        x_t = x_t + dt * velocity(x_t, t, s)
    return x_t


def sample_euler(
    velocity: VelocityFn, noise: Tensor, num_steps: int, time_batch: int | None = None
) -> Tensor:
    """Plain K-step Euler with s = t (teacher mode): x <- x + dt * F(x, t, t)."""
    grid = _time_grid(num_steps, time_batch or noise.shape[0], noise.device)
    x_t = noise
    dt = -1.0 / num_steps
    for t in grid[:-1]:
        x_t = x_t + dt * velocity(x_t, t, t)
    return x_t


def target_time(t: Tensor, num_steps: int, mode: str) -> Tensor:
    """The target time s a K-step sampler pairs with the flow time t on the grid above.

    "target_time": s = t - 1/K (clamped at 0), so step k jumps t_k -> t_{k+1} (at K = 1 the t=1 -> s=0 jump);
    "euler": s = t (the instantaneous velocity, as a plain flow-matching model is trained).
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if mode == "euler":
        return t
    if mode != "target_time":
        raise ValueError(f"mode must be 'target_time' or 'euler', got {mode!r}")
    return (t - 1.0 / num_steps).clamp_min(0.0)


SAMPLERS: dict[str, Callable[[VelocityFn, Tensor, int], Tensor]] = {
    "one_step": sample_one_step,
    "target_time": sample_target_time,
    "euler": sample_euler,
}
