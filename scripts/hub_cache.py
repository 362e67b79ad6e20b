"""What a policy still needs from the Hugging Face Hub, checked before any work.

A SmolVLA built from its type (or a checkpoint such as ``lerobot/smolvla_base``) loads its VLM's config and
processor from ``vlm_model_name``; PI0 / PI05 load the PaliGemma tokenizer (``tokenizer_name`` in the
``*_snapflow`` types, fixed in upstream lerobot/policies/pi0/processor_pi0.py). Offline
(``HF_HUB_OFFLINE=1``) without them in the local cache, that surfaced as a Hub connection traceback inside
lerobot-train; here it is a named error with the ways out.
"""

from __future__ import annotations

from pathlib import Path


def hub_ids(config: dict) -> list[str]:
    """Hub repo ids a policy config (a checkpoint's config.json as a dict) loads when it is built: its VLM
    (SmolVLA) or tokenizer (PI0 / PI05), unless the config names a local folder instead."""
    policy_type = str(config.get("type", ""))
    if policy_type.startswith("smolvla"):
        name = config.get("vlm_model_name") or _upstream_default("smolvla")
    elif policy_type.startswith("pi0"):  # pi0 and pi05
        name = config.get("tokenizer_name") or _upstream_default("pi0")
    else:
        return []
    return [] if Path(str(name)).expanduser().is_dir() else [str(name)]


def _upstream_default(family: str) -> str:
    """The Hub id a config that names none loads: a bare type (snapflow-train policy=smolvla) or an upstream
    PI0 / PI05 config, whose processor asks for PaliGemma's tokenizer (processor_pi0.py). Imported only
    here: the upstream config modules import LeRobot's policies (seconds)."""
    if family == "smolvla":
        from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig

        return SmolVLAConfig.vlm_model_name
    from snapflow.policies.lerobot_plugin.configuration_pi0_snapflow import PALIGEMMA_TOKENIZER

    return PALIGEMMA_TOKENIZER


def _cached(repo_id: str) -> bool:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        snapshot_download(repo_id, local_files_only=True)
    except (LocalEntryNotFoundError, ValueError, OSError):  # ValueError: not a valid repo id
        return False
    return True


def check_hub_ids(repo_ids: list[str], what: str) -> None:
    """ValueError naming `what` (e.g. ``policy=smolvla``) and each repo id missing from the local Hugging
    Face cache while ``HF_HUB_OFFLINE`` is set; online, a line saying what will be downloaded."""
    import huggingface_hub.constants as hub

    missing = [r for r in repo_ids if not _cached(r)]
    if not missing:
        return
    if hub.HF_HUB_OFFLINE:
        raise ValueError(
            f"{what} loads {missing} from the Hugging Face Hub, which is not in the local cache, and "
            "HF_HUB_OFFLINE is set: download it once where there is a network (`hf download <id>`), or work "
            "offline with the tiny variant (snapflow-train tiny=true) or the shipped teacher (embedded)"
        )
    print(f"{what}: downloading {missing} from the Hugging Face Hub (not in the local cache)")
