"""mini-LIBERO: a LIBERO-style MuJoCo benchmark (scenes, suites, experts, gymnasium envs, LeRobot env type).

Importing this package only registers the gymnasium id `snapflow/MiniLibero-v0` (string entry point, so
MuJoCo is not imported until `gymnasium.make`). Keyword arguments: `suite` (spatial|object|goal|long),
`task_id` (0-9), `resolution` (px, default 128), `init_state` (frozen index or None), `render` (cameras).
"""

import os

# Headless software rendering (Mesa EGL) works out of the box here; set before anything imports mujoco.
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

import os

# MuJoCo picks its GL backend when it is first imported, and several submodules import it: default to
# headless EGL (llvmpipe without a GPU) here, before any of them can. An explicit MUJOCO_GL wins.
os.environ.setdefault("MUJOCO_GL", "egl")

from gymnasium.envs.registration import register, registry

ENV_ID = "snapflow/MiniLibero-v0"

if ENV_ID not in registry:
    register(id=ENV_ID, entry_point="snapflow.sim.env:MiniLiberoEnv")
