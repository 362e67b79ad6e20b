"""`snapflow-collect`: record scripted mini-LIBERO demos into a LeRobotDataset v3 (hydra key=value CLI).

snapflow-collect suite=spatial episodes_per_task=50 out=data/mini_libero_spatial [task_ids=[0,1]]
    [resolution=128] [workers=2] [seed=0] [video=false] [noise_std=0.05] [overwrite=false]
    [object_state=false] [layout=libero|wide] [paired_modes=false] [detour=diagonal|lateral]
suite may be a list (suite=[spatial,goal]) or "all": one multi-task dataset.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf


@hydra.main(version_base=None, config_path="../configs", config_name="collect")
def _main(cfg: DictConfig) -> None:
    from snapflow.scripts.cli_values import checked, run_cli

    run_cli(lambda: _body(checked(cfg, "collect")), debug=cfg.get("debug", False))


def _body(cfg: DictConfig) -> None:
    from snapflow.scripts.cli_values import as_list, check_unique, strict_bool
    from snapflow.scripts.outputs import check_out
    from snapflow.sim.record import collect_dataset

    check_out(cfg.out, strict_bool(cfg.overwrite, "overwrite"))  # a file at out= is refused before any demo
    if int(cfg.seed) < 0:  # numpy refuses a negative seed, but only inside the first demo, without the key
        raise ValueError(f"seed must be >= 0, got {cfg.seed}")
    task_ids = as_list(cfg.task_ids)
    check_unique("task_ids", task_ids or [])
    suite = ",".join(cfg.suite) if OmegaConf.is_list(cfg.suite) else str(cfg.suite)
    out = collect_dataset(
        suite,
        int(cfg.episodes_per_task),
        cfg.out,
        task_ids=task_ids,
        resolution=int(cfg.resolution),
        seed=int(cfg.seed),
        workers=int(cfg.workers),
        video=strict_bool(cfg.video, "video"),
        noise_std=float(cfg.noise_std),
        overwrite=strict_bool(cfg.overwrite, "overwrite"),
        object_state=strict_bool(cfg.object_state, "object_state"),
        layout=str(cfg.layout),
        paired_modes=strict_bool(cfg.paired_modes, "paired_modes"),
        detour=str(cfg.detour),
    )
    print(f"wrote {out}")


def main() -> None:
    """Console entry point (hydra parses sys.argv)."""
    from snapflow.scripts.cli_values import check_argv

    check_argv("collect")  # unknown keys named in one line before Hydra parses
    _main()


if __name__ == "__main__":
    main()
