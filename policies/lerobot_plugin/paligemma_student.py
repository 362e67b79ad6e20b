"""What PI0 and PI05 students share: the tiny offline variants and upstream's openpi key remapping."""

from typing import Any, ClassVar

import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.utils.constants import ACTION
from torch import Tensor

from snapflow.policies.lerobot_plugin.checkpoint import TARGET_TIME_PREFIX
from snapflow.policies.lerobot_plugin.student import SnapFlowStudent
from snapflow.policies.lerobot_plugin.validation import validate_batch
from snapflow.policies.tiny_paligemma import (
    fix_tiny_projector,
    is_tiny,
    tiny_variants_enabled,
    tiny_vlm_width,
)


class PaliGemmaStudent(SnapFlowStudent):
    """Mixed in before PI0Policy / PI05Policy (after SnapFlowStudent's own behaviour)."""

    modeling_module: ClassVar[str]  # the upstream modeling module that builds the backbone

    def __init__(self, config: PreTrainedConfig, **kwargs: Any):
        if not is_tiny(config):
            super().__init__(config, **kwargs)
            return
        with tiny_variants_enabled(self.modeling_module):
            super().__init__(config, **kwargs)
        fix_tiny_projector(self.model, tiny_vlm_width(config.paligemma_variant))
        self.model.to(config.device)

    def _remap_keys(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Upstream's openpi key fixes, then its 'model.' prefix (but not on our own policy-level keys)."""
        fixed = self._fix_pytorch_state_dict_keys(state_dict, self.config)
        return {
            k if k.startswith(("model.", TARGET_TIME_PREFIX)) else f"model.{k}": v for k, v in fixed.items()
        }

    @torch.no_grad()
    def predict_action_chunk(
        self, batch: dict[str, Tensor], noise: Tensor | None = None, **kwargs: Any
    ) -> Tensor:
        """Upstream PI0/PI05 ``predict_action_chunk`` (also reached by ``select_action``) with the student's
        sampler in place of ``model.sample_actions``; (B, chunk, action_dim)."""
        validate_batch(self.config, batch, needs_action=False)
        self.eval()
        actions = self.sample_chunk(self.adapter.sample_args(self, batch), noise, **kwargs)
        return actions[:, :, : self.config.output_features[ACTION].shape[0]]
