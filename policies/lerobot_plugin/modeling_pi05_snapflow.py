"""The `pi05_snapflow` policy: upstream PI05Policy with SnapFlow training and 1-NFE sampling."""

from lerobot.policies.pi05.modeling_pi05 import PI05Policy

from snapflow.policies.backbones.paligemma import PI05Adapter
from snapflow.policies.lerobot_plugin.configuration_pi05_snapflow import PI05SnapFlowConfig
from snapflow.policies.lerobot_plugin.paligemma_student import PaliGemmaStudent


class PI05SnapFlowPolicy(PaliGemmaStudent, PI05Policy):
    config_class = PI05SnapFlowConfig
    name = "pi05_snapflow"
    adapter = PI05Adapter()
    steps_field = "num_inference_steps"
    teacher_type = "pi05"
    modeling_module = "lerobot.policies.pi05.modeling_pi05"
