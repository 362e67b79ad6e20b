"""Open-loop view of the multimodal probe's decision: the sideways motion each sampler plans right after
the lift, over many noise draws.

    python -m snapflow.sim.decision_spread <outputs of snapflow-demo probe=multimodal> [--draws 32]

For every task of the `multimodal` suite, frozen init state 0, the scripted expert grasps and lifts the
object; at that state (the last one both strategies share) each sampler plans one chunk per noise draw.
The chunk's sideways motion is the mean of its first `n_action_steps` lateral action components (raw
action units, + = towards the far side). A sampler that returns the conditional mean plans about 0 for
every draw; one that samples the demonstrated strategies plans clearly signed values of both signs.
Prints, per sampler: the share of draws planning each side (|lateral| >= `SIDE_MIN`) and their spread.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from snapflow.sim.evaluate import SamplerSpec, initial_noise, load_policy, plan_chunk
from snapflow.sim.modes import lateral_axis

SIDE_MIN = 0.1  # raw action units (|a| <= 1): a tenth of full speed sideways, held over the whole chunk
LIFT_DONE = 4  # expert waypoint index after approach, descend, grasp and lift (experts._pick_place)


def decision_observation(task_id: int, resolution: int) -> tuple[dict, str, np.ndarray]:
    """(raw observation, instruction, lateral axis) at the end of the expert's lift on frozen state 0."""
    from snapflow.sim.env import MiniLiberoEnv
    from snapflow.sim.experts import ScriptedExpert

    env = MiniLiberoEnv("multimodal", task_id, resolution=resolution)
    obs, _ = env.reset(options={"init_state": 0})
    expert = ScriptedExpert(env.model, env.data, env.task_spec.plan, mode="near")
    while expert._index < LIFT_DONE:
        obs, *_ = env.step(expert.act())
    regions = {name: (x, y) for name, x, y in env.task_spec.regions}
    step = env.task_spec.plan[0]
    axis = lateral_axis(regions[step.obj], regions[step.target])
    task = env.task_description
    env.close()
    return obs, task, axis


def spread(run_dir: Path, draws: int) -> dict:
    """{sampler: {"near": share, "far": share, "undecided": share, "lateral_std": raw units}}."""
    from lerobot.envs.factory import make_env_pre_post_processors

    from snapflow.sim.lerobot_env import MiniLiberoEnvConfig

    report = json.loads((run_dir / "report.json").read_text())
    resolution, horizon = int(report["resolution"]), int(report["n_action_steps"])
    out = {}
    for name, info in report["samplers"].items():
        scale = float(info.get("noise_scale", 1.0))
        lp = load_policy(
            SamplerSpec(name, Path(info["policy"]), int(info["nfe"]), info["mode"], scale), horizon
        )
        env_pre, env_post = make_env_pre_post_processors(
            MiniLiberoEnvConfig(task="multimodal", resolution=resolution), lp.config
        )
        lateral = []
        for task_id in range(4):
            obs, task, axis = decision_observation(task_id, resolution)
            torch.manual_seed(task_id)
            for _ in range(draws):
                lp.policy.reset()
                noise = initial_noise(lp, 1)
                raw = plan_chunk(lp, [obs], [task], env_pre, env_post, [], **noise)[1][0, :horizon]
                lateral.append(float(raw[:, :2].mean(0) @ axis))
        lat = np.array(lateral)
        out[name] = {
            "near": float(np.mean(lat <= -SIDE_MIN)),
            "far": float(np.mean(lat >= SIDE_MIN)),
            "undecided": float(np.mean(np.abs(lat) < SIDE_MIN)),
            "lateral_std": float(lat.std()),
            "draws": len(lat),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the eval folder (report.json) of a probe=multimodal run")
    parser.add_argument("--draws", type=int, default=32, help="noise draws per task (4 tasks)")
    args = parser.parse_args()
    if args.draws < 1:
        parser.error(f"--draws must be >= 1, got {args.draws}")
    if not (args.run / "report.json").is_file():
        parser.error(
            f"{args.run} has no report.json: give the out= of `snapflow-demo probe=multimodal` (or its eval/)"
        )
    report = json.loads((args.run / "report.json").read_text())
    for name, info in report.get("samplers", {}).items():
        if not (Path(str(info.get("policy", ""))) / "config.json").is_file():
            parser.error(f"report.json's sampler {name!r} names {info.get('policy')}, no checkpoint (moved?)")
    result = spread(args.run, args.draws)
    print(f"| sampler | plans near | plans far | undecided (|lateral| < {SIDE_MIN}) | lateral std |")
    print("|---|---|---|---|---|")
    for name, r in result.items():
        print(
            f"| {name} | {100 * r['near']:.0f}% | {100 * r['far']:.0f}% | {100 * r['undecided']:.0f}% "
            f"| {r['lateral_std']:.3f} |"
        )


if __name__ == "__main__":
    main()
