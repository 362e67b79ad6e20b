"""`snapflow-demo`: the main job, end to end on the embedded default teacher (or ``teacher=<ckpt>``).

    snapflow-demo [teacher=embedded] [suites=[spatial]] [episodes=50] [distill_steps=600] [out=outputs/demo]

Stages (each one of our commands, run as its own process): collect distillation demos -> snapflow-distill
(SnapFlow, paper recipe) -> snapflow-distill method=fm (the plain flow-matching fine-tune control, same data
and steps; fm_control=false skips it) -> snapflow-eval (teacher 10-step, naive 1-step, SnapFlow 1-NFE, FM
control 1-step; frozen init states and held-out seeds) -> snapflow-export (ONNX + parity) -> snapflow-run
(20 Hz loop in the sim). `probe=multimodal` runs the multimodal probe instead (scripts/demo_probe.py).
Prints one table; the last line is `outputs: <dir>`, which holds report.json
(+ held_out/report.json), student/ and fm/ (LeRobot pretrained_model dirs), export/ and run.json.
"""

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

BIN = Path(sys.executable).parent
STAGES = ("teacher", "collect", "distill", "eval", "eval_held_out", "export", "run")
SAMPLERS = ["teacher_10", "naive_1", "snapflow_1"]


def _run(stage: str, cmd: list[str]) -> None:
    _run_parallel(stage, [cmd])


def _run_parallel(stage: str, cmds: list[list[str]], quiet_logs: list[Path] | None = None) -> None:
    """Run commands side by side, one thread each (2 cores: two processes); all must succeed.

    The first command prints to the terminal; the others write to `quiet_logs` (their progress bars
    would interleave with the first one's).
    """
    for cmd in cmds:
        print(f"\n=== {stage}: {' '.join(cmd)}", flush=True)
    start = time.perf_counter()
    env = {**os.environ, **({"OMP_NUM_THREADS": "1", "LP_NUM_THREADS": "1"} if len(cmds) > 1 else {})}
    procs = []
    try:
        for i, cmd in enumerate(cmds):
            log = open(quiet_logs[i - 1], "w") if i else None  # noqa: SIM115 (closed below)
            # own process group: a stopped demo stops the whole stage, the stage's own workers included
            procs.append(
                (subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True), log)
            )
        codes = [proc.wait() for proc, _ in procs]
    finally:  # Ctrl-C or SIGTERM (main() turns it into SystemExit): nothing keeps running behind the user
        for proc, log in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
            if log is not None:
                log.close()
    if any(codes):
        logs = f"; logs: {[str(p) for p in quiet_logs or []]}" if quiet_logs else ""
        sys.exit(f"snapflow-demo: stage {stage!r} failed (exit codes {codes}){logs}")
    print(f"=== {stage} done in {time.perf_counter() - start:.0f} s", flush=True)


def _teacher(cfg: DictConfig, out: Path) -> Path:
    from snapflow.policies.embedded import EmbeddedTeacherMissing, materialize_teacher

    if cfg.teacher != "embedded":
        from snapflow.scripts.checkpoints import resolve_pretrained

        # a pretrained_model dir, a training run (checkpoints/last) or a shipped folder
        return resolve_pretrained(cfg.teacher)
    try:
        return materialize_teacher(out / "teacher")
    except EmbeddedTeacherMissing as e:
        sys.exit(f"snapflow-demo: {e}")


def _distill_cmd(cfg: DictConfig, teacher: Path, dataset: Path, method: str, run: Path) -> list[str]:
    """snapflow-distill ``method`` (snapflow | fm) into the training dir ``run``."""
    return [
        str(BIN / "snapflow-distill"),
        f"teacher={teacher}",
        f"dataset={dataset}",
        f"out={run}",
        f"method={method}",
        f"steps={int(cfg.distill_steps)}",
        f"batch_size={int(cfg.distill_batch_size)}",
        f"save_freq={int(cfg.distill_steps)}",
        "num_workers=0",
    ]


def table(report: dict, held_out: dict | None, run: dict) -> str:
    rows = [
        "| suite | sampler | NFE | success (frozen) | 95% CI | success (held-out) | latency ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for suite, samplers in report["suites"].items():
        for name, r in samplers.items():
            nfe = report.get("samplers", {}).get(name, {}).get("nfe", "")
            ho = (held_out or {}).get("suites", {}).get(suite, {}).get(name)
            ho_text = f"{ho['success']:.2f} [{ho['ci_low']:.2f}, {ho['ci_high']:.2f}]" if ho else "-"
            rows.append(
                f"| {suite} | {name} | {nfe} | {r['success']:.2f} | [{r['ci_low']:.2f}, {r['ci_high']:.2f}] "
                f"| {ho_text} | {r['latency_ms']:.1f} |"
            )
    ratio = report.get("latency_ratio_teacher10_snapflow1")
    if ratio:
        rows.append(
            f"\npredict_action_chunk latency, teacher 10-step / SnapFlow 1-NFE (same run, batch 1): {ratio:.2f}x"
        )
    rows.append(
        f"n_action_steps = {report.get('n_action_steps')}, episodes per task = {report.get('episodes_per_task')}"
    )
    episodes = (
        f"{run['episode_successes']}/{run['episodes']} episodes successful"
        if "episodes" in run
        else (f"success {run.get('success')}")
    )
    rows.append(
        f"real-time loop (ONNX Runtime, 1-NFE student, {run['ticks']} ticks): {run['achieved_hz']:.2f} Hz of "
        f"{run['target_hz']:g}, missed {run['missed_ticks']}, jitter p99 {run['jitter_ms']['p99']:.2f} ms, "
        f"inference p50 {run['latency_ms']['p50']:.1f} ms, {episodes}"
    )
    return "\n".join(rows)


def check_values(cfg: DictConfig) -> None:
    """The demo's values, checked before any stage (each stage takes minutes): counts >= 1, a teacher that
    exists, a known probe, and with a probe no main-job key it would ignore. ValueError names the key."""
    from snapflow.scripts.checkpoints import is_distilled, resolve_pretrained
    from snapflow.scripts.cli_values import check_unique, strict_bool
    from snapflow.sim.tasks import SUITES, canonical_suite

    if cfg.probe not in (None, "multimodal"):
        raise ValueError(
            f"probe={cfg.probe!r} is not a probe; valid: [multimodal] (or null for the main job)"
        )
    counts = ["episodes", "distill_demos_per_task", "distill_steps", "distill_batch_size", "n_action_steps",
              "workers"]  # fmt: skip
    defaults = OmegaConf.load(Path(__file__).parents[1] / "configs" / "demo.yaml")  # the one source
    if cfg.probe is not None:
        counts = ["distill_steps", "distill_batch_size", "n_action_steps", "workers"]
        main_only = ("episodes", "distill_demos_per_task", "task_ids", "held_out", "fm_control", "run_seconds",
                     "distill_noise_std")  # fmt: skip
        ignored = [k for k in main_only if cfg[k] != defaults[k]]
        if ignored or list(cfg.suites) != ["spatial", "object", "goal", "long"]:
            raise ValueError(
                f"probe={cfg.probe} ignores {ignored or ['suites']}: set probe_settings.episodes / "
                "probe_settings.distill_demos_per_task / probe_settings.distill_noise_std instead (the probe "
                "runs all four of its tasks)"
            )
        settings = cfg.probe_settings
        for key in ("episodes", "distill_demos_per_task", "offline_demos_per_task"):
            if int(settings[key]) < 1:
                raise ValueError(f"probe_settings.{key} must be >= 1, got {settings[key]}")
        if int(settings.episodes) > 50:
            raise ValueError(
                f"probe_settings.episodes must be <= 50 (frozen init states), got {settings.episodes}"
            )
        if (
            strict_bool(settings.paired_modes, "probe_settings.paired_modes")
            and int(settings.distill_demos_per_task) % 2
        ):
            raise ValueError(
                "probe_settings.paired_modes=true shows each layout in both modes: probe_settings."
                f"distill_demos_per_task must be even, got {settings.distill_demos_per_task}"
            )
        from snapflow.sim.modes import DETOURS

        if settings.detour not in DETOURS:  # checked here too: collect would fail minutes into the probe
            raise ValueError(
                f"probe_settings.detour={settings.detour!r} is not valid; valid: {list(DETOURS)}"
            )
        k = settings.consistency_steps
        if k is not None and (not str(k).isdigit() or int(k) < 2):
            raise ValueError(f"probe_settings.consistency_steps must be an integer >= 2 (or null), got {k!r}")
        from snapflow.scripts.demo_probe import option_overrides

        option_overrides(settings.option)  # ValueError names probe_settings.option.<key>
    if cfg.probe is None:  # probe_settings would be ignored without a word by the main job
        changed = [k for k in cfg.probe_settings if cfg.probe_settings[k] != defaults.probe_settings.get(k)]
        if changed:
            raise ValueError(
                f"probe_settings.{changed[0]} applies to probe=multimodal only; add probe=multimodal, or drop it "
                "(the main job's keys are episodes, distill_demos_per_task, distill_noise_std, ...)"
            )
    for key in counts:
        if int(cfg[key]) < 1:
            raise ValueError(f"{key} must be >= 1, got {cfg[key]}")
    if cfg.max_steps is not None and int(cfg.max_steps) < 1:
        raise ValueError(f"max_steps must be >= 1 (or null), got {cfg.max_steps}")
    # checked here too: collect would fail minutes into the demo
    for key, noise in (("distill_noise_std", cfg.distill_noise_std),
                       ("probe_settings.distill_noise_std", cfg.probe_settings.distill_noise_std)):  # fmt: skip
        if not (math.isfinite(float(noise)) and float(noise) >= 0):
            raise ValueError(f"{key} must be a finite number >= 0, got {noise}")
    if not (math.isfinite(float(cfg.run_seconds)) and float(cfg.run_seconds) > 0):
        raise ValueError(f"run_seconds must be > 0 (the control-loop stage's length), got {cfg.run_seconds}")
    if not cfg.suites:
        raise ValueError("suites=[] names no suite: give at least one of spatial, object, goal, long")
    suites = [canonical_suite(s) for s in cfg.suites]
    check_unique("suites", suites)
    if cfg.task_ids is not None:
        check_unique("task_ids", list(cfg.task_ids))
        for suite in suites:
            bad = [t for t in cfg.task_ids if not 0 <= int(t) < len(SUITES[suite])]
            if bad:
                raise ValueError(
                    f"task_ids {bad} out of range for suite {suite!r} (0..{len(SUITES[suite]) - 1})"
                )
    if cfg.teacher not in (None, "embedded"):
        teacher = resolve_pretrained(cfg.teacher)  # FileNotFoundError naming the path, before out is touched
        # a student: its eval stage would refuse it minutes in (and a table would call it teacher_10)
        if is_distilled(teacher):
            raise ValueError(
                f"teacher={cfg.teacher} is a SnapFlow-distilled student (alpha < 1), not a flow-matching "
                "teacher: give the checkpoint it was distilled from (or teacher=embedded)"
            )


@hydra.main(version_base=None, config_path="../configs", config_name="demo")
def _main(cfg: DictConfig) -> None:
    from snapflow.scripts.cli_values import checked, run_cli

    run_cli(lambda: _demo(checked(cfg, "demo")), debug=cfg.debug)


def _demo(cfg: DictConfig) -> None:
    from tqdm import tqdm

    from snapflow.scripts.cli_values import strict_bool
    from snapflow.scripts.outputs import check_out, mark_incomplete, mark_results
    from snapflow.sim.object_state import policy_uses_object_state

    check_values(cfg)  # every value before any folder is made or deleted
    prefix = "demo" if cfg.probe is None else f"probe-{cfg.probe}"
    name = cfg.out or f"outputs/{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    # the teacher may not live in the folder the demo empties
    out = check_out(Path(name).resolve(), strict_bool(cfg.overwrite, "overwrite"), [cfg.teacher])
    shutil.rmtree(out, ignore_errors=True)  # empty or overwrite=true: the demo starts afresh
    out.mkdir(parents=True)
    # results cannot be built in <out>.partial and renamed (students record absolute paths into out): a
    # marker names an unfinished run instead, removed when the table is printed
    mark_incomplete(out, "snapflow-demo", f"started {time.strftime('%Y-%m-%d %H:%M:%S')}, not finished")
    if cfg.probe is not None:
        from snapflow.scripts.demo_probe import run_probe

        run_probe(cfg, out)
        mark_incomplete(out, "snapflow-demo", None)
        mark_results(out, "snapflow-demo")
        return
    progress = tqdm(STAGES, desc="snapflow-demo", unit="stage")
    teacher = _teacher(cfg, out)
    teacher_cfg = json.loads((teacher / "config.json").read_text())
    image = next(f for k, f in teacher_cfg["input_features"].items() if k.startswith("observation.images."))
    resolution = int(cfg.resolution or image["shape"][-1])
    object_state = policy_uses_object_state(teacher)
    suites = OmegaConf.to_container(cfg.suites)
    ids = OmegaConf.to_container(cfg.task_ids) if cfg.task_ids is not None else None
    ids_arg = [f"task_ids=[{','.join(map(str, ids))}]"] if ids else []
    first_task = ids[0] if ids else 0
    cap = [f"max_steps={int(cfg.max_steps)}"] if cfg.max_steps is not None else []
    progress.update()
    data = out / "data"  # one multi-suite dataset: the students learn every task the teacher knows
    collect = [str(BIN / "snapflow-collect"), f"suite=[{','.join(suites)}]", f"out={data}",
               f"episodes_per_task={int(cfg.distill_demos_per_task)}", f"resolution={resolution}",
               f"workers={int(cfg.workers)}", f"seed={int(cfg.seed) + 7}", f"noise_std={float(cfg.distill_noise_std)}",
               f"object_state={str(object_state).lower()}", *ids_arg]  # fmt: skip
    _run("collect", collect)
    progress.update()
    methods = ["snapflow", "fm"] if cfg.fm_control else ["snapflow"]  # fm: the plain FM fine-tune control
    runs = {m: out / f"distill_{m}" for m in methods}
    _run_parallel("distill (SnapFlow and the FM control side by side)",
                  [_distill_cmd(cfg, teacher, data, m, runs[m]) for m in methods],
                  [out / f"distill_{m}.log" for m in methods[1:]])  # fmt: skip
    student = (runs["snapflow"] / "checkpoints" / "last" / "pretrained_model").rename(out / "student")
    samplers, fm = list(SAMPLERS), []
    if cfg.fm_control:
        fm = [f"fm={(runs['fm'] / 'checkpoints' / 'last' / 'pretrained_model').rename(out / 'fm')}"]
        samplers.append("fm_1")
    progress.update()
    common = [str(BIN / "snapflow-eval"), f"teacher={teacher}", f"student={student}", *fm,
              f"samplers=[{','.join(samplers)}]", f"suites=[{','.join(suites)}]", f"episodes={int(cfg.episodes)}",
              f"resolution={resolution}", f"n_action_steps={int(cfg.n_action_steps)}",
              f"workers={int(cfg.workers)}", f"batch_size={int(cfg.episodes)}", *ids_arg, *cap]  # fmt: skip
    _run("eval (frozen init states)", [*common, f"out={out / 'eval'}"])
    shutil.copy2(out / "eval" / "report.json", out / "report.json")
    progress.update()
    held_out = None
    if cfg.held_out:
        _run(
            "eval (held-out seeds)", [*common, "held_out=true", "latency_calls=0", f"out={out / 'held_out'}"]
        )
        held_out = json.loads((out / "held_out" / "report.json").read_text())
    progress.update()
    _run("export", [str(BIN / "snapflow-export"), f"policy={student}", f"out={out / 'export'}"])
    progress.update()
    # inference=auto: the 1-NFE student fits in a 20 Hz tick, so chunks are computed synchronously (all
    # 10 rows executed, as in the evaluation); README "Chunk scheduling" has the asynchronous variants.
    _run("run", [str(BIN / "snapflow-run"), f"policy={out / 'export'}", "robot=sim",
                 f"task={suites[0]}/{first_task}", f"seconds={float(cfg.run_seconds)}", f"out={out / 'run'}",
                 "auto_reset=true", "stop_on_success=false"])  # fmt: skip
    progress.update()
    progress.close()
    report = json.loads((out / "report.json").read_text())
    print("\n" + table(report, held_out, json.loads((out / "run" / "run.json").read_text())))
    mark_incomplete(out, "snapflow-demo", None)
    mark_results(out, "snapflow-demo")
    print(f"outputs: {out}")


def main() -> None:
    from snapflow.scripts.cli_values import check_argv

    check_argv("demo")  # unknown keys named in one line before Hydra parses
    # SIGTERM (kill, timeout) as SystemExit, so _run_parallel stops the running stage's processes too
    signal.signal(signal.SIGTERM, _stopped)
    _main()


def _stopped(*_: object) -> None:
    print(
        "snapflow-demo: stopped (SIGTERM); its out= keeps what was written, marked INCOMPLETE",
        file=sys.stderr,
    )
    sys.exit(128 + signal.SIGTERM)


if __name__ == "__main__":
    main()
