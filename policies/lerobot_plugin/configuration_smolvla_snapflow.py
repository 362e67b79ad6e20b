"""LeRobot config of the `smolvla_snapflow` policy type: upstream SmolVLAConfig + a nested SnapFlowConfig."""

from dataclasses import dataclass, field

from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig

from snapflow.policies.snapflow.config import SnapFlowConfig, validate_student_fields


@PreTrainedConfig.register_subclass("smolvla_snapflow")
@dataclass
class SmolVLASnapFlowConfig(SmolVLAConfig):
    """SmolVLA distilled by SnapFlow. ``num_steps`` is the NFE at inference (1 = one joint pass).

    Defaults are the paper's distillation recipe: VLM frozen (upstream's train_expert_only and
    freeze_vision_encoder), lr 2.5e-5 with 500 warm-up steps and cosine decay.
    """

    snapflow: SnapFlowConfig = field(default_factory=SnapFlowConfig)
    num_steps: int = 1
    optimizer_lr: float = 2.5e-5
    scheduler_warmup_steps: int = 500
    scheduler_decay_lr: float = 2.5e-7
    # Upstream SmolVLA has no such switch; here it recomputes each gradient-carrying velocity pass in backward
    # (torch.utils.checkpoint) instead of storing its activations, as PI0/PI05's flag does inside upstream.
    gradient_checkpointing: bool = False

    def __post_init__(self):
        super().__post_init__()
        validate_student_fields(self, "num_steps")
