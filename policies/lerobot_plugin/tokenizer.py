"""Swap the PaliGemma tokenizer that upstream PI0/PI05 processor factories hard-code for a configured one."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import lerobot.processor.tokenizer_processor as tokenizer_processor
from lerobot.processor.tokenizer_processor import TokenizerProcessorStep

from snapflow.policies.lerobot_plugin.configuration_pi0_snapflow import PALIGEMMA_TOKENIZER


@contextmanager
def tokenizer_redirect(tokenizer_name: str) -> Iterator[Callable[[object], None]]:
    """While active, loading ``PALIGEMMA_TOKENIZER`` loads ``tokenizer_name`` instead. Yields a function that
    rewrites the pipeline's tokenizer step so the saved ``policy_preprocessor.json`` names the real one."""
    if tokenizer_name == PALIGEMMA_TOKENIZER:
        yield lambda pipeline: None
        return
    auto = tokenizer_processor.AutoTokenizer

    class _Redirect:
        @staticmethod
        def from_pretrained(name: str, *args: object, **kwargs: object) -> object:
            return auto.from_pretrained(
                tokenizer_name if name == PALIGEMMA_TOKENIZER else name, *args, **kwargs
            )

    def retarget(pipeline: object) -> None:
        for step in pipeline.steps:
            if isinstance(step, TokenizerProcessorStep) and step.tokenizer_name == PALIGEMMA_TOKENIZER:
                step.tokenizer_name = tokenizer_name

    tokenizer_processor.AutoTokenizer = _Redirect
    try:
        yield retarget
    finally:
        tokenizer_processor.AutoTokenizer = auto


def with_configured_tokenizer(
    factory: Callable[..., tuple], config: object, dataset_stats: dict | None
) -> tuple:
    """Run an upstream PI0/PI05 processor factory with ``config.tokenizer_name`` as its tokenizer."""
    with tokenizer_redirect(config.tokenizer_name) as retarget:
        pipelines = factory(config, dataset_stats=dataset_stats)
    retarget(pipelines[0])
    return pipelines
