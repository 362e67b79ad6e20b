"""LeRobot plugin entry point.

LeRobot imports every installed distribution whose name starts with `lerobot_policy_` by importing the
module of the same name (lerobot.utils.import_utils.register_third_party_plugins). Importing this module
registers our policy types (smolvla_snapflow, pi0_snapflow, pi05_snapflow, snapflow_onnx) and our env
type (mini_libero).
"""

import snapflow.deploy.lerobot_onnx
import snapflow.policies.lerobot_plugin
import snapflow.sim.lerobot_env  # noqa: F401  (registers the mini_libero env type)
