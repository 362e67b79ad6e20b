"""`snapflow-eval`: closed-loop mini-LIBERO evaluation of several samplers in one run.

    snapflow-eval teacher=<ckpt> student=<ckpt> [fm=<ckpt>] suites=[spatial] episodes=50 out=<dir>
        [samplers=[teacher_10,naive_1,snapflow_1]] [n_action_steps=10] [held_out=false] [resolution=<the policy's>]
        [batch_size=10] [max_steps=null] [latency_calls=20] [dataset=<held-out demos> episodes_for_mse=5]
        [layout=libero|wide]
        [chunking=[sync,async,crossfade,ensemble,rtc] inference_delay=[0,1,2,4] execute_steps=5]

With ``chunking`` (one sampler only), every scheme is also run at every simulated inference delay on the
first suite (sim/chunking.py) and the report gains ``chunking -> <scheme> -> <delay>`` and
success_vs_delay.png.

Each sampler (configs/eval.yaml `sampler_defs`: checkpoint, NFE, multi-step mode) is loaded the way
lerobot-eval loads a policy and rolled out in MuJoCo; writes <out>/report.json (schema in sim/report.py),
report.md and success_vs_nfe.png / latency_vs_nfe.png, and prints the table and `outputs: <out>`.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import difflib
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from snapflow.scripts.cli_values import as_list, check_unique, strict_bool
from snapflow.scripts.eval_checks import (
    check_checkpoints_used,
    check_chunk_sizes,
    check_loop_values,
    check_mse_dataset,
    check_mse_state,
    contract_nfe,
    sampler_nfe,
    sampler_number,
)

# A typo guard (latency_calls=1e9 ran a 6000-hour loop after the rollouts): 500x the default 20 calls; at
# 0.1 s a call, 10 000 take 17 minutes per sampler.
MAX_LATENCY_CALLS = 10_000


def _samplers(cfg: DictConfig) -> dict:
    """{name: (SamplerSpec, role)} of the selected sampler_defs, checkpoints resolved."""
    from snapflow.policies.weights_file import check_weights_file
    from snapflow.scripts.checkpoints import is_distilled, read_policy_config, resolve_pretrained
    from snapflow.scripts.hub_cache import check_hub_ids, hub_ids
    from snapflow.sim.evaluate import SamplerSpec

    defs = OmegaConf.to_container(cfg.sampler_defs, resolve=True)
    raw = cfg.get("exports")
    exports = OmegaConf.to_container(raw, resolve=True) if isinstance(raw, DictConfig) else raw or {}
    if not isinstance(exports, dict):
        raise ValueError(
            f"exports must map sampler names to export dirs, e.g. exports={{int8: <dir>}}; got {exports}"
        )
    clash = sorted(set(exports) & set(defs))
    if clash:
        raise ValueError(f"exports {clash} would replace samplers of the same name; choose other names")
    for name, directory in exports.items():  # an export's NFE is its contract's, its hashes checked now
        defs[name] = {
            "policy": str(directory),
            "nfe": contract_nfe(name, directory),
            "mode": None,
            "role": name,
            "export": True,  # run as it is (resolve_pretrained takes checkpoints only)
        }
    names = (
        as_list(cfg.samplers) if cfg.samplers is not None else [n for n, d in defs.items() if d.get("policy")]
    )
    if not names and cfg.samplers is not None:
        raise ValueError(f"samplers=[] names no sampler; give at least one of {sorted(defs)}")
    if not names:
        raise ValueError("nothing to evaluate: set teacher=, student= or fm= (or samplers=[...])")
    raw_defs = OmegaConf.to_container(cfg.sampler_defs, resolve=False)
    out = {}
    for name in names:
        if name not in defs:
            hint = difflib.get_close_matches(name, list(defs), n=1)
            raise ValueError(
                f"unknown sampler {name!r}{f' (did you mean {hint[0]!r}?)' if hint else ''}; "
                f"known: {sorted(defs)}"
            )
        d = defs[name]
        if not d.get("policy"):
            # the key the sampler's policy interpolates: "${student_k}" -> student_k
            key = str((raw_defs.get(name) or {}).get("policy", "")).strip("${}")
            hint = f"set {key}=" if key.isidentifier() else "set its policy (teacher=, student= or fm=)"
            raise ValueError(f"sampler {name!r} has no checkpoint: {hint}")
        try:  # an export is run as it is; a checkpoint may be a training out dir or "embedded"
            path = Path(d["policy"]) if d.get("export") else resolve_pretrained(d["policy"])
        except (
            FileNotFoundError,
            ValueError,
        ) as e:  # name the sampler (and so the key: teacher=, student=, ...)
            raise type(e)(f"sampler {name!r} ({d.get('role') or name}): {e}") from None
        if d.get("role") in STUDENT_ROLES and not _is_student(path):
            raise ValueError(
                f"sampler {name!r}: {path} is not a *_snapflow student (teacher and student swapped?); "
                f"set student=/student_k=/student_option= to a snapflow-distill checkpoint"
            )
        if d.get("role") in STUDENT_ROLES and not is_distilled(path):  # reported as SnapFlow otherwise
            raise ValueError(
                f"sampler {name!r}: {path} was trained without the consistency loss (alpha = 1: the FM control "
                "of snapflow-distill method=fm, or a flow-matching teacher), not a SnapFlow student; pass it as "
                "fm= (or teacher=)"
            )
        if d.get("role") == "fm" and is_distilled(path):
            raise ValueError(
                f"sampler {name!r}: {path} is a SnapFlow-distilled student (alpha < 1), not the flow-matching "
                "control (snapflow-distill method=fm); pass it as student="
            )
        if str(d.get("role", "")).startswith("teacher") and is_distilled(path):
            raise ValueError(
                f"sampler {name!r}: {path} is a SnapFlow-distilled student (alpha < 1), not a flow-matching "
                "teacher (teacher and student swapped?); pass it as student="
            )
        if not d.get("export"):  # its weights file and Hub VLM / tokenizer, before any policy is loaded
            try:
                check_weights_file(path / "model.safetensors")
            except (ValueError, FileNotFoundError) as e:
                raise ValueError(f"sampler {name!r}: {e}") from None
            check_hub_ids(hub_ids(read_policy_config(path)), f"sampler {name!r} ({path})")
        spec = SamplerSpec(name, path, sampler_nfe(name, d.get("nfe")), d.get("mode"),
                           sampler_number(name, "noise_scale", d.get("noise_scale", 1.0)))  # fmt: skip
        out[name] = (spec, d.get("role") or name)
    check_checkpoints_used(cfg, names, raw_defs)  # after each sampler's own message (unknown, no checkpoint)
    return out


# A compute-bound latency loop gets about all of its threads' CPU time on an idle machine; well below that,
# other processes shared the cores (a demo measured beside other jobs read 2237 ms for a 28 ms model).
CONTENDED_CPU_SHARE = 0.7
# Sampler roles that read the student's target-time embedding.
STUDENT_ROLES = ("snapflow", "snapflow_k", "snapflow_option")


def distillation_record(policy: Path, snapflow_cfg: object) -> dict:
    """The recipe a *_snapflow checkpoint was distilled with: its SnapFlowConfig's loss fields, and the
    steps and learning rate of the lerobot-train run that wrote it (train_config.json; absent keys are left
    out, e.g. for a checkpoint saved by hand)."""
    record = {
        key: getattr(snapflow_cfg, key)
        for key in ("alpha", "consistency_weight", "consistency_steps", "consistency_loss")
    }
    train_config = Path(policy) / "train_config.json"
    if train_config.is_file():
        run = json.loads(train_config.read_text())
        record["steps"] = run.get("steps")
        record["lr"] = (run.get("optimizer") or {}).get("lr")
    return record


def _is_student(path: object) -> bool:
    config = json.loads((Path(path) / "config.json").read_text())
    return str(config.get("type", "")).endswith("_snapflow")


def _cpu_share(wall_s: float, cpu_s: float) -> float | None:
    """This process's CPU seconds per wall second and torch thread over a stretch of work (1.0 = it had its
    threads' cores to itself); None for a stretch too short to tell."""
    import torch

    return cpu_s / (wall_s * torch.get_num_threads()) if wall_s > 0.05 else None


def _resolution(cfg: DictConfig, samplers: dict) -> int:
    """The camera size: ``resolution=`` if given, else the one every sampler's policy was trained at."""
    from snapflow.deploy.preflight import policy_resolution

    sizes = {name: policy_resolution(spec.policy) for name, (spec, _) in samplers.items()}
    if cfg.resolution is not None:
        other = {name: size for name, size in sizes.items() if size not in (None, int(cfg.resolution))}
        if other:  # legal (the policy resizes), but the numbers are then not the trained setting: say so
            print(
                f"note: resolution={cfg.resolution} px, but {other} were trained at other camera sizes; the policies resize"
            )
        return int(cfg.resolution)
    if None in sizes.values() or len(set(sizes.values())) != 1:
        raise ValueError(f"the samplers' camera sizes differ or are not square ({sizes}); set resolution=")
    return next(iter(sizes.values()))


def _chunking_grid(cfg: DictConfig, specs: dict) -> list:
    """The (scheme, delay) points of ``chunking`` x ``inference_delay``; [] without ``chunking``."""
    from snapflow.sim.chunking import Chunking

    if not cfg.chunking:
        from snapflow.scripts.cli_values import explicit_keys

        unused = sorted(explicit_keys() & {"inference_delay", "execute_steps", "crossfade_steps"})
        if unused:  # they only shape the chunking sweep: without it they would be ignored without a word
            raise ValueError(f"{', '.join(unused)} set the chunking sweep; add chunking=[...] or drop them")
        return []
    if len(specs) != 1:
        raise ValueError(f"chunking= sweeps one sampler; pick it with samplers=[...] (got {sorted(specs)})")
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.utils.import_utils import register_third_party_plugins

    register_third_party_plugins()  # our policy types, before reading the sampler's config
    (spec,) = specs.values()
    chunk_size = PreTrainedConfig.from_pretrained(spec.policy).chunk_size
    delays = [int(d) for d in cfg.inference_delay]
    grid = [
        Chunking(str(scheme), d, int(cfg.execute_steps), int(cfg.crossfade_steps))
        for scheme in cfg.chunking
        for d in delays
    ]
    for point in grid:
        point.check(chunk_size)
    return grid


def _chunking_sweep(
    cfg: DictConfig, specs: dict, suite: str, settings: object, grid: list, task_ids
) -> tuple:
    from snapflow.sim.chunking_report import chunking_section
    from snapflow.sim.eval_pool import evaluate_chunking

    (spec,) = specs.values()
    results = evaluate_chunking(spec, suite, settings, grid, task_ids, workers=int(cfg.workers))
    meta = {
        "sampler": spec.name,
        "suite": suite,
        "execute_steps": int(cfg.execute_steps),
        "crossfade_steps": int(cfg.crossfade_steps),
        "ensemble_decay": grid[0].ensemble_decay,
        "episodes_per_task": int(cfg.episodes),
        "held_out": strict_bool(cfg.held_out, "held_out"),
    }
    return chunking_section(results), meta


@hydra.main(version_base=None, config_path="../configs", config_name="eval")
def _main(cfg: DictConfig) -> None:
    from snapflow.scripts.cli_values import checked, run_cli

    run_cli(lambda: _eval(checked(cfg, "eval")), debug=cfg.debug)


def _eval(cfg: DictConfig) -> None:
    from snapflow.policies.offline_mse import offline_action_mse
    from snapflow.scripts.cli_values import check_device
    from snapflow.scripts.outputs import atomic_out, check_out
    from snapflow.sim.eval_pool import EvalSettings, cached_policy, evaluate_many
    from snapflow.sim.evaluate import benchmark_latency, episode_inits, initial_noise
    from snapflow.sim.layouts import check_layout
    from snapflow.sim.report import build_report, machine_info, markdown_table, write_outputs
    from snapflow.sim.tasks import canonical_suite, check_task_ids

    start = time.perf_counter()
    exports = cfg.exports if isinstance(cfg.exports, dict | DictConfig) else {}
    inputs = [
        cfg.teacher,
        cfg.student,
        cfg.fm,
        cfg.student_k,
        cfg.student_option,
        cfg.dataset,
        *exports.values(),
    ]
    # refuse before hours of rollouts, not after; never over a checkpoint or dataset it reads
    check_out(cfg.out, strict_bool(cfg.overwrite, "overwrite"), inputs)
    if not as_list(cfg.suites):
        raise ValueError(
            "suites=[] names no suite: give at least one of spatial, object, goal, long, multimodal"
        )
    suites = [canonical_suite(s) for s in as_list(cfg.suites)]  # fail fast on unknown suites
    check_unique("suites", suites)
    check_unique("task_ids", as_list(cfg.task_ids) or [])
    check_task_ids(as_list(cfg.task_ids), suites)  # before the rollouts (0.5 failed after them)
    if cfg.max_steps is not None and int(cfg.max_steps) < 1:
        raise ValueError(f"max_steps must be >= 1 (or null for the suite's limit), got {cfg.max_steps}")
    if int(cfg.threads) < 1:  # torch.set_num_threads would end in a traceback inside the rollouts
        raise ValueError(f"threads must be >= 1, got {cfg.threads}")
    if not 0 <= int(cfg.latency_calls) <= MAX_LATENCY_CALLS:  # a negative count was taken as 0 silently
        raise ValueError(
            f"latency_calls must be in [0, {MAX_LATENCY_CALLS}] (0 = in-rollout timing only), got {cfg.latency_calls}"
        )
    # the offline MSE runs after every rollout: its counts are checked here, not hours later (a stride or
    # sample cap below 1 was taken as 1, or selected no frame, without naming the key)
    for key in ("episodes_for_mse", "mse_stride", "mse_max_samples"):
        if int(cfg[key]) < 1:
            raise ValueError(f"{key} must be >= 1, got {cfg[key]}")
    check_mse_dataset(cfg)
    check_layout(str(cfg.layout))
    check_device(cfg.device)
    episode_inits(
        int(cfg.episodes), strict_bool(cfg.held_out, "held_out")
    )  # and on impossible episode counts
    check_loop_values(cfg)
    samplers = _samplers(cfg)
    check_chunk_sizes(int(cfg.n_action_steps), samplers)  # from config.json / contract.json, before loading
    check_mse_state(cfg.dataset, samplers)
    resolution = _resolution(cfg, samplers)
    task_ids = as_list(cfg.task_ids)
    mse: dict[str, float] = {}
    info: dict[str, dict] = {}
    kept = {}  # loaded samplers, kept for the interleaved latency benchmark
    settings = EvalSettings(
        int(cfg.episodes), strict_bool(cfg.held_out, "held_out"), resolution, int(cfg.batch_size), cfg.max_steps,
        int(cfg.seed), str(cfg.layout), int(cfg.n_action_steps), str(cfg.device), int(cfg.threads),
    )  # fmt: skip
    specs = {name: spec for name, (spec, _) in samplers.items()}
    grid = _chunking_grid(cfg, specs)  # validated before any rollout
    results = evaluate_many(specs, suites, settings, task_ids=task_ids, workers=int(cfg.workers))
    sweep = _chunking_sweep(cfg, specs, suites[0], settings, grid, task_ids) if grid else None
    for name, (spec, role) in samplers.items():
        lp = cached_policy(spec, settings)  # loaded here after the pool (or reused when workers=1)
        info[name] = {
            "policy": str(spec.policy),
            "nfe": spec.nfe,
            "mode": spec.mode,
            "noise_scale": spec.noise_scale,
            "role": role,
            "policy_type": lp.config.type,
        }
        snapflow_cfg = getattr(lp.config, "snapflow", None)
        if snapflow_cfg is not None:  # how the student was distilled (the probe compares recipes)
            info[name].update(distillation_record(spec.policy, snapflow_cfg))
        if cfg.dataset:
            m = offline_action_mse(
                lp.policy,
                lp.preprocessor,
                lp.postprocessor,
                cfg.dataset,
                int(cfg.episodes_for_mse),
                int(cfg.mse_stride),
                int(cfg.mse_max_samples),
                seed=int(cfg.seed),
                noise=lambda n, lp=lp: initial_noise(lp, n),
            )
            mse[name] = m.mean
            info[name]["offline_mse"] = {
                "mean": m.mean,
                "median": m.median,
                "p90": m.p90,
                "samples": m.samples,
            }
            if m.nearest_mode is not None:
                info[name]["offline_mse"]["nearest_mode"] = m.nearest_mode
        if int(cfg.latency_calls) > 0:
            kept[name] = lp
    wall, cpu = time.perf_counter(), time.process_time()
    bench = (
        benchmark_latency(kept, suites[0], resolution, int(cfg.latency_calls), task_id=(task_ids or [0])[0])
        if kept
        else None
    )
    share = _cpu_share(time.perf_counter() - wall, time.process_time() - cpu) if kept else None
    if share is not None and share < CONTENDED_CPU_SHARE:
        print(
            f"note: the latency calls got {share:.0%} of their threads' CPU time; other processes were running "
            "and latency_ms is inflated (re-measure on an idle machine)"
        )
    meta = {
        "n_action_steps": int(cfg.n_action_steps),
        "held_out": strict_bool(cfg.held_out, "held_out"),
        "layout": str(cfg.layout),
        "episodes_per_task": int(cfg.episodes),
        "task_ids": task_ids,
        "max_steps": cfg.max_steps,
        "resolution": resolution,
        "batch_size": int(cfg.batch_size),
        "workers": int(cfg.workers),
        "seed": int(cfg.seed),
        "offline_mse_dataset": cfg.dataset,
        "latency_cpu_share": share,
        "machine": machine_info(),
        "wall_time_s": round(time.perf_counter() - start, 1),
        "created": datetime.now(UTC).isoformat(),
    }
    report = build_report(results, info, mse, meta, bench)
    if sweep is not None:
        report["chunking"], report["chunking_meta"] = sweep
    try:
        with atomic_out(cfg.out, bool(cfg.overwrite), inputs) as tmp:
            write_outputs(report, tmp)  # validates the report first
            if sweep is not None:
                from snapflow.sim.chunking_report import chunking_table, plot_chunking

                plot_chunking(*sweep, tmp / "success_vs_delay.png")
                (tmp / "chunking.md").write_text(chunking_table(*sweep))
    except ValueError as e:  # a report that fails its own schema is a bug; the rollouts are not thrown away
        kept_file = Path(f"{str(cfg.out).rstrip('/')}.unvalidated-report.json")
        kept_file.write_text(json.dumps(report, indent=1, default=str))
        raise ValueError(f"{e} (the rollouts are kept in {kept_file})") from e
    print(markdown_table(report))
    if sweep is not None:
        print(chunking_table(*sweep))
    print(f"outputs: {cfg.out}")


def main() -> None:
    """Console entry point (hydra parses sys.argv)."""
    from snapflow.scripts.cli_values import check_argv

    check_argv("eval")  # unknown keys named in one line before Hydra parses
    _main()


if __name__ == "__main__":
    main()
