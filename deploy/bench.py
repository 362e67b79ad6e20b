"""snapflow-bench: latency of a SnapFlow student at tiny or real size, prefix vs denoise, torch vs ONNX Runtime.

Everything is measured in one process, interleaved round-robin after warm-up (the variant order rotates every
round, so drift and contention spread over all variants alike):

* torch, each NFE: ``predict_action_chunk`` on an already preprocessed batch (tokenisation, normalisation and
  device transfer are outside e2e and timed separately as ``preprocess``), with the stages of
  ``snapflow.deploy.bench_timing`` timed inside the same call. NFE=1 is the student's one joint
  prefix+suffix pass (no KV cache); NFE=K>1 is upstream's cached Euler loop (prefill + K denoise steps).
* torch, the 1-step *cached* path (prefill + one suffix pass, numerically the same action as the joint
  pass) when NFE 1 and 10 are both asked for: its step is the 1-NFE expert time.
* onnxruntime (and onnxruntime_int8 with ``int8``): the exported 1-NFE graph (``export_onnx``, cached) on the
  same preprocessed inputs; tensorrt when ``trt_usable()``.
* optional ``image_sizes``: SmolVLA 1-NFE torch with a smaller ``resize_imgs_with_padding`` (shrinking P).
"""

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from snapflow.deploy.bench_timing import StageTimer, peak_memory_mb, wall_ms

logger = logging.getLogger(__name__)

FAMILIES = ("smolvla", "pi0", "pi05")
RUNTIMES = ("torch", "onnxruntime", "tensorrt")
TASK = "pick up the black bowl between the plate and the ramekin and place it on the plate"


@dataclass(frozen=True)
class BenchConfig:
    policy: str  # family (smolvla | pi0 | pi05, optionally *_snapflow) or a *_snapflow checkpoint directory
    size: str = "tiny"  # tiny | real (ignored for a checkpoint)
    nfe: tuple[int, ...] = (1, 10)
    runtimes: tuple[str, ...] = ("torch", "onnxruntime")
    batch: int = 1
    threads: int = 2  # torch intra-op threads and ORT intra_op_num_threads
    repeats: int = 5  # measured rounds
    warmup: int = 1  # unmeasured rounds first
    out: str = "outputs/bench"
    device: str = "auto"  # auto | cpu | cuda
    int8: bool = False  # also time the dynamic-int8 ONNX graph
    image_sizes: tuple[
        int, ...
    ] = ()  # extra SmolVLA resize_imgs_with_padding sides for the 1-NFE torch policy
    dtype: str = (
        "auto"  # PI0/PI05 only: auto (bfloat16 on CUDA as released, float32 on CPU) | float32 | bfloat16
    )
    cache_dir: str = "~/.cache/snapflow/bench"  # exports are cached here, keyed by the model's shapes
    seed: int = 0
    train: bool = False  # also time one SnapFlow training step against one FM step (deploy/bench_train.py)

    def __post_init__(self) -> None:
        if self.size not in ("tiny", "real"):
            raise ValueError(f"size must be tiny or real, got {self.size!r}")
        if not self.nfe or min(self.nfe) < 1:
            raise ValueError(f"nfe must be positive step counts, got {self.nfe}")
        unknown = set(self.runtimes) - set(RUNTIMES)
        if unknown:
            raise ValueError(f"unknown runtimes {sorted(unknown)}; choose from {RUNTIMES}")
        if self.repeats < 1 or self.warmup < 0 or self.batch < 1 or self.threads < 1:
            raise ValueError("repeats, batch and threads must be >= 1 and warmup >= 0")
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in self.nfe):
            raise ValueError(f"nfe must be integer step counts, got {list(self.nfe)}")
        if any(not 16 <= int(side) <= 1024 for side in self.image_sizes):
            raise ValueError(f"image_sizes must be in [16, 1024] px, got {list(self.image_sizes)}")
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"dtype must be auto, float32 or bfloat16, got {self.dtype!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device=cuda but no CUDA device is available here; use device=auto or cpu")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def neutral_stats(state_dim: int, action_dim: int) -> dict:
    """Identity-like normalisation stats (mean 0, std 1, range / quantiles [-1, 1])."""

    def stats(dim: int) -> dict:
        ones = torch.ones(dim)
        return {"mean": 0 * ones, "std": ones, "min": -ones, "max": ones, "q01": -ones, "q99": ones}

    return {"observation.state": stats(state_dim), "action": stats(action_dim)}


def build_policy(cfg: BenchConfig, device: torch.device) -> tuple[str, torch.nn.Module, object, int]:
    """(family, policy, preprocessor, raw camera side) for ``cfg.policy`` on ``device``, in eval mode."""
    from snapflow.policies.tiny import TINY_IMAGE_SIZE, TINY_PI_IMAGE_SIZE, lerobot_features

    source = Path(cfg.policy).expanduser()
    if source.is_dir():
        from snapflow.deploy.runtimes import TorchRuntime

        runtime = TorchRuntime.from_checkpoint(source, device=str(device))
        family = runtime.policy.config.type.removesuffix("_snapflow")
        side = next(iter(runtime.policy.config.image_features.values())).shape[-1]
        return family, runtime.policy.eval(), runtime.pre, side
    family = cfg.policy.removesuffix("_snapflow")
    if family not in FAMILIES:
        raise ValueError(f"policy must be one of {FAMILIES} (or a checkpoint directory), got {cfg.policy!r}")
    torch.manual_seed(cfg.seed)
    assets = Path(cfg.cache_dir).expanduser() / "assets"
    overrides: dict = {"device": str(device)}
    if family != "smolvla":  # PI0/PI05 as released (openpi): bf16 VLM/expert, fp32 vision and projector
        overrides["dtype"] = (
            ("bfloat16" if device.type == "cuda" else "float32") if cfg.dtype == "auto" else cfg.dtype
        )
    if cfg.size == "real":
        from snapflow.policies.real_size import CAMERA_SIZE, make_real_policy

        side, make = CAMERA_SIZE, make_real_policy
    else:
        from snapflow.policies.tiny import make_tiny_policy

        side, make = (TINY_IMAGE_SIZE if family == "smolvla" else TINY_PI_IMAGE_SIZE), make_tiny_policy
    inputs, outputs = lerobot_features(image_size=side)
    policy, pre, _ = make(f"{family}_snapflow", assets, inputs, outputs, neutral_stats(8, 7), **overrides)
    return family, policy.to(device).eval(), pre, side


def raw_batch(batch: int, side: int, seed: int) -> dict:
    """A LIBERO-layout raw batch: two cameras (B, 3, side, side) in [0, 1], 8-D state, the task string."""
    g = torch.Generator().manual_seed(seed)
    return {
        "observation.images.image": torch.rand(batch, 3, side, side, generator=g),
        "observation.images.image2": torch.rand(batch, 3, side, side, generator=g),
        "observation.state": torch.randn(batch, 8, generator=g),
        "task": [TASK] * batch,
    }


def _set_nfe(policy: torch.nn.Module, nfe: int) -> None:
    setattr(policy.config, policy.steps_field, nfe)


def export_cached(
    policy: torch.nn.Module, pre: object, side: int, cfg: BenchConfig, tag: str
) -> tuple[Path, dict]:
    """Export the 1-NFE graph once per (model shapes, versions, int8) and reuse it; returns (dir, info)."""
    import hashlib

    import transformers

    from snapflow.deploy.export_onnx import export_onnx

    key = json.dumps(
        {
            "tag": tag,
            "config": policy.config.to_dict() if hasattr(policy.config, "to_dict") else repr(policy.config),
            "params": sum(p.numel() for p in policy.parameters()),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "int8": cfg.int8,
            "seed": cfg.seed,
        },
        sort_keys=True,
        default=str,
    )
    out = (
        Path(cfg.cache_dir).expanduser()
        / "exports"
        / f"{tag}_{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    )
    info_file = out / "bench_export.json"
    if info_file.is_file():
        return out, {**json.loads(info_file.read_text()), "cached": True}
    import shutil
    import tempfile

    ckpt = Path(tempfile.mkdtemp(prefix="snapflow_bench_ckpt_"))
    try:
        start = time.perf_counter()
        policy.save_pretrained(ckpt)
        pre.save_pretrained(ckpt)
        save_s = time.perf_counter() - start
        obs = {k: v[0] for k, v in raw_batch(1, side, cfg.seed).items() if k != "task"} | {"task": TASK}
        start = time.perf_counter()
        _, parity = export_onnx(policy, pre, obs, out, source_dir=ckpt, nfe=1, int8=cfg.int8)
        info = {
            "export_s": round(time.perf_counter() - start, 1),
            "checkpoint_save_s": round(save_s, 1),
            "parity_max_abs_err": parity.max_abs_err,
            "int8_parity_max_abs_err": (parity.int8 or {}).get("max_abs_err"),
        }
    finally:
        shutil.rmtree(ckpt, ignore_errors=True)
    info_file.write_text(json.dumps(info, indent=2))
    return out, {**info, "cached": False}


def ort_feeds(policy: torch.nn.Module, batch: dict, seed: int) -> dict:
    """The exported graph's inputs from a preprocessed batch (language padded to the graph's length)."""
    from snapflow.deploy.export_onnx import pad_language
    from snapflow.deploy.graph import graph_inputs

    length = int(policy.config.tokenizer_max_length)
    specs = graph_inputs(policy, length)
    tokens, mask = pad_language(
        batch["observation.language.tokens"].cpu(),
        batch["observation.language.attention_mask"].cpu().bool(),
        length,
    )
    g = torch.Generator().manual_seed(seed)
    feeds = {}
    for spec in specs:
        if spec.role == "lang_tokens":
            feeds[spec.name] = tokens.numpy()
        elif spec.role == "lang_mask":
            feeds[spec.name] = mask.numpy()
        elif spec.role == "noise":
            feeds[spec.name] = torch.randn(tokens.shape[0], *spec.shape, generator=g).numpy()
        else:
            feeds[spec.name] = batch[spec.feature].float().cpu().numpy()
    return feeds


@dataclass
class Variant:
    """One measured configuration: ``run()`` -> (e2e ms, stage record)."""

    family: str
    runtime: str  # torch | onnxruntime | onnxruntime_int8 | tensorrt | torch@<side>px
    nfe: int
    path: str  # joint | cached | graph
    run: object
    e2e: list[float]
    stages: list[dict[str, list[float]]]


def _torch_variant(
    family: str,
    policy: torch.nn.Module,
    batch: dict,
    timer: StageTimer,
    nfe: int,
    path: str = "",
    runtime: str = "torch",
    resize: tuple[int, int] | None = None,
) -> Variant:
    def run() -> tuple[float, dict]:
        _set_nfe(policy, nfe)
        saved = getattr(policy.config, "resize_imgs_with_padding", None)
        if resize is not None:
            policy.config.resize_imgs_with_padding = resize
        try:
            if (
                path == "cached"
            ):  # the upstream cached loop with one step (student's K > 1 code path at K = 1)
                return timer.timed_call(lambda: _cached_one_step(policy, batch))
            return timer.timed_call(lambda: policy.predict_action_chunk(batch))
        finally:
            if resize is not None:
                policy.config.resize_imgs_with_padding = saved

    return Variant(family, runtime, nfe, path or ("joint" if nfe == 1 else "cached"), run, [], [])


@torch.no_grad()
def _cached_one_step(policy: torch.nn.Module, batch: dict) -> torch.Tensor:
    """The 1-NFE jump on the K > 1 code path: a prefix KV cache, then one suffix pass."""
    from snapflow.policies.snapflow.flow import sample_one_step

    args = policy.adapter.sample_args(policy, batch)
    prefix = policy.adapter.prefix_from_sample_args(policy.model, *args)
    shape = (prefix.embs.shape[0], policy.config.chunk_size, policy.config.max_action_dim)
    return sample_one_step(
        policy.cached_velocity(prefix), policy.model.sample_noise(shape, prefix.embs.device)
    )


def _ort_variant(family: str, runtime: str, session: object, feeds: dict) -> Variant:
    def run() -> tuple[float, dict]:
        return wall_ms(lambda: session.run(None, feeds), "cpu"), {}

    return Variant(family, runtime, 1, "graph", run, [], [])


def _trt_variant(family: str, export_dir: Path, side: int, seed: int) -> Variant:
    import numpy as np

    from snapflow.deploy.tensorrt_engine import TrtRuntime

    runtime = TrtRuntime(export_dir, seed=seed)
    raw = raw_batch(1, side, seed)
    obs = {
        k: (v[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8) if "images" in k else v[0].numpy()
        for k, v in raw.items()
        if k != "task"
    } | {"task": TASK}

    def run() -> tuple[float, dict]:
        return runtime.predict_chunk(obs).timings_ms["model"], {}

    return Variant(family, "tensorrt", 1, "graph", run, [], [])


def build_variants(
    cfg: BenchConfig,
    family: str,
    policy: torch.nn.Module,
    pre: object,
    side: int,
    batch: dict,
    timer: StageTimer,
    device: torch.device,
) -> tuple[list[Variant], dict]:
    """All variants to interleave, plus notes (export info, skipped runtimes with the reason)."""
    notes: dict = {"skipped": []}
    variants = [_torch_variant(family, policy, batch, timer, k) for k in sorted(set(cfg.nfe))]
    if 1 in cfg.nfe and max(cfg.nfe) > 1:
        variants.append(_torch_variant(family, policy, batch, timer, 1, path="cached"))
    for s in cfg.image_sizes:
        if family != "smolvla":
            notes["skipped"].append(
                {
                    "runtime": f"torch@{s}px",
                    "reason": "image_sizes applies to SmolVLA only "
                    "(SigLIP So400m's position embeddings are fixed at 224 px)",
                }
            )
            continue
        variants.append(
            _torch_variant(family, policy, batch, timer, 1, runtime=f"torch@{s}px", resize=(s, s))
        )
    wants_graph = [r for r in cfg.runtimes if r != "torch"]
    if not wants_graph:
        return variants, notes
    if 1 not in cfg.nfe:
        notes["skipped"] += [
            {"runtime": r, "reason": "graph runtimes run the 1-NFE graph; add 1 to nfe"} for r in wants_graph
        ]
        return variants, notes
    ort_ok = "onnxruntime" in cfg.runtimes and device.type == "cpu"
    trt_ok, trt_reason = False, ""
    if "tensorrt" in cfg.runtimes:
        from snapflow.deploy.tensorrt_engine import trt_usable

        trt_ok, trt_reason = trt_usable()
        if not trt_ok:
            notes["skipped"].append({"runtime": "tensorrt", "reason": trt_reason})
    if "onnxruntime" in cfg.runtimes and not ort_ok:
        notes["skipped"].append(
            {
                "runtime": "onnxruntime",
                "reason": "the installed ONNX Runtime is the CPU build; "
                "comparing it with torch on CUDA would time two different devices",
            }
        )
    if not (ort_ok or trt_ok):
        return variants, notes
    export_dir, notes["export"] = export_cached(policy, pre, side, cfg, f"{family}_{cfg.size}")
    if ort_ok:
        from snapflow.deploy.export_onnx import ort_session

        feeds = ort_feeds(policy, batch, cfg.seed)
        variants.append(
            _ort_variant(family, "onnxruntime", ort_session(export_dir / "model.onnx", cfg.threads), feeds)
        )
        if cfg.int8:
            session = ort_session(export_dir / "model.int8.onnx", cfg.threads)
            variants.append(_ort_variant(family, "onnxruntime_int8", session, feeds))
    if trt_ok:
        variants.append(_trt_variant(family, export_dir, side, cfg.seed))
    return variants, notes


def run_bench(cfg: BenchConfig) -> dict:
    """Build, warm up, measure round-robin; returns the bench dict (see bench_report.validate_bench)."""
    from snapflow.deploy.bench_report import assemble

    device = resolve_device(cfg.device)
    torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    family, policy, pre, side = build_policy(cfg, device)
    build_s = time.perf_counter() - start
    raw = raw_batch(cfg.batch, side, cfg.seed)
    batch = pre(raw)
    timer = StageTimer(policy, device)
    variants, notes = build_variants(cfg, family, policy, pre, side, batch, timer, device)
    preprocess: list[float] = []
    rounds_start = time.perf_counter()
    for r in range(cfg.warmup + cfg.repeats):
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        for v in order:
            e2e, stages = v.run()
            if r >= cfg.warmup:
                v.e2e.append(e2e)
                v.stages.append(stages)
        pre_ms = wall_ms(lambda: pre(raw), device)  # tokenisation + normalisation + device transfer
        if r >= cfg.warmup:
            preprocess.append(pre_ms)
        logger.info("round %d/%d done", r + 1, cfg.warmup + cfg.repeats)
    timing = {
        "build_s": round(build_s, 1),
        "rounds_s": round(time.perf_counter() - rounds_start, 1),
        "total_s": round(time.perf_counter() - start, 1),
    }
    params = sum(p.numel() for p in policy.parameters())
    train = None
    if cfg.train:
        from snapflow.deploy.bench_train import time_training_steps, training_batch

        raw_train = training_batch(
            raw, policy.config.chunk_size, policy.config.action_feature.shape[0], cfg.seed
        )
        train = {
            family: time_training_steps(policy, pre(raw_train), device, cfg.repeats, cfg.warmup, cfg.seed)
        }
        logger.info("training steps timed: %s", train[family])
    bench = assemble(
        cfg,
        family,
        device,
        variants,
        preprocess,
        notes,
        timing,
        peak_memory_mb(device),
        params,
        prompt_tokens=int(batch["observation.language.attention_mask"][0].sum()),
        lang_length=int(batch["observation.language.tokens"].shape[1]),
    )
    if train is not None:
        bench["train"] = train
    return bench
