"""SnapFlowConfig: the method's hyper-parameters, nested as ``policy.snapflow`` in every plugin config."""

from dataclasses import dataclass
from typing import Literal

SPLITS = ("fixed", "bernoulli")
MULTISTEP_MODES = ("target_time", "euler")
CONSISTENCY_LOSSES = ("mse", "energy")


class ConfigError(Exception):
    """A bad value of a SnapFlow policy config, named with its field.

    Deliberately not a ValueError: draccus, LeRobot's CLI parser, turns a ValueError or TypeError raised while
    it builds a config into "Couldn't instantiate class ...", and under ``lerobot-train``'s policy union drops
    the cause entirely; any other exception reaches the user with its message. Our commands report it as a
    refused input (exit 2), as they do ValueError.
    """


@dataclass
class SnapFlowConfig:
    """Hyper-parameters of SnapFlow self-distillation (defaults = the SnapFlow paper's recipe).

    Every field is overridable from LeRobot's CLI as ``--policy.snapflow.<field>=...``.
    """

    # Fraction of each batch routed to the flow-matching branch, and its weight in the total loss:
    # L = alpha * L_fm + (1 - alpha) * consistency_weight * L_sc.  alpha=1 is the plain FM fine-tune control.
    alpha: float = 0.5
    # lambda in the paper: balances the gradient magnitudes of the two branches.
    consistency_weight: float = 0.1
    # Clamp of the two stop-gradient target velocities to +-target_clamp (0 disables). 20.0 as in the
    # reimplementations the paper is attributed with; it only matters early in training.
    target_clamp: float = 20.0
    # "fixed": round(alpha * B) samples go to the FM branch (static shapes, torch.compile / DDP friendly);
    # "bernoulli": each sample independently with probability alpha (Algorithm 1 of the paper).
    split: Literal["fixed", "bernoulli"] = "fixed"
    # How a K>1 inference uses the target time: "target_time" jumps t_k -> s=t_{k+1}; "euler" uses s=t.
    multistep_mode: Literal["target_time", "euler"] = "target_time"
    # Euler steps of the consistency target (an option; 2 = the paper's two-step target). With k steps the
    # target is the model's own k-step Euler sampler from t=1 (k stop-gradient passes per consistency row
    # instead of 2), so the 1-NFE jump learns a finer sampler than the 2-step one (README, "Where one
    # Euler step must fail").
    consistency_steps: int = 2
    # How the 1-NFE jump is scored against the consistency target (an option; "mse" = the paper's): "mse"
    # regresses each noise draw onto its own target; "energy" draws `energy_samples` noises per observation
    # and scores the jump's samples against the target's samples with the energy score (a proper scoring
    # rule: it asks for the targets' distribution, not for each noise's own target), so the jump may split
    # the noise between the modes however it learns fastest (README, "Where one Euler step must fail").
    consistency_loss: Literal["mse", "energy"] = "mse"
    # Noise draws per observation in the consistency branch with consistency_loss="energy" (>= 2: the
    # energy score's spread term compares draws of the same observation).
    energy_samples: int = 4
    # Width of the hidden layer of the target-time MLP; 0 means "same as the time-embedding width".
    target_time_hidden_dim: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"snapflow.alpha must be in [0, 1], got {self.alpha}")
        if self.consistency_weight < 0:
            raise ConfigError(f"snapflow.consistency_weight must be >= 0, got {self.consistency_weight}")
        if self.target_clamp < 0:
            raise ConfigError(f"snapflow.target_clamp must be >= 0 (0 disables), got {self.target_clamp}")
        if self.split not in SPLITS:
            raise ConfigError(f"snapflow.split must be one of {SPLITS}, got {self.split!r}")
        if self.multistep_mode not in MULTISTEP_MODES:
            raise ConfigError(
                f"snapflow.multistep_mode must be one of {MULTISTEP_MODES}, got {self.multistep_mode!r}"
            )
        if isinstance(self.consistency_steps, bool) or not isinstance(self.consistency_steps, int):
            raise ConfigError(
                f"snapflow.consistency_steps must be an integer >= 2, got {self.consistency_steps!r}"
            )
        if self.consistency_steps < 2:
            raise ConfigError(f"snapflow.consistency_steps must be >= 2, got {self.consistency_steps}")
        if self.consistency_loss not in CONSISTENCY_LOSSES:
            raise ConfigError(
                f"snapflow.consistency_loss must be one of {CONSISTENCY_LOSSES}, got {self.consistency_loss!r}"
            )
        if isinstance(self.energy_samples, bool) or not isinstance(self.energy_samples, int):
            raise ConfigError(f"snapflow.energy_samples must be an integer >= 2, got {self.energy_samples!r}")
        if self.energy_samples < 2:
            raise ConfigError(f"snapflow.energy_samples must be >= 2, got {self.energy_samples}")
        if self.target_time_hidden_dim < 0:
            raise ConfigError("snapflow.target_time_hidden_dim must be >= 0")


def validate_student_fields(cfg: object, steps_field: str) -> None:
    """Checks a ``*_snapflow`` config at construction (so a CLI fails before any env or dataset is built).

    Raises ConfigError naming the field: the NFE (``steps_field``) must be an integer >= 1; ``compile_model``
    is refused because upstream compiles its own ``sample_actions``/``forward``, which the student does not
    run (it samples and trains through its own explicit-time path; the exported ONNX/TensorRT graph is the
    fast path).
    """
    nfe = getattr(cfg, steps_field)
    if isinstance(nfe, bool) or not isinstance(nfe, int) or nfe < 1:
        raise ConfigError(f"policy.{steps_field} (the NFE) must be an integer >= 1, got {nfe!r}")
    if getattr(cfg, "compile_model", False):
        raise ConfigError(
            "policy.compile_model=true is not supported by *_snapflow policies: upstream compiles its own "
            "sample_actions/forward, which the student does not use; export the student with snapflow-export "
            "(ONNX Runtime / TensorRT) for fast inference"
        )
