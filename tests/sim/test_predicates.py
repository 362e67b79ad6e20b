"""Each predicate true and false on states constructed by hand (no physics stepping, just mj_forward)."""

import mujoco
import numpy as np
import pytest

from snapflow.sim.env import build_model
from snapflow.sim.predicates import And, Close, On, Open, TurnOff, TurnOn, in_basket, in_drawer
from snapflow.sim.scene import CABINET_POS, DRAWER_TRAVEL, SWITCH_RANGE
from snapflow.sim.tasks import get_task


def _world(suite: str, task_id: int) -> tuple[mujoco.MjModel, mujoco.MjData]:
    model = build_model(get_task(suite, task_id))
    data = mujoco.MjData(model)
    # Spread all free bodies out on the table, far from each other.
    for k, name in enumerate(get_task(suite, task_id).objects):
        _put(model, data, name, (-0.15 + 0.0 * k, -0.25 + 0.1 * k, 0.3 + 0.1 * k))
    mujoco.mj_forward(model, data)
    return model, data


def _put(model: mujoco.MjModel, data: mujoco.MjData, body: str, pos: tuple[float, float, float]) -> None:
    adr = model.jnt_qposadr[model.joint(f"{body}_joint").id]
    data.qpos[adr : adr + 7] = (*pos, 1, 0, 0, 0)


@pytest.fixture
def kitchen() -> tuple[mujoco.MjModel, mujoco.MjData]:
    return _world("goal", 0)


def test_on(kitchen: tuple) -> None:
    m, d = kitchen
    _put(m, d, "plate", (0.0, 0.0, 0.005))
    _put(m, d, "red_cube", (0.01, 0.0, 0.0295))  # resting on the plate (1 mm overlap = contact)
    mujoco.mj_forward(m, d)
    assert On("red_cube", "plate")(m, d)
    assert not On("plate", "red_cube")(m, d), "support below the object"
    _put(m, d, "red_cube", (0.01, 0.0, 0.05))  # hovering: no contact
    mujoco.mj_forward(m, d)
    assert not On("red_cube", "plate")(m, d)
    _put(m, d, "red_cube", (0.12, 0.0, 0.0195))  # beside the plate on the table
    mujoco.mj_forward(m, d)
    assert not On("red_cube", "plate")(m, d)


def test_in_drawer_and_open_close(kitchen: tuple) -> None:
    m, d = kitchen
    d.joint("drawer_slide").qpos = DRAWER_TRAVEL
    mujoco.mj_forward(m, d)
    assert Open()(m, d) and not Close()(m, d)
    floor_top = d.geom("drawer_floor").xpos[2] + m.geom("drawer_floor").size[2]
    centre = d.body("drawer").xpos
    _put(m, d, "green_cube", (centre[0] - 0.02, centre[1], floor_top + 0.0195))
    mujoco.mj_forward(m, d)
    assert in_drawer("green_cube")(m, d)
    _put(m, d, "green_cube", (CABINET_POS[0] - 0.3, centre[1], 0.0195))
    mujoco.mj_forward(m, d)
    assert not in_drawer("green_cube")(m, d)
    d.joint("drawer_slide").qpos = 0.0
    mujoco.mj_forward(m, d)
    assert Close()(m, d) and not Open()(m, d)
    d.joint("drawer_slide").qpos = 0.5 * DRAWER_TRAVEL  # half open: neither
    mujoco.mj_forward(m, d)
    assert not Close()(m, d) and not Open()(m, d)


def test_switch_on_off(kitchen: tuple) -> None:
    m, d = kitchen
    for q, on, off in [(SWITCH_RANGE, True, False), (-SWITCH_RANGE, False, True), (0.0, False, False)]:
        d.joint("switch_hinge").qpos = q
        mujoco.mj_forward(m, d)
        assert (TurnOn()(m, d), TurnOff()(m, d)) == (on, off)


def test_in_basket_and_conjunction() -> None:
    m, d = _world("long", 0)
    _put(m, d, "basket", (0.0, 0.0, 0.03))
    _put(m, d, "red_cube", (0.03, 0.0, 0.0275))  # on the basket floor (top at 0.008)
    _put(m, d, "blue_can", (0.0, 0.2, 0.035))  # on the table
    mujoco.mj_forward(m, d)
    assert in_basket("red_cube")(m, d)
    assert not in_basket("blue_can")(m, d)
    both = And((in_basket("red_cube"), in_basket("blue_can")))
    assert not both(m, d)
    _put(m, d, "blue_can", (-0.035, 0.0, 0.0425))
    mujoco.mj_forward(m, d)
    assert both(m, d)
    assert get_task("long", 0).goal(m, d), "task 0's goal is exactly this conjunction"
    _put(m, d, "red_cube", (0.03, 0.0, 0.2))  # held above the basket: inside the box? no, and no contact
    mujoco.mj_forward(m, d)
    assert not in_basket("red_cube")(m, d)


def test_predicates_are_checked_on_reset_state() -> None:
    """Init states never start solved (otherwise an episode would end at step 0)."""
    from snapflow.sim.env import MiniLiberoEnv

    for suite, task_id in [("goal", 1), ("goal", 3), ("long", 4), ("spatial", 7)]:
        env = MiniLiberoEnv(suite, task_id, render=False)
        for i in range(3):
            _, info = env.reset(options={"init_state": i})
            assert info["is_success"] is False
        assert np.isfinite(env.data.qpos).all()
