"""Tiny, random, fully local variants of SmolVLA, PI0 and PI05 (and of their SnapFlow students).

These are the real LeRobot architectures at small width, built without the Hub:
* SmolVLA reads its VLM config, tokenizer and processor from ``vlm_model_name``; we write a local
  "model id" directory holding a 4-layer, width-64 SmolVLM config, a WordLevel tokenizer with SmolVLM's
  special tokens, and a SmolVLM processor.
* PI0 / PI05 use the tiny gemma variants of ``snapflow.policies.tiny_paligemma`` and a local WordLevel
  tokenizer standing in for the gated PaliGemma one.
They are the test fixtures and the basis of the embedded default model.
"""

import os
from collections.abc import Iterable
from pathlib import Path

from lerobot.configs.policies import PreTrainedConfig
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.factory import get_policy_class, make_policy_config, make_pre_post_processors

import snapflow.policies.lerobot_plugin  # noqa: F401  (registers the *_snapflow types)

SMOLVLM_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<unk>",
    "<fake_token_around_image>",
    "<global-img>",
    "<image>",
    "<end_of_utterance>",
    "<video>",
    "<row_1_col_1>",
]
BASE_CORPUS = [
    "pick up the red green blue yellow orange purple white black cube block bowl plate box basket drawer",
    "put place it on in into onto the top bottom left right front back middle of next to between and then",
    "open close push press turn on off button knob stove cabinet both object objects a an with",
    "Task: State: Action: , ; : . \n",
    " ".join(str(i) for i in range(256)),  # PI05 writes the discretised state (0..255) into the prompt
]
# Image side of the tiny vision towers (SigLIP patch 16 -> 4x4 patches).
TINY_IMAGE_SIZE = 64
TINY_PI_IMAGE_SIZE = 32


def _word_level_tokenizer(corpus: Iterable[str], special_tokens: list[str], **kwargs: object) -> object:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        list(corpus), trainers.WordLevelTrainer(special_tokens=special_tokens, vocab_size=4000)
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", **kwargs)


def build_tiny_smolvlm(out_dir: str | Path, corpus: Iterable[str] = (), width: int = 64) -> Path:
    """Write a tiny SmolVLM "model id" directory (config + tokenizer + processor); returns its path.

    ``width`` is the language model's hidden size (64 for tests; the embedded teacher uses 128); heads
    are 16 wide, the MLP twice the width, the vision tower stays 32 wide.
    """
    if width % 16 or width < 32:
        raise ValueError(f"width must be a multiple of 16 and >= 32, got {width}")
    from transformers import SmolVLMConfig, SmolVLMImageProcessor, SmolVLMProcessor, SmolVLMVideoProcessor

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _word_level_tokenizer(
        [*BASE_CORPUS, *corpus],
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
    vocab = len(tokenizer)
    config = SmolVLMConfig(
        text_config={
            "model_type": "llama",
            "vocab_size": vocab,
            "hidden_size": width,
            "intermediate_size": 2 * width,
            "num_hidden_layers": 4,
            "num_attention_heads": width // 16,
            "num_key_value_heads": max(1, width // 32),
            "head_dim": 16,
            "max_position_embeddings": 1024,
            "pad_token_id": 0,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": TINY_IMAGE_SIZE,
            "patch_size": 16,
        },
        scale_factor=2,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vocab_size=vocab,
    )
    config.save_pretrained(out)
    image_processor = SmolVLMImageProcessor(
        size={"longest_edge": TINY_IMAGE_SIZE},
        max_image_size={"longest_edge": TINY_IMAGE_SIZE},
        do_image_splitting=False,
    )
    SmolVLMProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=SmolVLMVideoProcessor(),
        image_seq_len=4,
    ).save_pretrained(out)
    return out


def build_tiny_paligemma_tokenizer(out_dir: str | Path, corpus: Iterable[str] = ()) -> Path:
    """Write a local tokenizer standing in for google/paligemma-3b-pt-224 (ids stay < its 257152 vocab)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _word_level_tokenizer(
        [*BASE_CORPUS, *corpus],
        ["<pad>", "<unk>", "<bos>", "<eos>"],
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
    )
    tokenizer.save_pretrained(out)
    return out


def tiny_config(policy_type: str, assets_dir: str | Path, **overrides: object) -> PreTrainedConfig:
    """Config of a tiny policy of ``policy_type`` (smolvla, pi0, pi05 or their *_snapflow students).

    ``assets_dir`` holds (or receives) the local VLM / tokenizer directories.
    """
    assets = Path(assets_dir)
    family = policy_type.removesuffix("_snapflow")
    common = {
        "device": "cpu",
        "chunk_size": 10,
        "n_action_steps": 10,
        "max_state_dim": 16,
        "max_action_dim": 16,
    }
    if family == "smolvla":
        vlm = assets / "tiny_smolvlm"
        if not (vlm / "config.json").exists():
            build_tiny_smolvlm(vlm)
        kwargs = {
            **common,
            "vlm_model_name": str(vlm),
            "load_vlm_weights": False,
            "num_vlm_layers": 4,
            "resize_imgs_with_padding": (TINY_IMAGE_SIZE, TINY_IMAGE_SIZE),
        }
    elif family in ("pi0", "pi05"):
        tok = assets / "tiny_paligemma_tokenizer"
        if not (tok / "tokenizer.json").exists():
            build_tiny_paligemma_tokenizer(tok)
        kwargs = {
            **common,
            "paligemma_variant": "tiny_vlm",
            "action_expert_variant": "tiny_expert",
            "image_resolution": (TINY_PI_IMAGE_SIZE, TINY_PI_IMAGE_SIZE),
            "tokenizer_max_length": 48,
        }
        if policy_type.endswith("_snapflow"):
            kwargs["tokenizer_name"] = str(tok)
    else:
        raise ValueError(f"no tiny variant for policy type {policy_type!r}")
    kwargs.update(overrides)
    return make_policy_config(policy_type, **kwargs)


def make_tiny_policy(
    policy_type: str,
    assets_dir: str | Path,
    input_features: dict[str, PolicyFeature],
    output_features: dict[str, PolicyFeature],
    dataset_stats: dict | None = None,
    **overrides: object,
) -> tuple[object, object, object]:
    """(policy, preprocessor, postprocessor) of a freshly initialised tiny ``policy_type``.

    Upstream pi0/pi05 (teacher) types are built as the matching ``*_snapflow`` model at initialisation,
    which is numerically the upstream model (phi = 0), then saved with the upstream type so that a student
    distils it like any teacher (see save_tiny_teacher). ValueError when `dataset_stats` lacks a feature
    the policy normalises, or a statistic has another length than its feature or a negative / all-zero std.
    """
    config = tiny_config(policy_type, assets_dir, **overrides)
    config.input_features, config.output_features = dict(input_features), dict(output_features)
    policy = get_policy_class(config.type)(config)
    pre, post = make_pre_post_processors(config, dataset_stats=dataset_stats)
    if dataset_stats is not None:  # pass 18: no action stats ran unnormalised, 8-long ones failed in a matmul
        from snapflow.policies.lerobot_plugin.processor_check import check_processors
        from snapflow.policies.lerobot_plugin.validation import validate_processor_stats

        validate_processor_stats((pre, post), "dataset_stats")
        check_processors(config, (pre, post), "dataset_stats")
    return policy, pre, post


def lerobot_features(
    state_dim: int = 8,
    action_dim: int = 7,
    image_size: int = 64,
    cameras: tuple[str, ...] = ("image", "image2"),
) -> tuple[dict, dict]:
    """(input_features, output_features) in LeRobot's LIBERO layout (two cameras, 8-D state, 7-D action).
    ValueError naming the argument when a size is below 1 (pass 18: image_size=0 built a policy that failed
    at its first frame)."""
    for name, size in (("state_dim", state_dim), ("action_dim", action_dim), ("image_size", image_size)):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {size!r}")
    if not cameras:
        raise ValueError("cameras must name at least one camera (the policies here read images)")
    inputs = {
        f"observation.images.{c}": PolicyFeature(FeatureType.VISUAL, (3, image_size, image_size))
        for c in cameras
    }
    inputs["observation.state"] = PolicyFeature(FeatureType.STATE, (state_dim,))
    return inputs, {"action": PolicyFeature(FeatureType.ACTION, (action_dim,))}


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
