"""The `snapflow-*` commands' key=value values and runner: every value typed and checked against its
default in configs/<command>.yaml before any work, unknown keys named with a did-you-mean, and a refused input
reported as one line with exit code 2 instead of a traceback (results folders: outputs.py)."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path

USAGE_EXIT = 2  # argparse's and LeRobot's convention for a refused command line or input


def as_list(value: object) -> list | None:
    """A CLI value that takes a list: None stays None, a single value (task_ids=0, suites=spatial) becomes
    a one-item list, a list (OmegaConf's ListConfig included) a plain list."""
    if value is None:
        return None
    if isinstance(value, str | int | float):
        return [value]
    return list(value)


def strict_bool(value: object, key: str) -> bool:
    """A CLI boolean: true/false (or 1/0); ValueError naming the key for anything else (held_out=maybe)."""
    if isinstance(value, bool):
        return value
    if value in (0, 1) or str(value).lower() in ("true", "false", "0", "1"):
        return str(value).lower() in ("true", "1")
    raise ValueError(f"{key}={value!r} is not a boolean; use true or false")


class ChildFailed(RuntimeError):
    """A command we started (lerobot-train) failed; its own output already says why (exit 1, one line)."""


CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def _typed(value: object, default: object, key: str) -> object:
    """`value` of `key` converted to the type of its default, or ValueError naming the key."""
    from omegaconf import DictConfig, ListConfig

    if isinstance(value, ListConfig | DictConfig | list | dict):  # image_size=[64] for a one-value key
        kind = "a list" if isinstance(value, ListConfig | list) else "a mapping"
        raise ValueError(f"{key}={value} is {kind}; {key} takes a single value")
    if isinstance(default, bool):
        return strict_bool(value, key)
    if isinstance(default, int | float) and isinstance(value, bool):  # episodes=true was taken as 1
        raise ValueError(f"{key}={str(value).lower()} is a boolean; {key} takes a number")
    if isinstance(default, int) and isinstance(value, str | float):
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{key}={value!r} is not a number") from None
        if math.isnan(number):
            raise ValueError(f"{key}=nan is not a number")
        if number.is_integer():
            return int(number)
        if key.rsplit(".", 1)[-1] in FRACTIONAL_INT_KEYS:  # an int default that may take a fraction
            return number
        raise ValueError(f"{key}={value} is not a whole number")
    if isinstance(default, float) and not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key}={value!r} is not a number") from None
        if math.isnan(number):
            raise ValueError(f"{key}=nan is not a number")
        return number
    return value


NULLABLE_INTS = (
    "resolution",
    "max_steps",
    "nfe",
    "image_size",
    "queue_low_watermark",
    "actions_per_chunk",
)  # null by default
NULLABLE_FLOATS = (
    "alpha",
    "consistency_weight",
    "lr",
    "hz",
)  # null by default (the recipe's; the policy's rate)
VALUE_OR_LIST_KEYS = ("suite",)  # one value by default, a list also taken (snapflow-collect suite=[a,b])
FRACTIONAL_INT_KEYS = ("seconds", "run_seconds")  # int defaults that take fractions (seconds=2.5)
NULLABLE_INT_LISTS = ("task_ids",)
# keys with a number or boolean default that give null a meaning: off, a seeded layout, the recipe's value
NULLS_ALLOWED = ("debug", "init_state", "probe_settings.option.steps", "probe_settings.option.lr",
                 "probe_settings.option.consistency_weight")  # fmt: skip


def did_you_mean(key: str, options: object) -> str:
    """' (did you mean suites?)' for the closest of `options` to a misspelt `key`, else ''. A key is also
    matched against the words of an option (episdoes= -> episodes_per_task, weight= -> consistency_weight)."""
    import difflib

    names = [str(o) for o in options]
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.8)  # whole names first: sampler= -> samplers
    if close:
        return f" (did you mean {close[0]}?)"
    words: dict[str, str] = {}
    for option in names:
        parts = option.split("_")
        for i in range(len(parts)):
            for j in range(i + 1, len(parts) + 1):
                words.setdefault("_".join(parts[i:j]), option)
    close = difflib.get_close_matches(key, list(words), n=1, cutoff=0.75)
    return f" (did you mean {words[close[0]]}?)" if close else ""


def check_types(cfg: object, name: str | dict, prefix: str = "") -> None:
    """Coerce every CLI value to the type of its default in configs/<name>.yaml, in place: booleans strictly
    (held_out=maybe is refused), numbers with the key named (episodes=abc, hz=nan are refused), a single
    value for a list key becomes a one-item list (suites=spatial -> [spatial]). Keys whose default is null,
    mandatory (???) or a string are left alone. Call it first in every command, before any work."""
    from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

    if isinstance(name, str):
        name = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / f"{name}.yaml"), resolve=False)
    unknown = sorted(str(k) for k in cfg if k not in name and k != "hydra")
    if unknown:  # `+typo=1` is appended by Hydra and would otherwise be ignored without a word
        known = ", ".join(k for k in name if k not in ("defaults", "hydra"))
        hint = did_you_mean(unknown[0], name)
        raise ValueError(f"unknown key {prefix}{unknown[0]}={hint}; this command takes: {known}")
    with open_dict(cfg):
        for key, default in name.items():
            if key in ("defaults", "hydra", "sampler_defs") or key not in cfg:
                continue
            value = OmegaConf.select(cfg, key, throw_on_missing=False)
            if value is None and isinstance(default, int | float) and f"{prefix}{key}" not in NULLS_ALLOWED:
                # episodes=null ended in a TypeError inside the command
                raise ValueError(f"{prefix}{key}=null: {prefix}{key} takes a value (default {default})")
            if value is None:
                continue
            if default is None:  # null by default: typed by name (the keys every command shares)
                if key in NULLABLE_INTS:
                    cfg[key] = _typed(value, 0, f"{prefix}{key}")
                elif key in NULLABLE_FLOATS:
                    cfg[key] = _typed(value, 0.0, f"{prefix}{key}")
                elif key in NULLABLE_INT_LISTS:
                    items = list(value) if isinstance(value, ListConfig | list) else [value]
                    cfg[key] = [_typed(v, 0, f"{prefix}{key}") if isinstance(v, str) else v for v in items]
                continue
            if isinstance(default, dict):
                if isinstance(value, DictConfig):
                    check_types(value, default, f"{prefix}{key}.")
            elif isinstance(default, list):
                items = list(value) if isinstance(value, ListConfig | list) else [value]
                if default and all(isinstance(d, int) and not isinstance(d, bool) for d in default):
                    items = [_typed(v, 0, f"{prefix}{key}") for v in items]  # nfe=[1,abc] named here
                cfg[key] = items
            elif key in VALUE_OR_LIST_KEYS and isinstance(value, ListConfig | list):
                cfg[key] = [str(v) for v in value]  # snapflow-collect suite=[spatial,goal]
            else:
                cfg[key] = _typed(value, default, f"{prefix}{key}")


OPEN_DICTS = ("sampler_defs", "exports")  # dict keys a user may add entries to (+sampler_defs.mine={...})


def argv_problem(name: str, argv: list[str]) -> str | None:
    """What is wrong with `argv`'s key=value overrides for configs/<name>.yaml, before Hydra parses them
    (Hydra's own refusals are multi-line and exit 1): an unknown key or sub-key, or an `extra=` flag list
    given without its quoting, or a key set to null beside one of its sub-keys. None when nothing is."""
    from omegaconf import OmegaConf

    config = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / f"{name}.yaml"), resolve=False)
    known = ", ".join(k for k in config if k not in ("defaults", "hydra"))
    seen: set[str] = set()
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+~")
        if not sep or arg.startswith("-") or key.startswith("hydra"):
            continue
        if key in seen:  # Hydra would keep the last one without a word
            return f"{key}= is given twice; give it once"
        seen.add(key)
        if value.lstrip("'\"").startswith("~"):
            # quoted for the shell, so it did not expand it: Hydra's lexer refuses a bare ~ (exit 1), and a
            # Hydra-quoted '~/x' reached the command as a folder named "~" in the working folder
            return (
                f"{key}={value}: ~ is not expanded inside quotes; give the full path (or leave it unquoted)"
            )
        if value.count("{") != value.count("}") or value.count("[") != value.count("]"):
            # the shell split an unquoted value at a space: exports={int8: dir} arrives as two words
            example = f"{key}={{name: <value>}}" if "{" in value else f"{key}=[a, b]"
            return (
                f"{key}={value} is cut short (its brackets do not close): quote the whole value for the "
                f'shell, e.g. "{example}"'
            )
        node: object = config
        for depth, part in enumerate(key.split(".")):
            if not isinstance(node, dict) or (depth and key.split(".")[0] in OPEN_DICTS):
                break
            if part not in node:
                where = ".".join(key.split(".")[:depth]) if depth else ""
                options = known if not depth else ", ".join(node)
                hint = did_you_mean(part, node)
                return f"unknown key {key}={hint}; {where or 'this command'} takes: {options}"
            node = node[part]
        if key == "extra" and value.startswith("-"):
            return f"extra= takes a list of flags, quoted for the shell: \"extra=['{value}']\""
    return _nulled_and_set(argv)


def _nulled_and_set(argv: list[str]) -> str | None:
    """`a.b=null a.b.c=1` (in either order): Hydra ends one order in a struct error and drops c in the other."""
    pairs = [arg.lstrip("+~").partition("=") for arg in argv if "=" in arg and not arg.startswith("-")]
    nulled = {key for key, _, value in pairs if value.strip().lower() in ("null", "none")}
    for key, _, _ in pairs:
        parent = next((n for n in nulled if key.startswith(n + ".")), None)
        if parent:
            return f"{parent}=null drops {parent}, so {key}= cannot apply: give one of the two"
    return None


def check_argv(name: str, argv: list[str] | None = None) -> None:
    """Exit 2 with one line when `argv_problem` finds something (the console entry points call it first)."""
    problem = argv_problem(name, sys.argv[1:] if argv is None else argv)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(USAGE_EXIT)


def explicit_keys() -> set[str]:
    """The top-level keys given on this command line (Hydra's task overrides; empty outside a Hydra app)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return set()
    return {o.split("=", 1)[0].lstrip("+~").split(".", 1)[0] for o in HydraConfig.get().overrides.task}


def check_unique(key: str, values: list) -> None:
    """ValueError naming `key` when a value repeats (task_ids=[0,0] would count one episode twice)."""
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{key} lists {repeated} more than once")


def checked(cfg: object, name: str) -> object:
    """`cfg` after `check_types(cfg, name)`: `run_cli(lambda: _body(checked(cfg, "eval")), ...)`; every
    required key left at ``???`` is named at once (ValueError), each with what it takes."""
    from omegaconf import OmegaConf

    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ValueError("; ".join(f"{key}= is required: {_config_comment(key, name)}" for key in missing))
    check_types(cfg, name)
    return cfg


# Third-party loggers that print hundreds of routine INFO lines in our commands (the ONNX exporter's
# optimiser passes log one "Replaced initializer ..." line per de-duplicated weight); warnings still show.
NOISY_LOGGERS = ("onnx_ir", "onnxscript", "torch.onnx", "torch._dynamo", "torch.export", "httpx")


def quiet_third_party_logs() -> None:
    """Raise the noisy third-party loggers to WARNING (`debug=true` keeps them as they are)."""
    import logging

    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def check_device(device: object, key: str = "device", allowed: tuple[str, ...] = ("cpu", "cuda")) -> None:
    """ValueError naming `key` for a device this machine cannot run (None passes: the command's own choice)."""
    if device is None:
        return
    name = str(device)
    if name.split(":")[0] not in allowed:
        raise ValueError(f"{key}={name!r}: choose one of {', '.join(allowed)}")
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"{key}={name} but no CUDA device is available here; use {key}=cpu")


def _config_comment(key: str, name: str | None = None) -> str:
    """What a required top-level `key` takes: its comment in configs/<name>.yaml (the running command's
    when `name` is None); ``--help`` shows the keys without their comments."""
    try:
        if name is None:
            from hydra.core.hydra_config import HydraConfig

            name = HydraConfig.get().job.config_name
        lines = (CONFIG_DIR / f"{name}.yaml").read_text().splitlines()
    except (ValueError, OSError):  # outside a Hydra command, or no such file
        return "see the command's config"
    for line in lines:
        if line.startswith(f"{key}:") and "#" in line:
            return f"{line.split('#', 1)[1].strip()} (configs/{name}.yaml)"
    return f"see configs/{name}.yaml"


INTERRUPTED_EXIT = 130  # 128 + SIGINT, as the shell reports a Ctrl-C
# What a Ctrl-C leaves, per command: training runs keep their checkpoints, everything else writes into
# `<out>.partial` (cleared by the next run) or, snapflow-demo, marks its folder INCOMPLETE.
INTERRUPTED = {  # snapflow-train and snapflow-distill say what they kept (lerobot_cli.kept_after_interrupt)
    "snapflow-demo": "out= keeps what finished, marked INCOMPLETE; rerun with overwrite=true to start again there",
    "*": "nothing was published to out= (a <out>.partial left behind is cleared by the next run)",
}


def run_cli(
    body: Callable[[], int | None], debug: object = False, interrupted: Callable[[], str] | None = None
) -> None:
    """Run a command body; a refused input ends in `error: <message>` and exit 2 (traceback with debug=true).

    A Ctrl-C ends in `stopped by Ctrl-C: <what was kept>`, exit 130: `interrupted()` says it where it
    depends on how far the command got (a training run before its first checkpoint keeps nothing),
    else the command's line in `INTERRUPTED`.

    Refused inputs are the named errors our modules raise for bad values, files and shapes (ValueError
    and its subclasses, missing or existing files, a folder this user may not write); anything else is a
    bug and keeps its traceback. `debug` is the raw `debug=` value: only true shows tracebacks (debug=yes
    is then named by the type check, not shown as a traceback of its own refusal).
    """
    debug = debug is True or str(debug).strip().lower() == "true"
    from omegaconf.errors import MissingMandatoryValue

    from snapflow.deploy.tensorrt_engine import TensorRTUnavailable  # a runtime this machine lacks, by name
    from snapflow.policies.snapflow.config import ConfigError  # a bad policy config value (not a ValueError)

    refused = (
        ValueError,
        ConfigError,
        FileNotFoundError,
        FileExistsError,
        NotADirectoryError,
        TensorRTUnavailable,
    )
    if not debug:
        quiet_third_party_logs()
    try:
        code = body()
    except MissingMandatoryValue as e:  # a required key= left at ??? on the command line
        if debug:
            raise
        print(f"error: {e.full_key}= is required: {_config_comment(e.full_key)}", file=sys.stderr)
        sys.exit(USAGE_EXIT)
    except ChildFailed as e:  # a failed child (lerobot-train) printed its own log: say so in one line
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except refused as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(USAGE_EXIT)
    except KeyboardInterrupt:  # pass 17: a KeyboardInterrupt traceback, no word on what was kept
        if debug:
            raise
        from snapflow.scripts.outputs import command_name

        kept = interrupted() if interrupted else INTERRUPTED.get(command_name(), INTERRUPTED["*"])
        print(f"stopped by Ctrl-C: {kept}", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT)
    except PermissionError as e:  # out= under a folder this user may not write
        if debug:
            raise
        print(f"error: {e.filename}: {e.strerror} (choose a place you may write to)", file=sys.stderr)
        sys.exit(USAGE_EXIT)
    if code:
        sys.exit(code)
