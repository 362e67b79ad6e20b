"""The four mini-LIBERO suites as data: ten tasks each, one English instruction per task.

The suites imitate the structure of LIBERO's (they are not LIBERO and share no assets with it):
  - `spatial` (like libero_spatial): one goal, "put the red cube on the plate", with two identical red cubes;
    the instruction names the right one by a spatial relation to landmarks (bowl, box, tray, plate, robot).
  - `object` (like libero_object): pick one of ten distinct objects out of a clutter of five, into a basket.
  - `goal` (like libero_goal): one kitchen scene (cabinet with drawer, stove with a rocker switch, plate,
    cubes, can) and ten different goals, including articulated ones.
  - `long` (like libero_10): two- and three-stage tasks whose goals are conjunctions.
A fifth, probe suite stands apart from the benchmark: `multimodal` (four tasks) puts a barrier between the
object and its target, and its expert passes it on either side at random (`modes.py`).
Each task also carries its expert plan and init-state layout, so one table defines the benchmark.
"""

from __future__ import annotations

import difflib
import numbers
from dataclasses import dataclass, field

from snapflow.sim.experts import CloseDrawer, OpenDrawer, PickPlace, PlanStep, Switch, release_height
from snapflow.sim.modes import MODES
from snapflow.sim.predicates import And, Close, On, Open, Predicate, TurnOff, TurnOn, in_basket, in_drawer
from snapflow.sim.scene import DRAWER_TRAVEL, OBJECTS, SWITCH_RANGE

SUITE_NAMES = ("spatial", "object", "goal", "long")
# Probe suites: not part of the benchmark's four (nor of suite=all), evaluated and reported apart.
PROBE_SUITES = ("multimodal",)
ALL_SUITES = SUITE_NAMES + PROBE_SUITES
# LIBERO suite names accepted as aliases (LeRobot's --env.task spelling).
SUITE_ALIASES = {
    "libero_spatial": "spatial",
    "libero_object": "object",
    "libero_goal": "goal",
    "libero_10": "long",
    "libero_long": "long",
}

# Max episode steps: about 1.5x the longest expert demo of the suite (LeRobot's LIBERO rule, which gives
# 280/280/300/520 there). Longest expert demos measured with `python -m snapflow.sim.bench experts`:
# spatial 98, object 99, goal 112, long 203 steps (frozen states and held-out seeds, no noise).
MAX_EPISODE_STEPS = {"spatial": 150, "object": 150, "goal": 170, "long": 310, "multimodal": 160}


@dataclass(frozen=True)
class Task:
    """One benchmark task.

    Attributes:
        suite, task_id: identity; `name` is a LIBERO-style snake-case name.
        instruction: the language instruction given to the policy.
        objects, fixtures: scene content (keys of `scene.OBJECTS`; subset of {"cabinet", "stove"}).
        goal: success predicate, checked every step.
        plan: the scripted expert's primitives.
        relation: spatial suite only: how the init-state sampler singles out the referent `red_cube`.
        joints: initial fixture joint values, e.g. (("drawer_slide", 0.14),).
        regions: explicit LIBERO-style region centres, ((body, x, y), ...) in m, instead of ones drawn by
            the init-state sampler (the multimodal probe needs the barrier exactly between two bodies).
        obstacle: (x, y) in m of a barrier welded to the table across the carry (`scene.BARRIER_HALF`), or None.
        modes: the strategies the scripted expert draws from per episode (`modes.MODES`), or () for one.
    """

    suite: str
    task_id: int
    name: str
    instruction: str
    objects: tuple[str, ...]
    fixtures: tuple[str, ...]
    goal: Predicate
    plan: tuple[PlanStep, ...]
    relation: str | None = None
    joints: tuple[tuple[str, float], ...] = field(default_factory=tuple)
    regions: tuple[tuple[str, float, float], ...] = field(default_factory=tuple)
    obstacle: tuple[float, float] | None = None
    modes: tuple[str, ...] = field(default_factory=tuple)


def _put(obj: str, target: str, dx: float = 0.0) -> tuple[Predicate, PickPlace]:
    """Goal atom and expert step for "put obj on/in target" (`dx`: release offset in m along x)."""
    if target == "basket":
        return in_basket(obj), PickPlace(obj, "basket", release_height(obj, "basket"), dx=dx)
    if target == "drawer":
        return in_drawer(obj), PickPlace(obj, "drawer", release_height(obj, "drawer"), dy=-0.02)
    tol = 0.025 if target in OBJECTS and OBJECTS[target].graspable else 0.05  # stacking is stricter
    return On(obj, target, tol), PickPlace(obj, target, release_height(obj, target))


def _label(obj: str) -> str:
    return OBJECTS[obj].label


# ---- spatial ------------------------------------------------------------------------------------------

_SPATIAL_SCENE = ("red_cube", "red_cube_2", "plate", "bowl", "box", "tray")
# relation key -> words naming the referent; left/right as seen in the agentview image (image-left = -y)
SPATIAL_RELATIONS = {
    "between_bowl_box": "between the bowl and the box",
    "next_to_bowl": "next to the bowl",
    "next_to_box": "next to the box",
    "front": "closest to the robot",
    "back": "farthest from the robot",
    "left": "on the left",
    "right": "on the right",
    "on_box": "on top of the box",
    "on_tray": "on the tray",
    "next_to_plate": "next to the plate",
}


def _spatial(task_id: int, relation: str) -> Task:
    goal, step = _put("red_cube", "plate")
    words = SPATIAL_RELATIONS[relation]
    return Task(
        "spatial",
        task_id,
        f"pick_up_the_red_cube_{relation}_and_place_it_on_the_plate",
        f"pick up the red cube {words} and place it on the plate",
        _SPATIAL_SCENE,
        (),
        goal,
        (step,),
        relation=relation,
    )


# ---- object -------------------------------------------------------------------------------------------

OBJECT_POOL = (
    "red_cube",
    "blue_can",
    "yellow_carton",
    "green_cube",
    "orange_can",
    "purple_carton",
    "white_cube",
    "black_can",
    "pink_carton",
    "cyan_cube",
)
N_DISTRACTORS = 4


def _object(task_id: int) -> Task:
    target = OBJECT_POOL[task_id]
    distractors = tuple(OBJECT_POOL[(task_id + k) % len(OBJECT_POOL)] for k in range(1, N_DISTRACTORS + 1))
    goal, step = _put(target, "basket")
    return Task(
        "object",
        task_id,
        f"pick_up_the_{target}_and_place_it_in_the_basket",
        f"pick up the {_label(target)} and place it in the basket",
        ("basket", target, *distractors),
        (),
        goal,
        (step,),
    )


# ---- goal ---------------------------------------------------------------------------------------------

KITCHEN = ("plate", "red_cube", "green_cube", "blue_can")
KITCHEN_FIXTURES = ("cabinet", "stove")
DRAWER_OPEN = (("drawer_slide", DRAWER_TRAVEL),)
SWITCH_ON_INIT = (("switch_hinge", SWITCH_RANGE),)


def _kitchen(
    suite: str,
    task_id: int,
    instruction: str,
    goal: Predicate,
    plan: tuple[PlanStep, ...],
    joints: tuple[tuple[str, float], ...] = (),
    objects: tuple[str, ...] = KITCHEN,
    fixtures: tuple[str, ...] = KITCHEN_FIXTURES,
) -> Task:
    name = instruction.replace(",", "").replace(" ", "_")
    return Task(suite, task_id, name, instruction, objects, fixtures, goal, plan, joints=joints)


def _put_task(
    task_id: int, obj: str, target: str, words: str, joints: tuple[tuple[str, float], ...] = ()
) -> Task:
    """A one-step goal-suite task: "put the <obj> <words>"."""
    goal, step = _put(obj, target)
    return _kitchen("goal", task_id, f"put the {_label(obj)} {words}", goal, (step,), joints=joints)


def _goal_suite() -> list[Task]:
    return [
        _kitchen("goal", 0, "open the drawer of the cabinet", Open(), (OpenDrawer(),)),
        _kitchen("goal", 1, "close the drawer of the cabinet", Close(), (CloseDrawer(),), joints=DRAWER_OPEN),
        _kitchen("goal", 2, "turn on the stove", TurnOn(), (Switch(on=True),)),
        _kitchen("goal", 3, "turn off the stove", TurnOff(), (Switch(on=False),), joints=SWITCH_ON_INIT),
        _put_task(4, "red_cube", "plate", "on the plate"),
        _put_task(5, "blue_can", "stove", "on the stove"),
        _put_task(6, "green_cube", "red_cube", "on top of the red cube"),
        _put_task(7, "blue_can", "cabinet", "on top of the cabinet"),
        _put_task(8, "green_cube", "drawer", "in the drawer", joints=DRAWER_OPEN),
        _put_task(9, "green_cube", "stove", "on the stove"),
    ]


# ---- long ---------------------------------------------------------------------------------------------

LIVING_ROOM = ("basket", "plate")


def _both(task_id: int, pairs: tuple[tuple[str, str], ...], instruction: str, extra: tuple[str, ...]) -> Task:
    # Two objects for the same basket go to its front and back halves, so neither lands on the other.
    same = len({t for _, t in pairs}) == 1
    atoms, steps = zip(
        *(_put(o, t, dx=(k - 0.5) * 0.07 if same else 0.0) for k, (o, t) in enumerate(pairs)), strict=True
    )
    objects = (*LIVING_ROOM, *dict.fromkeys([o for o, _ in pairs] + list(extra)))
    return _kitchen(
        "long", task_id, instruction, And(tuple(atoms)), tuple(steps), objects=objects, fixtures=()
    )


def _long_suite() -> list[Task]:
    on_stove, can_to_stove = _put("blue_can", "stove")
    red_in_drawer, red_to_drawer = _put("red_cube", "drawer")
    green_in_drawer, green_to_drawer = _put("green_cube", "drawer")
    stacked, stack = _put("green_cube", "red_cube")
    on_plate, red_to_plate = _put("red_cube", "plate")
    return [
        _both(
            0,
            (("red_cube", "basket"), ("blue_can", "basket")),
            "put both the red cube and the blue can in the basket",
            ("green_cube",),
        ),
        _both(
            1,
            (("yellow_carton", "basket"), ("green_cube", "basket")),
            "put both the yellow carton and the green cube in the basket",
            ("orange_can",),
        ),
        _kitchen(
            "long",
            2,
            "turn on the stove and put the blue can on it",
            And((TurnOn(), on_stove)),
            (Switch(on=True), can_to_stove),
        ),
        _kitchen(
            "long",
            3,
            "open the drawer and put the red cube in it",
            And((Open(), red_in_drawer)),
            (OpenDrawer(), red_to_drawer),
        ),
        _kitchen(
            "long",
            4,
            "put the green cube in the drawer and close it",
            And((green_in_drawer, Close())),
            (green_to_drawer, CloseDrawer()),
            joints=DRAWER_OPEN,
        ),
        _both(
            5,
            (("red_cube", "plate"), ("blue_can", "basket")),
            "put the red cube on the plate and the blue can in the basket",
            ("white_cube",),
        ),
        _kitchen(
            "long",
            6,
            "stack the green cube on the red cube and turn on the stove",
            And((stacked, TurnOn())),
            (stack, Switch(on=True)),
        ),
        _kitchen(
            "long",
            7,
            "put the blue can on the stove and the red cube on the plate",
            And((on_stove, on_plate)),
            (can_to_stove, red_to_plate),
        ),
        _both(
            8,
            (("white_cube", "basket"), ("orange_can", "plate")),
            "put the white cube in the basket and the orange can on the plate",
            ("cyan_cube",),
        ),
        _kitchen(
            "long",
            9,
            "open the drawer, put the red cube in it and close it",
            And((red_in_drawer, Close())),
            (OpenDrawer(), red_to_drawer, CloseDrawer()),
        ),
    ]


# ---- multimodal (probe) -------------------------------------------------------------------------------

# m; object and target sit either side of the barrier along y, at the same x. The barrier (x 0.03 +- 0.04)
# stands clear of the hand's home position (x = -0.08, y = 0) and of the way from there to the object, and
# both side lines (x 0.03 +- modes.DETOUR) stay within the arm's reach at the object's and target's y.
BARRIER_X = 0.03
SIDE_Y = 0.17  # m, |y| of the object and of the target


def _around(task_id: int, obj: str, target: str, words: str, direction: int, distractor: str) -> Task:
    """ "put the <obj> <words>" with the barrier halfway; `direction` +1 carries towards +y, -1 towards -y."""
    goal, step = _put(obj, target)
    plan = (PickPlace(step.obj, step.target, step.release_z, around=(BARRIER_X, 0.0)),)
    regions = (
        (obj, BARRIER_X, -direction * SIDE_Y),
        (target, BARRIER_X, direction * SIDE_Y),
        (distractor, BARRIER_X + 0.15, -direction * 0.12),
    )
    return Task(
        "multimodal",
        task_id,
        f"put_the_{obj}_{words.replace(' ', '_')}",
        f"put the {_label(obj)} {words}",
        (obj, target, distractor),
        (),
        goal,
        plan,
        regions=regions,
        obstacle=(BARRIER_X, 0.0),
        modes=MODES,
    )


def _multimodal_suite() -> list[Task]:
    return [
        _around(0, "red_cube", "plate", "on the plate", +1, "green_cube"),
        _around(1, "blue_can", "basket", "in the basket", -1, "white_cube"),
        _around(2, "green_cube", "bowl", "in the bowl", +1, "orange_can"),
        _around(3, "yellow_carton", "tray", "on the tray", -1, "cyan_cube"),
    ]


SUITES: dict[str, tuple[Task, ...]] = {
    "spatial": tuple(_spatial(i, r) for i, r in enumerate(SPATIAL_RELATIONS)),
    "object": tuple(_object(i) for i in range(len(OBJECT_POOL))),
    "goal": tuple(_goal_suite()),
    "long": tuple(_long_suite()),
    "multimodal": tuple(_multimodal_suite()),
}


def canonical_suite(suite: str) -> str:
    """Map a suite name or LIBERO alias to one of `SUITE_NAMES`; ValueError listing valid names otherwise."""
    name = SUITE_ALIASES.get(suite.strip(), suite.strip())
    if name not in SUITES:
        valid = [*ALL_SUITES, *SUITE_ALIASES]
        hint = difflib.get_close_matches(suite, valid, n=1)
        raise ValueError(
            f"unknown suite {suite!r}; valid: {valid}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
        )
    return name


def check_task_ids(task_ids: list | None, suites: list[str]) -> list[int] | None:
    """`task_ids` (None = every task) when each is an integer (not a bool, not a float) valid in every
    suite of `suites`; ValueError naming the bad ids otherwise (0.5 was truncated to task 0, true read as 1)."""
    if task_ids is None:
        return None
    if not task_ids:
        raise ValueError("task_ids=[] selects no task: list some, or leave task_ids out for every task")
    wrong = [t for t in task_ids if isinstance(t, bool) or not isinstance(t, numbers.Integral)]
    if wrong:  # numpy integers are whole numbers too (the Python API)
        raise ValueError(f"task_ids takes whole task numbers, got {wrong}")
    n_tasks = min(len(SUITES[canonical_suite(s)]) for s in suites)
    bad = [t for t in task_ids if not 0 <= t < n_tasks]
    if bad:
        raise ValueError(f"task_ids {bad} out of range for suite(s) {suites} (valid: 0..{n_tasks - 1})")
    return [int(t) for t in task_ids]


def get_task(suite: str, task_id: int) -> Task:
    """Look up a task; ValueError naming the valid choices for an unknown suite or task id."""
    tasks = SUITES[canonical_suite(suite)]
    if not isinstance(task_id, int) or isinstance(task_id, bool) or not 0 <= task_id < len(tasks):
        raise ValueError(f"unknown task_id {task_id!r} for suite {suite!r}; valid: 0..{len(tasks) - 1}")
    return tasks[task_id]


def list_tasks(suite: str | None = None) -> list[Task]:
    """All benchmark tasks (the four `SUITE_NAMES`), or those of one suite, in (suite, task_id) order."""
    names = SUITE_NAMES if suite is None else (canonical_suite(suite),)
    return [task for name in names for task in SUITES[name]]
