"""The `smolvla_snapflow` policy: upstream SmolVLAPolicy with SnapFlow training and 1-NFE sampling."""

from typing import Any

from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy
from torch import Tensor

from snapflow.policies.backbones.smolvla import SmolVLAAdapter
from snapflow.policies.lerobot_plugin.configuration_smolvla_snapflow import SmolVLASnapFlowConfig
from snapflow.policies.lerobot_plugin.student import SnapFlowStudent


class SmolVLASnapFlowPolicy(SnapFlowStudent, SmolVLAPolicy):
    config_class = SmolVLASnapFlowConfig
    name = "smolvla_snapflow"
    adapter = SmolVLAAdapter()
    steps_field = "num_steps"
    teacher_type = "smolvla"
    checkpoint_velocity = True

    def _get_action_chunk(
        self, batch: dict[str, Tensor], noise: Tensor | None = None, **kwargs: Any
    ) -> Tensor:
        """Upstream ``SmolVLAPolicy._get_action_chunk`` (reached by its ``predict_action_chunk`` and
        ``select_action``) with the student's sampler in place of ``model.sample_actions``."""
        actions = self.sample_chunk(self.adapter.sample_args(self, batch), noise, **kwargs)
        actions = actions[:, :, : self.config.action_feature.shape[0]]
        if self.config.adapt_to_pi_aloha:
            actions = self._pi_aloha_encode_actions(actions)
        return actions
