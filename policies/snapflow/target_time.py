"""The zero-initialised target-time embedding phi(s) of SnapFlow (SnapFlow paper, arXiv 2604.05656).

phi(s) = Linear2(SiLU(Linear1(sinusoid(s)))), with only Linear2 (weight and bias) zero-initialised, so the
student is numerically the teacher at step 0 while Linear1 still receives gradients through Linear2 once it
moves (zeroing both layers would leave only Linear2's bias trainable and phi independent of s).
Its output has the width of the backbone's sinusoidal time embedding and is *added* to it.
"""

import torch
from lerobot.policies.common.vla_utils import create_sinusoidal_pos_embedding
from torch import Tensor, nn


class TargetTimeEmbedding(nn.Module):
    """s (B,) in [0, 1] -> (B, dim) additive correction of the time embedding."""

    def __init__(self, dim: int, hidden_dim: int = 0, min_period: float = 4e-3, max_period: float = 4.0):
        super().__init__()
        if dim % 2:
            raise ValueError(f"sinusoidal embedding needs an even width, got {dim}")
        self.dim = dim
        self.min_period = min_period
        self.max_period = max_period
        hidden_dim = hidden_dim or dim
        self.in_proj = nn.Linear(dim, hidden_dim)
        self.out_proj = nn.Linear(hidden_dim, dim)
        nn.init.zeros_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, s: Tensor) -> Tensor:
        # The sinusoid is computed in float64 by LeRobot; cast to the layer dtype (TensorRT has no fp64).
        emb = create_sinusoidal_pos_embedding(s, self.dim, self.min_period, self.max_period, device=s.device)
        emb = emb.to(self.in_proj.weight.dtype)
        return self.out_proj(nn.functional.silu(self.in_proj(emb)))

    @torch.no_grad()
    def gap(self) -> float:
        """Mean |phi(0) - phi(1)|: how far the embedding has learnt to tell the jump from the local step."""
        s = torch.tensor([0.0, 1.0], device=self.in_proj.weight.device)
        phi = self(s)
        return (phi[0] - phi[1]).abs().mean().item()
