"""Shared CLI behaviour of the `snapflow-*` commands: output directories that never lose results, and
usage errors as one readable line instead of a traceback.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Callable, Iterator
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


def check_out(out: str | Path, overwrite: bool) -> Path:
    """`out` as a Path, refused (FileExistsError) when it holds files and `overwrite` is False.

    Call it before any work, so a long run is not lost to a refusal at the end.
    """
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())) and not overwrite:
        raise FileExistsError(
            f"out={out} already holds results; pass overwrite=true to replace them, or choose another out="
        )
    return path


@contextlib.contextmanager
def atomic_out(out: str | Path, overwrite: bool) -> Iterator[Path]:
    """Write a command's results into `<out>.partial`, renamed to `out` only when the block succeeds.

    An interrupted or failed command leaves `out` as it was (its earlier results intact) and removes its
    `.partial` folder (a killed one leaves it, and the next run clears it).
    """
    path = check_out(out, overwrite)
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # leftovers of an interrupted run
    partial.mkdir(parents=True)
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    partial.rename(path)


# Third-party loggers that print hundreds of routine INFO lines in our commands (the ONNX exporter's
# optimiser passes log one "Replaced initializer ..." line per de-duplicated weight); warnings still show.
NOISY_LOGGERS = ("onnx_ir", "onnxscript", "torch.onnx", "torch._dynamo", "torch.export", "httpx")


def quiet_third_party_logs() -> None:
    """Raise the noisy third-party loggers to WARNING (`debug=true` keeps them as they are)."""
    import logging

    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def run_cli(body: Callable[[], int | None], debug: bool = False) -> None:
    """Run a command body; a refused input ends in `error: <message>` and exit 2 (traceback with debug=true).

    Refused inputs are the named errors our modules raise for bad values, files and shapes (ValueError
    and its subclasses, missing or existing files); anything else is a bug and keeps its traceback.
    """
    from omegaconf.errors import MissingMandatoryValue

    if not debug:
        quiet_third_party_logs()
    try:
        code = body()
    except MissingMandatoryValue as e:  # a required key= left at ??? on the command line
        if debug:
            raise
        print(
            f"error: {e.full_key}= is required (see the config's comment for what it takes)", file=sys.stderr
        )
        sys.exit(USAGE_EXIT)
    except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(USAGE_EXIT)
    if code:
        sys.exit(code)
