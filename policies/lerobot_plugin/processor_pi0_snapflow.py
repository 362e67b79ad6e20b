"""Pre/post-processors of `pi0_snapflow`: upstream pi0's, with ``config.tokenizer_name`` in place of the
PaliGemma tokenizer that upstream hard-codes (so a local tokenizer directory works offline)."""

from typing import Any

from lerobot.policies.pi0.processor_pi0 import make_pi0_pre_post_processors

from snapflow.policies.lerobot_plugin.tokenizer import with_configured_tokenizer


def make_pi0_snapflow_pre_post_processors(config: Any, dataset_stats: dict | None = None) -> tuple:
    return with_configured_tokenizer(make_pi0_pre_post_processors, config, dataset_stats)
