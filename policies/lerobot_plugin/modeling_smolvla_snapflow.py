"""The `smolvla_snapflow` policy: upstream SmolVLAPolicy with SnapFlow training and 1-NFE sampling."""

from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

from snapflow.policies.backbones.smolvla import SmolVLAAdapter
from snapflow.policies.lerobot_plugin.configuration_smolvla_snapflow import SmolVLASnapFlowConfig
from snapflow.policies.lerobot_plugin.student import SnapFlowStudent


class SmolVLASnapFlowPolicy(SnapFlowStudent, SmolVLAPolicy):
    config_class = SmolVLASnapFlowConfig
    name = "smolvla_snapflow"
    adapter = SmolVLAAdapter()
    steps_field = "num_steps"
    teacher_type = "smolvla"
