"""Build `lerobot-train` argument lists and run LeRobot's own training loop (optionally under accelerate).

Used by `snapflow-train` and `snapflow-distill`; nothing here trains by itself. LeRobot facts relied on
(lerobot/scripts/lerobot_train.py): a plugin student is started with ``--policy.type=<family>_snapflow
--policy.pretrained_path=<teacher>``, which loads *weights only*, so the teacher's architecture fields
must be passed again (`architecture_flags`); resume is ``--resume=true --config_path=<ckpt>/train_config.json``
and restores weights, optimizer, scheduler, RNG and the sampler position; the cosine schedule auto-scales
its warm-up when ``steps`` < ``scheduler_decay_steps`` (500 warm-up steps at 30k become 0 at 20 steps).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from snapflow.scripts.checkpoints import LAST_CHECKPOINT
from snapflow.scripts.cli_values import ChildFailed

BIN = Path(sys.executable).parent
# The NFE field of each family's config, and the fields that define its architecture / inputs (forwarded
# from a teacher's config.json to the student, whose plugin loads weights only).
STEPS_FIELD = {"smolvla": "num_steps", "pi0": "num_inference_steps", "pi05": "num_inference_steps"}
COMMON_FIELDS = (
    "n_obs_steps",
    "chunk_size",
    "n_action_steps",
    "max_state_dim",
    "max_action_dim",
    "empty_cameras",
    "min_period",
    "max_period",
    "tokenizer_max_length",
)
ARCH_FIELDS = {
    "smolvla": (
        *COMMON_FIELDS,
        "vlm_model_name",
        "num_vlm_layers",
        "num_expert_layers",
        "expert_width_multiplier",
        "self_attn_every_n_layers",
        "attention_mode",
        "prefix_length",
        "pad_language_to",
        "resize_imgs_with_padding",
        "add_image_special_tokens",
        "adapt_to_pi_aloha",
        "use_delta_joint_actions_aloha",
        "use_cache",
    ),
    "pi0": (
        *COMMON_FIELDS,
        "paligemma_variant",
        "action_expert_variant",
        "dtype",
        "image_resolution",
        "tokenizer_name",
        "time_sampling_beta_alpha",
        "time_sampling_beta_beta",
        "time_sampling_scale",
        "time_sampling_offset",
        "use_relative_actions",
        "relative_exclude_joints",
        "action_feature_names",
    ),
}
ARCH_FIELDS["pi05"] = ARCH_FIELDS["pi0"]


def cli_value(value: object) -> str:
    """A Python value as draccus parses it on LeRobot's CLI (bools lower-case, sequences as [a,b])."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list | tuple):
        return "[" + ",".join(cli_value(v) for v in value) + "]"
    return str(value)


def family_of(policy_type: str) -> str:
    """smolvla / pi0 / pi05 for an upstream flow-matching type or its *_snapflow student."""
    family = policy_type.removesuffix("_snapflow")
    if family not in STEPS_FIELD:
        raise ValueError(
            f"policy type {policy_type!r} is not supported: SnapFlow distils the flow-matching "
            f"VLAs {sorted(STEPS_FIELD)} (or their *_snapflow students)"
        )
    return family


def architecture_flags(config: dict, family: str) -> list[str]:
    """`--policy.<field>=<value>` for the architecture fields present in a (teacher) config dict.

    None values are skipped (the student's default applies); SmolVLA's ``load_vlm_weights`` is forced to
    false because every weight, VLM included, comes from the teacher checkpoint.
    """
    flags = [
        f"--policy.{k}={cli_value(config[k])}"
        for k in ARCH_FIELDS[family]
        if k in config and config[k] is not None
    ]
    if family == "smolvla":
        flags.append("--policy.load_vlm_weights=false")
    return flags


def teacher_flags(teacher: Path) -> tuple[str, list[str]]:
    """(family, flags) that start a `<family>_snapflow` student from ``teacher`` (a pretrained_model dir)."""
    config = json.loads((teacher / "config.json").read_text())
    family = family_of(str(config.get("type")))
    return family, [
        f"--policy.type={family}_snapflow",
        f"--policy.pretrained_path={teacher}",
        *architecture_flags(config, family),
    ]


def tiny_flags(family: str, assets: str | Path, state_dim: int = 8, width: int = 64) -> list[str]:
    """Flags of the offline tiny variant of ``family`` (builds the local VLM/tokenizer dirs if missing).

    Trained from scratch, the whole model is trainable (upstream SmolVLA freezes its pretrained VLM by
    default, which would leave a random VLM frozen here). ``state_dim`` raises ``max_state_dim`` when the
    dataset's state is longer than the tiny default (the 74-D object state); ``width`` is the tiny SmolVLM
    language width (an existing assets dir must match it).

    SmolVLA's tiny teacher is an upstream `smolvla`; PI0/PI05 tiny widths exist only in the `*_snapflow`
    types (scripts/tiny.py), so their tiny teacher is trained as `<family>_snapflow` with alpha=1 (plain
    flow matching, phi(s=t)), 10 Euler steps with s=t (multistep_mode=euler, as trained) and the whole model
    trainable. Caveat: at NFE=1 a *_snapflow model always queries s=0, which such a teacher never trained, so
    its "naive 1-step" is not exactly upstream's one Euler step.
    """
    from snapflow.policies.tiny import build_tiny_paligemma_tokenizer, build_tiny_smolvlm, tiny_config
    from snapflow.sim.tasks import list_tasks

    family = family_of(family)
    assets = Path(assets)
    corpus = [t.instruction for t in list_tasks()]  # the word-level tokenizers need the task vocabulary
    vlm_config = assets / "tiny_smolvlm" / "config.json"
    if family == "smolvla" and not vlm_config.exists():
        build_tiny_smolvlm(assets / "tiny_smolvlm", corpus, width=width)
    if (
        family == "smolvla"
        and (have := json.loads(vlm_config.read_text())["text_config"]["hidden_size"]) != width
    ):
        raise ValueError(
            f"{vlm_config.parent} holds a width-{have} tiny SmolVLM, not {width}: use another assets dir"
        )
    if family != "smolvla" and not (assets / "tiny_paligemma_tokenizer" / "tokenizer.json").exists():
        build_tiny_paligemma_tokenizer(assets / "tiny_paligemma_tokenizer", corpus)
    policy_type = "smolvla" if family == "smolvla" else f"{family}_snapflow"
    cfg = tiny_config(policy_type, assets)
    cfg.max_state_dim = max(cfg.max_state_dim, state_dim)
    flags = [
        f"--policy.type={policy_type}",
        *architecture_flags(vars(cfg), family),
        "--policy.train_expert_only=false",
        "--policy.freeze_vision_encoder=false",
    ]
    if family == "smolvla":
        return flags
    return [
        *flags,
        "--policy.snapflow.alpha=1.0",
        "--policy.snapflow.multistep_mode=euler",
        "--policy.num_inference_steps=10",
    ]


def train_args(
    policy_flags: list[str],
    dataset: str | Path,
    out: str | Path,
    steps: int,
    batch_size: int,
    save_freq: int,
    seed: int = 1000,
    num_workers: int = 0,
    log_freq: int = 10,
    device: str | None = None,
) -> list[str]:
    """The full `lerobot-train` argument list for a fresh run into ``out`` (which must not exist)."""
    dataset = Path(dataset)
    from snapflow.scripts.dataset_checks import read_dataset_info

    read_dataset_info(dataset)  # every metadata file lerobot-train reads, named when missing or broken
    if Path(out).exists():
        raise FileExistsError(f"{out} exists: pick a new out= or pass resume=true to continue that run")
    run = _run_flags(dataset, out, steps, batch_size, save_freq, seed, num_workers, log_freq)
    return [*policy_flags, *run, f"--policy.device={device}"] if device else [*policy_flags, *run]


def _run_flags(
    dataset: Path, out: object, steps: int, batch_size: int, save_freq: int, seed: int, num_workers: int,
    log_freq: int,
) -> list[str]:  # fmt: skip
    """The run flags `train_args` passes to lerobot-train besides the policy's (no checks: see train_args)."""
    return [
        f"--dataset.repo_id=local/{dataset.name}",
        f"--dataset.root={dataset}",
        f"--output_dir={out}",
        f"--steps={steps}",
        f"--batch_size={batch_size}",
        f"--save_freq={save_freq}",
        f"--log_freq={log_freq}",
        f"--seed={seed}",
        f"--num_workers={num_workers}",
        "--policy.push_to_hub=false",
        "--wandb.enable=false",
        "--dataset.video_backend=pyav",  # torchcodec cannot load on machines without its FFmpeg libraries
    ]


def resume_args(out: str | Path, steps: int | None = None) -> list[str]:
    """Continue the run in ``out`` from checkpoints/last (LeRobot restores its saved train config)."""
    config = Path(out) / LAST_CHECKPOINT / "train_config.json"
    if not config.is_file():
        raise FileNotFoundError(f"cannot resume: {config} does not exist (no checkpoint saved in {out} yet)")
    _check_resumable_files(config.parent)
    # --output_dir: train_config.json records the original dir; a copied or moved run must write here.
    return [
        "--resume=true",
        f"--config_path={config}",
        f"--output_dir={out}",
        *([f"--steps={steps}"] if steps else []),
    ]


def _check_resumable_files(pretrained_model: Path) -> None:
    """The weights and optimizer state a resume loads, checked here (a truncated file is named with its path
    instead of failing inside lerobot-train with an unnamed safetensors error)."""
    from lerobot.utils.constants import OPTIMIZER_STATE, TRAINING_STATE_DIR

    from snapflow.policies.weights_file import check_weights_file

    for path in (
        pretrained_model / "model.safetensors",
        pretrained_model.parent / TRAINING_STATE_DIR / OPTIMIZER_STATE,
    ):
        if not path.is_file():
            raise FileNotFoundError(
                f"cannot resume: {path} is missing (an incomplete checkpoint){_earlier(path)}"
            )
        try:
            check_weights_file(path)
        except ValueError as e:
            raise ValueError(f"{e}{_earlier(path)}") from None


def _earlier(path: Path) -> str:
    """The way on from a damaged last checkpoint: the run's earlier checkpoints, by name, or a new out=."""
    checkpoints = path.resolve().parents[2]  # <checkpoints>/<step>/{pretrained_model,training_state}/<file>
    current = path.resolve().relative_to(checkpoints).parts[0]
    earlier = sorted(p.name for p in checkpoints.glob("[0-9]*") if p.is_dir() and p.name < current)
    if not earlier:
        return "; start a new out= (the run has no earlier checkpoint)"
    return (
        f"; resume from an earlier checkpoint ({', '.join(earlier[-3:])}): point checkpoints/last at it "
        f"(ln -sfn {earlier[-1]} {checkpoints / 'last'}), or start a new out="
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launcher_prefix(launcher: str, num_processes: int = 1) -> list[str]:
    """Command prefix running `lerobot-train` directly or under `accelerate launch` with N processes.

    accelerate's ``--cpu`` flag selects its single-process launcher (N is ignored), so N > 1 goes through
    ``--multi_gpu`` (torchrun); lerobot-train then builds ``Accelerator(cpu=True)`` when
    ``policy.device=cpu``, which gives DistributedType.MULTI_CPU over gloo, or DDP over NCCL on GPUs.
    """
    script = str(Path(__file__).with_name("lerobot_train_entry.py"))  # LeRobot's main, one warning muted
    if launcher == "python":
        return [sys.executable, script]
    if launcher != "accelerate":
        raise ValueError(f"launcher must be 'python' or 'accelerate', got {launcher!r}")
    if num_processes < 1:
        raise ValueError(f"num_processes must be >= 1, got {num_processes}")
    mode = ["--multi_gpu", f"--main_process_port={_free_port()}"] if num_processes > 1 else []
    return [
        str(BIN / "accelerate"),
        "launch",
        *mode,
        f"--num_processes={num_processes}",
        "--num_machines=1",
        "--mixed_precision=no",
        "--dynamo_backend=no",
        script,
    ]


def lerobot_env() -> dict[str, str]:
    """Offline, quiet environment for the child: no Hub, no wandb, no tokenizer thread pools."""
    return {
        **os.environ,
        "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
        "WANDB_MODE": "disabled",
        "TOKENIZERS_PARALLELISM": "false",
    }


def run_lerobot_train(args: list[str], launcher: str = "python", num_processes: int = 1) -> list[str]:
    """Run `lerobot-train` (streaming its log); raises ChildFailed on failure; returns the command."""
    cmd = [*launcher_prefix(launcher, num_processes), *args]
    print("running:", " ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd, env=lerobot_env(), stderr=subprocess.PIPE)
    tail = b""  # its stderr is passed on as it comes (progress bars too); the end is kept for the reason
    while chunk := os.read(proc.stderr.fileno(), 1 << 16):
        sys.stderr.buffer.write(chunk)
        sys.stderr.buffer.flush()
        tail = (tail + chunk)[-CHILD_TAIL_BYTES:]
    if proc.wait() != 0:
        reason = _child_error(tail.decode(errors="replace"))
        raise ChildFailed(
            f"lerobot-train exited with code {proc.returncode}{f': {reason}' if reason else ''} (its own log "
            f"is above); command: {' '.join(cmd)}"
        )
    return cmd


CHILD_TAIL_BYTES = 8192  # enough for an argparse error or an exception's last lines


def _child_error(text: str) -> str | None:
    """The child's own last error line: argparse's ``prog: error: ...`` or a traceback's last line."""
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        if line.startswith("error: "):  # draccus: "error: `policy`: Could not decode ..." and its cause below
            return " ".join([line.removeprefix("error: "), *lines[i + 1 : i + 3]])
        if ": error: " in line:
            return line.split(": error: ", 1)[1]
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b", line):
            return line
    return None


# A typo guard (steps=1e12 started a run whose bar read 2e9 hours): at 100 steps/s, 10x the tiny models'
# training speed on this package's 2-core CPU (4-10 steps/s), 1e8 steps take 11 days.
MAX_TRAIN_STEPS = 100_000_000


def check_run_values(cfg: object) -> None:
    """The run keys of configs/train.yaml and configs/distill.yaml, checked before lerobot-train starts (a
    failure inside it would surface as a subprocess traceback): steps, batch_size, save_freq, log_freq >= 1,
    num_workers >= 0, and a new (or empty) out unless resume=true. ValueError / FileExistsError name the key."""
    for key in ("steps", "batch_size", "save_freq", "log_freq"):
        if int(cfg[key]) < 1:
            raise ValueError(f"{key} must be >= 1, got {cfg[key]}")
    if int(cfg.steps) > MAX_TRAIN_STEPS:
        raise ValueError(f"steps must be <= {MAX_TRAIN_STEPS:.0e}, got {cfg.steps} (a typo?)")
    if int(cfg.num_workers) < 0:
        raise ValueError(f"num_workers must be >= 0, got {cfg.num_workers}")
    if "seed" in cfg and not 0 <= int(cfg.seed) < 2**32:  # numpy's seed range, else a traceback in the child
        raise ValueError(f"seed must be an integer in [0, 2**32 - 1], got {cfg.seed}")
    if int(cfg.get("num_processes", 1)) < 1:
        raise ValueError(f"num_processes must be >= 1, got {cfg.num_processes}")
    if int(cfg.get("num_processes", 1)) > 1 and cfg.get("launcher", "python") != "accelerate":
        raise ValueError(  # the python launcher starts one process: N would be ignored without a word
            f"num_processes={cfg.num_processes} needs launcher=accelerate (launcher={cfg.launcher} starts one process)"
        )
    from snapflow.scripts.cli_values import check_device

    check_device(cfg.get("device"), allowed=("cpu", "cuda", "mps"))  # before lerobot-train refuses it
    out = Path(cfg.out)
    from snapflow.scripts.outputs import check_not_input

    # the dataset or the starting checkpoint given as out= would read as "already holds a run"
    check_not_input(out, [cfg.get("dataset"), cfg.get("teacher"), cfg.get("pretrained")])
    if not cfg.resume and out.exists() and (not out.is_dir() or any(out.iterdir())):
        # lerobot-train refuses an existing out; say so before any work (there is no overwrite here)
        if not out.is_dir():
            raise FileExistsError(f"out={cfg.out} is a file; choose a new out=")
        if not (out / "checkpoints").is_dir():  # a user's folder: resume=true could not continue it
            names = ", ".join(sorted(p.name for p in out.iterdir())[:3])
            raise FileExistsError(
                f"out={cfg.out} holds files that are not a training run ({names}); choose a new out="
            )
        raise FileExistsError(
            f"out={cfg.out} already holds a run; choose a new out= or continue it with resume=true"
        )
    if not cfg.resume:
        # an extra= clash with the run flags, before the tiny build or the dataset view
        run = _run_flags(Path(str(cfg.dataset)), cfg.out, 1, 1, 1, 0, 0, 1)  # flag names are what count
        device = ["--policy.device=x"] if cfg.get("device") else []
        check_extra_flags([*run, *device], [str(x) for x in cfg.get("extra") or []])
        from snapflow.scripts.outputs import check_file_in_the_way, check_writable

        # named as out=, not as the <out>.dataset view snapflow-distill writes beside it
        check_file_in_the_way(out, cfg.out)
        check_writable(out, cfg.out)


def check_extra_flags(args: list[str], extra: list[str]) -> None:
    """ValueError when an ``extra=`` flag sets a lerobot-train key this command already sets (LeRobot would
    keep the last one without a word, e.g. ``steps=2 extra=[--steps=6]`` trains 6 steps)."""
    managed = {a.partition("=")[0] for a in args if a.startswith("--")}
    clashes = [f for f in extra if f.partition("=")[0] in managed]
    if clashes:
        raise ValueError(
            f"extra={clashes} sets what this command already passes to lerobot-train; use the command's "
            "own key (steps=, batch_size=, save_freq=, ...: the keys of its configs/<command>.yaml) instead"
        )
    _check_snapflow_fields(extra)


def _check_snapflow_fields(extra: list[str]) -> None:
    """ValueError naming an ``extra=`` flag ``--policy.snapflow.<field>`` whose field SnapFlowConfig has not
    (a typo ended in LeRobot's 600-line argparse usage, 20 s into lerobot-train)."""
    import dataclasses
    import difflib

    from snapflow.policies.snapflow.config import SnapFlowConfig

    fields = [f.name for f in dataclasses.fields(SnapFlowConfig)]
    given = []
    for flag in extra:
        key = flag.partition("=")[0]
        if key.startswith("--policy.snapflow.") and key.removeprefix("--policy.snapflow.") not in fields:
            name = key.removeprefix("--policy.snapflow.")
            hint = difflib.get_close_matches(name, fields, n=1)
            raise ValueError(
                f"extra: {key} is no SnapFlow setting{f' (did you mean {hint[0]!r}?)' if hint else ''}; "
                f"--policy.snapflow. takes: {', '.join(fields)}"
            )
        if key.startswith("--policy.snapflow."):
            given.append(flag)
    if given:  # parsed as lerobot-train will (pass 17: alpha=abc failed inside it, 15 s in)
        import draccus

        try:
            draccus.parse(SnapFlowConfig, args=[f.replace("--policy.snapflow.", "--", 1) for f in given])
        except Exception as e:  # draccus' DecodingError, or the config's own ConfigError (a range)
            raise ValueError(f"extra: {' '.join(given)}: {e}") from None


def train_or_resume(policy_flags: list[str], cfg: object) -> Path:
    """Fresh run (``policy_flags`` + run flags) or ``resume`` of ``cfg.out``; returns the last checkpoint.

    ``cfg`` carries the shared keys of configs/train.yaml and configs/distill.yaml (dataset, out, steps,
    batch_size, save_freq, log_freq, seed, num_workers, device, resume, launcher, num_processes, extra).
    """
    check_run_values(cfg)
    if cfg.resume:
        from snapflow.scripts.cli_values import explicit_keys
        from snapflow.scripts.resume_checks import check_resume_values

        check_resume_values(cfg, explicit_keys())
        args = resume_args(cfg.out, int(cfg.steps))
    else:
        args = [
            *policy_flags,
            *train_args(
                [],
                cfg.dataset,
                cfg.out,
                int(cfg.steps),
                int(cfg.batch_size),
                int(cfg.save_freq),
                seed=int(cfg.seed),
                num_workers=int(cfg.num_workers),
                log_freq=int(cfg.log_freq),
                device=cfg.device,
            ),
        ]
    extra = [str(x) for x in cfg.extra]
    check_extra_flags(args, extra)
    run_lerobot_train([*args, *extra], str(cfg.launcher), int(cfg.num_processes))
    return Path(cfg.out) / LAST_CHECKPOINT
