"""Object-state observations: the robot's 8-D state extended with where every object is.

robosuite and LIBERO can return object poses next to the images ("object-state" observations); a policy
trained on them still reads the images and the instruction, but no longer has to learn to *find* the
objects from pixels. mini-LIBERO places every object anywhere on the table (LIBERO perturbs a few cm),
which a CPU-sized VLM did not learn to localise from pixels within hours (README, "The embedded teacher
and what it can do"); this observation is the option for such experiments. The shipped teacher uses the
plain 8-D state.

Layout of the extended `agent_pos` (float32, `OBJECT_STATE_DIM` = 8 + 4 * 16 + 2 = 74):
  [0:8]    the proprio state (eef position m, eef axis-angle rad, 2 finger joints m), as without it;
  [8:72]   one slot of 4 per object in `OBJECT_SLOTS` order (fixed for every suite, so the instruction,
           not the slot, names the object): present flag (1/0), object position minus eef position (m, world);
           absent objects are all zeros;
  [72:74]  drawer slide (m) and stove switch hinge (rad); 0 when the scene has no such fixture.
"""

from __future__ import annotations

import json
from pathlib import Path

import mujoco
import numpy as np

from snapflow.sim.scene import OBJECTS

PROPRIO_DIM = 8
OBJECT_SLOTS: tuple[str, ...] = tuple(OBJECTS)
FIXTURE_JOINTS = ("drawer_slide", "switch_hinge")
SLOT_SIZE = 4  # present flag + relative position (3)
OBJECT_STATE_DIM = PROPRIO_DIM + SLOT_SIZE * len(OBJECT_SLOTS) + len(FIXTURE_JOINTS)


def state_dim(object_state: bool) -> int:
    """Length of `agent_pos` (= LeRobot's `observation.state`) with or without object state."""
    return OBJECT_STATE_DIM if object_state else PROPRIO_DIM


def object_state_for_dim(dim: int) -> bool:
    """Whether a policy whose `observation.state` has ``dim`` entries expects object state.

    Raises ValueError for any other length, so a checkpoint trained on another robot state fails early.
    """
    if dim == PROPRIO_DIM:
        return False
    if dim == OBJECT_STATE_DIM:
        return True
    raise ValueError(
        f"observation.state of length {dim} is not a mini-LIBERO state: expected {PROPRIO_DIM} "
        f"(proprio) or {OBJECT_STATE_DIM} (proprio + object state, snapflow.sim.object_state)"
    )


def policy_uses_object_state(policy_dir: str | Path) -> bool:
    """Whether the LeRobot checkpoint or snapflow-export dir ``policy_dir`` expects the object state.

    Reads its config.json (exports carry a `snapflow_onnx` one); raises for a missing file or state input.
    """
    config = Path(policy_dir) / "config.json"
    if not config.is_file():
        raise FileNotFoundError(
            f"{policy_dir} has no config.json: not a LeRobot checkpoint or snapflow-export dir"
        )
    features = json.loads(config.read_text()).get("input_features", {})
    if "observation.state" not in features:
        raise ValueError(f"{config} declares no observation.state input")
    return object_state_for_dim(int(features["observation.state"]["shape"][0]))


class ObjectStateReader:
    """Reads the object part of the state from one compiled scene (body / joint ids resolved once)."""

    def __init__(self, model: mujoco.MjModel) -> None:
        bodies = {model.body(b).name: b for b in range(model.nbody)}
        joints = {model.joint(j).name: j for j in range(model.njnt)}
        # (slot index, body id) of the objects present in this scene
        self._present = [(i, bodies[name]) for i, name in enumerate(OBJECT_SLOTS) if name in bodies]
        self._joint_adr = [int(model.jnt_qposadr[joints[j]]) if j in joints else None for j in FIXTURE_JOINTS]

    def read(self, data: mujoco.MjData, eef_pos: np.ndarray) -> np.ndarray:
        """The (OBJECT_STATE_DIM - PROPRIO_DIM,) object part for the current state, float32."""
        slots = np.zeros((len(OBJECT_SLOTS), SLOT_SIZE), np.float32)
        for i, body in self._present:
            slots[i, 0] = 1.0
            slots[i, 1:] = data.xpos[body] - eef_pos
        joints = [0.0 if adr is None else float(data.qpos[adr]) for adr in self._joint_adr]
        return np.concatenate([slots.reshape(-1), np.asarray(joints, np.float32)])
