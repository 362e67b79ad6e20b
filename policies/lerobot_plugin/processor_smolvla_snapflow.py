"""Pre/post-processors of `smolvla_snapflow`: exactly upstream SmolVLA's."""

from typing import Any

from lerobot.policies.smolvla.processor_smolvla import make_smolvla_pre_post_processors


def make_smolvla_snapflow_pre_post_processors(config: Any, dataset_stats: dict | None = None) -> tuple:
    return make_smolvla_pre_post_processors(config, dataset_stats=dataset_stats)
