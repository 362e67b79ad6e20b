"""TensorRT engines from an exported ONNX graph, and a ChunkRuntime that runs them.

Imported lazily (``import snapflow...`` never imports tensorrt). Strongly typed networks: TensorRT 11 has
only those, TensorRT 10 needs the STRONGLY_TYPED flag; precision therefore comes from the
ONNX graph itself (fp32 here). Engines are cached by (TensorRT version, GPU name, input shapes) and only
ever loaded from the cache this code wrote.
"""

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from snapflow.deploy.contract import Contract, load_contract
from snapflow.deploy.runtime_base import ChunkResult

MAX_BATCH = 8  # optimisation-profile maximum of the symbolic batch axis
WORKSPACE_BYTES = 2 << 30


class TensorRTUnavailable(RuntimeError):
    """TensorRT or a CUDA GPU is missing here; the message says which."""


def trt_usable() -> tuple[bool, str]:
    """(usable, reason): probes a real trt.Builder, which fails without a driver."""
    try:
        import tensorrt as trt
    except ImportError as e:
        return False, f"tensorrt is not installed ({e}); install it from NVIDIA's index on a GPU machine"
    if not torch.cuda.is_available():
        return False, "no CUDA GPU visible to torch"
    try:
        trt.Builder(trt.Logger(trt.Logger.ERROR))
    except Exception as e:  # TypeError(nullptr) when CUDA cannot initialise
        return False, f"trt.Builder failed: {e}"
    return True, f"TensorRT {trt.__version__} on {torch.cuda.get_device_name()}"


def require_tensorrt(refusal: str | None = None) -> None:
    """TensorRTUnavailable unless TensorRT can build engines here; ``refusal`` (e.g. "tensorrt=true but
    TensorRT cannot run here") starts the message, so a command refuses its option by name before any work."""
    ok, reason = trt_usable()
    if not ok:
        raise TensorRTUnavailable(f"{refusal}: {reason}" if refusal else reason)


def _require_trt() -> "object":
    require_tensorrt()
    import tensorrt as trt

    return trt


def engine_path(export_dir: Path, contract: Contract) -> Path:
    trt = _require_trt()
    key = json.dumps(
        {
            "trt": trt.__version__,
            "gpu": torch.cuda.get_device_name(),
            "max_batch": MAX_BATCH,
            "inputs": [[s.name, s.shape, s.dtype] for s in contract.inputs],
            "onnx": contract.onnx_sha256,
        }
    )
    return export_dir / "trt_cache" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.engine"


def build_engine(export_dir: str | Path) -> Path:
    """Build (or reuse) the engine of ``export_dir``; returns the cached engine file."""
    trt = _require_trt()
    export_dir = Path(export_dir)
    contract = load_contract(export_dir)
    target = engine_path(export_dir, contract)
    if target.is_file():
        return target
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if trt.__version__.startswith("10."):
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(export_dir / contract.onnx_file)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        if contract.opset >= 23 and any("Attention" in e for e in errors):
            raise TensorRTUnavailable(
                f"TensorRT {trt.__version__} cannot parse ONNX's Attention op (opset {contract.opset}; TensorRT "
                "parses it from 10.14): re-export with snapflow-export opset=20"
            )
        raise RuntimeError(errors)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    profile = builder.create_optimization_profile()
    for spec in contract.inputs:
        rest = tuple(int(d) for d in spec.shape[1:])
        profile.set_shape(spec.name, (1, *rest), (1, *rest), (MAX_BATCH, *rest))
    config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError("TensorRT failed to build the engine (see the log above)")
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(bytes(plan))
    return target


class TrtRuntime:
    """An export directory run by a TensorRT engine; pre/postprocessing as OrtRuntime."""

    def __init__(self, export_dir: str | Path, seed: int = 0):
        trt = _require_trt()
        from snapflow.deploy.runtimes import load_processors

        self.dir = Path(export_dir)
        self.contract = load_contract(self.dir)
        self.pre, self.post = load_processors(self.dir, device="cuda")
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(build_engine(self.dir).read_bytes())
        self.context = self.engine.create_execution_context()
        self.generator = torch.Generator(device="cuda").manual_seed(seed)
        self.stream = torch.cuda.Stream()

    def predict_chunk(self, observation: dict) -> ChunkResult:
        from snapflow.deploy.export_onnx import pad_language
        from snapflow.deploy.observation import check_features, to_lerobot_batch

        start = time.perf_counter()
        raw = to_lerobot_batch(observation)
        check_features(raw, self.contract.observation_features())
        batch = self.pre(raw)
        length = int(self.contract.tokenizer["max_length"])
        tokens, mask = pad_language(
            batch["observation.language.tokens"], batch["observation.language.attention_mask"].bool(), length
        )
        t_pre = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        feeds = {}
        for spec in self.contract.inputs:
            if spec.role in ("image", "state"):
                feeds[spec.name] = batch[spec.feature].float().cuda().contiguous()
            elif spec.role == "lang_tokens":
                feeds[spec.name] = tokens.cuda().long().contiguous()
            elif spec.role == "lang_mask":
                feeds[spec.name] = mask.cuda().contiguous()
            else:
                shape = (1, *(int(d) for d in spec.shape[1:]))
                feeds[spec.name] = torch.randn(shape, device="cuda", generator=self.generator)
        out = torch.empty((1, self.contract.chunk_size, self.contract.action_dim), device="cuda")
        for name, tensor in feeds.items():
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        self.context.set_tensor_address("actions", out.data_ptr())
        self.context.execute_async_v3(self.stream.cuda_stream)
        self.stream.synchronize()
        t_model = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        actions = self.post(out.cpu())[0].numpy().astype(np.float32)
        return ChunkResult(
            actions,
            {"preprocess": t_pre, "model": t_model, "postprocess": (time.perf_counter() - start) * 1e3},
        )

    def reset(self) -> None:
        pass
