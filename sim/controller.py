"""LIBERO-style delta end-effector control for the Panda, by damped-least-squares IK.

Action semantics follow robosuite's OSC_POSE controller with `control_delta=True`, which LIBERO uses:
a = [dx, dy, dz, drx, dry, drz, grip] in [-1, 1]; the goal pose is the current end-effector pose moved by
`POS_SCALE * a[:3]` metres and rotated by `ROT_SCALE * a[3:6]` (axis-angle, radians, world frame);
grip <= 0 opens the hand, > 0 closes it. One action lasts one 20 Hz control period = `N_SUBSTEPS` physics
steps of 2 ms. Instead of operational-space torques we re-solve a DLS-IK step `IK_SOLVES` times per
period and hand joint targets to the position servos: cheaper and stiffer, with the same interface.
"""

from __future__ import annotations

import mujoco
import numpy as np

from snapflow.sim.panda import FINGER_OPEN, HOME_QPOS, N_ARM_JOINTS

POS_SCALE = 0.05  # m per unit action per step (robosuite OSC_POSE output_max)
ROT_SCALE = 0.5  # rad per unit action per step
CONTROL_HZ = 20
N_SUBSTEPS = 25  # 25 x 2 ms = 50 ms = one 20 Hz period
IK_SOLVES = 5  # re-solve every 5 substeps; one solve per period lags visibly
IK_DAMPING = 1e-4  # DLS regulariser (m^2); keeps the solve finite near singularities
NULLSPACE_GAIN = 0.1  # pull towards HOME_QPOS in the Jacobian null space, per solve


def quat_error(goal_quat: np.ndarray, quat: np.ndarray) -> np.ndarray:
    """Rotation vector (rad, world frame) that rotates `quat` onto `goal_quat` (both wxyz)."""
    inv, err, vel = np.zeros(4), np.zeros(4), np.zeros(3)
    mujoco.mju_negQuat(inv, quat)
    mujoco.mju_mulQuat(err, goal_quat, inv)
    mujoco.mju_quat2Vel(vel, err, 1.0)
    return vel


class DeltaEEFController:
    """Turns one normalised 7-D action into `N_SUBSTEPS` of physics.

    Args:
        model, data: the MuJoCo model/data holding a Panda built by `panda.py` (arm joints first in qpos).
    """

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        self.model, self.data = model, data
        self.eef = model.site("eef").id
        self._jac = np.zeros((6, model.nv))
        self._jnt_lo = model.jnt_range[:N_ARM_JOINTS, 0].copy()
        self._jnt_hi = model.jnt_range[:N_ARM_JOINTS, 1].copy()
        self._finger_ctrl = [model.actuator("act_finger_left").id, model.actuator("act_finger_right").id]

    def eef_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position (m) and orientation quaternion (wxyz) in the world frame."""
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[self.eef])
        return self.data.site_xpos[self.eef].copy(), quat

    def step(self, action: np.ndarray) -> None:
        """Apply one already-validated action in [-1, 1]^7 for one control period."""
        d = self.data
        open_width = 0.0 if action[6] > 0 else FINGER_OPEN
        d.ctrl[self._finger_ctrl[0]] = open_width
        d.ctrl[self._finger_ctrl[1]] = -open_width
        pos, quat = self.eef_pose()
        goal_pos = pos + POS_SCALE * action[:3]
        drot = ROT_SCALE * action[3:6]
        angle = float(np.linalg.norm(drot))
        dquat, goal_quat = np.array([1.0, 0, 0, 0]), np.zeros(4)
        if angle > 1e-9:
            mujoco.mju_axisAngle2Quat(dquat, drot / angle, angle)
        mujoco.mju_mulQuat(goal_quat, dquat, quat)
        for _ in range(IK_SOLVES):
            d.ctrl[:N_ARM_JOINTS] = self._ik_target(goal_pos, goal_quat)
            mujoco.mj_step(self.model, d, N_SUBSTEPS // IK_SOLVES)

    def _ik_target(self, goal_pos: np.ndarray, goal_quat: np.ndarray) -> np.ndarray:
        pos, quat = self.eef_pose()
        err = np.concatenate([goal_pos - pos, quat_error(goal_quat, quat)])
        mujoco.mj_jacSite(self.model, self.data, self._jac[:3], self._jac[3:], self.eef)
        jac = self._jac[:, :N_ARM_JOINTS]
        jac_pinv = jac.T @ np.linalg.solve(jac @ jac.T + IK_DAMPING * np.eye(6), np.eye(6))
        q = self.data.qpos[:N_ARM_JOINTS]
        null = np.eye(N_ARM_JOINTS) - jac_pinv @ jac
        dq = jac_pinv @ err + null @ (NULLSPACE_GAIN * (HOME_QPOS - q))
        return np.clip(q + dq, self._jnt_lo, self._jnt_hi)
