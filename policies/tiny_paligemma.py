"""Offline tiny PaliGemma-with-expert variants for PI0 / PI05 (CPU tests and small models).

Upstream builds its PaliGemma + Gemma-expert from two named variants (gemma_2b, gemma_300m) and a
SigLIP-So400m vision config. This module adds small named variants, used only when a config names them:

* ``tiny_vlm`` (width 64) / ``tiny_expert`` (width 32): depth 2, 8 query heads and 1 KV head of dim 8 (the
  joint attention of upstream's ``compute_layer_complete`` hard-codes 8 x head_dim, so every variant must
  keep 8 heads / 1 KV head), with a 1-layer SigLIP of width 32 and patch 16.

All monkeypatching of LeRobot internals for this lives here, scoped to the construction of one model,
and tests/policies/test_tiny_paligemma.py fails loudly if the upstream names it relies on change.
"""

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from torch import nn

UPSTREAM_VARIANTS = ("gemma_300m", "gemma_2b")


@dataclass(frozen=True)
class TinyGemma:
    width: int
    depth: int
    mlp_dim: int
    num_heads: int = 8  # required by upstream's joint attention (see module docstring)
    num_kv_heads: int = 1
    head_dim: int = 8


TINY_VARIANTS = {
    "tiny_vlm": TinyGemma(width=64, depth=2, mlp_dim=128),
    "tiny_expert": TinyGemma(width=32, depth=2, mlp_dim=64),
}
# SigLIP vision tower of the tiny variants (upstream uses So400m: width 1152, 27 layers, patch 14).
TINY_VISION = {
    "model_type": "siglip_vision_model",
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "patch_size": 16,
}


def is_tiny(config: object) -> bool:
    return getattr(config, "paligemma_variant", None) in TINY_VARIANTS


def validate_variants_with_tiny(config: object, upstream_post_init: Callable[[], None]) -> None:
    """Run upstream __post_init__ validation, letting tiny variant names through."""
    saved = (config.paligemma_variant, config.action_expert_variant)
    for name in saved:
        if name not in UPSTREAM_VARIANTS and name not in TINY_VARIANTS:
            raise ValueError(
                f"unknown gemma variant {name!r}; choose from {UPSTREAM_VARIANTS + tuple(TINY_VARIANTS)}"
            )
    config.paligemma_variant, config.action_expert_variant = (
        "gemma_2b" if saved[0] in TINY_VARIANTS else saved[0],
        "gemma_300m" if saved[1] in TINY_VARIANTS else saved[1],
    )
    try:
        upstream_post_init()
    finally:
        config.paligemma_variant, config.action_expert_variant = saved


@contextmanager
def tiny_variants_enabled(modeling_module_name: str) -> Iterator[None]:
    """Within the block, the given upstream modeling module (lerobot.policies.pi0.modeling_pi0 or
    ...pi05.modeling_pi05) resolves the tiny variant names and builds a tiny SigLIP."""
    module = importlib.import_module(modeling_module_name)
    original_get_config, original_mapping = module.get_gemma_config, module.CONFIG_MAPPING
    gemma_config_cls = module.GemmaConfig

    def get_gemma_config(variant: str):
        if variant in TINY_VARIANTS:
            v = TINY_VARIANTS[variant]
            return gemma_config_cls(v.width, v.depth, v.mlp_dim, v.num_heads, v.num_kv_heads, v.head_dim)
        return original_get_config(variant)

    class _Mapping:
        def __getitem__(self, key: str):
            if key == "paligemma":
                paligemma_cls = original_mapping["paligemma"]
                return lambda: paligemma_cls(vision_config=dict(TINY_VISION))
            return original_mapping[key]

    module.get_gemma_config, module.CONFIG_MAPPING = get_gemma_config, _Mapping()
    try:
        yield
    finally:
        module.get_gemma_config, module.CONFIG_MAPPING = original_get_config, original_mapping


def fix_tiny_projector(model: nn.Module, vlm_width: int) -> None:
    """Upstream forces the projector to 2048 outputs; make it map the tiny SigLIP width to the VLM width."""
    paligemma = model.paligemma_with_expert.paligemma
    vision_width = paligemma.config.vision_config.hidden_size
    dtype = paligemma.model.multi_modal_projector.linear.weight.dtype
    paligemma.model.multi_modal_projector.linear = nn.Linear(vision_width, vlm_width).to(dtype)
    paligemma.config.vision_config.projection_dim = vlm_width


def tiny_vlm_width(variant: str) -> int:
    return TINY_VARIANTS[variant].width


__all__ = ["TINY_VARIANTS", "fix_tiny_projector", "is_tiny", "tiny_variants_enabled"]
