"""snapflow-export: a *_snapflow checkpoint -> model.onnx (+ .data), contract.json, parity.json.

Export uses torch's dynamo exporter at opset 20 with a batch-2 example and a symbolic batch axis (a batch-1
example silently fixes the batch at 1), asserts the axis is symbolic and that no float64
is left in the graph (TensorRT has none), then checks ONNX Runtime against torch on several inputs and batch
sizes and fails loudly above PARITY_ATOL. Optional int8 quantisation (dynamic or static, deploy/quantize.py) gets
its own parity report.
"""

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from snapflow.deploy.contract import Contract, TensorSpec, hash_export_files, sha256_file
from snapflow.deploy.graph import InferenceGraph

logger = logging.getLogger(__name__)

# fp32 ORT vs eager torch differ by float reassociation only: ~1e-6 on the tiny models, up to ~2e-4 reported on
# real checkpoints. 1e-3 on normalised actions (O(1)) is far below any behavioural effect.
# torch's dynamo exporter writes opset >= 18; the ONNX Runtime here reads <= 23 (23: attention as ONNX's
# Attention op)
OPSETS = (18, 23)
PARITY_ATOL = 1e-3
# int8 is an approximation: it is judged by
# task success, so its parity is reported against this looser bound and does not fail the export.
INT8_ATOL = 0.1
PARITY_BATCHES = (1, 3)
PARITY_DRAWS = 3  # random inputs per batch size
EXAMPLE_BATCH = 2  # >= 2, or the exporter specialises the batch axis to 1


class ExportParityError(RuntimeError):
    """ONNX Runtime disagrees with torch beyond the tolerance."""


@dataclass
class Parity:
    max_abs_err: float
    max_rel_err: float
    tolerance: float
    passed: bool
    batches: list[int]
    draws: int
    int8: dict | None = None


def check_opset(opset: int) -> None:
    """ValueError naming ``opset`` outside `OPSETS` (snapflow-export's and snapflow-bench's rule)."""
    if not OPSETS[0] <= opset <= OPSETS[1]:
        raise ValueError(
            f"opset={opset}: choose {OPSETS[0]} to {OPSETS[1]} (23 = attention as ONNX's Attention op)"
        )


def session_options(threads: int = 1) -> "object":
    """ONNX Runtime session options: explicit intra-op threads, sequential execution, every graph
    optimisation, no spinning (a spinning pool steals the core the control loop runs on)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def ort_session(path: str | Path, threads: int = 1) -> "object":
    """An ONNX Runtime CPU session with ``session_options(threads)``."""
    import onnxruntime as ort

    return ort.InferenceSession(
        str(path), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
    )


def check_graph_file(path: Path) -> None:
    """The batch axis must be symbolic on every input and no tensor may be float64."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for inp in model.graph.input:
        dim0 = inp.type.tensor_type.shape.dim[0]
        if not dim0.dim_param:
            raise RuntimeError(f"exported input {inp.name!r} has a fixed batch axis ({dim0.dim_value})")
    doubles = [i.name for i in model.graph.initializer if i.data_type == onnx.TensorProto.DOUBLE]
    doubles += [
        v.name for v in model.graph.value_info if v.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    ]
    doubles += [
        n.name
        for n in model.graph.node
        if n.op_type == "Cast" and any(a.name == "to" and a.i == onnx.TensorProto.DOUBLE for a in n.attribute)
    ]
    if doubles:
        raise RuntimeError(f"float64 left in the exported graph (TensorRT has no fp64): {doubles[:5]}")


def measure_parity(
    graph: InferenceGraph, session: object, lang: tuple, tolerance: float, seed: int = 0
) -> Parity:
    generator = torch.Generator().manual_seed(seed)
    max_abs, max_rel = 0.0, 0.0
    for batch_size in PARITY_BATCHES:
        for _ in range(PARITY_DRAWS):
            inputs = graph.example_inputs(batch_size, generator, lang)
            with torch.no_grad():
                ref = graph(*inputs).numpy()
            out = session.run(None, {s.name: t.numpy() for s, t in zip(graph.inputs, inputs, strict=True)})[0]
            err = float(np.abs(out - ref).max())
            max_abs = max(max_abs, err)
            max_rel = max(max_rel, err / max(float(np.abs(ref).max()), 1e-12))
    return Parity(max_abs, max_rel, tolerance, max_abs <= tolerance, list(PARITY_BATCHES), PARITY_DRAWS)


def as_float32(policy: torch.nn.Module) -> torch.nn.Module:
    """The policy with float32 weights (converted in place), saying so when it held other float dtypes.

    Released PI0/PI05 checkpoints and ``--policy.dtype=bfloat16`` trainings are bf16, but ONNX Runtime's CPU
    provider has no bf16 kernel for ops such as Mul, so a bf16 graph exports and then cannot be run. The
    exported graph is float32; its parity is measured against this float32 policy.
    """
    dtypes = {p.dtype for p in policy.parameters() if p.is_floating_point()}
    if dtypes - {torch.float32}:
        names = ", ".join(sorted(str(d).removeprefix("torch.") for d in dtypes))
        print(f"the checkpoint holds {names} weights; exporting in float32 (ONNX Runtime runs float32)")
        policy = policy.float()
        if getattr(policy.config, "dtype", None) == "bfloat16":
            policy.config.dtype = "float32"  # upstream casts activations by this field
    return policy


def normalization_of(preprocessor: object) -> dict[str, dict]:
    """{feature: {"mode"}} for the normalised features of a LeRobot preprocessor.

    The statistics themselves live only in the processor files copied beside the graph (one source of
    truth; their sha256 is in the contract's `files_sha256`).
    """
    from lerobot.processor.normalize_processor import NormalizerProcessorStep

    for step in preprocessor.steps:
        if isinstance(step, NormalizerProcessorStep):
            out = {}
            for key, ft in step.features.items():
                mode = step.norm_map.get(ft.type)
                if mode is None or key not in step.stats:
                    continue
                out[key] = {"mode": mode.value}
            return out
    return {}


def _tokenizer_info(policy: torch.nn.Module, preprocessor: object) -> dict:
    from lerobot.processor.tokenizer_processor import TokenizerProcessorStep

    step = next(s for s in preprocessor.steps if isinstance(s, TokenizerProcessorStep))
    return {
        "name": step.tokenizer_name,
        "max_length": int(policy.config.tokenizer_max_length),
        "padding_side": step.padding_side,
    }


def reference_language(
    preprocessor: object, observation: dict, length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Real tokens for the parity inputs: one preprocessed observation, padded to the graph's length."""
    batch = preprocessor(observation)
    tokens = batch["observation.language.tokens"][:1]
    mask = batch["observation.language.attention_mask"][:1].bool()
    return pad_language(tokens, mask, length)


def pad_language(tokens: torch.Tensor, mask: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad (or truncate) (B, L) tokens and mask to ``length``; padded positions are masked out."""
    if tokens.shape[1] >= length:
        return tokens[:, :length], mask[:, :length]
    pad = length - tokens.shape[1]
    return (torch.nn.functional.pad(tokens, (0, pad)), torch.nn.functional.pad(mask, (0, pad), value=False))


def export_onnx(
    policy: torch.nn.Module,
    preprocessor: object,
    observation: dict,
    out_dir: str | Path,
    *,
    source_dir: str | Path,
    nfe: int = 1,
    opset: int = 23,
    quantize: str = "none",
    calibration: list[dict] | None = None,
    fps: float = 20.0,
) -> tuple[Contract, Parity]:
    """Export ``policy`` (a *_snapflow policy in eval mode) and write the three files of ``out_dir``.

    ``observation`` is one raw LeRobot observation (with ``task``) used to draw real language tokens for the
    parity inputs. ``quantize`` (``deploy/quantize.py``): none deploys the float32 graph; int8 / int8_static
    deploy an int8 graph written beside it (static needs ``calibration``: graph feeds of real frames), whose
    parity is reported, not enforced. Raises ExportParityError (after writing parity.json) when ONNX Runtime
    disagrees with torch in float32.
    """
    from snapflow.deploy.quantize import GRAPH_FILES, QUANTIZATIONS
    from snapflow.deploy.quantize import quantize as quantize_graph

    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize={quantize!r}: choose one of {QUANTIZATIONS}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    policy = as_float32(policy.eval())
    length = int(policy.config.tokenizer_max_length)
    graph = InferenceGraph(policy, nfe=nfe, lang_length=length).eval()
    lang = reference_language(preprocessor, observation, length)
    example = graph.example_inputs(EXAMPLE_BATCH, torch.Generator().manual_seed(0), lang)
    batch_dim = torch.export.Dim("batch", min=1, max=1024)
    onnx_path = out / "model.onnx"
    start = time.perf_counter()
    with torch.no_grad():
        torch.onnx.export(
            graph,
            example,
            str(onnx_path),
            dynamo=True,
            opset_version=opset,
            external_data=True,
            input_names=[s.name for s in graph.inputs],
            output_names=["actions"],
            dynamic_shapes=(tuple({0: batch_dim} for _ in example),),
            verbose=False,
        )
    logger.info("exported %s in %.1f s", onnx_path, time.perf_counter() - start)
    check_graph_file(onnx_path)

    parity = measure_parity(graph, ort_session(onnx_path), lang, PARITY_ATOL)
    final_path = onnx_path
    if quantize != "none":
        final_path = quantize_graph(onnx_path, out / GRAPH_FILES[quantize], quantize, calibration)
        parity.int8 = asdict(measure_parity(graph, ort_session(final_path), lang, INT8_ATOL))
        parity.int8["method"] = quantize
    (out / "parity.json").write_text(json.dumps(asdict(parity), indent=2))
    print(
        f"parity (ONNX Runtime vs torch, batches {parity.batches} x {parity.draws} draws): "
        f"max abs {parity.max_abs_err:.2e}, max rel {parity.max_rel_err:.2e}, tolerance {parity.tolerance:g}"
        f" -> {'PASS' if parity.passed else 'FAIL'}"
    )
    if parity.int8:
        print(
            f"{quantize} parity: max abs {parity.int8['max_abs_err']:.2e}, max rel {parity.int8['max_rel_err']:.2e}"
            f", tolerance {parity.int8['tolerance']:g} -> {'PASS' if parity.int8['passed'] else 'FAIL'}"
        )
    if not parity.passed:
        raise ExportParityError(
            f"ONNX Runtime differs from torch by {parity.max_abs_err:.3g} > {PARITY_ATOL}"
        )

    source = Path(source_dir)
    for f in source.glob("policy_*processor*"):
        shutil.copy2(f, out / f.name)
    cfg = policy.config
    contract = Contract(
        policy_type=cfg.type,
        nfe=nfe,
        sampler=graph.sampler.__name__,
        chunk_size=cfg.chunk_size,
        action_dim=graph.action_dim,
        n_action_steps=cfg.n_action_steps,
        fps=fps,
        inputs=[TensorSpec(s.name, s.role, s.feature, ["batch", *s.shape], s.dtype) for s in graph.inputs],
        outputs=[
            TensorSpec("actions", "actions", "action", ["batch", cfg.chunk_size, graph.action_dim], "float32")
        ],
        normalization=normalization_of(preprocessor),
        tokenizer=_tokenizer_info(policy, preprocessor),
        source_checkpoint=str(source.resolve()),
        source_sha256=sha256_file(source / "model.safetensors"),
        onnx_file=final_path.name,
        onnx_sha256=sha256_file(final_path),
        opset=opset,
        int8=quantize != "none",
        extra={
            "image_features": {k: list(v.shape) for k, v in cfg.image_features.items()},
            "max_action_dim": cfg.max_action_dim,
            "quantize": quantize,
            "resize_imgs_with_padding": getattr(cfg, "resize_imgs_with_padding", None),
        },
    )
    _write_lerobot_config(cfg, out)
    _add_observation_check(out, contract.observation_features())
    contract.files_sha256 = hash_export_files(out)  # last: every file that changes the actions is final
    contract.save(out)
    return contract, parity


def _add_observation_check(out: Path, features: dict[str, tuple[int, ...]]) -> None:
    """Put the observation check first in the export's preprocessor (policies/lerobot_plugin/observation_check.py):
    every user of the export's processors gets named errors for a missing camera, task or a wrong shape."""
    from snapflow.policies.lerobot_plugin.observation_check import insert_into

    path = out / "policy_preprocessor.json"
    raw = json.loads(path.read_text())
    path.write_text(json.dumps(insert_into(raw, {k: list(v) for k, v in features.items()}), indent=2))


def _write_lerobot_config(cfg: object, out: Path) -> None:
    """config.json of type snapflow_onnx, so LeRobot loads the export directory as a policy."""
    from snapflow.deploy.lerobot_onnx import SnapFlowOnnxConfig

    SnapFlowOnnxConfig(
        source_type=cfg.type,
        chunk_size=cfg.chunk_size,
        n_action_steps=cfg.n_action_steps,
        device="cpu",
        normalization_mapping=dict(cfg.normalization_mapping),
        input_features=dict(cfg.input_features),
        output_features=dict(cfg.output_features),
    )._save_pretrained(out)
