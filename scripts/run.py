"""`snapflow-run`: drive a robot at a fixed rate from a checkpoint or an exported graph.

    snapflow-run policy=<checkpoint or export dir> robot=sim [task=spatial/0] [hz=<contract fps>] [seconds=30] [out=<dir>]
    snapflow-run policy=<dir> robot=lerobot robot_config=<robot.yaml> task="pick up the cube"
        [action_low=[...] action_high=[...] max_delta=...]
    snapflow-run policy=<dir> robot=sim fault=stall|crash|nan|overlimit   (fault injection, deploy/faults.py)

Before the first tick: the action envelope comes from the robot (calibrated ranges, `max_relative_target`)
narrowed by `action_low` / `action_high` / `max_delta`, and the run is refused when a dimension has no
limit; the robot's first observation is checked against the policy's cameras, image sizes and state
length (`deploy/preflight.py`); `inference=auto` times the policy and runs synchronously when a chunk is
computed within one tick, else in a background thread. Writes <out>/run.json (rate, jitter, per-stage
latency percentiles, missed / held / watchdog ticks, success in the sim) and <out>/latency_hist.png and
prints the summary. Exit status: 0 when the run ended normally, 1 when it stopped on a fault (the
reason is printed), 2 for a refused configuration.
"""

import json
import math
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

TIMING_CALLS = 3  # warm predict_chunk calls timed by inference=auto (after one untimed call)


def make_robot(cfg: DictConfig, resolution: int) -> object:
    from snapflow.deploy.robots import LeRobotRobot, SimRobot
    from snapflow.sim.object_state import policy_uses_object_state

    if cfg.robot == "sim":
        suite, _, task_id = str(cfg.task).partition("/")  # <suite>/<id>, checked by check_values
        init_state = None if cfg.init_state is None else int(cfg.init_state)
        from snapflow.sim.init_states import N_FROZEN

        if init_state is not None and not 0 <= init_state < N_FROZEN:
            raise ValueError(
                f"init_state must be a frozen index in 0..{N_FROZEN - 1} (or null), got {init_state}"
            )
        return SimRobot(
            suite=suite,
            task_id=int(task_id),
            resolution=resolution,
            init_state=init_state,
            auto_reset=bool(cfg.auto_reset),
            object_state=policy_uses_object_state(cfg.policy),
            layout=str(cfg.layout),
        )
    if cfg.robot == "lerobot":
        import draccus
        from lerobot.robots.config import RobotConfig
        from lerobot.utils.import_utils import register_third_party_plugins

        register_third_party_plugins()  # lerobot_robot_* packages, as LeRobot's own CLIs do
        with open(cfg.robot_config) as f:
            robot_config = draccus.load(RobotConfig, f)
        return LeRobotRobot.from_config(robot_config, task=str(cfg.task))
    # check_values refuses it first when called from _run; here for other callers
    raise ValueError(f"robot={cfg.robot!r} is not a robot kind; valid: sim, lerobot")


def _limit(value: object) -> object:
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def safety_config(robot: object, cfg: DictConfig) -> object:
    """The robot's envelope narrowed by the user's limits (EnvelopeError when a dimension has none)."""
    from snapflow.deploy.envelope import resolve_envelope
    from snapflow.deploy.safety import SafetyConfig

    envelope = resolve_envelope(
        robot.envelope(), _limit(cfg.action_low), _limit(cfg.action_high), _limit(cfg.max_delta)
    )
    return SafetyConfig.from_envelope(envelope, float(cfg.stale_after_s), int(cfg.hold_ticks))


# The largest inference delay (control ticks) at which the chunking sweep measured synchronous execution
# (the robot holds still while a chunk is computed) best: goal suite, 50 episodes per point, the demo's
# student: sync 82 % at delays 1, 2 and 4 ticks, every asynchronous scheme (async, crossfade, ensemble, RTC)
# 34-42 % at 4 ticks (README, "Real-Time Chunking and chunk scheduling under inference delay"). Slower
# policies were not measured; they run in the background thread.
SYNC_MAX_DELAY_TICKS = 4


def auto_mode(p50_ms: float, hz: float) -> str:
    """`inference=auto`'s choice for a measured chunk latency: inline_blocking up to SYNC_MAX_DELAY_TICKS."""
    delay_ticks = math.ceil(p50_ms * hz / 1e3)
    return "inline_blocking" if delay_ticks <= SYNC_MAX_DELAY_TICKS else "thread"


def choose_inference(mode: str, runtime: object, observation: dict, hz: float) -> tuple[str, float | None]:
    """(mode, measured p50 chunk latency in ms): `auto` -> `auto_mode` of the measured latency."""
    if mode != "auto":
        return mode, None
    runtime.predict_chunk(observation)  # warm-up (lazy init, allocator)
    times = []
    for _ in range(TIMING_CALLS):
        start = time.perf_counter()
        runtime.predict_chunk(observation)
        times.append((time.perf_counter() - start) * 1e3)
    runtime.reset()
    p50 = sorted(times)[len(times) // 2]
    return auto_mode(p50, hz), p50


def check_chunk_values(cfg: DictConfig, chunk: int) -> None:
    """actions_per_chunk, crossfade_steps and queue_low_watermark against the policy's chunk size (known once
    the policy is loaded): ValueError naming the key. A crossfade as long as the executed rows never runs a
    row as predicted; a watermark at or above them asks for a new chunk every tick."""
    if cfg.actions_per_chunk is not None and not 1 <= int(cfg.actions_per_chunk) <= chunk:
        raise ValueError(
            f"actions_per_chunk={cfg.actions_per_chunk}: choose 1..{chunk} (the policy's chunk size)"
        )
    executed = chunk if cfg.actions_per_chunk is None else int(cfg.actions_per_chunk)
    if not 0 <= int(cfg.crossfade_steps) < executed:
        raise ValueError(
            f"crossfade_steps={cfg.crossfade_steps}: choose 0..{executed - 1} (fewer than the {executed} actions "
            "executed per chunk, or no row is ever executed as the policy predicted it)"
        )
    if cfg.queue_low_watermark is not None and int(cfg.queue_low_watermark) >= executed:
        raise ValueError(
            f"queue_low_watermark={cfg.queue_low_watermark}: choose 0..{executed - 1} (below the {executed} "
            "actions executed per chunk, or a new chunk is requested every tick)"
        )


def watermark(value: object, inference: str, p50_ms: float | None, hz: float) -> int:
    """The refill threshold: as given, else 0 when synchronous, else the measured delay in ticks + 1."""
    if value is not None:
        return int(value)
    if inference == "inline_blocking" or p50_ms is None:
        return 0 if inference == "inline_blocking" else 4
    return math.ceil(p50_ms * hz / 1e3) + 1


def summary(report: dict) -> str:
    def f(value: object, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    lat, jit = report["latency_ms"], report["jitter_ms"]
    return (
        f"{f(report['achieved_hz'], '.2f')} Hz of {report['target_hz']:g} over {report['ticks']} ticks | missed "
        f"{report['missed_ticks']} | jitter p50/p99 {f(jit['p50'], '.2f')}/{f(jit['p99'], '.2f')} ms | inference "
        f"p50/p95/p99 {f(lat['p50'], '.1f')}/{f(lat['p95'], '.1f')}/{f(lat['p99'], '.1f')} ms | held "
        f"{report['held_ticks']} | watchdog {report['watchdog_ticks']} | clamped {report['clamped_ticks']} | "
        f"non-finite rejected {report['nonfinite_rejected']} | stop: {report['stop_reason']} | success "
        f"{report.get('success')}"
        + (
            f" | episodes {report['episodes']} ({report['episode_successes']} successful)"
            if "episodes" in report
            else ""
        )
    )


def _local_policy(policy: str) -> str:
    """``policy=`` as the runtimes take it: an export dir as given, a training out dir or ``embedded`` resolved
    to its checkpoint (as every other command takes them), a Hub id (org/name, not a local path) left to LeRobot.
    FileNotFoundError for a path that holds nothing."""
    from snapflow.deploy.runtimes import is_hub_id
    from snapflow.scripts.checkpoints import EMBEDDED, resolve_pretrained

    if policy == EMBEDDED:
        return str(resolve_pretrained(policy))
    if not policy.strip():  # Path("") is "." and would be searched as the working folder
        raise ValueError(f"policy= is empty: name an export or checkpoint folder (or {EMBEDDED})")
    if is_hub_id(policy):
        return policy
    path = Path(policy).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"policy={policy}: no checkpoint or export directory there")
    return policy if (path / "contract.json").is_file() else str(resolve_pretrained(path))


def _set_rate(cfg: DictConfig, contract: object) -> None:
    """hz= from the export's contract (fps) when not given, the sim's rate for a checkpoint (it records none);
    a given rate other than the contract's is said: the chunk would play at another speed than trained."""
    from snapflow.sim.controller import CONTROL_HZ

    rate = float(contract.fps) if contract is not None else float(CONTROL_HZ)
    if cfg.hz is None:
        cfg.hz = rate
    elif contract is not None and not math.isclose(float(cfg.hz), rate):
        print(
            f"warning: hz={cfg.hz:g} but the export's contract records {rate:g} Hz: each chunk plays at "
            f"{float(cfg.hz) / rate:.2f}x the speed it was trained for (leave hz= out to run at {rate:g} Hz)",
            file=sys.stderr,
        )


def check_values(cfg: DictConfig) -> None:
    """The run's values, checked before the policy is loaded: ValueError (FileNotFoundError for a missing
    robot_config file) naming the key, the value and what it takes."""
    if cfg.hz is not None and not (math.isfinite(float(cfg.hz)) and float(cfg.hz) > 0):  # null: the policy's
        raise ValueError(f"hz={cfg.hz}: the control rate must be a finite number > 0 Hz")
    if not float(cfg.seconds) > 0:  # named alone (pass 17: "hz=1", a placeholder, was named beside it)
        raise ValueError(f"seconds={cfg.seconds}: the run's length must be > 0 s")
    modes = ("auto", "thread", "inline", "inline_blocking")
    if str(cfg.inference) not in modes:
        raise ValueError(f"inference={cfg.inference}: choose one of {', '.join(modes)}")
    if int(cfg.threads) < 1:  # torch.set_num_threads would end in a traceback
        raise ValueError(f"threads must be >= 1, got {cfg.threads}")
    if int(cfg.fault_after) < 0:
        raise ValueError(f"fault_after must be >= 0 (good chunks before the fault), got {cfg.fault_after}")
    from snapflow.deploy.faults import FAULTS
    from snapflow.scripts.cli_values import explicit_keys

    if str(cfg.fault) not in FAULTS:  # named here, not after the policy is loaded and timed
        raise ValueError(f"fault={cfg.fault!r} is not a fault to inject; valid: {', '.join(FAULTS)}")
    if str(cfg.fault) == "none" and "fault_after" in explicit_keys():  # it would be ignored without a word
        raise ValueError(f"fault_after={cfg.fault_after} goes with fault=<kind> ({', '.join(FAULTS[1:])})")
    if cfg.realtime_priority is not None and not 1 <= int(cfg.realtime_priority) <= 99:
        raise ValueError(
            f"realtime_priority={cfg.realtime_priority}: SCHED_FIFO priorities are 1..99 (or null: off)"
        )
    if cfg.robot not in ("sim", "lerobot"):
        raise ValueError(f"robot={cfg.robot!r} is not a robot kind; valid: sim, lerobot")
    if cfg.robot != "lerobot" and cfg.robot_config is not None:  # the sim would ignore it without a word
        raise ValueError(
            f"robot_config={cfg.robot_config} is only read with robot=lerobot (robot={cfg.robot}); drop it"
        )
    if cfg.robot == "lerobot":
        if cfg.robot_config is None:
            raise ValueError("robot=lerobot needs robot_config=<file> holding a LeRobot robot config")
        if not Path(str(cfg.robot_config)).expanduser().is_file():
            raise FileNotFoundError(f"robot_config={cfg.robot_config}: no such file")
        return
    # robot=sim: a task without its id would run task 0 without a word
    from snapflow.sim.tasks import SUITES, canonical_suite

    suite, sep, task_id = str(cfg.task).partition("/")
    if not sep:
        raise ValueError(
            f"task={cfg.task}: with robot=sim the task is <suite>/<task id>, e.g. {suite or 'spatial'}/0"
        )
    if not task_id.isdigit():
        raise ValueError(f"task={cfg.task}: the task id after '/' must be a whole number, e.g. {suite}/0")
    tasks = SUITES[canonical_suite(suite)]
    if not int(task_id) < len(tasks):
        raise ValueError(f"task={cfg.task}: the task id must be in 0..{len(tasks) - 1} for suite {suite!r}")


def _run(cfg: DictConfig) -> int:
    import torch

    from snapflow.deploy.clock import MonotonicClock
    from snapflow.deploy.control_loop import ControlLoopConfig, run_control_loop
    from snapflow.deploy.metrics import save_run
    from snapflow.deploy.preflight import check_observation, policy_resolution
    from snapflow.deploy.runtimes import load_runtime
    from snapflow.scripts.outputs import atomic_out, check_out

    check_values(cfg)
    cfg.policy = _local_policy(str(cfg.policy))
    inputs = [cfg.policy, cfg.robot_config]  # never replaced by the run's results
    out = check_out(cfg.out, bool(cfg.overwrite), inputs)
    torch.set_num_threads(int(cfg.threads))
    runtime = load_runtime(
        cfg.policy, cfg.runtime, threads=int(cfg.threads), nfe=None if cfg.nfe is None else int(cfg.nfe)
    )
    contract = getattr(runtime, "contract", None)  # an export's; a checkpoint's policy config otherwise
    if contract is not None:
        from snapflow.deploy.contract import quantized_parity_failure

        failure = quantized_parity_failure(cfg.policy)
        if failure:
            print(f"warning: {failure}", file=sys.stderr)
    chunk = contract.chunk_size if contract is not None else runtime.policy.config.chunk_size
    _set_rate(cfg, contract)
    check_chunk_values(cfg, chunk)
    resolution = int(cfg.resolution) if cfg.resolution is not None else (policy_resolution(cfg.policy) or 128)
    robot = make_robot(cfg, resolution)
    try:
        safety = safety_config(robot, cfg)
        first = robot.get_observation()
        check_observation(cfg.policy, first)
        inference, p50 = choose_inference(str(cfg.inference), runtime, first, float(cfg.hz))
        if p50 is not None:
            print(
                f"inference=auto: chunk p50 {p50:.1f} ms vs tick {1e3 / float(cfg.hz):.1f} ms -> {inference}"
            )
        if cfg.fault != "none":
            from snapflow.deploy.faults import FaultInjectingRuntime

            runtime = FaultInjectingRuntime(runtime, str(cfg.fault), good_chunks=int(cfg.fault_after))
        loop_cfg = ControlLoopConfig(
            safety=safety,
            hz=float(cfg.hz),
            seconds=float(cfg.seconds),
            queue_low_watermark=watermark(cfg.queue_low_watermark, inference, p50, float(cfg.hz)),
            actions_per_chunk=None if cfg.actions_per_chunk is None else int(cfg.actions_per_chunk),
            crossfade_steps=int(cfg.crossfade_steps),
            stop_on_success=bool(cfg.stop_on_success),
            inference=inference,
            stop_on_done=not bool(cfg.auto_reset),
            realtime_priority=None if cfg.realtime_priority is None else int(cfg.realtime_priority),
        )
        report = run_control_loop(runtime, robot, MonotonicClock(), loop_cfg)
    finally:
        robot.close()
    with atomic_out(out, bool(cfg.overwrite), inputs) as tmp:
        path = save_run(report, tmp)
        run = json.loads(Path(path).read_text())
        run["inference"] = inference
        run["chunking"] = {  # as executed: the watermark is the computed one when none was given
            "actions_per_chunk": loop_cfg.actions_per_chunk,
            "queue_low_watermark": loop_cfg.queue_low_watermark,
            "crossfade_steps": loop_cfg.crossfade_steps,
        }
        run["policy"], run["task"] = str(cfg.policy), str(cfg.task)  # what ran, next to how it ran
        run["runtime"], run["nfe"] = str(cfg.runtime), None if cfg.nfe is None else int(cfg.nfe)
        if hasattr(robot, "episodes"):  # the sim: finished episodes over the run (several with auto_reset)
            run["episodes"], run["episode_successes"] = robot.episodes, robot.successes
        Path(path).write_text(json.dumps(run, indent=2) + "\n")
    print(summary(run))
    if cfg.realtime_priority is not None:  # what the scheduler granted, not only in run.json
        print(f"realtime: {'; '.join(run.get('realtime') or ['no note'])}")
    print(f"outputs: {out.resolve()}")
    if run["stop_reason"] == "interrupted":
        print("stopped by Ctrl-C; run.json holds the ticks run", file=sys.stderr)
        sys.exit(130)  # the shell's code for SIGINT
    if run["stop_reason"] == "fault" or run.get("fault"):
        print(f"fault: {run.get('fault')}", file=sys.stderr)
        return 1
    return 0


@hydra.main(version_base=None, config_path="../configs", config_name="run")
def _main(cfg: DictConfig) -> None:
    from snapflow.scripts.cli_values import checked, run_cli

    run_cli(lambda: _run(checked(cfg, "run")), debug=cfg.debug)


def main() -> None:
    from snapflow.scripts.cli_values import check_argv

    check_argv("run")  # unknown keys named in one line before Hydra parses
    _main()


if __name__ == "__main__":
    main()
