"""`snapflow-tiny`: build tiny, random, fully local teacher checkpoints of SmolVLA / PI0 / PI05.

    snapflow-tiny out=<dir> [families=[smolvla,pi0,pi05]] [image_size=128] [seed=0]

Writes ``<dir>/assets/`` (the local tiny SmolVLM and PaliGemma stand-in tokenizer) and one
``<dir>/<family>_teacher/`` LeRobot ``pretrained_model`` directory per family (config, weights, processors).
SmolVLA's is an upstream ``smolvla`` checkpoint; PI0/PI05 tiny widths cannot be expressed in upstream's
configs, so theirs are ``<family>_snapflow`` checkpoints at initialisation (phi = 0), numerically the upstream
model. Distil any of them with ``lerobot-train --policy.type=<family>_snapflow --policy.pretrained_path=...``.
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

TINY_FAMILIES = ("smolvla", "pi0", "pi05")


def build_tiny_teachers(out: str | Path, families: list[str], image_size: int = 128, seed: int = 0) -> dict:
    """Build the checkpoints; returns {family: checkpoint dir}."""
    import torch

    from snapflow.policies.tiny import (
        build_tiny_paligemma_tokenizer,
        build_tiny_smolvlm,
        lerobot_features,
        make_tiny_policy,
    )

    try:  # give the word-level tokenizers the benchmark's vocabulary
        from snapflow.sim.tasks import list_tasks

        corpus = [task.instruction for task in list_tasks()]
    except ImportError:
        corpus = []
    out = Path(out)
    assets = out / "assets"
    build_tiny_smolvlm(assets / "tiny_smolvlm", corpus)
    build_tiny_paligemma_tokenizer(assets / "tiny_paligemma_tokenizer", corpus)
    inputs, outputs = lerobot_features(image_size=image_size)
    unit = {
        "mean": torch.zeros(8),
        "std": torch.ones(8),
        "min": -torch.ones(8),
        "max": torch.ones(8),
        "q01": -torch.ones(8),
        "q99": torch.ones(8),
    }
    stats = {"observation.state": unit, "action": {k: v[:7] for k, v in unit.items()}}
    written = {}
    for family in families:
        torch.manual_seed(seed)
        policy_type = "smolvla" if family == "smolvla" else f"{family}_snapflow"
        policy, pre, post = make_tiny_policy(policy_type, assets, inputs, outputs, stats)
        if family != "smolvla":
            policy.config.num_inference_steps = 10  # a teacher samples with 10 Euler steps
        target = out / f"{family}_teacher"
        policy.save_pretrained(target)
        pre.save_pretrained(target)
        post.save_pretrained(target)
        written[family] = target
    return written


def relocate(out: Path, built_in: Path) -> None:
    """Point the checkpoints' asset paths (vlm_model_name, tokenizer_name) from `built_in` to `out`.

    The configs and processor files record the absolute or relative path of the local tokenizer assets they
    were built with; after the `.partial` folder is renamed, those paths must name the final folder.
    """
    for file in out.glob("*_teacher/*.json"):
        text = file.read_text()
        moved = text.replace(f'"{built_in}/', f'"{out}/')
        if moved != text:
            file.write_text(moved)


@hydra.main(version_base=None, config_path="../configs", config_name="tiny")
def _main(cfg: DictConfig) -> None:
    from snapflow.scripts.cli_values import checked, run_cli

    run_cli(lambda: _body(checked(cfg, "tiny")), debug=cfg.get("debug", False))


def _body(cfg: DictConfig) -> None:
    from snapflow.scripts.cli_values import as_list, strict_bool
    from snapflow.scripts.outputs import atomic_out

    families = as_list(
        cfg.families if isinstance(cfg.families, str) else OmegaConf.to_container(cfg.families)
    )
    if not families:
        raise ValueError(f"families is empty; choose from {list(TINY_FAMILIES)}")
    unknown = [f for f in families if f not in TINY_FAMILIES]
    if unknown:  # before anything is written
        raise ValueError(f"families={unknown}: no tiny variant; choose from {list(TINY_FAMILIES)}")
    if not 16 <= int(cfg.image_size) <= 512:
        raise ValueError(f"image_size must be in [16, 512] px, got {cfg.image_size}")
    # Built in <out>.partial and renamed into place: overwrite=true replaces the old folder whole (no stale
    # family left beside the new ones), and a failed build leaves the earlier models as they were.
    with atomic_out(cfg.out, strict_bool(cfg.get("overwrite", False), "overwrite")) as partial:
        # absolute asset paths: a relative one would be resolved against the working directory of each later
        # command, not against the checkpoint
        built = build_tiny_teachers(partial.resolve(), families, int(cfg.image_size), int(cfg.seed))
    relocate(Path(cfg.out).resolve(), partial.resolve())
    for family in built:
        print(f"{family}: {Path(cfg.out) / f'{family}_teacher'}")


def main() -> None:
    from snapflow.scripts.cli_values import check_argv

    check_argv("tiny")  # unknown keys named in one line before Hydra parses
    _main()


if __name__ == "__main__":
    main()
