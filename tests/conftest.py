"""Shared fixtures: offline environment, tiny local model assets, LIBERO-style features."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory: pytest.TempPathFactory):
    """Directory with the tiny SmolVLM and the local PaliGemma stand-in tokenizer (built once)."""
    from snapflow.policies.tiny import build_tiny_paligemma_tokenizer, build_tiny_smolvlm

    root = tmp_path_factory.mktemp("tiny_assets")
    build_tiny_smolvlm(root / "tiny_smolvlm")
    build_tiny_paligemma_tokenizer(root / "tiny_paligemma_tokenizer")
    return root


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
