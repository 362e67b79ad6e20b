"""`snapflow-export`: ONNX (and TensorRT) export of a *_snapflow checkpoint with a parity report.

    snapflow-export policy=<pretrained_model dir> out=<dir> [nfe=1] [opset=23] [quantize=none|int8|int8_static]
        [calibration=<dataset dir>] [image_size=<px>] [tensorrt=false]

Writes <out>/model.onnx (+ model.onnx.data), contract.json, parity.json, the checkpoint's processors and a
`snapflow_onnx` config.json (so `lerobot-eval --policy.path=<out>` runs the exported graph).
"""

import math
import sys

import hydra
import torch
from omegaconf import DictConfig

# A typo guard: the exported graph holds one action-expert pass per step (nfe=1000 ran for minutes before a
# word); the samplers here use at most 10 steps, 10x that leaves room for finer Euler grids.
MAX_EXPORT_NFE = 100


def _observation(policy: torch.nn.Module, task: str) -> dict:
    """A neutral raw LeRobot observation of the policy's features (only its tokens are used)."""
    obs = {key: torch.zeros(ft.shape) for key, ft in policy.config.input_features.items()}
    return {**obs, "task": task}


def set_image_size(policy: torch.nn.Module, side: int) -> None:
    """Resize the cameras to ``side`` px inside the graph (SmolVLA's ``resize_imgs_with_padding``): fewer
    image tokens, a shorter prefix. The policy was trained at its own size; what this costs in success is
    measured by evaluating the export (snapflow-eval exports={...})."""
    if not hasattr(policy.config, "resize_imgs_with_padding"):
        raise ValueError(
            f"image_size= applies to SmolVLA students; {policy.config.type} has a fixed image size"
        )
    vision = policy.model.vlm_with_expert.config.vision_config
    grid = vision.patch_size * policy.model.vlm_with_expert.config.scale_factor
    if side < grid or side % grid:
        raise ValueError(
            f"image_size={side}: must be a multiple of {grid} px (patch {vision.patch_size} x pixel-shuffle "
            f"{policy.model.vlm_with_expert.config.scale_factor}), so whole patch groups become tokens"
        )
    policy.config.resize_imgs_with_padding = (side, side)


@hydra.main(version_base=None, config_path="../configs", config_name="export")
def _main(cfg: DictConfig) -> None:
    from snapflow.scripts.cli_values import checked, run_cli

    run_cli(lambda: _body(checked(cfg, "export")), debug=cfg.get("debug", False))


def _body(cfg: DictConfig) -> None:
    from snapflow.deploy.export_onnx import ExportParityError, check_opset, export_onnx
    from snapflow.deploy.quantize import QUANTIZATIONS
    from snapflow.deploy.runtimes import TorchRuntime
    from snapflow.scripts.checkpoints import read_policy_config, resolve_pretrained
    from snapflow.scripts.outputs import atomic_out, check_out

    check_opset(int(cfg.opset))
    if not 1 <= int(cfg.nfe) <= MAX_EXPORT_NFE:
        raise ValueError(
            f"nfe={cfg.nfe}: the number of function evaluations must be in [1, {MAX_EXPORT_NFE}] (the graph "
            "unrolls one action-expert pass per step)"
        )
    if not (math.isfinite(float(cfg.fps)) and float(cfg.fps) > 0):
        raise ValueError(
            f"fps={cfg.fps}: the control rate recorded in the contract must be a finite number > 0 Hz"
        )
    if not str(cfg.task).strip():  # pass 16 left: named by the tokenizer after the load
        raise ValueError(
            "task='': the parity check tokenises an instruction; give one (default 'pick up the object')"
        )
    if cfg.get("int8") is not None:
        raise ValueError("int8= is replaced by quantize=int8 (deploys the int8 graph) or quantize=none")
    quantize = str(cfg.quantize)
    if quantize not in QUANTIZATIONS:
        raise ValueError(
            f"quantize={quantize!r}: choose none (float32 graph), int8 (dynamic int8) or int8_static "
            "(static int8, calibrated on calibration=<LeRobotDataset dir>)"
        )
    if quantize == "int8_static" and cfg.calibration is None:  # pass 16 left: read as an extra key
        raise ValueError(
            "quantize=int8_static needs calibration=<LeRobotDataset dir>: static int8 calibrates its activation "
            "ranges on that dataset's frames"
        )
    if quantize != "int8_static" and cfg.calibration is not None:
        raise ValueError(
            f"calibration={cfg.calibration} goes with quantize=int8_static only (quantize={quantize} "
            "calibrates nothing)"
        )
    from snapflow.scripts.cli_values import explicit_keys

    if quantize != "int8_static" and "calibration_frames" in explicit_keys():  # ignored otherwise
        raise ValueError(
            "calibration_frames= goes with quantize=int8_static (and calibration=), and only with it"
        )
    if cfg.tensorrt:  # a runtime this machine lacks is refused before the minute-long export, not after it
        from snapflow.deploy.tensorrt_engine import require_tensorrt

        require_tensorrt("tensorrt=true but TensorRT cannot run here")
    policy = resolve_pretrained(cfg.policy)  # a missing policy named before out= is looked at
    inputs = [cfg.policy, cfg.calibration]  # never replaced by the export, whatever overwrite says
    if cfg.calibration is not None:  # pass 17: a damaged one failed in a Hub traceback after the load
        from snapflow.scripts.dataset_checks import read_dataset_info

        try:
            read_dataset_info(cfg.calibration)
        except (ValueError, FileNotFoundError) as e:  # named by the key the user gave
            raise type(e)(str(e).replace("dataset=", "calibration=", 1)) from None
    check_out(cfg.out, bool(cfg.overwrite), inputs)  # before the minute-long export, not after
    kind = str(read_policy_config(policy).get("type", ""))
    if not kind.endswith("_snapflow"):  # export_onnx refuses it too, after the load (pass 15: named first)
        raise ValueError(
            f"policy={cfg.policy} is a {kind!r} checkpoint: export needs a *_snapflow policy (a snapflow-distill "
            "student)"
        )
    if cfg.image_size is not None and int(cfg.image_size) < 1:  # the multiple is checked once loaded
        raise ValueError(f"image_size={cfg.image_size}: a camera side in px must be >= 1")
    print(f"[1/3] loading {policy}", flush=True)
    runtime = TorchRuntime.from_checkpoint(policy, nfe=int(cfg.nfe))
    if cfg.image_size is not None:
        set_image_size(runtime.policy, int(cfg.image_size))
    calibration = None
    if quantize == "int8_static":
        from snapflow.deploy.calibration import calibration_feeds

        print(f"      calibration: {cfg.calibration_frames} frames of {cfg.calibration}", flush=True)
        calibration = calibration_feeds(
            runtime.policy, runtime.pre, cfg.calibration, int(cfg.calibration_frames)
        )
    print("[2/3] exporting to ONNX and checking parity against torch (about a minute)", flush=True)
    with atomic_out(cfg.out, bool(cfg.overwrite), inputs) as tmp:  # a failed export leaves out= as it was
        try:
            contract, _ = export_onnx(
                runtime.policy,
                runtime.pre,
                _observation(runtime.policy, cfg.task),
                tmp,
                source_dir=policy,
                nfe=int(cfg.nfe),
                opset=int(cfg.opset),
                quantize=quantize,
                calibration=calibration,
                fps=float(cfg.fps),
            )
        except ExportParityError as e:
            sys.exit(f"export failed the parity check: {e} (see {tmp}/parity.json; {cfg.out} unchanged)")
    print(f"[3/3] wrote {cfg.out}/{contract.onnx_file}, contract.json (file hashes), parity.json")
    kind = {
        "none": "float32",
        "int8": "dynamic int8 (quantize=int8); model.onnx is the float32 graph",
        "int8_static": "static int8 (quantize=int8_static); model.onnx is the float32 graph",
    }[quantize]
    print(f"deployed graph (contract.json): {contract.onnx_file}, {kind}")
    from snapflow.deploy.contract import quantized_parity_failure

    failure = quantized_parity_failure(cfg.out)
    if failure:  # deployed as asked, but never without a word
        print(f"warning: {failure}", file=sys.stderr)
    if cfg.tensorrt:
        from snapflow.deploy.tensorrt_engine import TensorRTUnavailable, build_engine

        try:
            print(f"TensorRT engine: {build_engine(cfg.out)}")
        except TensorRTUnavailable as e:
            sys.exit(f"tensorrt=true but TensorRT cannot run here: {e}")


def main() -> None:
    from snapflow.scripts.cli_values import check_argv

    check_argv("export")  # unknown keys named in one line before Hydra parses
    _main()


if __name__ == "__main__":
    main()
