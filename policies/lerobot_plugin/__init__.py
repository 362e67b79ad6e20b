"""snapflow.policies.lerobot_plugin."""
