"""Config of the `snapflow_onnx` policy type (inference only)."""

from dataclasses import dataclass, field

from lerobot.configs.policies import PreTrainedConfig
from lerobot.configs.types import NormalizationMode


@PreTrainedConfig.register_subclass("snapflow_onnx")
@dataclass
class SnapFlowOnnxConfig(PreTrainedConfig):
    """An exported *_snapflow graph; features and normalisation are the source checkpoint's."""

    source_type: str = ""
    chunk_size: int = 50
    n_action_steps: int = 50
    intra_op_threads: int = 1  # ONNX Runtime threads: never more than the cores left to inference
    seed: int = 0  # of the noise the runtime draws for each chunk
    normalization_mapping: dict[str, NormalizationMode] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.n_action_steps <= self.chunk_size:
            raise ValueError(
                f"n_action_steps={self.n_action_steps} must be in [1, chunk_size={self.chunk_size}] "
                "(the exported graph predicts chunk_size actions)"
            )

    @property
    def observation_delta_indices(self) -> None:
        return None

    @property
    def action_delta_indices(self) -> list[int]:
        return list(range(self.chunk_size))

    @property
    def reward_delta_indices(self) -> None:
        return None

    def get_optimizer_preset(self) -> None:
        raise NotImplementedError("snapflow_onnx is inference only: train the source *_snapflow checkpoint")

    def get_scheduler_preset(self) -> None:
        return None

    def validate_features(self) -> None:
        if not self.output_features:
            raise ValueError(
                "snapflow_onnx config has no output features (was it written by snapflow-export?)"
            )
