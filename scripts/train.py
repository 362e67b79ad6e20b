"""`snapflow-train`: train a flow-matching teacher (SmolVLA / PI0 / PI05) with LeRobot's `lerobot-train`.

    snapflow-train policy=smolvla dataset=<dir> out=<dir> steps=20000 batch_size=32
        [tiny=true assets=<dir> tiny_width=64] [pretrained=lerobot/smolvla_base] [resume=true]
        [launcher=accelerate num_processes=2] [extra=[--policy.optimizer_lr=1e-4]]

tiny=true builds the offline tiny variant (no Hub). For PI0/PI05 the tiny widths exist only in the
`*_snapflow` types, so those teachers are `<family>_snapflow` checkpoints trained with alpha=1 (plain
flow matching) and 10 Euler steps; upstream `pi0`/`pi05` (tiny=false) need the Hub for the PaliGemma
tokenizer and weights. Prints the path of the last checkpoint (a LeRobot pretrained_model dir).
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf


@hydra.main(version_base=None, config_path="../configs", config_name="train")
def _main(cfg: DictConfig) -> None:
    from snapflow.scripts.cli_values import checked, run_cli
    from snapflow.scripts.resume_checks import kept_after_interrupt, out_is_new

    # read before any work: only then may a Ctrl-C remove out= (a missing out= is named by run_cli)
    started_empty = OmegaConf.is_missing(cfg, "out") or out_is_new(cfg.out)
    run_cli(
        lambda: _body(checked(cfg, "train")),
        debug=cfg.get("debug", False),
        interrupted=lambda: kept_after_interrupt(OmegaConf.select(cfg, "out", default=None), started_empty),
    )


def _body(cfg: DictConfig) -> None:
    from snapflow.scripts.dataset_checks import dataset_state_dim, read_dataset_info
    from snapflow.scripts.lerobot_cli import check_run_values, family_of, tiny_flags, train_or_resume

    family = family_of(str(cfg.policy))
    if str(cfg.policy) != family:  # smolvla_snapflow would train an upstream smolvla without a word
        raise ValueError(
            f"policy={cfg.policy}: snapflow-train trains a flow-matching teacher (smolvla, pi0 or pi05); "
            "a *_snapflow student comes from snapflow-distill"
        )
    if cfg.pretrained and cfg.tiny:
        raise ValueError("pass either pretrained=<checkpoint> or tiny=true, not both")
    from snapflow.scripts.cli_values import explicit_keys

    if not cfg.tiny and "tiny_width" in explicit_keys():  # read by the tiny build only: ignored otherwise
        raise ValueError(
            f"tiny_width={cfg.tiny_width} goes with tiny=true (the offline tiny variant), and only with it"
        )
    check_run_values(cfg)  # out= and the run values, before the tiny assets are built beside out
    if not cfg.resume:  # the dataset before the policy (its Hub files, the tiny build)
        read_dataset_info(cfg.dataset)
    if cfg.pretrained and "policy" in explicit_keys():  # pass 17: policy=pi0 was ignored without a word
        raise ValueError(
            f"policy={cfg.policy} and pretrained={cfg.pretrained} both choose the policy: pretrained= brings its "
            "own type; give one of the two"
        )
    if cfg.resume:
        flags: list[str] = []  # the checkpoint's train_config.json holds the policy
    elif cfg.pretrained:
        from snapflow.scripts.checkpoints import is_distilled, read_policy_config, resolve_pretrained
        from snapflow.scripts.hub_cache import check_hub_ids, hub_ids

        pretrained = str(cfg.pretrained)
        if pretrained.startswith(("/", ".", "~")) or pretrained.count("/") != 1:  # a path, not a Hub id
            pretrained = str(resolve_pretrained(pretrained))  # FileNotFoundError naming it
            if is_distilled(pretrained):  # pass 17: trained on with its consistency loss, called a teacher
                raise ValueError(
                    f"pretrained={cfg.pretrained} is a SnapFlow-distilled student (alpha < 1): snapflow-train "
                    "trains flow-matching teachers; start from the student's teacher (snapflow-distill "
                    "distils students)"
                )
            needed = hub_ids(read_policy_config(Path(pretrained)))
        else:  # its own VLM / tokenizer is checked when it loads (its config is on the Hub)
            needed = [pretrained]
        check_hub_ids(needed, f"pretrained={cfg.pretrained}")
        flags = [f"--policy.path={pretrained}"]
    elif cfg.tiny:
        assets = Path(cfg.assets or Path(cfg.out).resolve().parent / "tiny_assets")
        if int(cfg.tiny_width) < 32 or int(cfg.tiny_width) % 16:  # the builder's own message said "width"
            raise ValueError(f"tiny_width must be a multiple of 16 and >= 32, got {cfg.tiny_width}")
        if assets.exists() and not assets.is_dir():
            raise NotADirectoryError(f"assets={assets} is a file: assets= names a folder for the tiny VLM")
        if assets.is_dir() and any(assets.iterdir()) and not any((assets / d).is_dir() for d in TINY_DIRS):
            raise ValueError(  # pass 17: the tiny VLM was built inside the user's dataset folder
                f"assets={assets} holds other files and no earlier tiny build ({', '.join(TINY_DIRS)}): "
                "name a new folder (or one that an earlier tiny=true run built)"
            )
        if (
            not assets.is_dir()
        ):  # said, so that a mistyped assets= is seen (the build is the documented default)
            print(f"assets={assets} does not exist: building the tiny VLM and tokenizer there")
        flags = tiny_flags(
            family,
            assets,
            state_dim=dataset_state_dim(cfg.dataset),
            width=int(cfg.tiny_width),
        )
    else:
        from snapflow.scripts.hub_cache import check_hub_ids, hub_ids

        check_hub_ids(hub_ids({"type": family}), f"policy={family} (without tiny=true)")
        flags = [f"--policy.type={family}"]
    if not cfg.resume:  # the stats the policy will normalise with (after the policy's own checks)
        from snapflow.scripts.dataset_checks import check_stats_cover

        check_stats_cover(cfg.dataset, read_dataset_info(cfg.dataset)["features"], STATS_NEEDED)
    print(f"teacher checkpoint: {train_or_resume(flags, cfg)}")


STATS_NEEDED = ("action", "observation.state")  # normalised by MEAN_STD in every family here
TINY_DIRS = ("tiny_smolvlm", "tiny_paligemma_tokenizer")  # what tiny_flags builds under assets=


def main() -> None:
    """Console entry point (hydra parses sys.argv)."""
    from snapflow.scripts.cli_values import check_argv

    check_argv("train")  # unknown keys named in one line before Hydra parses
    _main()


if __name__ == "__main__":
    main()
