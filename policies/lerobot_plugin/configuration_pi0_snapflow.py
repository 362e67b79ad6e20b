"""LeRobot config of the `pi0_snapflow` policy type: upstream PI0Config + a nested SnapFlowConfig."""

from dataclasses import dataclass, field

from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies.pi0.configuration_pi0 import PI0Config

from snapflow.policies.snapflow.config import SnapFlowConfig, validate_student_fields
from snapflow.policies.tiny_paligemma import validate_variants_with_tiny

PALIGEMMA_TOKENIZER = "google/paligemma-3b-pt-224"


@PreTrainedConfig.register_subclass("pi0_snapflow")
@dataclass
class PI0SnapFlowConfig(PI0Config):
    """PI0 distilled by SnapFlow. ``num_inference_steps`` is the NFE at inference (1 = one joint pass).

    Defaults are the paper's distillation recipe: the whole VLM frozen (train_expert_only), lr 2.5e-5 with
    500 warm-up steps and cosine decay. ``tokenizer_name`` replaces the PaliGemma tokenizer that upstream
    hard-codes (a local directory works offline). Besides upstream's gemma variants, the offline tiny
    variants of snapflow.policies.tiny_paligemma are accepted.
    """

    snapflow: SnapFlowConfig = field(default_factory=SnapFlowConfig)
    num_inference_steps: int = 1
    train_expert_only: bool = True
    freeze_vision_encoder: bool = True
    optimizer_lr: float = 2.5e-5
    scheduler_warmup_steps: int = 500
    scheduler_decay_lr: float = 2.5e-7
    tokenizer_name: str = PALIGEMMA_TOKENIZER

    def __post_init__(self):
        validate_variants_with_tiny(self, super().__post_init__)
        validate_student_fields(self, "num_inference_steps")
