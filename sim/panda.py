"""The Franka Panda arm and hand as an MJCF fragment, built from robosuite's low-poly STL meshes.

Kinematics and joint limits follow robosuite's `robots/panda/robot.xml` (itself from Franka's data sheet).
Only the two finger pads collide: the link meshes are visual-only, which keeps contact detection cheap
and is enough for top-down tabletop manipulation. The arm bodies use `gravcomp` and stiff joint position
servos, so the IK controller (`controller.py`) only has to track joint targets.

Frames: world z up, table top at z=0, the robot base at x=-0.56 facing +x. Lengths in metres, angles in
radians.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

# Home posture: gripper pointing straight down (fingers closing along world y), end effector at
# (-0.08, 0, 0.25) m; solved once with the IK controller from robosuite's Panda home.
# Chosen so that the whole workspace (x in [-0.15, 0.25], y in [-0.3, 0.3]) is reachable
# without folding joint 4 into its limit (a failure mode of a base raised above the table).
HOME_QPOS = np.array([0.0, -0.0867, 0.0, -2.4077, 0.0, 2.3210, 0.7859])
BASE_POS = (-0.56, 0.0, 0.0)
FINGER_OPEN = 0.04  # m per finger: fully open, an 8 cm jaw
N_ARM_JOINTS = 7

# (joint, axis-range, servo kp, kv, force limit N·m): the shoulder joints are stronger than the wrist.
_JOINTS = [
    ("joint1", (-2.8973, 2.8973), 2000, 100, 87),
    ("joint2", (-1.7628, 1.7628), 2000, 100, 87),
    ("joint3", (-2.8973, 2.8973), 2000, 100, 87),
    ("joint4", (-3.0718, -0.0698), 2000, 100, 87),
    ("joint5", (-2.8973, 2.8973), 500, 20, 12),
    ("joint6", (-0.0175, 3.7525), 500, 20, 12),
    ("joint7", (-2.8973, 2.8973), 500, 20, 12),
]


def robosuite_assets_dir() -> Path:
    """Locate robosuite's bundled mesh folder without importing robosuite (its import is slow and noisy)."""
    spec = importlib.util.find_spec("robosuite")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("robosuite is required for the Panda meshes: pip install robosuite==1.4.0")
    return Path(spec.origin).parent / "models" / "assets"


def panda_assets_xml() -> str:
    """`<mesh>` assets for the arm links, hand and fingers."""
    root = robosuite_assets_dir()
    arm = root / "robots" / "panda" / "meshes"
    hand = root / "grippers" / "meshes" / "panda_gripper"
    meshes = [f'<mesh name="panda_link{i}" file="{arm}/link{i}.stl"/>' for i in range(8)]
    meshes += [
        f'<mesh name="panda_hand" file="{hand}/hand.stl"/>',
        f'<mesh name="panda_finger" file="{hand}/finger.stl"/>',
    ]
    return "\n    ".join(meshes)


def _link_geom(i: int) -> str:
    return f'<geom type="mesh" mesh="panda_link{i}" material="robot_white" contype="0" conaffinity="0"/>'


def _finger(side: str, sign: int) -> str:
    # The pad is the only colliding part of the hand: high friction, soft enough not to jitter.
    quat = "" if sign > 0 else ' quat="0 0 0 1"'
    lo, hi = (0, FINGER_OPEN) if sign > 0 else (-FINGER_OPEN, 0)
    return f"""
          <body gravcomp="1" name="{side}finger" pos="0 0 0.0524" quat="0.707107 0 0 0.707107">
            <inertial pos="0 0 0.05" mass="0.1" diaginertia="0.01 0.01 0.005"/>
            <joint name="finger_{side}" axis="0 1 0" type="slide" range="{lo} {hi}" damping="100"
                   armature="1.0" frictionloss="1.0"/>
            <geom type="mesh" mesh="panda_finger"{quat} material="robot_grey" contype="0" conaffinity="0"/>
            <geom name="pad_{side}" type="box" size="0.008 0.004 0.01" pos="0 {sign * 0.0035} 0.041"
                  friction="2 0.05 0.0001" solref="0.01 0.5" condim="4" rgba="0 0 0 0"/>
          </body>"""


def panda_body_xml() -> str:
    """The arm, hand, end-effector site `eef` and wrist camera `eye_in_hand` (robosuite's placement)."""
    hand = f"""
        <body gravcomp="1" name="hand" quat="0.707107 0 0 -0.707107">
          <inertial pos="0 0 0.17" mass="0.3" diaginertia="0.09 0.07 0.05"/>
          <geom type="mesh" mesh="panda_hand" quat="0.707107 0 0 0.707107" material="robot_white"
                contype="0" conaffinity="0"/>
          <site name="eef" pos="0 0 0.097" size="0.005" rgba="1 0 0 0"/>{_finger("left", 1)}{_finger("right", -1)}
        </body>"""
    # body frames (pos, quat) between consecutive joints, from robosuite's robot.xml
    frames = [
        'pos="0 0 0.333"',
        'quat="0.707107 -0.707107 0 0"',
        'pos="0 -0.316 0" quat="0.707107 0.707107 0 0"',
        'pos="0.0825 0 0" quat="0.707107 0.707107 0 0"',
        'pos="-0.0825 0.384 0" quat="0.707107 -0.707107 0 0"',
        'quat="0.707107 0.707107 0 0"',
        'pos="0.088 0 0" quat="0.707107 0.707107 0 0"',
    ]
    inertials = [
        ("0 0 -0.07", 3, 0.3),
        ("0 -0.1 0", 3, 0.3),
        ("0.04 0 -0.05", 2, 0.2),
        ("-0.04 0.05 0", 2, 0.2),
        ("0 0 -0.15", 2, 0.2),
        ("0.06 0 0", 1.5, 0.1),
        ("0 0 0.08", 0.5, 0.05),
    ]
    xml = f'<body name="link0" pos="{BASE_POS[0]} {BASE_POS[1]} {BASE_POS[2]}">{_link_geom(0)}'
    for i, ((name, (lo, hi), _, _, _), frame, (ipos, mass, inertia)) in enumerate(
        zip(_JOINTS, frames, inertials, strict=True), start=1
    ):
        damping = 0.1 if i <= 4 else 0.01
        xml += (
            f'\n<body gravcomp="1" name="link{i}" {frame}>'
            f'<inertial pos="{ipos}" mass="{mass}" diaginertia="{inertia} {inertia} {inertia}"/>'
            f'<joint name="{name}" axis="0 0 1" range="{lo} {hi}" damping="{damping}" armature="0.1"/>'
            f"{_link_geom(i)}"
        )
    xml += (
        '\n<body gravcomp="1" name="right_hand" pos="0 0 0.1065" quat="0.924 0 0 -0.383">'
        '<camera name="eye_in_hand" pos="0.05 0 0" quat="0 0.707108 0.707108 0" fovy="75"/>'
        f"{hand}</body>"
    )
    xml += "</body>" * (len(_JOINTS) + 1)
    return xml


def panda_actuators_xml() -> str:
    """Joint position servos for the arm plus one position servo per finger."""
    acts = [
        f'<position name="act_{n}" joint="{n}" kp="{kp}" kv="{kv}" ctrlrange="-3.1 3.1" forcerange="-{f} {f}"/>'
        for n, _, kp, kv, f in _JOINTS
    ]
    acts += [
        f'<position name="act_finger_left" joint="finger_left" kp="1000" ctrlrange="0 {FINGER_OPEN}" '
        'forcerange="-20 20"/>',
        f'<position name="act_finger_right" joint="finger_right" kp="1000" ctrlrange="-{FINGER_OPEN} 0" '
        'forcerange="-20 20"/>',
    ]
    return "\n    ".join(acts)
