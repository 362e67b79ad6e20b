"""Hydra YAML configs, shipped as package data. YAML only sets values; schemas are dataclasses."""
