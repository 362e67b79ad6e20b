"""LeRobot plugin policy types: smolvla_snapflow, pi0_snapflow, pi05_snapflow (importing registers them).

LeRobot finds each policy class and processor factory by rewriting the config module path
(configuration_X -> modeling_X / processor_X), so these module names are load-bearing.
"""

from snapflow.policies.lerobot_plugin.configuration_pi0_snapflow import PI0SnapFlowConfig
from snapflow.policies.lerobot_plugin.configuration_pi05_snapflow import PI05SnapFlowConfig
from snapflow.policies.lerobot_plugin.configuration_smolvla_snapflow import SmolVLASnapFlowConfig
from snapflow.policies.lerobot_plugin.modeling_pi0_snapflow import PI0SnapFlowPolicy
from snapflow.policies.lerobot_plugin.modeling_pi05_snapflow import PI05SnapFlowPolicy
from snapflow.policies.lerobot_plugin.modeling_smolvla_snapflow import SmolVLASnapFlowPolicy
from snapflow.policies.lerobot_plugin.observation_check import ObservationCheckStep

__all__ = [
    "ObservationCheckStep",
    "PI0SnapFlowConfig",
    "PI0SnapFlowPolicy",
    "PI05SnapFlowConfig",
    "PI05SnapFlowPolicy",
    "SmolVLASnapFlowConfig",
    "SmolVLASnapFlowPolicy",
]
