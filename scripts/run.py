"""`snapflow-run`: drive a robot at a fixed rate from a checkpoint or an exported graph.

    snapflow-run policy=<checkpoint or export dir> robot=sim [task=spatial/0] [hz=20] [seconds=30] [out=<dir>]
    snapflow-run policy=<dir> robot=lerobot robot_config=<robot.yaml> task="pick up the cube"
    snapflow-run policy=<dir> robot=sim fault=stall|crash|nan|overlimit   (fault injection, deploy/faults.py)

Writes <out>/run.json (rate, jitter and per-stage latency percentiles, missed / held / watchdog ticks, success
in the sim) and <out>/latency_hist.png, and prints the summary.
"""

import json
from pathlib import Path

import hydra
from omegaconf import DictConfig


def make_robot(cfg: DictConfig) -> object:
    from snapflow.deploy.robots import LeRobotRobot, SimRobot
    from snapflow.sim.object_state import policy_uses_object_state

    if cfg.robot == "sim":
        suite, _, task_id = str(cfg.task).partition("/")
        init_state = None if cfg.init_state is None else int(cfg.init_state)
        return SimRobot(suite=suite, task_id=int(task_id or 0), resolution=int(cfg.resolution), init_state=init_state,
                        auto_reset=bool(cfg.auto_reset),
                        object_state=policy_uses_object_state(cfg.policy))
    if cfg.robot == "lerobot":
        import draccus
        from lerobot.robots.config import RobotConfig

        import lerobot_policy_snapflow  # noqa: F401

        if cfg.robot_config is None:
            raise ValueError("robot=lerobot needs robot_config=<file> holding a LeRobot robot config")
        with open(cfg.robot_config) as f:
            robot_config = draccus.load(RobotConfig, f)
        return LeRobotRobot.from_config(robot_config, task=str(cfg.task))
    raise ValueError(f"unknown robot {cfg.robot!r}: sim or lerobot")


def summary(report: dict) -> str:
    lat, jit = report["latency_ms"], report["jitter_ms"]
    return (f"{report['achieved_hz']:.2f} Hz of {report['target_hz']:g} over {report['ticks']} ticks | missed "
            f"{report['missed_ticks']} | jitter p50/p99 {jit['p50']:.2f}/{jit['p99']:.2f} ms | inference p50/p95/p99 "
            f"{lat['p50']:.1f}/{lat['p95']:.1f}/{lat['p99']:.1f} ms | held {report['held_ticks']} | watchdog "
            f"{report['watchdog_ticks']} | clamped {report['clamped_ticks']} | non-finite rejected "
            f"{report['nonfinite_rejected']} | stop: {report['stop_reason']} | success {report.get('success')}"
            + (f" | episodes {report['episodes']} ({report['episode_successes']} successful)" if "episodes" in report else ""))


@hydra.main(version_base=None, config_path="../configs", config_name="run")
def _main(cfg: DictConfig) -> None:
    import torch

    from snapflow.deploy.clock import MonotonicClock
    from snapflow.deploy.control_loop import ControlLoopConfig, run_control_loop
    from snapflow.deploy.metrics import save_run
    from snapflow.deploy.runtimes import load_runtime
    from snapflow.deploy.safety import SafetyConfig

    torch.set_num_threads(int(cfg.threads))
    runtime = load_runtime(cfg.policy, cfg.runtime, threads=int(cfg.threads),
                           nfe=None if cfg.nfe is None else int(cfg.nfe))
    if cfg.fault != "none":
        from snapflow.deploy.faults import FaultInjectingRuntime

        runtime = FaultInjectingRuntime(runtime, str(cfg.fault), good_chunks=int(cfg.fault_after))
    robot = make_robot(cfg)
    loop_cfg = ControlLoopConfig(
        safety=SafetyConfig.box(robot.action_dim, max_delta=float(cfg.max_delta),
                                stale_after_s=float(cfg.stale_after_s), hold_ticks=int(cfg.hold_ticks)),
        hz=float(cfg.hz), seconds=float(cfg.seconds), queue_low_watermark=int(cfg.queue_low_watermark),
        actions_per_chunk=None if cfg.actions_per_chunk is None else int(cfg.actions_per_chunk),
        crossfade_steps=int(cfg.crossfade_steps), stop_on_success=bool(cfg.stop_on_success),
        inference=str(cfg.inference),
        stop_on_done=not bool(cfg.auto_reset),
        realtime_priority=None if cfg.realtime_priority is None else int(cfg.realtime_priority),
    )
    try:
        report = run_control_loop(runtime, robot, MonotonicClock(), loop_cfg)
    finally:
        robot.close()
    path = save_run(report, cfg.out)
    run = json.loads(Path(path).read_text())
    if hasattr(robot, "episodes"):  # the sim: finished episodes over the run (several with auto_reset)
        run["episodes"], run["episode_successes"] = robot.episodes, robot.successes
        Path(path).write_text(json.dumps(run, indent=2) + "\n")
    print(summary(run))
    print(f"outputs: {Path(cfg.out).resolve()}")


def main() -> None:
    _main()


if __name__ == "__main__":
    main()
