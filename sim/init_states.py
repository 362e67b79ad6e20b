"""Init states: seeded layout generators plus 50 frozen states per task (LIBERO's `init_files` idea).

An init state is a qpos vector: the arm at `HOME_QPOS` with the hand open, every free body resting on the
table (or on its landmark), fixture joints at the task's initial values. Two layouts exist:

  - `"libero"` (default), laid out as LIBERO's BDDL files are: every task has its own region layout, a
    fixed centre per body (drawn once per task from the wide sampler with safety margins) and a small box
    around it (`REGION_HALF` = +-1 cm per axis, LIBERO's 2 cm regions) plus a small yaw jitter. The margins
    make every spatial relation, every gap and every reach hold for any draw inside the regions.
  - `"wide"`: every body drawn uniformly over the whole reachable table; a position-generalisation probe
    in the spirit of LIBERO-PRO / LIBERO-Plus, always reported apart from the main numbers.

Frozen state i of a task is exactly `sample_init_state(task, model, seed=i, layout)` stored as float32 in
`assets/init_states/<suite>.npz` (libero) or `<suite>_wide.npz`, so an evaluation's episode i always starts
from the same scene; any other seed (by convention >= 1000 for held-out evaluation) comes from the same
generator. `tests/sim` checks that the files match the generators.
"""

from __future__ import annotations

import functools
from pathlib import Path

import mujoco
import numpy as np

from snapflow.sim.layouts import DEFAULT_LAYOUT, LAYOUTS, check_layout
from snapflow.sim.panda import BASE_POS, FINGER_OPEN, HOME_QPOS, N_ARM_JOINTS
from snapflow.sim.scene import CABINET_HALF, CABINET_POS, DRAWER_TRAVEL, OBJECTS, STOVE_POS, SWITCH_RANGE
from snapflow.sim.tasks import ALL_SUITES, SUITES, Task, get_task

N_FROZEN = 50
HELDOUT_SEED_START = 1000  # seeds used for held-out evaluation; frozen states use seeds 0..49
ASSET_DIR = Path(__file__).parent / "assets" / "init_states"

WORKSPACE_X = (-0.21, 0.21)  # m, reachable band for body centres with the gripper pointing down
WORKSPACE_Y = (-0.26, 0.26)
REACH = 0.74  # m, max horizontal distance of a body centre from the arm base (top-down grasps fail beyond)
FINGER_SPAN = 0.02  # m, open fingers reach this far beyond a graspable object's footprint radius
CLEARANCE = 0.015  # m, minimum gap between footprints
GRASP_CLEARANCE = 0.035  # m, extra gap around graspable objects so the open fingers fit in between
YAW_RANGE = 0.25  # rad, yaw jitter of boxes (cans are symmetric); small enough for a fixed-yaw grasp
MAX_TRIES = 2000
# Keep-out rectangles (x_lo, x_hi, y_lo, y_hi) around fixed fixtures, including the drawer's path when
# pulled out and the room the hand needs in front of it, and the switch beside the stove.
_CAB_KEEPOUT = (
    CABINET_POS[0] - CABINET_HALF[1] - 0.01,
    CABINET_POS[0] + CABINET_HALF[1] + 0.01,
    CABINET_POS[1] - CABINET_HALF[0] - DRAWER_TRAVEL - 0.04,
    CABINET_POS[1] + CABINET_HALF[0],
)
_STOVE_KEEPOUT = (STOVE_POS[0] - 0.16, STOVE_POS[0] + 0.06, STOVE_POS[1] - 0.065, STOVE_POS[1] + 0.065)

# Spatial-suite thresholds (m): the referent is "next to" a landmark within NEAR of its rim and the
# distractor is at least FAR away, so every instruction names exactly one cube.
NEAR, FAR = 0.08, 0.13
ORDER_GAP = 0.10  # m, front/back/left/right: the two cubes differ by at least this along the axis

REGION_HALF = 0.01  # m, half side of a body's region (LIBERO's BDDL regions are 2 cm x 2 cm boxes)
REGION_YAW = 0.05  # rad, yaw jitter around the region's nominal yaw (boxes, cartons; cans are symmetric)
# Two bodies each moving +-REGION_HALF per axis change their distance by at most 2*sqrt(2)*REGION_HALF
# (2.83 cm) and an axis gap by 2*REGION_HALF: the nominal layout is drawn with these margins so every
# constraint below holds anywhere inside the regions.
PAIR_MARGIN = 0.03
AXIS_MARGIN = 2 * REGION_HALF + 0.002
NOMINAL_SEED = 7_777_777  # rng stream of the per-task nominal layout, disjoint from every episode seed

DEFAULT_JOINTS = (("drawer_slide", 0.0), ("switch_hinge", -SWITCH_RANGE))  # drawer shut, stove off

Placement = dict[str, tuple[float, float, float, float]]  # body -> (x, y, z, yaw)


def _keepouts(task: Task, margin: float) -> list[tuple[float, float, float, float]]:
    boxes = ([_CAB_KEEPOUT] if "cabinet" in task.fixtures else []) + (
        [_STOVE_KEEPOUT] if "stove" in task.fixtures else []
    )
    return [(x0 - margin, x1 + margin, y0 - margin, y1 + margin) for x0, x1, y0, y1 in boxes]


def _fits(
    name: str,
    x: float,
    y: float,
    placed: Placement,
    keepouts: list,
    margin: float = 0.0,
    anchor: str | None = None,
) -> bool:
    """Whether `name` at (x, y) keeps its gaps to placed bodies and keep-outs and stays within reach.

    `margin` (m) widens every gap and shrinks the reach, so a layout drawn with margin `PAIR_MARGIN`
    still fits after every body moves anywhere inside its region; the gap to `anchor` (the landmark whose
    jitter the body shares, `_libero_layout`) needs only half of it.
    """
    spec = OBJECTS[name]
    for other, (ox, oy, _, _) in placed.items():
        gap = CLEARANCE + (GRASP_CLEARANCE if spec.graspable and OBJECTS[other].graspable else 0.0)
        slack = margin / 2 if other == anchor else margin
        if np.hypot(x - ox, y - oy) < spec.radius + OBJECTS[other].radius + gap + slack:
            return False
    if np.hypot(x - BASE_POS[0], y - BASE_POS[1]) > REACH - margin / 2:
        return False
    r = spec.radius + (FINGER_SPAN if spec.graspable else 0.0)
    return all(not (x0 - r < x < x1 + r and y0 - r < y < y1 + r) for x0, x1, y0, y1 in keepouts)


def _place(
    name: str,
    rng: np.random.Generator,
    placed: Placement,
    keepouts: list,
    margin: float,
    anchor: str | None = None,
) -> bool:
    spec = OBJECTS[name]
    lo_x, hi_x = WORKSPACE_X[0] + margin / 2, WORKSPACE_X[1] - margin / 2
    lo_y, hi_y = WORKSPACE_Y[0] + margin / 2, WORKSPACE_Y[1] - margin / 2
    for _ in range(200):
        x, y = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
        if _fits(name, x, y, placed, keepouts, margin, anchor):
            yaw_range = YAW_RANGE - (REGION_YAW if margin else 0.0)
            placed[name] = (x, y, spec.half_height, rng.uniform(-yaw_range, yaw_range))
            return True
    return False


def _dist(placed: Placement, a: str, b: str) -> float:
    return float(np.hypot(placed[a][0] - placed[b][0], placed[a][1] - placed[b][1]))


def _relation_holds(relation: str, placed: Placement, margin: float = 0.0, axis_margin: float = 0.0) -> bool:
    """Whether `red_cube` (and not `red_cube_2`) satisfies the spatial relation, with the given slack (m)."""
    (ax, ay, _, _), (bx, by, _, _) = placed["red_cube"], placed["red_cube_2"]
    if relation.startswith("next_to_"):
        mark = relation.removeprefix("next_to_")
        rim = OBJECTS[mark].radius  # the referent shares its landmark's jitter: half the slack there
        return (
            _dist(placed, "red_cube", mark) < rim + NEAR - margin / 2
            and _dist(placed, "red_cube_2", mark) > rim + FAR + margin
        )
    # left/right as seen in the agentview image (the camera faces the robot, so image-left is world -y)
    gaps = {"front": bx - ax, "back": ax - bx, "left": by - ay, "right": ay - by}
    if relation in gaps:
        return gaps[relation] > ORDER_GAP + axis_margin
    if relation == "between_bowl_box":
        mid = (np.array(placed["bowl"][:2]) + np.array(placed["box"][:2])) / 2
        return bool(np.hypot(*(np.array([bx, by]) - mid)) > FAR + margin)
    return True  # on_box / on_tray: constructed, the distractor is on the table


def _try_layout(
    task: Task, rng: np.random.Generator, margin: float = 0.0, axis_margin: float = 0.0
) -> Placement | None:
    """One draw of the whole-table sampler; None when a body found no room or the relation fails."""
    keepouts = _keepouts(task, margin / 2)
    placed: Placement = {}
    fixed = [o for o in task.objects if not OBJECTS[o].graspable]
    movable = [o for o in task.objects if OBJECTS[o].graspable]
    for name in fixed:
        if not _place(name, rng, placed, keepouts, margin):
            return None
    rel = task.relation
    if rel in ("on_box", "on_tray"):
        mark = rel.removeprefix("on_")
        mx, my, mz, _ = placed[mark]
        placed["red_cube"] = (
            mx,
            my,
            2 * mz + OBJECTS["red_cube"].half_height,
            rng.uniform(-YAW_RANGE, YAW_RANGE),
        )
    elif rel == "between_bowl_box":
        mid = (np.array(placed["bowl"][:2]) + np.array(placed["box"][:2])) / 2 + rng.uniform(-0.01, 0.01, 2)
        if not _fits("red_cube", mid[0], mid[1], placed, keepouts, margin):
            return None
        placed["red_cube"] = (
            mid[0],
            mid[1],
            OBJECTS["red_cube"].half_height,
            rng.uniform(-YAW_RANGE, YAW_RANGE),
        )
    anchor = referent_anchor(rel)
    for name in movable:
        if name not in placed and not _place(
            name, rng, placed, keepouts, margin, anchor if name == "red_cube" else None
        ):
            return None
    if rel is not None and not _relation_holds(rel, placed, margin, axis_margin):
        return None
    return placed


def referent_anchor(relation: str | None) -> str | None:
    """The landmark whose region jitter the spatial referent shares (on / next to it), if any."""
    if relation is None or not relation.startswith(("on_", "next_to_")):
        return None
    return relation.removeprefix("on_").removeprefix("next_to_")


def _draw(task: Task, rng: np.random.Generator, margin: float = 0.0, axis_margin: float = 0.0) -> Placement:
    for _ in range(MAX_TRIES):
        placed = _try_layout(task, rng, margin, axis_margin)
        if placed is not None:
            return placed
    raise RuntimeError(f"could not place the objects of {task.suite}/{task.task_id}")


@functools.lru_cache(maxsize=64)
def task_regions(suite: str, task_id: int) -> dict[str, tuple[float, float, float, float]]:
    """The task's LIBERO-style regions: body -> nominal (x, y, z, yaw) centre (m, rad).

    A body of the "libero" layout lies within `REGION_HALF` of its centre per axis and `REGION_YAW` of its
    yaw. Drawn once per task from the wide sampler with `PAIR_MARGIN` / `AXIS_MARGIN` slack (so each task
    has its own layout, as each LIBERO task has its own BDDL file).
    """
    task = get_task(suite, task_id)
    if task.regions:  # laid out by hand (the multimodal probe): resting on the table, nominal yaw 0
        return {name: (x, y, OBJECTS[name].half_height, 0.0) for name, x, y in task.regions}
    rng = np.random.default_rng([ALL_SUITES.index(task.suite), task.task_id, NOMINAL_SEED])
    return _draw(task, rng, PAIR_MARGIN, AXIS_MARGIN)


def _libero_layout(task: Task, rng: np.random.Generator) -> Placement:
    """One draw inside the task's regions.

    A spatial referent on or next to a landmark moves by the mean of its own and the landmark's jitter:
    still within its region, but its offset from the landmark changes by at most +-REGION_HALF per axis,
    which is what lets "next to the bowl" hold for every draw (the window between touching the bowl and
    being too far is 3.5 cm, less than the 5.7 cm two independent jitters could eat).
    """
    regions = task_regions(task.suite, task.task_id)
    jitter = {name: rng.uniform(-REGION_HALF, REGION_HALF, 2) for name in regions}
    yaws = {name: rng.uniform(-REGION_YAW, REGION_YAW) for name in regions}
    anchor = referent_anchor(task.relation)
    if anchor is not None:
        jitter["red_cube"] = (jitter["red_cube"] + jitter[anchor]) / 2
    return {
        name: (x + jitter[name][0], y + jitter[name][1], z, yaw + yaws[name])
        for name, (x, y, z, yaw) in regions.items()
    }


def sample_init_state(
    task: Task, model: mujoco.MjModel, seed: int, layout: str = DEFAULT_LAYOUT
) -> np.ndarray:
    """A collision-free layout for `task` from `seed`, as a float64 qpos vector for `model`.

    Raises:
        ValueError: unknown `layout`.
        RuntimeError: the wide sampler found no collision-free layout (never seen for the shipped tasks).
    """
    rng = np.random.default_rng([ALL_SUITES.index(task.suite), task.task_id, seed])
    if task.regions and check_layout(layout) != "libero":
        raise ValueError(f"the {task.suite} suite has a fixed layout; layout={layout!r} is not available")
    placed = _libero_layout(task, rng) if check_layout(layout) == "libero" else _draw(task, rng)
    qpos = model.qpos0.copy()
    qpos[:N_ARM_JOINTS] = HOME_QPOS
    qpos[N_ARM_JOINTS : N_ARM_JOINTS + 2] = (FINGER_OPEN, -FINGER_OPEN)
    for name, (x, y, z, yaw) in placed.items():
        adr = model.jnt_qposadr[model.joint(f"{name}_joint").id]
        qpos[adr : adr + 7] = (x, y, z, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
    joint_names = {model.joint(j).name for j in range(model.njnt)}
    for joint, value in (*DEFAULT_JOINTS, *task.joints):
        if joint in joint_names:
            qpos[model.jnt_qposadr[model.joint(joint).id]] = value
    return qpos


def frozen_path(suite: str, layout: str = DEFAULT_LAYOUT) -> Path:
    return ASSET_DIR / (f"{suite}.npz" if check_layout(layout) == "libero" else f"{suite}_{layout}.npz")


@functools.lru_cache(maxsize=16)
def _load_suite(suite: str, layout: str) -> dict[str, np.ndarray]:
    path = frozen_path(suite, layout)
    if not path.exists():
        raise FileNotFoundError(f"{path} missing; regenerate with `python -m snapflow.sim.init_states`")
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def frozen_init_states(suite: str, task_id: int, layout: str = DEFAULT_LAYOUT) -> np.ndarray:
    """The 50 frozen init states of a task for `layout`, float32 (50, nq)."""
    task = get_task(suite, task_id)
    return _load_suite(task.suite, check_layout(layout))[f"task_{task.task_id}"]


def write_frozen(suites: tuple[str, ...] = ALL_SUITES, layouts: tuple[str, ...] = LAYOUTS) -> list[Path]:
    """Regenerate the frozen files from the generators (only needed after a deliberate layout change).

    A suite with hand-made regions (the multimodal probe) has the libero layout only.
    """
    from snapflow.sim.env import build_model

    ASSET_DIR.mkdir(parents=True, exist_ok=True)
    paths = []
    for layout in layouts:
        for suite in suites:
            if layout != "libero" and any(task.regions for task in SUITES[suite]):
                continue
            arrays = {}
            for task_id in range(len(SUITES[suite])):
                task = get_task(suite, task_id)
                model = build_model(task)
                arrays[f"task_{task_id}"] = np.stack(
                    [sample_init_state(task, model, i, layout) for i in range(N_FROZEN)]
                ).astype(np.float32)
            np.savez_compressed(frozen_path(suite, layout), **arrays)
            paths.append(frozen_path(suite, layout))
    _load_suite.cache_clear()
    return paths


if __name__ == "__main__":
    for p in write_frozen():
        print(f"wrote {p} ({p.stat().st_size / 1024:.0f} KiB)")
