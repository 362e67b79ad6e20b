"""The results folders of the `snapflow-*` commands: never a user's own folder replaced, never an input, a
finished folder replaced only with overwrite=true, and every folder written as `<out>.partial` and renamed
into place (atomic). Values and the one-line usage errors: cli_values.py."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

INCOMPLETE = "INCOMPLETE"  # marker file of a run that has not finished (snapflow-demo)
# In every results folder a snapflow command writes: overwrite=true replaces only folders that hold it (or
# INCOMPLETE), so a mistyped out= naming a user's own folder is refused rather than emptied.
RESULTS_MARK = ".snapflow-results"


def check_out(out: str | Path, overwrite: bool, inputs: Iterable[object] = ()) -> Path:
    """`out` as a Path, refused (FileExistsError) when it holds files and `overwrite` is False, and
    (ValueError) when it is, or holds, one of the command's `inputs` (paths; other values are skipped):
    replacing it would delete what the command reads, whatever `overwrite` says.

    Call it before any work, so a long run is not lost to a refusal at the end.
    """
    if not str(out).strip():
        raise ValueError("out= is empty: name a folder for the results")
    path = Path(out)
    check_not_input(out, inputs)
    check_file_in_the_way(path, out)  # overwrite=true replaces result folders, never a file
    marker = path / INCOMPLETE
    if marker.is_file() and not overwrite:  # a killed or failed run: say so rather than "holds results"
        raise FileExistsError(
            f"out={out} holds an unfinished run ({marker.read_text().strip()}); its files are kept: pass "
            "overwrite=true to start again there, or choose another out="
        )
    check_partial_is_ours(path.with_name(path.name + ".partial"))  # refused now, not after the work
    if path.is_symlink():  # replacing it would act on the link's target, a folder named elsewhere
        raise ValueError(f"out={out} is a symbolic link: name the folder itself ({path.resolve()})")
    if path.is_dir() and any(path.iterdir()):
        _check_replaceable(path, out, overwrite, marker.is_file())
    check_writable(path, out)
    return path


def _check_replaceable(path: Path, out: object, overwrite: bool, unfinished: bool) -> None:
    """FileExistsError unless `path` (not empty) is a snapflow command's results folder holding only what
    that command wrote (its `RESULTS_MARK` lists its entries) and `overwrite` is set, or an unfinished run."""
    mark = path / RESULTS_MARK
    if not mark.is_file() and not unfinished:
        raise FileExistsError(
            f"out={out} {_unmarked_folder(path)}: results never replace it; choose another out= "
            "(overwrite=true replaces only a snapflow command's results, never a folder of your own)"
        )
    lines = mark.read_text().splitlines() if mark.is_file() else (path / INCOMPLETE).read_text().split()
    writer, command = (lines[0] if lines else ""), command_name()
    if not writer.strip():  # pass 18: an emptied mark read as "holds ?'s results"
        raise FileExistsError(
            f"out={out} has an empty {RESULTS_MARK if mark.is_file() else INCOMPLETE}, which should name the "
            "command that wrote the folder (a damaged or hand-made file), so what the folder holds is not known: choose another out="
        )
    if (
        command.startswith("snapflow-") and writer != command
    ):  # pass 17: eval overwrite=true replaced an export, run a collected dataset
        raise FileExistsError(
            f"out={out} holds {writer}'s results: overwrite=true replaces only {command}'s own results, "
            "never another command's (a dataset, an export); choose another out="
        )
    if not overwrite:
        raise FileExistsError(
            f"out={out} already holds results; pass overwrite=true to replace them, or choose another out="
        )
    written = set(lines[1:]) if mark.is_file() else set()
    added = [f for f in _files_under(path) if f not in written]
    if written and added:  # a user's notes put beside the results would go with them
        raise FileExistsError(
            f"out={out} holds {added[:5]}{f' and {len(added) - 5} more' if len(added) > 5 else ''}, which the "
            "command that wrote it did not write: move them out first, "
            "or choose another out="
        )


def _unmarked_folder(path: Path) -> str:
    """What a folder without our mark is, in words: a training run or checkpoint, the tiny VLM of
    snapflow-train (pass 16 and 18 called these "files that no snapflow command wrote"), or other files."""
    if (path / "checkpoints").is_dir():
        return "is a training run (it holds checkpoints/, as snapflow-train, snapflow-distill and lerobot-train write them)"
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
        return "is a LeRobot checkpoint (config.json and model.safetensors)"
    if any((path / name).is_dir() for name in ("tiny_smolvlm", "tiny_paligemma_tokenizer")):
        return "holds the tiny VLM and tokenizer that snapflow-train tiny=true builds (its assets= folder)"
    if (path / "meta" / "info.json").is_file():
        return "is a LeRobotDataset (meta/info.json)"
    return f"holds files that no snapflow command wrote (no {RESULTS_MARK} in it)"


def check_file_in_the_way(path: Path, out: object) -> None:
    """NotADirectoryError naming `out` when it, or a folder above it, is a file."""
    blocking = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        where = "is a file" if blocking == path else f"lies under {blocking}, which is a file"
        raise NotADirectoryError(f"out={out} {where}: out= names a folder for the results")


def check_writable(path: Path, out: object) -> None:
    """PermissionError naming `out` when its nearest existing folder cannot take a new entry (checked by
    making and removing one: os.access says yes to root even on an immutable folder)."""
    parent = next(p for p in (path, *path.parents) if p.exists())
    try:
        probe = tempfile.mkdtemp(prefix=".snapflow-write-check-", dir=parent)
    except OSError as e:  # ENOENT: a virtual folder (/proc) that takes no new entry
        why = "no folder can be made there" if e.errno == errno.ENOENT else e.strerror
        raise PermissionError(e.errno, f"out={out} cannot be written ({why})", str(parent)) from None
    os.rmdir(probe)


def command_name() -> str:
    """The running command as its console name (`python -m snapflow.scripts.eval` is snapflow-eval too)."""
    path = Path(sys.argv[0])
    if path.suffix == ".py" and path.parent == Path(__file__).parent:
        return f"snapflow-{path.stem}"
    return path.name  # snapflow-eval, ... (or pytest, a notebook: not one of our commands)


def mark_results(path: Path, command: str) -> None:
    """Write `RESULTS_MARK` into a results folder (`path`, or the `.partial` folder about to become it): the
    command, then every file in it, which a later overwrite=true may replace (and no other)."""
    (path / RESULTS_MARK).write_text("\n".join([command, *_files_under(path)]) + "\n")


def _files_under(path: Path) -> list[str]:
    """Every file below `path` as a relative POSIX path (at any depth: a note a user put into a sub-folder
    counts as much as one beside the results), the marks themselves left out."""
    skip = {RESULTS_MARK, PARTIAL_MARK, INCOMPLETE}
    return sorted(
        p.relative_to(path).as_posix() for p in path.rglob("*") if not p.is_dir() and p.name not in skip
    )


def mark_incomplete(out: Path, command: str, state: str | None) -> None:
    """Write (`state` given) or remove (`state` None) `out/INCOMPLETE`, the marker of an unfinished run.

    For commands whose results cannot be built in `<out>.partial` and renamed, because the files they write
    record absolute paths into `out` (snapflow-demo's students point at `<out>/teacher/smolvlm`): a killed
    or failed run leaves the marker, and `check_out` then refuses the folder as unfinished, not as results.
    """
    marker = out / INCOMPLETE
    if state is None:
        marker.unlink(missing_ok=True)
    else:
        marker.write_text(f"{command} {state}\n")


def check_not_input(out: str | Path, inputs: Iterable[object]) -> None:
    """ValueError when `out` is, or holds, one of `inputs` (paths that exist; other values are skipped)."""
    here = Path(out).resolve()
    for given in inputs:
        if given is None or not str(given).strip() or not Path(str(given)).exists():
            continue
        source = Path(str(given)).resolve()
        if source == here or here in source.parents:
            raise ValueError(
                f"out={out} {'is' if source == here else 'holds'} {given}, an input of this command: "
                "writing the results there would delete it; choose another out="
            )


PARTIAL_MARK = ".snapflow-partial"  # inside every `<out>.partial` folder this package makes


def check_partial_is_ours(partial: Path) -> None:
    """FileExistsError naming `partial` when something of that name exists that this package did not make
    (no `PARTIAL_MARK` in it): a user's own folder, never to be deleted."""
    if (partial.exists() or partial.is_symlink()) and not (
        partial.is_dir() and (partial / PARTIAL_MARK).is_file()
    ):
        raise FileExistsError(
            f"{partial} exists and was not left by an interrupted snapflow command (no {PARTIAL_MARK} in "
            "it): this command builds its results there first; move it, or choose another out="
        )


def fresh_partial(partial: Path, create: bool = True) -> Path:
    """Clear this package's leftover `<out>.partial` (one that holds `PARTIAL_MARK`: an interrupted run) and,
    with `create`, make it anew with the mark. FileExistsError naming it when something of that name exists
    that this package did not make: a user's own folder is never deleted."""
    check_partial_is_ours(partial)
    if partial.exists():
        shutil.rmtree(partial)
    if create:
        partial.mkdir(parents=True)
        mark_partial(partial)
    return partial


def mark_partial(partial: Path) -> None:
    """Put `PARTIAL_MARK` into a `.partial` folder made by someone else (LeRobotDataset.create)."""
    (partial / PARTIAL_MARK).touch()


def publish_partial(partial: Path, path: Path) -> None:
    """Replace `path` with the finished `partial` (its mark removed)."""
    mark_results(partial, command_name())
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    partial.rename(path)
    (path / PARTIAL_MARK).unlink(missing_ok=True)  # after the rename: a failed one leaves a .partial of ours


@contextlib.contextmanager
def atomic_out(out: str | Path, overwrite: bool, inputs: Iterable[object] = ()) -> Iterator[Path]:
    """Write a command's results into `<out>.partial`, renamed to `out` only when the block succeeds.

    `inputs` as for `check_out`. An interrupted or failed command leaves `out` as it was (its earlier results
    intact) and removes its `.partial` folder (a killed one leaves it, marked, and the next run clears it; a
    `<out>.partial` this package did not make is refused, never deleted: `fresh_partial`).
    """
    path = check_out(out, overwrite, inputs)
    partial = fresh_partial(path.with_name(path.name + ".partial"))
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    publish_partial(partial, path)
