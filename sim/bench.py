"""Benchmarks for mini-LIBERO: step/render cost, expert success tables, demo-collection time.

    python -m snapflow.sim.bench step [--resolution 128] [--steps 300]
    python -m snapflow.sim.bench experts [--suites spatial,object,goal,long] [--episodes 50] [--held-out]
        [--layout libero|wide]
    python -m snapflow.sim.bench collect [--suite spatial] [--task-id 0] [--episodes 50] [--resolution 128]
    python -m snapflow.sim.bench views [--out docs/img/mini_libero_views.png]

Times are per control step (one 20 Hz action = 25 physics substeps) on one process; CPU time
(`time.process_time`, which includes llvmpipe's render threads) is less sensitive to other load than wall time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from snapflow.sim.env import MiniLiberoEnv
from snapflow.sim.experts import run_expert
from snapflow.sim.init_states import DEFAULT_LAYOUT, HELDOUT_SEED_START, LAYOUTS, N_FROZEN
from snapflow.sim.tasks import SUITE_NAMES, canonical_suite


def step_cost(
    suite: str, task_id: int, resolution: int, render: bool, steps: int = 300, blocks: int = 5
) -> tuple[float, float, float]:
    """(median wall ms, median CPU ms, best CPU ms) per env step, over `blocks` blocks of `steps` steps.

    Random actions in [-0.3, 0.3]. The best block is the least disturbed by other load on a shared machine.
    """
    env = MiniLiberoEnv(suite, task_id, resolution=resolution, render=render)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-0.3, 0.3, (steps, 7)).astype(np.float32)
    env.step(actions[0])  # first render creates the GL context
    walls, cpus = [], []
    for _ in range(blocks):
        env.reset(seed=0)
        wall, cpu = time.perf_counter(), time.process_time()
        for action in actions:
            env.step(action)
        walls.append(1000 * (time.perf_counter() - wall) / steps)
        cpus.append(1000 * (time.process_time() - cpu) / steps)
    env.close()
    return float(np.median(walls)), float(np.median(cpus)), min(cpus)


def expert_success(
    suite: str, task_id: int, episodes: int, held_out: bool, layout: str = DEFAULT_LAYOUT
) -> tuple[int, int]:
    """(successes, longest episode in steps) over frozen init states 0..episodes-1, or held-out seeds."""
    env = MiniLiberoEnv(suite, task_id, render=False, layout=layout)
    wins, longest = 0, 0
    for i in range(episodes):
        if held_out:
            env.reset(seed=HELDOUT_SEED_START + i)
        else:
            env.reset(options={"init_state": i})
        ok, n, _ = run_expert(env)
        wins, longest = wins + ok, max(longest, n)
    env.close()
    return wins, longest


def views_image(resolution: int = 256) -> np.ndarray:
    """Agentview | wrist camera for one task per suite (frozen state 0, mid-way through the expert demo)."""
    from snapflow.sim.experts import ScriptedExpert

    rows = []
    for suite, task_id, steps in [("spatial", 0, 40), ("object", 0, 40), ("goal", 8, 30), ("long", 9, 60)]:
        env = MiniLiberoEnv(suite, task_id, resolution=resolution)
        obs, _ = env.reset(options={"init_state": 0})
        expert = ScriptedExpert(env.model, env.data, env.task_spec.plan)
        for _ in range(steps):
            obs, *_ = env.step(expert.act())
        rows.append(np.concatenate([obs["pixels"]["image"], obs["pixels"]["image2"]], axis=1))
        env.close()
    return np.concatenate(rows, axis=0)


def _cmd_views(args: argparse.Namespace) -> None:
    from PIL import Image

    Image.fromarray(views_image(args.resolution)).save(args.out)
    print(f"wrote {args.out}")


def _cmd_step(args: argparse.Namespace) -> None:
    print(f"ms per env step, median wall / median CPU / best CPU over 5 blocks of {args.steps} steps")
    print(f"{'suite':8s} {'physics only':>22s} {f'+ 2 cameras at {args.resolution} px':>26s}")
    for suite in SUITE_NAMES:
        phys = step_cost(suite, 0, args.resolution, False, args.steps)
        cams = step_cost(suite, 0, args.resolution, True, args.steps)
        print(
            f"{suite:8s} {' / '.join(f'{v:5.2f}' for v in phys):>22s} {' / '.join(f'{v:5.2f}' for v in cams):>26s}",
            flush=True,
        )


def _cmd_experts(args: argparse.Namespace) -> None:
    kind = f"held-out seeds {HELDOUT_SEED_START}.." if args.held_out else "frozen init states 0.."
    print(
        f"expert success ({args.layout} layout) over {args.episodes} {kind}{HELDOUT_SEED_START + args.episodes - 1 if args.held_out else args.episodes - 1}"
    )
    for suite in [canonical_suite(s) for s in args.suites.split(",")]:
        total, rows = 0, []
        t0 = time.perf_counter()
        for task_id in range(10):
            wins, longest = expert_success(suite, task_id, args.episodes, args.held_out, args.layout)
            total += wins
            rows.append(f"{wins}/{args.episodes}")
            print(f"  {suite}/{task_id}: {wins}/{args.episodes} (longest {longest} steps)", flush=True)
        print(
            f"{suite}: {100 * total / (10 * args.episodes):.1f}% [{' '.join(rows)}] "
            f"({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


def _cmd_collect(args: argparse.Namespace) -> None:
    from snapflow.sim.record import collect_dataset

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        out = collect_dataset(
            args.suite,
            args.episodes,
            Path(tmp) / "ds",
            task_ids=[args.task_id],
            resolution=args.resolution,
            video=args.video,
            progress=False,
        )
        wall = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(
        f"{args.episodes} demos of {args.suite}/{args.task_id} at {args.resolution}px "
        f"({'video' if args.video else 'image'}): {wall:.1f} s wall, {size / 1e6:.1f} MB"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("step", help="env step cost, physics only and with two cameras")
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--steps", type=int, default=100)
    p = sub.add_parser("experts", help="scripted-expert success table")
    p.add_argument("--suites", default=",".join(SUITE_NAMES))
    p.add_argument("--episodes", type=int, default=N_FROZEN)
    p.add_argument(
        "--held-out", action="store_true", help=f"seeds {HELDOUT_SEED_START}+ instead of frozen states"
    )
    p.add_argument("--layout", choices=LAYOUTS, default=DEFAULT_LAYOUT)
    p = sub.add_parser("collect", help="time writing demos into a LeRobotDataset")
    p.add_argument("--suite", default="spatial")
    p.add_argument("--task-id", type=int, default=0)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--video", action="store_true")
    p = sub.add_parser("views", help="picture of both cameras, one task per suite")
    p.add_argument("--out", default="docs/img/mini_libero_views.png")
    p.add_argument("--resolution", type=int, default=256)
    args = parser.parse_args(argv)
    {"step": _cmd_step, "experts": _cmd_experts, "collect": _cmd_collect, "views": _cmd_views}[args.cmd](args)


if __name__ == "__main__":
    main()
