"""`snapflow-bench`: latency of a SnapFlow student, prefix vs denoise, torch vs ONNX Runtime, ratios from one run.

    snapflow-bench policy=smolvla|pi0|pi05|<checkpoint> [size=tiny|real] [nfe=[1,10]] [runtimes=[torch,onnxruntime]]
                   [batch=1] [threads=2] [repeats=5] [warmup=1] [image_sizes=[384]] [best_of=[...]] [out=<dir>]
    runtimes: torch, onnxruntime, onnxruntime_int8, onnxruntime_int8_static, tensorrt

Writes <out>/bench.json (schema: snapflow.deploy.bench_report) and <out>/latency_breakdown.png, and prints the
table with the paper's ratios (A800) next to ours.
"""

import json
import logging
import time

import hydra
from omegaconf import DictConfig, OmegaConf


def bench_config(cfg: DictConfig) -> object:
    from snapflow.deploy.bench import BenchConfig

    values = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # policy=??? -> a usage error
    values.pop("debug", None)
    values.pop("overwrite", None)
    return BenchConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


@hydra.main(version_base=None, config_path="../configs", config_name="bench")
def _main(cfg: DictConfig) -> None:
    from snapflow.scripts.cli_values import checked, run_cli

    run_cli(lambda: _body(checked(cfg, "bench")), debug=cfg.get("debug", False))


def _body(cfg: DictConfig) -> None:
    from snapflow.deploy.bench import run_bench
    from snapflow.deploy.bench_report import format_table, plot_breakdown, validate_bench
    from snapflow.scripts.cli_values import strict_bool
    from snapflow.scripts.outputs import check_out, mark_results

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    # A new folder per run unless out= is given; a non-empty out is refused before minutes of timing.
    out = check_out(
        cfg.out or f"outputs/bench-{time.strftime('%Y%m%d-%H%M%S')}",
        strict_bool(cfg.overwrite, "overwrite"),
        [cfg.policy],  # a checkpoint to time is never the folder its results go to
    )
    bench = validate_bench(run_bench(bench_config(cfg)))
    for family, entry in bench.get("families", {}).items():  # a requested runtime that cannot run here
        for skipped in entry.get("skipped", []):
            print(f"note: {family}: not timed: {skipped}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(bench, indent=2))
    plot_breakdown(bench, out / "latency_breakdown.png")
    mark_results(out, "snapflow-bench")  # so that overwrite=true may replace these files later
    print(format_table(bench))
    print(f"wrote {out}/bench.json and {out}/latency_breakdown.png")


def main() -> None:
    from snapflow.scripts.cli_values import check_argv

    check_argv("bench")  # unknown keys named in one line before Hydra parses
    _main()


if __name__ == "__main__":
    main()
