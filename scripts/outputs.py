"""Shared CLI behaviour of the `snapflow-*` commands: output directories that never lose results, and
usage errors as one readable line instead of a traceback.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

USAGE_EXIT = 2  # argparse's and LeRobot's convention for a refused command line or input


def prepare_out(out: str | Path, overwrite: bool) -> Path:
    """An empty output directory at `out`: refuses a non-empty one unless `overwrite` (then clears it).

    Raises:
        FileExistsError: `out` exists and holds files, and `overwrite` is False.
    """
    path = Path(out)
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"out={out} already holds results; pass overwrite=true to replace them, "
                "or choose another out="
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_cli(body: Callable[[], int | None], debug: bool = False) -> None:
    """Run a command body; a refused input ends in `error: <message>` and exit 2 (traceback with debug=true).

    Refused inputs are the named errors our modules raise for bad values, files and shapes (ValueError
    and its subclasses, missing or existing files); anything else is a bug and keeps its traceback.
    """
    try:
        code = body()
    except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        sys.exit(USAGE_EXIT)
    sys.exit(code or 0)
