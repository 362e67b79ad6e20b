"""The embedded default teacher: a small SmolVLA trained on mini-LIBERO, shipped in policies/assets/.

A LeRobot SmolVLA checkpoint records the path of its local VLM directory (``vlm_model_name`` and the
tokenizer step's ``tokenizer_name``), so the shipped copy stores them relative to its own folder
(`package_teacher`) and ``materialize_teacher`` writes a runnable copy with absolute paths for this
checkout. How the shipped teacher was made: EMBEDDED_DIR/README.md (`make teacher` reproduces it).
"""

import json
import shutil
from pathlib import Path

# The files of a LeRobot pretrained_model dir that make up a policy (train_config.json is left out: it
# holds the training machine's paths; the README next to the weights gives the command instead).
POLICY_FILES = ("config.json", "model.safetensors", "policy_preprocessor.json", "policy_postprocessor.json")

EMBEDDED_DIR = Path(__file__).resolve().parent / "assets" / "mini_libero_smolvla_teacher"
# The multimodal probe's teacher (`snapflow-demo probe=multimodal`): the default teacher fine-tuned on the
# `multimodal` suite's two-strategy demos (its README gives the command, `make teacher-multimodal`).
MULTIMODAL_DIR = EMBEDDED_DIR.parent / "mini_libero_multimodal_teacher"
VLM_SUBDIR = "smolvlm"  # the local SmolVLM "model id" directory inside EMBEDDED_DIR


class EmbeddedTeacherMissing(FileNotFoundError):
    """This checkout ships no trained embedded teacher."""


def _set_vlm_paths(directory: Path, vlm: str) -> None:
    """Point config.json's vlm_model_name and the tokenizer step's tokenizer_name at ``vlm``."""
    config = json.loads((directory / "config.json").read_text())
    if config.get("type") != "smolvla":
        raise ValueError(
            f"{directory} holds a {config.get('type')!r} policy; the embedded teacher is a smolvla"
        )
    config["vlm_model_name"] = vlm
    config["pretrained_path"] = None  # where a fine-tuned teacher started: a path on the training machine
    (directory / "config.json").write_text(json.dumps(config, indent=4))
    pre = directory / "policy_preprocessor.json"
    pipeline = json.loads(pre.read_text())
    for step in pipeline["steps"]:
        if "tokenizer_name" in step.get("config", {}):
            step["config"]["tokenizer_name"] = vlm
    pre.write_text(json.dumps(pipeline, indent=4))


def package_teacher(checkpoint: str | Path, vlm_dir: str | Path, out: str | Path = EMBEDDED_DIR) -> Path:
    """Copy a trained SmolVLA ``checkpoint`` (pretrained_model dir) and its local ``vlm_dir`` into ``out``.

    The copy refers to its VLM as the relative ``smolvlm`` folder; files other than the policy's (a README
    in ``out``) are kept. Returns ``out``.
    """
    checkpoint, vlm_dir, out = Path(checkpoint), Path(vlm_dir), Path(out)
    missing = [f for f in POLICY_FILES if not (checkpoint / f).is_file()]
    missing += [] if (vlm_dir / "config.json").is_file() else [f"{vlm_dir}/config.json"]
    if missing:
        raise FileNotFoundError(f"cannot package {checkpoint}: missing {missing}")
    out.mkdir(parents=True, exist_ok=True)
    for f in checkpoint.glob("policy_*"):
        shutil.copy2(f, out / f.name)
    for f in POLICY_FILES:
        shutil.copy2(checkpoint / f, out / f)
    shutil.rmtree(out / VLM_SUBDIR, ignore_errors=True)
    shutil.copytree(vlm_dir, out / VLM_SUBDIR)
    _set_vlm_paths(out, VLM_SUBDIR)
    return out


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
    _set_vlm_paths(out, str((out / VLM_SUBDIR).resolve()))
    return out


def main(argv: list[str] | None = None) -> None:
    """`python -m snapflow.policies.embedded <checkpoint> <vlm_dir> [out]`: package a trained teacher."""
    import argparse

    parser = argparse.ArgumentParser(description=package_teacher.__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="the teacher's pretrained_model dir")
    parser.add_argument(
        "vlm_dir", type=Path, help="its local tiny SmolVLM dir (snapflow-train assets=<dir>/tiny_smolvlm)"
    )
    parser.add_argument("out", type=Path, nargs="?", default=EMBEDDED_DIR)
    args = parser.parse_args(argv)
    print(f"packaged {package_teacher(args.checkpoint, args.vlm_dir, args.out)}")


if __name__ == "__main__":
    main()
