"""What the SnapFlow plugin needs from an upstream flow-matching VLA (one adapter per model family).

An adapter never copies upstream modeling code: it calls the upstream ``embed_prefix`` / ``embed_suffix`` and
the backbone's joint ``forward(..., use_cache=False)``, exactly the pattern of the upstream training
``forward``, and returns the velocity instead of a loss.
"""

from dataclasses import dataclass, fields
from typing import Protocol

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

    # Name of the upstream nn.Linear whose input holds the sinusoidal time embedding.
    time_layer_name: str

    def time_slice(self, model: nn.Module) -> tuple[int, int]:
        """(offset, width) of the time embedding within the time layer's input."""
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

    def velocity(self, model: nn.Module, prefix: Prefix, x_t: Tensor, t: Tensor) -> Tensor:
        """One joint prefix+suffix pass without KV cache -> velocity (B, chunk, max_action_dim), float32."""
        ...
