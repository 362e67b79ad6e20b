"""`snapflow-distill`: SnapFlow-distil a flow-matching teacher into `<family>_snapflow` with `lerobot-train`.

    snapflow-distill teacher=<pretrained_model or run dir> dataset=<dir> out=<dir> [method=snapflow|fm]
        [steps=30000] [batch_size=4] [alpha=0.5] [consistency_weight=0.1] [lr=2.5e-5] [resume=true]
        [launcher=accelerate num_processes=2] [extra=[...]]

Runs `lerobot-train --policy.type=<family>_snapflow --policy.pretrained_path=<teacher>` plus the teacher's
architecture flags (the plugin loads weights only; see lerobot_cli.architecture_flags). method=fm is the
plain flow-matching fine-tune control (alpha=1). Prints the student checkpoint path.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

METHODS = ("snapflow", "fm")


@hydra.main(version_base=None, config_path="../configs", config_name="distill")
def _main(cfg: DictConfig) -> None:
    from snapflow.scripts.cli_values import checked, run_cli
    from snapflow.scripts.resume_checks import kept_after_interrupt, out_is_new

    # read before any work: only then may a Ctrl-C remove out= (a missing out= is named by run_cli)
    started_empty = OmegaConf.is_missing(cfg, "out") or out_is_new(cfg.out)
    run_cli(
        lambda: _body(checked(cfg, "distill")),
        debug=cfg.get("debug", False),
        interrupted=lambda: kept_after_interrupt(OmegaConf.select(cfg, "out", default=None), started_empty),
    )


def _body(cfg: DictConfig) -> None:
    from snapflow.policies.weights_file import check_weights_file
    from snapflow.scripts.checkpoints import read_policy_config, resolve_pretrained
    from snapflow.scripts.dataset_checks import read_dataset_info
    from snapflow.scripts.hub_cache import check_hub_ids, hub_ids
    from snapflow.scripts.lerobot_cli import check_run_values, teacher_flags, train_or_resume
    from snapflow.scripts.teacher_stats import dataset_with_teacher_stats, remove_view

    if cfg.method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {cfg.method!r}")
    check_run_values(cfg)  # before the dataset view next to out is (re)written
    _check_fm_values(cfg)
    for key, low, high in (("alpha", 0.0, 1.0), ("consistency_weight", 0.0, math.inf)):
        if cfg[key] is not None and not (math.isfinite(float(cfg[key])) and low <= float(cfg[key]) <= high):
            raise ValueError(f"{key} must be a finite number in [{low}, {high}], got {cfg[key]}")
    if cfg.lr is not None and not (math.isfinite(float(cfg.lr)) and float(cfg.lr) > 0):
        # 0 too: LeRobot's cosine schedule divides by the peak rate
        raise ValueError(f"lr must be > 0, got {cfg.lr} (a finite learning rate)")
    flags: list[str] = []
    view = None  # the dataset view with the teacher's stats, when this run writes one
    info = read_dataset_info(cfg.dataset)  # a missing or broken meta/info.json is named before any work
    if not cfg.resume:
        teacher = resolve_pretrained(cfg.teacher)  # its stats files checked there (the student keeps them)
        check_weights_file(teacher / "model.safetensors")  # a corrupt teacher is named here, not in the child
        check_hub_ids(hub_ids(read_policy_config(teacher)), f"teacher={cfg.teacher}")
        _, flags = teacher_flags(teacher)
        _say_if_student(teacher)
        _say_if_other_camera_size(teacher, info, cfg.dataset)
        if cfg.renormalize:  # the dataset's stats become the student's (pass 17: none for action trained raw)
            from snapflow.scripts.dataset_checks import check_stats_cover

            check_stats_cover(cfg.dataset, info["features"], ("action", "observation.state"))
            print(
                "renormalize=true: the student's (un)normaliser takes the dataset's stats, not the teacher's"
            )
        else:  # keep the teacher's normalisation (scripts/teacher_stats.py)
            view = Path(str(cfg.out).rstrip("/") + ".dataset")
            cfg.dataset = str(dataset_with_teacher_stats(Path(cfg.dataset), teacher, view))
        if cfg.method == "fm":
            # The control samples as it was trained: plain Euler with s = t (also at one step).
            flags += ["--policy.snapflow.alpha=1.0", "--policy.snapflow.multistep_mode=euler"]
        elif cfg.alpha is not None:
            flags.append(f"--policy.snapflow.alpha={float(cfg.alpha)}")
        if cfg.consistency_weight is not None:
            flags.append(f"--policy.snapflow.consistency_weight={float(cfg.consistency_weight)}")
        if cfg.lr is not None:
            flags.append(f"--policy.optimizer_lr={float(cfg.lr)}")
    try:
        print(f"student checkpoint: {train_or_resume(flags, cfg)}")
    except BaseException:
        if view is not None and not (Path(cfg.out) / "checkpoints").is_dir():
            remove_view(view)  # refused or failed before its first checkpoint: nothing refers to the view
        raise
    finally:  # also the checkpoints an interrupted run has written
        _check_observations_in_checkpoints(Path(cfg.out))


def _check_fm_values(cfg: DictConfig) -> None:
    """method=fm trains without the consistency term (alpha = 1): another alpha, or a consistency setting
    that would be recorded in the control's config without having had any effect, is refused by name."""
    if cfg.method != "fm":
        return
    if cfg.alpha is not None and float(cfg.alpha) != 1.0:
        raise ValueError(f"method=fm is alpha=1.0; got alpha={cfg.alpha}")
    if cfg.consistency_weight is not None:
        raise ValueError(
            f"method=fm trains without the consistency term: consistency_weight={cfg.consistency_weight} "
            "has no effect; drop it"
        )
    keys = ("consistency", "energy_samples", "target_clamp")
    for flag in cfg.extra or []:
        if str(flag).startswith("--policy.snapflow.") and any(k in str(flag) for k in keys):
            raise ValueError(f"method=fm trains without the consistency term: {flag} has no effect; drop it")


def _check_observations_in_checkpoints(out: Path) -> None:
    """Every student checkpoint's preprocessor starts with the observation check (lerobot-train copies the
    teacher's LeRobot processors, which end a missing task in ``KeyError: 'task'``)."""
    from snapflow.policies.lerobot_plugin.observation_check import add_to_checkpoint

    for pretrained_model in sorted((out / "checkpoints").glob("*/pretrained_model")):
        add_to_checkpoint(pretrained_model)


def _say_if_student(teacher: Path) -> None:
    """A SnapFlow student given as teacher= (a lerobot-train checkpoint or a copied one) starts this run from
    its weights, target-time embedding included: say so, since the run does not start at a flow-matching
    teacher (snapflow-eval and snapflow-demo refuse such a checkpoint as a teacher)."""
    from snapflow.scripts.checkpoints import is_distilled

    if is_distilled(teacher):
        kind = json.loads((teacher / "config.json").read_text()).get("type", "")
        print(
            f"note: teacher={teacher} is a {kind} student checkpoint (alpha < 1): this run continues from its "
            "weights (target-time embedding included) with a fresh optimizer; it does not start at a "
            "flow-matching teacher"
        )


def _say_if_other_camera_size(teacher: Path, info: dict, dataset: object) -> None:
    """A dataset recorded at another camera size than the teacher's gives a student whose input features
    name the dataset's size and take only frames of that size, so it cannot be evaluated beside the teacher
    in one snapflow-eval: say so now (pass 16: the note advised resolution=, which the input check refuses)."""
    config = json.loads((teacher / "config.json").read_text())
    teacher_sides = {k: v["shape"][-1] for k, v in config.get("input_features", {}).items() if "images" in k}
    data_sides = {
        k: v["shape"][1] for k, v in info["features"].items() if k in teacher_sides and v.get("shape")
    }
    differ = {k: (teacher_sides[k], side) for k, side in data_sides.items() if side != teacher_sides[k]}
    if differ:
        key, (was, now) = next(iter(differ.items()))
        print(
            f"note: dataset={dataset} has {now} px cameras ({key}), the teacher {was} px: the student is "
            f"recorded at {now} px and takes only {now} px frames, so it cannot be evaluated beside the teacher "
            f"in one snapflow-eval (each checks its own size); to compare the two, collect at {was} px"
        )


def main() -> None:
    """Console entry point (hydra parses sys.argv)."""
    from snapflow.scripts.cli_values import check_argv

    check_argv("distill")  # unknown keys named in one line before Hydra parses
    _main()


if __name__ == "__main__":
    main()
