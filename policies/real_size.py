"""Real-size SmolVLA, PI0 and PI05 (and their SnapFlow students) with random weights, built without the Hub.

Weights are random, shapes are the published ones, so latency and memory are real:

* SmolVLA reads its VLM config, tokenizer and processor from ``vlm_model_name``; we write a local "model id"
  directory holding the SmolVLM2-500M-Video-Instruct architecture (``SMOLVLM2_500M_TEXT`` / ``_VISION``
  below) with LeRobot's own defaults on top (``num_vlm_layers=16`` of the 32, expert width 0.75, chunk 50,
  images resized with padding to 512).
* PI0 / PI05 keep upstream's own ``gemma_2b`` + ``gemma_300m`` variants and SigLIP So400m, which upstream
  builds from ``transformers.CONFIG_MAPPING`` without the Hub; only the gated PaliGemma tokenizer is replaced
  by a local one.

Tokenizers are the tiny WordLevel ones of ``snapflow.policies.tiny``. PI0 / PI05 pad every prompt to
``tokenizer_max_length`` (``padding="max_length"``: 48 and 200 tokens), so their sequence length, hence
latency, does not depend on the tokenizer. SmolVLA pads to the longest prompt (``pad_language_to="longest"``):
the benchmark's LIBERO instruction is 17 WordLevel tokens, so its prefix is 2 x 64 image tokens + 17 + 1 state
token = 146; SmolVLM2's BPE tokenizer may give a few tokens more, each adding ~1/146 of the VLM-layer time.
"""

from contextlib import nullcontext
from pathlib import Path

import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies.factory import get_policy_class, make_policy_config, make_pre_post_processors

from snapflow.policies.tiny import (
    BASE_CORPUS,
    SMOLVLM_SPECIAL_TOKENS,
    _word_level_tokenizer,
    build_tiny_paligemma_tokenizer,
)

# HuggingFaceTB/SmolVLM2-500M-Video-Instruct config.json (text model = SmolLM2-360M shapes; 32 layers, of which
# LeRobot's SmolVLA keeps num_vlm_layers=16). Checked against the published config of the same 500M family
# (huggingface.co/vidore/ColSmolVLM-Instruct-500M-base config.json: hidden 960, intermediate 2560, 15 heads,
# 5 KV heads, head_dim 64, scale_factor 4) and the SmolVLM2-500M generation_config.json (eos_token_id 49279,
# so vocab 49280) and processor_config.json (image_seq_len 64 = (512/16)^2 / 4^2).
SMOLVLM2_500M_TEXT = {
    "model_type": "llama",
    "vocab_size": 49280,
    "hidden_size": 960,
    "intermediate_size": 2560,
    "num_hidden_layers": 32,
    "num_attention_heads": 15,
    "num_key_value_heads": 5,
    "head_dim": 64,
    "max_position_embeddings": 8192,
    "rope_theta": 100000.0,
    "rms_norm_eps": 1e-5,
    "pad_token_id": 2,
    "tie_word_embeddings": False,
}
# Vision tower: SigLIP base patch16 at 512 px (google/siglip-base-patch16-512 shapes).
SMOLVLM2_500M_VISION = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "image_size": 512,
    "patch_size": 16,
}
SMOLVLM2_SCALE_FACTOR = 4  # pixel shuffle: (512/16)^2 = 1024 patches -> 64 image tokens per camera
SMOLVLM2_IMAGE_SEQ_LEN = 64
REAL_IMAGE_SIZE = 512  # SmolVLA resize_imgs_with_padding default
REAL_PI_IMAGE_SIZE = 224  # PI0 / PI05 image_resolution default
# Raw camera side of the benchmark observation (the measurement: two 256 px cameras).
CAMERA_SIZE = 256

# Published sizes (SmolVLA paper: 0.45 B; openpi / pi0 paper: 3.3 B = 3 B PaliGemma + 0.3 B action expert).
PUBLISHED_PARAMS = {"smolvla": 450e6, "pi0": 3.3e9, "pi05": 3.3e9}


def build_real_smolvlm(out_dir: str | Path) -> Path:
    """Write a SmolVLM2-500M-shaped "model id" directory (config + local tokenizer + processor)."""
    from transformers import SmolVLMConfig, SmolVLMImageProcessor, SmolVLMProcessor, SmolVLMVideoProcessor

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _word_level_tokenizer(
        BASE_CORPUS,
        SMOLVLM_SPECIAL_TOKENS,
        pad_token="<|endoftext|>",
        eos_token="<end_of_utterance>",
        extra_special_tokens={
            "fake_image_token": "<fake_token_around_image>",
            "global_image_token": "<global-img>",
            "image_token": "<image>",
            "end_of_utterance_token": "<end_of_utterance>",
        },
    )
    tokenizer.save_pretrained(out)
    SmolVLMConfig(
        text_config=dict(SMOLVLM2_500M_TEXT),
        vision_config=dict(SMOLVLM2_500M_VISION),
        scale_factor=SMOLVLM2_SCALE_FACTOR,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vocab_size=SMOLVLM2_500M_TEXT["vocab_size"],
    ).save_pretrained(out)
    image_processor = SmolVLMImageProcessor(
        size={"longest_edge": REAL_IMAGE_SIZE},
        max_image_size={"longest_edge": REAL_IMAGE_SIZE},
        do_image_splitting=False,
    )
    SmolVLMProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=SmolVLMVideoProcessor(),
        image_seq_len=SMOLVLM2_IMAGE_SEQ_LEN,
    ).save_pretrained(out)
    return out


def real_config(policy_type: str, assets_dir: str | Path, **overrides: object) -> PreTrainedConfig:
    """Config of a real-size ``policy_type`` (smolvla, pi0, pi05 or their *_snapflow students).

    Upstream defaults are kept (chunk 50, max state/action dim 32, SmolVLA 16 VLM layers and 512 px,
    PI 224 px); ``assets_dir`` holds (or receives) the local VLM / tokenizer directories.
    """
    assets = Path(assets_dir)
    family = policy_type.removesuffix("_snapflow")
    kwargs: dict[str, object] = {"device": "cpu"}
    if family == "smolvla":
        vlm = assets / "smolvlm2_500m"
        if not (vlm / "config.json").exists():
            build_real_smolvlm(vlm)
        kwargs.update(vlm_model_name=str(vlm), load_vlm_weights=False)
    elif family in ("pi0", "pi05"):
        tok = assets / "tiny_paligemma_tokenizer"
        if not (tok / "tokenizer.json").exists():
            build_tiny_paligemma_tokenizer(tok)
        if not policy_type.endswith("_snapflow"):
            raise ValueError(
                "real-size PI0/PI05 need a *_snapflow type (its tokenizer_name avoids the gated one)"
            )
        kwargs.update(
            paligemma_variant="gemma_2b", action_expert_variant="gemma_300m", tokenizer_name=str(tok)
        )
    else:
        raise ValueError(f"no real-size variant for policy type {policy_type!r}")
    kwargs.update(overrides)
    return make_policy_config(policy_type, **kwargs)


def make_real_policy(
    policy_type: str,
    assets_dir: str | Path,
    input_features: dict,
    output_features: dict,
    dataset_stats: dict | None = None,
    *,
    meta: bool = False,
    **overrides: object,
) -> tuple[torch.nn.Module, object, object]:
    """(policy, preprocessor, postprocessor) of a real-size ``policy_type`` with random weights.

    ``meta=True`` builds on the meta device (shapes only, no memory): for parameter counts in CI.
    """
    config = real_config(policy_type, assets_dir, **overrides)
    if meta:
        config.device = "meta"  # upstream moves the model to config.device after building it
    config.input_features, config.output_features = dict(input_features), dict(output_features)
    # Random init straight on the target device (meta: nothing allocated; CUDA: no 13 GB fp32 detour via the CPU).
    build_device = torch.device(config.device)
    with nullcontext() if build_device.type == "cpu" else build_device:
        policy = get_policy_class(config.type)(config)
    pre, post = make_pre_post_processors(config, dataset_stats=dataset_stats)
    return policy, pre, post


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# Upstream builds these heads but no policy calls them, and they are not in the released checkpoints as separate
# weights: PaliGemma ties its lm_head to the token embedding, and openpi's Gemma action expert has no lm_head.
# (SmolVLM2 does not tie, tie_word_embeddings=False, so SmolVLA's VLM lm_head is stored and counted.)
UNSTORED_HEADS = ("paligemma.lm_head", "gemma_expert.lm_head")


def checkpoint_parameters(policy: torch.nn.Module) -> int:
    """Parameter count as published (a released checkpoint's): all parameters but ``UNSTORED_HEADS``."""
    heads = sum(count_parameters(m) for n, m in policy.named_modules() if n.endswith(UNSTORED_HEADS))
    return count_parameters(policy) - heads
