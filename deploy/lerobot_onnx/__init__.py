"""LeRobot policy type `snapflow_onnx`: an exported graph run by ONNX Runtime, usable by lerobot-eval/rollout.

`snapflow-export` writes a `config.json` of this type into the export directory, next to the source
checkpoint's processors, so `lerobot-eval --policy.path=<export dir>` evaluates the exported graph itself.
"""

from snapflow.deploy.lerobot_onnx.configuration_snapflow_onnx import SnapFlowOnnxConfig
from snapflow.deploy.lerobot_onnx.modeling_snapflow_onnx import SnapFlowOnnxPolicy

__all__ = ["SnapFlowOnnxConfig", "SnapFlowOnnxPolicy"]
