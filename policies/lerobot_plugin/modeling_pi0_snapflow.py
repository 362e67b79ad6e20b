"""The `pi0_snapflow` policy: upstream PI0Policy with SnapFlow training and 1-NFE sampling."""

from lerobot.policies.pi0.modeling_pi0 import PI0Policy

from snapflow.policies.backbones.paligemma import PI0Adapter
from snapflow.policies.lerobot_plugin.configuration_pi0_snapflow import PI0SnapFlowConfig
from snapflow.policies.lerobot_plugin.paligemma_student import PaliGemmaStudent


class PI0SnapFlowPolicy(PaliGemmaStudent, PI0Policy):
    config_class = PI0SnapFlowConfig
    name = "pi0_snapflow"
    adapter = PI0Adapter()
    steps_field = "num_inference_steps"
    teacher_type = "pi0"
    modeling_module = "lerobot.policies.pi0.modeling_pi0"
