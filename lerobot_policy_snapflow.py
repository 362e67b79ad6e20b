"""LeRobot plugin entry point.

LeRobot imports every installed distribution whose name starts with `lerobot_policy_` by importing the
module of the same name (lerobot.utils.import_utils.register_third_party_plugins). Importing this module
registers our policy types (smolvla_snapflow, pi0_snapflow, pi05_snapflow) and our env type (mini_libero).
"""

import snapflow.policies.lerobot_plugin  # noqa: F401  (registers the policy types)
import snapflow.sim.lerobot_env  # noqa: F401  (registers the mini_libero env type)
