"""MJCF builder for mini-LIBERO scenes: table, Panda, cameras, graspable objects and fixtures.

Everything except the robot meshes is a MuJoCo primitive, so a scene stays at about 7 k mesh vertices and
one 128 px frame costs a few milliseconds under llvmpipe. No shadows, reflections or MSAA (those multiply
the software-rendering cost 6-7x).

Movable things (objects, plate, bowl, basket, ...) are free bodies whose poses live in qpos, so an init
state is just a qpos vector. The cabinet (with its sliding drawer) and the stove (with its rocker switch)
are fixed to the table at `CABINET_POS` / `STOVE_POS`; their joints are in qpos too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from snapflow.sim.panda import panda_actuators_xml, panda_assets_xml, panda_body_xml

# Offscreen framebuffer must be at least the largest rendered image.
MAX_RESOLUTION = 512
# Rendering budget: llvmpipe is vertex-bound, so primitives get coarse tessellation (16 slices, unsplit box
# faces; measured -30 % CPU for two 128 px cameras) and the floor plane a 1 m render grid.


@dataclass(frozen=True)
class ObjectSpec:
    """A free rigid body built from primitives.

    Attributes:
        label: words used in instructions ("red cube").
        geoms: MJCF `<geom/>` (and `<site/>`) strings in the body frame (body origin = geometric centre).
        half_height: metres from the body origin down to its resting face; the sampler puts it there.
        radius: metres, footprint radius used for collision-free placement.
        graspable: whether experts may pick it (landmarks and containers are heavy and not picked).
    """

    label: str
    geoms: tuple[str, ...]
    half_height: float
    radius: float
    graspable: bool = True


_OBJ_CONTACT = 'friction="1 0.01 0.001" condim="4"'


def _cube(rgba: str) -> tuple[str, ...]:
    return (f'<geom type="box" size="0.02 0.02 0.02" rgba="{rgba}" mass="0.05" {_OBJ_CONTACT}/>',)


def _can(rgba: str) -> tuple[str, ...]:
    return (f'<geom type="cylinder" size="0.02 0.035" rgba="{rgba}" mass="0.06" {_OBJ_CONTACT}/>',)


def _carton(rgba: str) -> tuple[str, ...]:
    return (f'<geom type="box" size="0.025 0.018 0.035" rgba="{rgba}" mass="0.06" {_OBJ_CONTACT}/>',)


def _walls(name: str, hx: float, hy: float, wall_h: float, rgba: str, mass: float) -> tuple[str, ...]:
    """A floor plus four walls: a basket-like open container centred on the body origin.

    The walls stop 2 mm above the table so only the floor touches it (4 contacts instead of 20).
    """
    t = 0.004  # wall half-thickness (m)
    g = f'rgba="{rgba}" mass="{mass / 5:.3f}"'
    wh, wz = wall_h - 0.001, 0.001  # wall half-height and centre offset
    return (
        f'<geom name="{name}_floor" type="box" size="{hx} {hy} {t}" pos="0 0 {-wall_h + t}" {g}/>',
        f'<geom type="box" size="{hx} {t} {wh}" pos="0 {hy} {wz}" {g}/>',
        f'<geom type="box" size="{hx} {t} {wh}" pos="0 {-hy} {wz}" {g}/>',
        f'<geom type="box" size="{t} {hy} {wh}" pos="{hx} 0 {wz}" {g}/>',
        f'<geom type="box" size="{t} {hy} {wh}" pos="{-hx} 0 {wz}" {g}/>',
        f'<site name="{name}_interior" type="box" size="{hx - t} {hy - t} {wall_h}" rgba="0 0 0 0"/>',
    )


def _bowl() -> tuple[str, ...]:
    # A shallow octagonal ring on a disc: reads as a bowl from both cameras with 9 primitives.
    import math

    # Only the disc touches the table (the ring floats 2 mm above it): 1 contact pair instead of 9.
    geoms = ['<geom type="cylinder" size="0.05 0.004" pos="0 0 -0.011" rgba=".15 .15 .15 1" mass="0.3"/>']
    for k in range(8):
        a = k * math.pi / 4
        geoms.append(
            f'<geom type="box" size="0.006 0.021 0.014" pos="{0.05 * math.cos(a):.4f} '
            f'{0.05 * math.sin(a):.4f} 0.001" euler="0 0 {a:.4f}" rgba=".15 .15 .15 1" mass="0.05"/>'
        )
    return tuple(geoms)


# Catalogue of movable bodies. Keys are MuJoCo body names and appear in predicates and experts.
OBJECTS: dict[str, ObjectSpec] = {
    "red_cube": ObjectSpec("red cube", _cube(".85 .1 .1 1"), 0.02, 0.03),
    "red_cube_2": ObjectSpec("red cube", _cube(".85 .1 .1 1"), 0.02, 0.03),
    "green_cube": ObjectSpec("green cube", _cube(".1 .7 .2 1"), 0.02, 0.03),
    "white_cube": ObjectSpec("white cube", _cube(".95 .95 .95 1"), 0.02, 0.03),
    "cyan_cube": ObjectSpec("cyan cube", _cube(".1 .8 .85 1"), 0.02, 0.03),
    "blue_can": ObjectSpec("blue can", _can(".1 .25 .85 1"), 0.035, 0.03),
    "orange_can": ObjectSpec("orange can", _can(".95 .5 .1 1"), 0.035, 0.03),
    "black_can": ObjectSpec("black can", _can(".12 .12 .12 1"), 0.035, 0.03),
    "yellow_carton": ObjectSpec("yellow carton", _carton(".95 .85 .1 1"), 0.035, 0.033),
    "purple_carton": ObjectSpec("purple carton", _carton(".55 .2 .7 1"), 0.035, 0.033),
    "pink_carton": ObjectSpec("pink carton", _carton("1 .55 .7 1"), 0.035, 0.033),
    # landmarks and containers: heavy, so the arm does not shove them around
    "plate": ObjectSpec(
        "plate",
        ('<geom type="cylinder" size="0.07 0.005" rgba=".95 .95 .92 1" mass="0.8"/>',),
        0.005,
        0.075,
        graspable=False,
    ),
    "bowl": ObjectSpec("bowl", _bowl(), 0.015, 0.062, graspable=False),
    "box": ObjectSpec(
        "box",
        ('<geom type="box" size="0.04 0.055 0.035" rgba=".75 .55 .25 1" mass="1.0"/>',),
        0.035,
        0.07,
        graspable=False,
    ),
    "tray": ObjectSpec(
        "tray",
        ('<geom type="box" size="0.055 0.055 0.008" rgba=".45 .3 .15 1" mass="1.0"/>',),
        0.008,
        0.078,
        graspable=False,
    ),
    "basket": ObjectSpec(
        "basket", _walls("basket", 0.075, 0.075, 0.03, ".6 .45 .3 1", 1.5), 0.03, 0.107, graspable=False
    ),
}

# Fixed fixtures: positions (x, y) of their centres. The cabinet faces -y (the middle of the table), so
# its drawer slides out sideways, in view of the agentview camera and along the arm's easy direction.
CABINET_POS = (0.13, 0.21)
CABINET_HALF = (0.08, 0.11, 0.05)  # shell half extents (m) in the cabinet frame: depth, width, height
DRAWER_TRAVEL = 0.14  # m the drawer slides out (towards -y in the world)
STOVE_POS = (0.15, -0.19)
FIXTURE_RADIUS = {"cabinet": 0.145, "stove": 0.13}


def _cabinet_xml() -> str:
    """A cabinet shell with one drawer on a slide joint (qpos 0 = closed, +DRAWER_TRAVEL = fully out).

    Built in a frame whose -x is the drawer's opening direction, then turned by +90 degrees about z so the
    drawer opens towards world -y. The drawer front rises 2 cm above the cabinet top: experts hook it from
    behind to pull it open.
    """
    cx, cy = CABINET_POS
    hx, hy, hz = CABINET_HALF
    wood = 'rgba=".55 .38 .22 1"'
    t = 0.006
    shell = [
        f'<geom name="cabinet_top" type="box" size="{hx} {hy} {t}" pos="0 0 {2 * hz - t}" {wood}/>',
        f'<geom type="box" size="{hx} {t} {hz}" pos="0 {hy - t} {hz}" {wood}/>',
        f'<geom type="box" size="{hx} {t} {hz}" pos="0 {-hy + t} {hz}" {wood}/>',
        f'<geom type="box" size="{t} {hy} {hz}" pos="{hx - t} 0 {hz}" {wood}/>',
    ]
    dx, dy, floor_z = hx - 0.012, hy - 0.016, 0.012  # drawer box half extents and floor height
    front = 'rgba=".7 .5 .3 1"'
    drawer = [
        f'<geom name="drawer_floor" type="box" size="{dx} {dy} {t}" pos="{0.006} 0 {floor_z}" {wood}/>',
        f'<geom type="box" size="{dx} {t} 0.03" pos="0.006 {dy - t} {floor_z + 0.03}" {wood}/>',
        f'<geom type="box" size="{dx} {t} 0.03" pos="0.006 {-dy + t} {floor_z + 0.03}" {wood}/>',
        f'<geom type="box" size="{t} {dy} 0.03" pos="{dx} 0 {floor_z + 0.03}" {wood}/>',
        f'<geom name="drawer_front" type="box" size="{t} {hy - 0.008} 0.055" pos="{-hx + t} 0 0.065" {front}/>',
        f'<geom type="box" size="0.006 0.035 0.006" pos="{-hx - 0.01} 0 0.06" rgba=".2 .2 .2 1" '
        'contype="0" conaffinity="0"/>',  # visual handle bar
    ]
    return (
        f'<body name="cabinet" pos="{cx} {cy} 0" quat="0.707107 0 0 0.707107">{"".join(shell)}'
        f'<body name="drawer"><joint name="drawer_slide" type="slide" axis="-1 0 0" '
        f'range="0 {DRAWER_TRAVEL}" damping="8" frictionloss="0.3" armature="0.1"/>'
        '<inertial pos="0 0 0.04" mass="0.5" diaginertia="0.005 0.005 0.005"/>'
        f"{''.join(drawer)}"
        f'<site name="drawer_interior" type="box" size="{dx - 0.01} {dy - 0.01} 0.04" pos="0.006 0 0.05" '
        'rgba="0 0 0 0"/></body></body>'
    )


# Rocker switch: qpos > 0 presses its +x end down. Range and thresholds in radians.
SWITCH_RANGE = 0.3


def _stove_xml() -> str:
    """A burner plate and a rocker switch beside it (hinge about y; +x end down = on)."""
    sx, sy = STOVE_POS
    return (
        f'<body name="stove" pos="{sx} {sy} 0">'
        '<geom name="burner" type="cylinder" size="0.06 0.008" pos="0 0 0.008" rgba=".25 .25 .28 1"/>'
        '<geom type="box" size="0.03 0.025 0.012" pos="-0.095 0 0.012" rgba=".3 .3 .3 1"/>'
        '<body name="switch" pos="-0.095 0 0.03">'
        f'<joint name="switch_hinge" type="hinge" axis="0 1 0" range="{-SWITCH_RANGE} {SWITCH_RANGE}" '
        'damping="0.3" frictionloss="0.03" armature="0.002"/>'
        '<geom name="switch_rocker" type="box" size="0.03 0.02 0.005" rgba=".9 .9 .9 1" mass="0.02"/>'
        '<geom type="box" size="0.008 0.02 0.006" pos="0.022 0 0.005" rgba=".8 .1 .1 1" mass="0.005" '
        'contype="0" conaffinity="0"/>'
        "</body></body>"
    )


# A flat barrier welded to the table across the carry (the multimodal probe's obstacle): taller than the
# carry height, so a carried object cannot pass over it, and flat-faced, so an object pushed straight into
# it is not deflected to either side (a round post would do that).
BARRIER_HALF = (0.04, 0.015, 0.13)  # m: half width (across the carry), half thickness, half height


def _barrier_xml(xy: tuple[float, float]) -> str:
    """The barrier for a carry along y (the multimodal suite's): its width spans x."""
    hx, hy, hz = BARRIER_HALF
    return (
        f'<body name="barrier" pos="{xy[0]} {xy[1]} {hz}">'
        f'<geom name="barrier" type="box" size="{hx} {hy} {hz}" rgba=".2 .55 .75 1"/>'
        "</body>"
    )


def scene_xml(
    objects: Iterable[str], fixtures: Iterable[str] = (), obstacle: tuple[float, float] | None = None
) -> str:
    """Build a complete MJCF model.

    Args:
        objects: keys of `OBJECTS`, added as free bodies (in this order in qpos, after the 9 robot dofs).
        fixtures: subset of {"cabinet", "stove"}.
        obstacle: (x, y) in m of a barrier welded to the table (no joint: it adds nothing to qpos or to the
            object state), or None.
    """
    objects, fixtures = list(objects), list(fixtures)
    unknown = [o for o in objects if o not in OBJECTS] + [f for f in fixtures if f not in FIXTURE_RADIUS]
    if unknown:
        raise ValueError(
            f"unknown scene parts {unknown}; objects: {sorted(OBJECTS)}, fixtures: {sorted(FIXTURE_RADIUS)}"
        )
    bodies = []
    for name in objects:
        spec = OBJECTS[name]
        bodies.append(
            f'<body name="{name}" pos="0 0 {spec.half_height}"><freejoint name="{name}_joint"/>'
            f"{''.join(spec.geoms)}</body>"
        )
    if "cabinet" in fixtures:
        bodies.append(_cabinet_xml())
    if "stove" in fixtures:
        bodies.append(_stove_xml())
    if obstacle is not None:
        bodies.append(_barrier_xml(obstacle))
    body_xml = "\n    ".join(bodies)
    # Fixtures are welded to the world, so MuJoCo's parent filter does not apply: the moving part
    # would collide with its own housing. Joint ranges bound their motion instead.
    excludes = ['<exclude body1="leftfinger" body2="rightfinger"/>']
    if "cabinet" in fixtures:
        excludes.append('<exclude body1="cabinet" body2="drawer"/>')
    if "stove" in fixtures:
        excludes.append('<exclude body1="stove" body2="switch"/>')
    return f"""<mujoco model="mini_libero">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="0.002" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <global offwidth="{MAX_RESOLUTION}" offheight="{MAX_RESOLUTION}"/>
    <quality shadowsize="0" offsamples="0" numslices="16" numstacks="6" numquads="1"/>
    <headlight ambient=".45 .45 .45" diffuse=".5 .5 .5" specular="0 0 0"/>
  </visual>
  <asset>
    {panda_assets_xml()}
    <material name="robot_white" rgba=".95 .95 .95 1"/>
    <material name="robot_grey" rgba=".5 .5 .5 1"/>
    <texture name="wood" type="2d" builtin="checker" rgb1=".55 .4 .25" rgb2=".6 .45 .3" width="64" height="64"/>
    <material name="table" texture="wood" texrepeat="4 4"/>
  </asset>
  <worldbody>
    <light pos="0 0 2.0" dir="0 0 -1" castshadow="false" diffuse=".5 .5 .5"/>
    <geom name="floor" type="plane" size="3 3 1" pos="0 0 -0.8" rgba=".3 .3 .35 1" contype="0" conaffinity="0"/>
    <geom name="table" type="box" size="0.6 0.6 0.4" pos="0 0 -0.4" material="table"/>
    <camera name="agentview" pos="0.6 0 0.55" xyaxes="0 1 0 -0.6 0 0.65" fovy="55"/>
    {panda_body_xml()}
    {body_xml}
  </worldbody>
  <contact>{"".join(excludes)}</contact>
  <actuator>
    {panda_actuators_xml()}
  </actuator>
</mujoco>"""
