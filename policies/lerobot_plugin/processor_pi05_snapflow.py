"""Pre/post-processors of `pi05_snapflow`: upstream pi05's, with ``config.tokenizer_name`` in place of the
PaliGemma tokenizer that upstream hard-codes (so a local tokenizer directory works offline)."""

from typing import Any

from lerobot.policies.pi05.processor_pi05 import make_pi05_pre_post_processors

from snapflow.policies.lerobot_plugin.tokenizer import with_configured_tokenizer


def make_pi05_snapflow_pre_post_processors(config: Any, dataset_stats: dict | None = None) -> tuple:
    return with_configured_tokenizer(make_pi05_pre_post_processors, config, dataset_stats)
