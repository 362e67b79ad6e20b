"""The offline tiny builders, the LeRobot internals they rely on, and the async-server launcher."""

import json

import pytest
from lerobot.policies.pi0 import modeling_pi0
from lerobot.policies.pi05 import modeling_pi05

from snapflow.policies.tiny_paligemma import TINY_VARIANTS, tiny_variants_enabled


@pytest.mark.parametrize("module", [modeling_pi0, modeling_pi05])
def test_upstream_names_the_tiny_paligemma_patch_relies_on_still_exist(module):
    """Fails loudly if a LeRobot upgrade renames what tiny_paligemma patches."""
    for name in ("get_gemma_config", "CONFIG_MAPPING", "GemmaConfig", "PaliGemmaWithExpertModel"):
        assert hasattr(module, name), f"lerobot {module.__name__}.{name} is gone: update tiny_paligemma"
    with pytest.raises(ValueError, match="Unknown variant"):
        module.get_gemma_config("tiny_vlm")  # outside the context, upstream is untouched
    with tiny_variants_enabled(module.__name__):
        assert module.get_gemma_config("tiny_vlm").width == TINY_VARIANTS["tiny_vlm"].width
        assert module.get_gemma_config("gemma_300m").width == 1024
    assert module.get_gemma_config("gemma_2b").width == 2048


def test_snapflow_tiny_builds_a_loadable_smolvla_teacher(tmp_path):
    from lerobot.configs.policies import PreTrainedConfig

    from snapflow.scripts.tiny import build_tiny_teachers

    paths = build_tiny_teachers(tmp_path, ["smolvla"], image_size=64)
    cfg = json.loads((paths["smolvla"] / "config.json").read_text())
    assert cfg["type"] == "smolvla" and cfg["vlm_model_name"].startswith(str(tmp_path))
    assert PreTrainedConfig.from_pretrained(paths["smolvla"]).type == "smolvla"


def test_policy_server_launcher_accepts_our_types():
    from lerobot.async_inference import constants

    from snapflow.scripts.policy_server import register_with_async_server

    supported = register_with_async_server()
    assert supported is constants.SUPPORTED_POLICIES
    assert {"smolvla_snapflow", "pi0_snapflow", "pi05_snapflow", "snapflow_onnx"} <= set(supported)
