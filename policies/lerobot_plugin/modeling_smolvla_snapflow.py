"""The `smolvla_snapflow` policy: upstream SmolVLAPolicy with SnapFlow training and 1-NFE sampling."""

from pathlib import Path
from typing import Any

from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

from snapflow.policies.backbones.smolvla import SmolVLAAdapter
from snapflow.policies.lerobot_plugin.checkpoint import check_checkpoint_type, load_weights
from snapflow.policies.lerobot_plugin.configuration_smolvla_snapflow import SmolVLASnapFlowConfig
from snapflow.policies.lerobot_plugin.student import SnapFlowStudent

_POLICY_KWARGS = ("dataset_stats", "dataset_meta")


class SmolVLASnapFlowPolicy(SnapFlowStudent, SmolVLAPolicy):
    config_class = SmolVLASnapFlowConfig
    name = "smolvla_snapflow"
    adapter = SmolVLAAdapter()
    steps_field = "num_steps"

    def __init__(self, config: SmolVLASnapFlowConfig, **kwargs: Any):
        super().__init__(config, **kwargs)
        self._install_snapflow()

    @classmethod
    def from_pretrained(cls, pretrained_name_or_path: str | Path, *, config: PreTrainedConfig | None = None,
                        **kwargs: Any) -> "SmolVLASnapFlowPolicy":
        check_checkpoint_type(pretrained_name_or_path, ("smolvla", cls.name), **kwargs)
        if config is None:
            config = PreTrainedConfig.from_pretrained(pretrained_name_or_path, **kwargs)
        policy = cls(config, **{k: v for k, v in kwargs.items() if k in _POLICY_KWARGS})
        load_weights(policy, pretrained_name_or_path, **kwargs)
        policy.to(config.device)
        policy.eval()
        return policy
