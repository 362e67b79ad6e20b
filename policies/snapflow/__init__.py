"""snapflow.policies.snapflow."""
