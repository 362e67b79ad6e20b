"""snapflow-eval's checks of its values, samplers and files, each run before any policy is loaded or any
episode rolled out (a wrong value found after the rollouts loses them)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

CHECKPOINT_KEYS = ("teacher", "student", "fm", "student_k", "student_option")


def check_checkpoints_used(cfg: DictConfig, names: list[str], raw_defs: dict) -> None:
    """ValueError naming a checkpoint key that is set while no selected sampler reads it (fm= beside
    samplers=[naive_1] was not evaluated, without a word)."""

    def reads(name: str) -> str:  # the key a sampler's policy interpolates: "${student_k}" -> student_k
        return str((raw_defs.get(name) or {}).get("policy", "")).strip("${}")

    used = {reads(n) for n in names}
    for key in CHECKPOINT_KEYS:
        if cfg.get(key) not in (None, "") and key not in used:
            readers = sorted(n for n in raw_defs if reads(n) == key)
            raise ValueError(
                f"{key}= is set but samplers={list(names)} evaluates none of its samplers ({', '.join(readers)}): "
                f"add one, or drop {key}="
            )


def sampler_number(name: str, key: str, value: object) -> float:
    """A sampler definition's number, or ValueError naming the sampler and the field (noise_scale: abc)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"sampler {name!r}: {key}={value!r} is not a number") from None


def sampler_nfe(name: str, value: object) -> int:
    """A sampler's NFE: a whole number (2.7 is refused, not cut to 2), range-checked by SamplerSpec's users."""
    number = sampler_number(name, "nfe", value)
    if not number.is_integer():
        raise ValueError(f"sampler {name!r}: nfe={value!r} is not a whole number of steps")
    return int(number)


def check_loop_values(cfg: DictConfig) -> None:
    """batch_size, n_action_steps and resolution= named before any policy is loaded (they were named only
    after loading, by the rollout code)."""
    from snapflow.sim.env import check_resolution

    for key in ("batch_size", "n_action_steps"):
        if int(cfg[key]) < 1:
            raise ValueError(f"{key} must be >= 1, got {cfg[key]}")
    if cfg.resolution is not None:
        check_resolution(cfg.resolution)


def check_chunk_sizes(n_action_steps: int, samplers: dict) -> None:
    """ValueError naming the sampler whose action chunk is shorter than `n_action_steps` (read from its
    config.json, or an export's contract.json, without loading it)."""
    from snapflow.deploy.contract import load_contract
    from snapflow.scripts.checkpoints import read_policy_config

    for name, (spec, _) in samplers.items():
        path = Path(spec.policy)
        if (path / "contract.json").is_file():
            chunk = load_contract(path, check_graph=False).chunk_size
        else:
            chunk = read_policy_config(path).get("chunk_size")
        if isinstance(chunk, int) and not n_action_steps <= chunk:
            raise ValueError(
                f"n_action_steps={n_action_steps} must be in [1, chunk_size={chunk}] of sampler {name!r} ({path})"
            )


def check_mse_state(dataset: object, samplers: dict) -> None:
    """ValueError naming the sampler whose observation.state length differs from the offline MSE's dataset=
    (a 74-D object-state dataset for an 8-D policy failed after every rollout in a tensor-size error)."""
    from snapflow.scripts.checkpoints import read_policy_config
    from snapflow.scripts.dataset_checks import dataset_state_dim

    if not dataset:
        return
    have = dataset_state_dim(dataset)
    for name, (spec, _) in samplers.items():
        if (Path(spec.policy) / "contract.json").is_file():
            continue  # an export's inputs are checked by its own observation check
        state = (read_policy_config(Path(spec.policy)).get("input_features") or {}).get("observation.state")
        want = (state or {}).get("shape", [None])[0]
        if isinstance(want, int) and want != have:
            raise ValueError(
                f"dataset={dataset} records a {have}-D observation.state, but sampler {name!r} ({spec.policy}) "
                f"takes {want}-D: the offline MSE needs the dataset the policy was trained on (or its layout)"
            )


def contract_nfe(name: str, directory: str) -> int:
    """The NFE an export was made with (its contract.json), named by sampler when the directory is not one or
    its files no longer match their hashes (checked here, before any rollout, not when the graph is loaded)."""
    from snapflow.deploy.contract import load_contract

    try:
        return int(load_contract(directory, check_graph=True).nfe)
    except ValueError as e:
        raise ValueError(f"exports.{name}: {e}") from None


def check_mse_dataset(cfg: DictConfig) -> None:
    """The offline MSE's dataset= (read after every rollout) checked before them: a LeRobotDataset with
    actions and at least episodes_for_mse episodes; FileNotFoundError / ValueError naming it otherwise."""
    from snapflow.policies.offline_mse import held_out_episodes
    from snapflow.scripts.dataset_checks import read_dataset_info

    if not cfg.dataset:
        return
    info = read_dataset_info(cfg.dataset)
    if "action" not in info["features"]:
        raise ValueError(f"dataset={cfg.dataset} records no action: the offline MSE compares actions")
    held_out_episodes(int(info.get("total_episodes") or 0), int(cfg.episodes_for_mse))
