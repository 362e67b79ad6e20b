"""`snapflow-export`: ONNX (and TensorRT) export of a *_snapflow checkpoint with a parity report.

    snapflow-export policy=<pretrained_model dir> out=<dir> [nfe=1] [opset=20] [int8=false] [tensorrt=false]

Writes <out>/model.onnx (+ model.onnx.data), contract.json, parity.json, the checkpoint's processors and a
`snapflow_onnx` config.json (so `lerobot-eval --policy.path=<out>` runs the exported graph).
"""

import sys

import hydra
import torch
from omegaconf import DictConfig


def _observation(policy: torch.nn.Module, task: str) -> dict:
    """A neutral raw LeRobot observation of the policy's features (only its tokens are used)."""
    obs = {key: torch.zeros(ft.shape) for key, ft in policy.config.input_features.items()}
    return {**obs, "task": task}


@hydra.main(version_base=None, config_path="../configs", config_name="export")
def _main(cfg: DictConfig) -> None:
    from snapflow.deploy.export_onnx import ExportParityError, export_onnx
    from snapflow.deploy.runtimes import TorchRuntime

    runtime = TorchRuntime.from_checkpoint(cfg.policy, nfe=int(cfg.nfe))
    try:
        contract, _ = export_onnx(
            runtime.policy,
            runtime.pre,
            _observation(runtime.policy, cfg.task),
            cfg.out,
            source_dir=cfg.policy,
            nfe=int(cfg.nfe),
            opset=int(cfg.opset),
            int8=bool(cfg.int8),
            fps=float(cfg.fps),
        )
    except ExportParityError as e:
        sys.exit(f"export failed the parity check: {e} (see {cfg.out}/parity.json)")
    print(f"wrote {cfg.out}/{contract.onnx_file}, contract.json, parity.json")
    if cfg.tensorrt:
        from snapflow.deploy.tensorrt_engine import TensorRTUnavailable, build_engine

        try:
            print(f"TensorRT engine: {build_engine(cfg.out)}")
        except TensorRTUnavailable as e:
            sys.exit(f"tensorrt=true but TensorRT cannot run here: {e}")


def main() -> None:
    _main()


if __name__ == "__main__":
    main()
