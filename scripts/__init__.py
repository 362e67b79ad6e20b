"""The `snapflow-*` command-line entry points (thin hydra mains)."""
