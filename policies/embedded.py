"""The embedded default teacher: a small SmolVLA trained on mini-LIBERO, shipped in policies/assets/.

A LeRobot SmolVLA checkpoint records the absolute path of its local VLM directory (``vlm_model_name`` and
the tokenizer step's ``tokenizer_name``), so the shipped copy stores them relative to its own folder and
``materialize_teacher`` writes a runnable copy with absolute paths for this checkout.
"""

import json
import shutil
from pathlib import Path

EMBEDDED_DIR = Path(__file__).resolve().parent / "assets" / "mini_libero_smolvla_teacher"
VLM_SUBDIR = "smolvlm"  # the local SmolVLM "model id" directory inside EMBEDDED_DIR


class EmbeddedTeacherMissing(FileNotFoundError):
    """This checkout ships no trained embedded teacher."""


def materialize_teacher(out: str | Path, source: str | Path = EMBEDDED_DIR) -> Path:
    """Copy the embedded teacher to ``out`` with its VLM paths made absolute; returns the checkpoint dir."""
    source = Path(source)
    if not (source / "model.safetensors").is_file():
        raise EmbeddedTeacherMissing(
            f"no embedded default teacher at {source}: train one (README, 'The main job') or pass teacher=<ckpt>"
        )
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(source, out)
    vlm = str((out / VLM_SUBDIR).resolve())
    config = json.loads((out / "config.json").read_text())
    config["vlm_model_name"] = vlm
    (out / "config.json").write_text(json.dumps(config, indent=4))
    pre = out / "policy_preprocessor.json"
    pipeline = json.loads(pre.read_text())
    for step in pipeline["steps"]:
        if "tokenizer_name" in step.get("config", {}):
            step["config"]["tokenizer_name"] = vlm
    pre.write_text(json.dumps(pipeline, indent=4))
    return out
