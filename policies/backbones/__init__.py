"""snapflow.policies.backbones."""
