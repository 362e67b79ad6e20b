"""Choosing a flow-matching policy's sampler on its LeRobot config: the number of function evaluations (NFE)
and, for a ``*_snapflow`` student, how K steps use the target time. The simulator and the runtimes call this;
they never set policy fields themselves."""

STEP_FIELDS = ("num_steps", "num_inference_steps")  # SmolVLA's / PI0's and PI05's NFE field


def steps_field_of(cfg: object) -> str:
    """The config field holding the denoising step count; ValueError for a policy that is not flow matching."""
    field = next((f for f in STEP_FIELDS if hasattr(cfg, f)), None)
    if field is None:
        raise ValueError(
            f"a {getattr(cfg, 'type', type(cfg).__name__)!r} policy is not a flow-matching policy with one of "
            f"{STEP_FIELDS}"
        )
    return field


def configure_sampler(cfg: object, nfe: int, mode: str | None = None) -> None:
    """Set ``cfg``'s NFE (an integer >= 1) and, when given, a student's ``snapflow.multistep_mode``
    ("target_time" | "euler"). Raises ValueError naming the bad value."""
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 1:
        raise ValueError(f"nfe must be an integer >= 1, got {nfe!r}")
    setattr(cfg, steps_field_of(cfg), nfe)
    if mode is None:
        return
    if not hasattr(cfg, "snapflow"):
        raise ValueError(f"mode={mode!r} needs a *_snapflow student, got {cfg.type!r}")
    from snapflow.policies.snapflow.config import MULTISTEP_MODES

    if mode not in MULTISTEP_MODES:
        raise ValueError(f"mode must be one of {MULTISTEP_MODES}, got {mode!r}")
    cfg.snapflow.multistep_mode = mode
