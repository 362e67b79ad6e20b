"""Goal predicates in the spirit of LIBERO's BDDL atoms, evaluated on MuJoCo state every step.

As in hf-libero: `On` needs contact plus "above and horizontally close", `In` needs the object's centre
inside a container's interior box plus contact with the container, and `Open`/`Close`/`TurnOn`/`TurnOff`
threshold a fixture joint. Success is the conjunction (`And`) of a task's atoms. Units: metres, radians.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from snapflow.sim.scene import DRAWER_TRAVEL

ON_XY_TOL = 0.05  # m, horizontal centre distance for "on" (LIBERO uses 3 cm on smaller props)
OPEN_FRACTION = 0.7  # drawer counts as open once pulled out by 70 % of its travel
CLOSED_TOL = 0.01  # m, drawer counts as closed within 1 cm of shut
SWITCH_ON = 0.15  # rad, rocker counts as on beyond this (range +-0.3)


# Name lookups through MuJoCo's named accessors (`model.body(name)`, `data.joint(name)`) build view objects
# and cost milliseconds; predicates run every step (and the burner colour every frame), so they resolve
# names with mj_name2id, which is a hash lookup.
def _id(model: mujoco.MjModel, kind: mujoco.mjtObj, name: str) -> int:
    idx = mujoco.mj_name2id(model, kind, name)
    if idx < 0:
        raise KeyError(f"no {kind.name.removeprefix('mjOBJ_').lower()} named {name!r} in this scene")
    return idx


def _body(model: mujoco.MjModel, name: str) -> int:
    return _id(model, mujoco.mjtObj.mjOBJ_BODY, name)


def _joint_pos(model: mujoco.MjModel, data: mujoco.MjData, name: str) -> float:
    return float(data.qpos[model.jnt_qposadr[_id(model, mujoco.mjtObj.mjOBJ_JOINT, name)]])


def _in_contact(model: mujoco.MjModel, data: mujoco.MjData, body_a: int, body_b: int) -> bool:
    for i in range(data.ncon):
        con = data.contact[i]
        b1, b2 = model.geom_bodyid[con.geom1], model.geom_bodyid[con.geom2]
        if (b1 == body_a and b2 == body_b) or (b1 == body_b and b2 == body_a):
            return True
    return False


class Predicate:
    """Base class: a callable `(model, data) -> bool` with a readable `repr`."""

    def __call__(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class On(Predicate):
    """`obj` rests on `support`: in contact, centre above the support's origin, within `xy_tol`."""

    obj: str
    support: str
    xy_tol: float = ON_XY_TOL

    def __call__(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        a, b = _body(model, self.obj), _body(model, self.support)
        pa, pb = data.xpos[a], data.xpos[b]
        return bool(
            pa[2] > pb[2] and np.linalg.norm(pa[:2] - pb[:2]) < self.xy_tol and _in_contact(model, data, a, b)
        )


@dataclass(frozen=True)
class In(Predicate):
    """`obj`'s centre is inside the box site `region` and it touches `container` (the site's body)."""

    obj: str
    container: str
    region: str

    def __call__(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        a, c = _body(model, self.obj), _body(model, self.container)
        site = _id(model, mujoco.mjtObj.mjOBJ_SITE, self.region)
        local = data.site_xmat[site].reshape(3, 3).T @ (data.xpos[a] - data.site_xpos[site])
        inside = bool(np.all(np.abs(local) <= model.site_size[site]))
        return inside and _in_contact(model, data, a, c)


@dataclass(frozen=True)
class Open(Predicate):
    """The drawer joint is pulled out by at least `OPEN_FRACTION` of its travel."""

    joint: str = "drawer_slide"

    def __call__(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        return bool(_joint_pos(model, data, self.joint) > OPEN_FRACTION * DRAWER_TRAVEL)


@dataclass(frozen=True)
class Close(Predicate):
    """The drawer joint is within `CLOSED_TOL` of shut."""

    joint: str = "drawer_slide"

    def __call__(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        return bool(_joint_pos(model, data, self.joint) < CLOSED_TOL)


@dataclass(frozen=True)
class TurnOn(Predicate):
    """The rocker switch is pressed to its on side (LIBERO's `Turnon`)."""

    joint: str = "switch_hinge"

    def __call__(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        return bool(_joint_pos(model, data, self.joint) > SWITCH_ON)


@dataclass(frozen=True)
class TurnOff(Predicate):
    """The rocker switch is pressed to its off side."""

    joint: str = "switch_hinge"

    def __call__(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        return bool(_joint_pos(model, data, self.joint) < -SWITCH_ON)


@dataclass(frozen=True)
class And(Predicate):
    """Conjunction of atoms: all must hold at the same step."""

    atoms: tuple[Predicate, ...]

    def __call__(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        return all(atom(model, data) for atom in self.atoms)


def in_basket(obj: str) -> In:
    return In(obj, "basket", "basket_interior")


def in_drawer(obj: str) -> In:
    return In(obj, "drawer", "drawer_interior")
