"""`snapflow-demo probe=multimodal`: where one Euler step must fail, measured end to end.

    snapflow-demo probe=multimodal [teacher=<ckpt>] [probe_settings.episodes=13] [out=<dir>]
        [probe_settings.consistency_steps=10]   # also the k-step consistency-target option (snapflow_k_1)
        [probe_settings.option=null]            # no option student (snapflow_option_1/2; README)

On the `multimodal` suite the scripted expert carries the object round a barrier on either side at random,
so the demonstrated actions have two modes whose average drives into the barrier (README, "Where one Euler
step must fail"). Stages: collect distillation demos of the suite -> snapflow-distill (paper recipe) and
the FM control side by side -> snapflow-eval of teacher 10-step, teacher 2-step, naive 1-step, SnapFlow
1-NFE, SnapFlow 2-step target time and FM 1-step on the frozen init states (mode shares per sampler,
`sim/mode_report.py`). The teacher defaults to the shipped multimodal teacher
(policies/assets/mini_libero_multimodal_teacher). Prints the table; the last line is `outputs: <dir>`,
whose report.json has `suites -> multimodal -> <sampler>` with the mode coverage, and multimodal_modes.png.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from omegaconf import DictConfig

from snapflow.scripts.demo import BIN, _distill_cmd, _run, _run_parallel

SUITE = "multimodal"
PROBE_SAMPLERS = ["teacher_10", "teacher_2", "naive_1", "snapflow_1", "snapflow_2", "fm_1"]
# The option student (probe_settings.option): the paper's recipe with these snapflow-distill keys changed,
# and these SnapFlowConfig fields, which reach lerobot-train as --policy.snapflow.<field>.
OPTION_DISTILL_KEYS = ("steps", "lr", "consistency_weight", "alpha")
OPTION_SNAPFLOW_KEYS = ("consistency_loss", "consistency_steps", "energy_samples")
OPTION_SAMPLERS = ["snapflow_option_1", "snapflow_option_2"]


def option_overrides(option: DictConfig | None) -> dict[str, object]:
    """The option student's changes to the recipe ({} = no option student), checked before any stage.

    Raises ValueError naming ``probe_settings.option.<key>``: an unknown key, steps not a whole number >= 1,
    lr not a positive number, or a value SnapFlowConfig refuses.
    """
    from snapflow.policies.snapflow.config import ConfigError, SnapFlowConfig

    if option is None:
        return {}
    unknown = sorted(set(option) - {*OPTION_DISTILL_KEYS, *OPTION_SNAPFLOW_KEYS})
    if unknown:
        raise ValueError(
            f"probe_settings.option.{unknown[0]} is not an option; valid: {[*OPTION_DISTILL_KEYS, *OPTION_SNAPFLOW_KEYS]}"
        )
    values = {k: v for k, v in option.items() if v is not None}
    if "steps" in values and (not str(values["steps"]).isdigit() or int(values["steps"]) < 1):
        raise ValueError(f"probe_settings.option.steps must be a whole number >= 1, got {values['steps']!r}")
    if "lr" in values and not _positive_number(values["lr"]):
        raise ValueError(f"probe_settings.option.lr must be a number > 0, got {values['lr']!r}")
    fields = {k: values[k] for k in ("alpha", "consistency_weight", *OPTION_SNAPFLOW_KEYS) if k in values}
    try:
        SnapFlowConfig(**fields)
    except (ConfigError, TypeError, ValueError) as e:
        raise ValueError(f"probe_settings.option: {e}") from None
    return values


def _positive_number(value: object) -> bool:
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return False


def _option_cmd(cfg: DictConfig, teacher: Path, data: Path, run: Path, values: dict) -> list[str]:
    """snapflow-distill of a student beside the recipe's: the recipe's command with ``values`` changed
    (keys of OPTION_DISTILL_KEYS and OPTION_SNAPFLOW_KEYS)."""
    steps = int(values.get("steps", cfg.distill_steps))
    cmd = [
        a
        for a in _distill_cmd(cfg, teacher, data, "snapflow", run)
        if not a.startswith(("steps=", "save_freq="))
    ]
    cmd += [f"steps={steps}", f"save_freq={steps}"]
    cmd += [f"{k}={float(values[k])}" for k in ("lr", "consistency_weight", "alpha") if k in values]
    flags = [f"'--policy.snapflow.{k}={values[k]}'" for k in OPTION_SNAPFLOW_KEYS if k in values]
    return [*cmd, f"extra=[{','.join(flags)}]"] if flags else cmd


def probe_teacher(cfg: DictConfig, out: Path) -> Path:
    """The teacher of the probe: ``teacher=<ckpt>`` if given, else a runnable copy of the shipped one."""
    from snapflow.policies.embedded import MULTIMODAL_DIR, EmbeddedTeacherMissing, materialize_teacher

    if cfg.teacher not in (None, "embedded"):  # as the main job: resolve_pretrained's forms
        from snapflow.scripts.checkpoints import resolve_pretrained

        return resolve_pretrained(cfg.teacher)
    try:
        return materialize_teacher(out / "teacher", source=MULTIMODAL_DIR)
    except EmbeddedTeacherMissing as e:
        sys.exit(f"snapflow-demo: {e} (make teacher-multimodal builds it)")


def run_probe(cfg: DictConfig, out: Path) -> None:
    """The probe's stages into ``out`` (already checked and empty); prints the table and `outputs: <dir>`."""
    from snapflow.scripts.cli_values import strict_bool
    from snapflow.sim.mode_report import mode_tables

    settings = cfg.probe_settings
    teacher = probe_teacher(cfg, out)
    image = next(
        f
        for k, f in json.loads((teacher / "config.json").read_text())["input_features"].items()
        if k.startswith("observation.images.")
    )
    resolution = int(cfg.resolution or image["shape"][-1])
    data = out / "data"
    _run("collect", [str(BIN / "snapflow-collect"), f"suite={SUITE}", f"out={data}",
                     f"episodes_per_task={int(settings.distill_demos_per_task)}", f"resolution={resolution}",
                     f"workers={int(cfg.workers)}", f"seed={int(cfg.seed) + 7}",
                     f"noise_std={float(settings.distill_noise_std)}",
                     f"paired_modes={str(strict_bool(settings.paired_modes, 'paired_modes')).lower()}",
                     f"detour={settings.detour}"])  # fmt: skip
    # Demos none of the samplers trained on, for the offline errors (plain MSE and nearest-mode MSE).
    held_out = out / "held_out_data"
    _run("collect (held-out demos for the offline errors)", [
        str(BIN / "snapflow-collect"), f"suite={SUITE}", f"out={held_out}", f"resolution={resolution}",
        f"episodes_per_task={int(settings.offline_demos_per_task)}", f"workers={int(cfg.workers)}",
        f"seed={int(cfg.seed) + 11}", f"detour={settings.detour}",
    ])  # fmt: skip
    runs = {m: out / f"distill_{m}" for m in ("snapflow", "fm")}
    cmds = [_distill_cmd(cfg, teacher, data, m, runs[m]) for m in runs]
    k = settings.consistency_steps
    if k is not None:  # the same recipe with a k-step consistency target
        runs["snapflow_k"] = out / "distill_snapflow_k"
        cmds.append(_option_cmd(cfg, teacher, data, runs["snapflow_k"], {"consistency_steps": int(k)}))
    option = option_overrides(settings.option)
    if option:
        runs["snapflow_option"] = out / "distill_snapflow_option"
        cmds.append(_option_cmd(cfg, teacher, data, runs["snapflow_option"], option))
    _run_parallel("distill (SnapFlow, the FM control and any option side by side)", cmds,
                  [out / f"{r.name}.log" for r in list(runs.values())[1:]])  # fmt: skip
    done = {m: (r / "checkpoints" / "last" / "pretrained_model") for m, r in runs.items()}
    student, fm = done["snapflow"].rename(out / "student"), done["fm"].rename(out / "fm")
    samplers, extra_students = list(PROBE_SAMPLERS), []
    if k is not None:
        extra_students.append(f"student_k={done['snapflow_k'].rename(out / 'student_k')}")
        samplers.append("snapflow_k_1")
    if option:
        extra_students.append(f"student_option={done['snapflow_option'].rename(out / 'student_option')}")
        samplers += OPTION_SAMPLERS
    episodes = int(settings.episodes)
    cap = [f"max_steps={int(cfg.max_steps)}"] if cfg.max_steps is not None else []
    offline = [f"dataset={held_out}", f"episodes_for_mse={4 * int(settings.offline_demos_per_task)}"]
    _run("eval (frozen init states)", [
        str(BIN / "snapflow-eval"), f"teacher={teacher}", f"student={student}", f"fm={fm}", *extra_students,
        f"samplers=[{','.join(samplers)}]", f"suites=[{SUITE}]", f"episodes={episodes}",
        f"resolution={resolution}", f"n_action_steps={int(cfg.n_action_steps)}", f"workers={int(cfg.workers)}",
        f"batch_size={episodes}", f"seed={int(cfg.seed)}", f"out={out / 'eval'}", *offline, *cap,
    ])  # fmt: skip
    for name in ("report.json", "report.md", f"{SUITE}_modes.png"):
        shutil.copy2(out / "eval" / name, out / name)
    report = json.loads((out / "report.json").read_text())
    print("\n" + mode_tables(report).strip())
    print(f"(n_action_steps = {report['n_action_steps']}, {episodes} frozen init states per task, 4 tasks)")
    print(f"outputs: {out}")
