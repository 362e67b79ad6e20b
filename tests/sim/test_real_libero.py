"""Real LIBERO through LeRobot's `libero` env type, offline (marker `libero`; skipped without the extra)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from snapflow.sim.real_libero import real_libero_available, setup_real_libero

pytestmark = [
    pytest.mark.libero,
    pytest.mark.skipif(not real_libero_available(), reason="needs pip install -e '.[libero]'"),
]


def test_lerobot_libero_env_runs_offline(tmp_path: Path) -> None:
    config = setup_real_libero(tmp_path / "libero_cfg")
    assert config.exists()
    code = (
        "import numpy as np\n"
        "from lerobot.envs.factory import make_env_config\n"
        "cfg = make_env_config('libero', task='libero_spatial', task_ids=[0], observation_height=128,"
        " observation_width=128)\n"
        "vec = cfg.create_envs(n_envs=1, use_async_envs=False)['libero_spatial'][0]\n"
        "obs, info = vec.reset(seed=[0])\n"
        "obs, r, term, trunc, info = vec.step(np.zeros((1, 7), np.float32))\n"
        "assert obs['pixels']['image'].shape == (1, 128, 128, 3)\n"
        "vec.close()\n"
    )
    env = {**os.environ, "LIBERO_CONFIG_PATH": str(config.parent), "HF_HUB_OFFLINE": "1", "MUJOCO_GL": "egl"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
