"""LIBERO-style layouts: every frozen state lies in its task's 2 cm regions and satisfies every relation.

The checks re-derive the constraints from the placed bodies (not from the sampler's bookkeeping), so a
region too wide, a relation broken by the jitter or a body out of reach fails here.
"""

import numpy as np
import pytest

from snapflow.sim.env import build_model
from snapflow.sim.init_states import (
    _CAB_KEEPOUT,
    _STOVE_KEEPOUT,
    CLEARANCE,
    GRASP_CLEARANCE,
    REACH,
    REGION_HALF,
    REGION_YAW,
    YAW_RANGE,
    _relation_holds,
    frozen_init_states,
    task_regions,
)
from snapflow.sim.panda import BASE_POS
from snapflow.sim.scene import OBJECTS
from snapflow.sim.tasks import SUITE_NAMES, list_tasks

SPREAD_LIMIT = (
    0.03  # m per axis across the 50 frozen states (the benchmark issue's target; regions give 2 cm)
)
WIDE_MIN_SPREAD = 0.15  # m: the wide probe must still move every graspable object this far
FLOAT32_SLACK = 1e-5  # m: frozen states are stored as float32


def _placement(model, qpos: np.ndarray, names) -> dict:
    out = {}
    for name in names:
        adr = model.jnt_qposadr[model.joint(f"{name}_joint").id]
        x, y, z, qw, _, _, qz = (float(v) for v in qpos[adr : adr + 7])
        out[name] = (x, y, z, 2 * np.arctan2(qz, qw))
    return out


@pytest.mark.parametrize("suite", SUITE_NAMES)
def test_libero_frozen_states_stay_in_their_regions_and_keep_every_constraint(suite: str) -> None:
    for task in list_tasks(suite):
        model = build_model(task)
        regions = task_regions(task.suite, task.task_id)
        assert set(regions) == set(task.objects)
        for qpos in frozen_init_states(suite, task.task_id):
            placed = _placement(model, qpos, task.objects)
            for name, (x, y, _, yaw) in placed.items():
                cx, cy, _, cyaw = regions[name]
                assert (
                    abs(x - cx) <= REGION_HALF + FLOAT32_SLACK and abs(y - cy) <= REGION_HALF + FLOAT32_SLACK
                )
                assert abs(yaw - cyaw) <= REGION_YAW + 1e-4
                assert np.hypot(x - BASE_POS[0], y - BASE_POS[1]) <= REACH, (
                    f"{task.name}: {name} out of reach"
                )
            if task.relation is not None:
                assert _relation_holds(task.relation, placed), f"{task.name}: relation {task.relation} broken"
            _assert_gaps(task, placed)


def _assert_gaps(task, placed: dict) -> None:
    stacked = {"red_cube"} if task.relation in ("on_box", "on_tray") else set()
    names = [n for n in placed if n not in stacked]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            gap = CLEARANCE + (GRASP_CLEARANCE if OBJECTS[a].graspable and OBJECTS[b].graspable else 0.0)
            dist = np.hypot(placed[a][0] - placed[b][0], placed[a][1] - placed[b][1])
            assert dist >= OBJECTS[a].radius + OBJECTS[b].radius + gap - 1e-6, (
                f"{task.name}: {a} and {b} overlap"
            )
    keepouts = ([_CAB_KEEPOUT] if "cabinet" in task.fixtures else []) + (
        [_STOVE_KEEPOUT] if "stove" in task.fixtures else []
    )
    for name in names:
        x, y = placed[name][:2]
        for x0, x1, y0, y1 in keepouts:
            assert not (x0 < x < x1 and y0 < y < y1), f"{task.name}: {name} inside a fixture keep-out"


def test_spread_targets_libero_narrow_wide_broad() -> None:
    for task in list_tasks():
        model = build_model(task)
        for layout in ("libero", "wide"):
            frozen = frozen_init_states(task.suite, task.task_id, layout)
            for name in task.objects:
                adr = model.jnt_qposadr[model.joint(f"{name}_joint").id]
                spread = (frozen[:, adr : adr + 2].max(0) - frozen[:, adr : adr + 2].min(0)).max()
                if layout == "libero":
                    assert spread <= SPREAD_LIMIT, f"{task.name}: {name} spreads {spread:.3f} m"
                elif OBJECTS[name].graspable and not (
                    task.relation in ("on_box", "on_tray") and name == "red_cube"
                ):
                    assert spread >= WIDE_MIN_SPREAD, (
                        f"{task.name}: {name} spreads only {spread:.3f} m (wide)"
                    )


def test_tasks_of_a_suite_have_their_own_layouts() -> None:
    for suite in SUITE_NAMES:
        centres = [np.array([v[:2] for v in task_regions(suite, t).values()]) for t in range(10)]
        distinct = {tuple(np.round(c.ravel(), 3)) for c in centres}
        assert len(distinct) == 10, f"{suite}: tasks share a layout"


def test_yaw_jitter_stays_within_the_wide_range() -> None:
    for task in list_tasks():
        for name, (*_, yaw) in task_regions(task.suite, task.task_id).items():
            assert abs(yaw) <= YAW_RANGE + 1e-9, f"{task.name}: {name}"
