"""`snapflow_onnx` policy: select_action / predict_action_chunk run the exported graph on ONNX Runtime."""

from collections import deque
from pathlib import Path
from typing import Any

import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies.pretrained import PreTrainedPolicy
from torch import Tensor

from snapflow.deploy.lerobot_onnx.configuration_snapflow_onnx import SnapFlowOnnxConfig
from snapflow.policies.lerobot_plugin.validation import check_queue_batch, validate_batch


class SnapFlowOnnxPolicy(PreTrainedPolicy):
    config_class = SnapFlowOnnxConfig
    name = "snapflow_onnx"

    def __init__(self, config: SnapFlowOnnxConfig, **kwargs: Any):
        super().__init__(config)
        self.runtime = None  # an OrtRuntime, attached by from_pretrained
        self._queue: deque[Tensor] = deque(maxlen=config.n_action_steps)

    @classmethod
    def from_pretrained(
        cls, pretrained_name_or_path: str | Path, *, config: PreTrainedConfig | None = None, **kwargs: Any
    ) -> "SnapFlowOnnxPolicy":
        from snapflow.deploy.runtimes import OrtRuntime

        if config is None:
            config = PreTrainedConfig.from_pretrained(pretrained_name_or_path)
        policy = cls(config)
        policy.runtime = OrtRuntime(
            pretrained_name_or_path, threads=config.intra_op_threads, seed=config.seed
        )
        return policy.eval()

    def reset(self) -> None:
        self._queue.clear()

    def get_optim_params(self) -> list:
        return []

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict]:
        raise NotImplementedError("snapflow_onnx is inference only: train the source *_snapflow checkpoint")

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict[str, Tensor], **kwargs: Any) -> Tensor:
        if self.runtime is None:
            raise RuntimeError("load a snapflow_onnx policy with from_pretrained(<export dir>)")
        validate_batch(self.config, batch, needs_action=False)  # the same checks as the torch student
        for key, shape in self.runtime.features.items():  # the graph's fixed sizes (torch resizes any size)
            if key in batch and tuple(batch[key].shape[1:]) != shape:
                raise ValueError(
                    f"{key} has shape {list(batch[key].shape[1:])}, the exported graph takes {list(shape)}"
                )
        return torch.from_numpy(self.runtime.run_batch(batch))

    @torch.no_grad()
    def select_action(self, batch: dict[str, Tensor], **kwargs: Any) -> Tensor:
        check_queue_batch(self._queue, batch, self.config)
        if not self._queue:
            chunk = self.predict_action_chunk(batch)[:, : self.config.n_action_steps]
            self._queue.extend(chunk.transpose(0, 1))
        return self._queue.popleft()
