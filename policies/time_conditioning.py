"""Adding an extra vector to a backbone's sinusoidal time embedding without copying upstream code.

In SmolVLA and PI0 the time sinusoid is concatenated with the action embedding and fed to
``action_time_mlp_in``; in PI05 it is fed to ``time_mlp_in``. Adding a vector c to the time half of that
input is the same as adding ``W[:, time_slice] @ c`` to the layer's output, because the layer is linear.
``TimeConditionedLinear`` is an ``nn.Linear`` (same parameter names, so teacher checkpoints load unchanged)
that adds this term while a conditioning vector is set through ``time_conditioning(...)``. With no vector
set, or a zero vector, its output is bit-identical to the plain layer.

The vector is per call state held only for the duration of a ``with`` block (deployment state such as
queues never lives here); a module is driven by one thread at a time, as LeRobot policies are.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class TimeConditionedLinear(nn.Linear):
    """nn.Linear whose input columns [time_offset, time_offset + time_dim) hold the time embedding."""

    def __init__(
        self, in_features: int, out_features: int, time_offset: int, time_dim: int, bias: bool = True
    ):
        super().__init__(in_features, out_features, bias=bias)
        if time_offset + time_dim > in_features:
            raise ValueError("time slice exceeds the layer's input width")
        self.time_offset = time_offset
        self.time_dim = time_dim
        self.time_cond: Tensor | None = None

    @classmethod
    def wrap(cls, linear: nn.Linear, time_offset: int, time_dim: int) -> "TimeConditionedLinear":
        """A TimeConditionedLinear sharing ``linear``'s parameters (no copy, same dtype and device)."""
        new = cls.__new__(cls)
        nn.Module.__init__(new)
        new.in_features, new.out_features = linear.in_features, linear.out_features
        new.weight, new.bias = linear.weight, linear.bias
        new.time_offset, new.time_dim, new.time_cond = time_offset, time_dim, None
        if time_offset + time_dim > linear.in_features:
            raise ValueError("time slice exceeds the layer's input width")
        return new

    def forward(self, x: Tensor) -> Tensor:
        out = super().forward(x)
        if self.time_cond is None:
            return out
        w_time = self.weight[:, self.time_offset : self.time_offset + self.time_dim]
        extra = F.linear(self.time_cond.to(w_time.dtype), w_time)  # (B, out)
        # out is (B, out) for PI05's time MLP or (B, H, out) for the fused action-time MLP.
        extra = extra.view(extra.shape[0], *([1] * (out.dim() - 2)), extra.shape[-1])
        return out + extra.to(out.dtype)


@contextmanager
def time_conditioning(layer: TimeConditionedLinear, time_cond: Tensor | None) -> Iterator[None]:
    """Within the block, ``layer`` adds ``time_cond`` (B, time_dim) to its time-embedding input."""
    if time_cond is not None and time_cond.shape[-1] != layer.time_dim:
        raise ValueError(f"time_cond width {time_cond.shape[-1]} != time embedding width {layer.time_dim}")
    previous = layer.time_cond
    layer.time_cond = time_cond
    try:
        yield
    finally:
        layer.time_cond = previous


def is_zero(t: Tensor) -> bool:
    """True when every element is exactly zero (used to skip work at initialisation)."""
    return not torch.any(t != 0).item()
