"""The `pi05_snapflow` policy: upstream PI05Policy with SnapFlow training and 1-NFE sampling."""

from pathlib import Path
from typing import Any

from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies.pi05.modeling_pi05 import PI05Policy
from torch import Tensor

from snapflow.policies.backbones.paligemma import PI05Adapter
from snapflow.policies.lerobot_plugin.checkpoint import (
    TARGET_TIME_PREFIX,
    check_checkpoint_type,
    load_weights,
)
from snapflow.policies.lerobot_plugin.configuration_pi05_snapflow import PI05SnapFlowConfig
from snapflow.policies.lerobot_plugin.student import SnapFlowStudent
from snapflow.policies.tiny_paligemma import (
    fix_tiny_projector,
    is_tiny,
    tiny_variants_enabled,
    tiny_vlm_width,
)

_POLICY_KWARGS = ("dataset_stats", "dataset_meta")


class PI05SnapFlowPolicy(SnapFlowStudent, PI05Policy):
    config_class = PI05SnapFlowConfig
    name = "pi05_snapflow"
    adapter = PI05Adapter()
    steps_field = "num_inference_steps"

    def __init__(self, config: PI05SnapFlowConfig, **kwargs: Any):
        if is_tiny(config):
            with tiny_variants_enabled("lerobot.policies.pi05.modeling_pi05"):
                super().__init__(config, **kwargs)
            fix_tiny_projector(self.model, tiny_vlm_width(config.paligemma_variant))
            self.model.to(config.device)
        else:
            super().__init__(config, **kwargs)
        self._install_snapflow()

    def _remap_keys(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Upstream's openpi key fixes, then its 'model.' prefix (but not on our own policy-level keys)."""
        fixed = self._fix_pytorch_state_dict_keys(state_dict, self.config)
        return {k if k.startswith(("model.", TARGET_TIME_PREFIX)) else f"model.{k}": v for k, v in fixed.items()}

    @classmethod
    def from_pretrained(cls, pretrained_name_or_path: str | Path, *, config: PreTrainedConfig | None = None,
                        **kwargs: Any) -> "PI05SnapFlowPolicy":
        check_checkpoint_type(pretrained_name_or_path, ("pi05", cls.name), **kwargs)
        if config is None:
            config = PreTrainedConfig.from_pretrained(pretrained_name_or_path, **kwargs)
        policy = cls(config, **{k: v for k, v in kwargs.items() if k in _POLICY_KWARGS})
        load_weights(policy, pretrained_name_or_path, remap=policy._remap_keys, **kwargs)
        policy.to(config.device)
        policy.eval()
        return policy
