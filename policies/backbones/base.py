"""What the SnapFlow plugin needs from an upstream flow-matching VLA (one adapter per model family).

An adapter builds on the upstream core model's own modules and helpers (``embed_prefix``, the projections and
time MLPs, the backbone's ``forward``) and mirrors the upstream method it stands in for, named in each
docstring. The one difference is the time-conditioning path: the suffix embedding takes the flow time ``t``
*and* the target-time embedding ``time_cond = phi(s)`` as explicit arguments, and adds ``time_cond`` to the
sinusoid of ``t`` before the time MLP (with ``time_cond = None`` it is the upstream embedding, bit for bit;
tests pin this). No state is set on upstream modules, so the time MLP can run under upstream gradient
checkpointing (its recomputation sees the same explicit inputs) and one policy can serve several threads.
"""

from dataclasses import dataclass, fields
from typing import Any, Protocol

from torch import Tensor, nn


@dataclass
class Prefix:
    """Embedded observation prefix (images, language[, state]) shared by all velocity passes of a batch.

    embs (B, P, D), pad_masks (B, P) bool, att_masks (B, P); ``state`` (B, S) only for PI0, whose state token
    lives in the suffix.
    """

    embs: Tensor
    pad_masks: Tensor
    att_masks: Tensor
    state: Tensor | None = None

    def select(self, rows: Tensor) -> "Prefix":
        """The prefix of batch rows ``rows`` (a (N,) long tensor; repeats allowed)."""
        return Prefix(
            **{f.name: None if (v := getattr(self, f.name)) is None else v[rows] for f in fields(self)}
        )


class BackboneAdapter(Protocol):
    """Family-specific glue; ``model`` is the upstream core module (``policy.model``)."""

    def time_width(self, model: nn.Module) -> int:
        """Width of the sinusoidal time embedding (the width of phi(s))."""
        ...

    def sample_args(self, policy: nn.Module, batch: dict[str, Tensor]) -> tuple:
        """The positional tensors upstream ``sample_actions`` receives, prepared from a preprocessed batch."""
        ...

    def training_inputs(
        self, policy: nn.Module, batch: dict[str, Tensor]
    ) -> tuple[tuple, Tensor, Tensor | None]:
        """(sample_actions positional args, padded actions (B,H,A_pad), valid (B,H) or None) for a batch,
        prepared by the upstream policy's own helpers; ``valid`` is given only where upstream masks its loss."""
        ...

    def prefix_from_sample_args(self, model: nn.Module, *args: Tensor) -> Prefix:
        """Embed the prefix from the positional tensors upstream ``sample_actions`` receives."""
        ...

    def velocity(
        self, model: nn.Module, prefix: Prefix, x_t: Tensor, t: Tensor, time_cond: Tensor | None
    ) -> Tensor:
        """One joint prefix+suffix pass without KV cache -> velocity (B, chunk, max_action_dim), float32.

        x_t (B, H, A_pad); t (B,) or (1,); time_cond (B or 1, time_width) or None."""
        ...

    def encode_prefix(self, model: nn.Module, prefix: Prefix) -> Any:
        """The prefix's KV cache (one backbone pass over the prefix only), as upstream ``sample_actions``."""
        ...

    def velocity_cached(
        self, model: nn.Module, prefix: Prefix, cache: Any, x_t: Tensor, t: Tensor, time_cond: Tensor | None
    ) -> Tensor:
        """One suffix-only pass attending to ``cache`` -> velocity, as upstream ``denoise_step``; the cache
        is left as it was (reusable for the next step)."""
        ...
