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
* optional ``image_sizes``: SmolVLA 1-NFE torch and graph variants with a smaller ``resize_imgs_with_padding``
  (fewer image tokens, shrinking P); graph variants live in ``snapflow.deploy.bench_graph``.
"""

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from snapflow.deploy.bench_timing import StageTimer, peak_memory_mb, wall_ms
from snapflow.deploy.export_onnx import check_opset

logger = logging.getLogger(__name__)

FAMILIES = ("smolvla", "pi0", "pi05")
GRAPH_RUNTIMES = {  # ONNX Runtime variants of the exported 1-NFE graph -> snapflow-export quantize=
    "onnxruntime": "none",
    "onnxruntime_int8": "int8",
    "onnxruntime_int8_static": "int8_static",
}
RUNTIMES = ("torch", *GRAPH_RUNTIMES, "tensorrt")
IMAGE_SIZES_SMOLVLA_ONLY = (
    "image_sizes applies to SmolVLA only (SigLIP So400m's position embeddings are fixed at 224 px)"
)
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
    int8: bool = False  # = adding onnxruntime_int8 to runtimes
    image_sizes: tuple[
        int, ...
    ] = ()  # extra SmolVLA resize_imgs_with_padding sides for the 1-NFE torch policy
    dtype: str = (
        "auto"  # PI0/PI05 only: auto (bfloat16 on CUDA as released, float32 on CPU) | float32 | bfloat16
    )
    cache_dir: str = "~/.cache/snapflow/bench"  # exports are cached here, keyed by the model's shapes
    seed: int = 0
    train: bool = False  # also time one SnapFlow training step against one FM step (deploy/bench_train.py)
    opset: int = 23  # of the exported graph; 23 writes SDPA as ONNX Attention (README, Speed)
    best_of: tuple[str, ...] = ()  # 1-NFE variants e2e_teacher10_torch_vs_best_student may pick; () = all

    def __post_init__(self) -> None:
        if self.size not in ("tiny", "real"):
            raise ValueError(f"size must be tiny or real, got {self.size!r}")
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in self.nfe):
            raise ValueError(f"nfe must be integer step counts, got {list(self.nfe)}")
        if not self.nfe or min(self.nfe) < 1:
            raise ValueError(f"nfe must be positive step counts, got {self.nfe}")
        if not self.runtimes:
            raise ValueError(f"runtimes=[] measures nothing: name at least one of {RUNTIMES}")
        unknown = set(self.runtimes) - set(RUNTIMES)
        if unknown:
            raise ValueError(f"unknown runtimes {sorted(unknown)}; choose from {RUNTIMES}")
        for key, low in (("repeats", 1), ("batch", 1), ("threads", 1), ("warmup", 0)):
            if getattr(self, key) < low:  # each key named with its value (pass 16 left: only the rule)
                raise ValueError(f"{key}={getattr(self, key)}: must be >= {low}")
        if self.train and self.batch < 2:  # loss.py's split_rows sends a lone sample to one branch only
            raise ValueError(
                f"train=true with batch={self.batch}: a SnapFlow step splits its batch between the flow-matching "
                "and the consistency rows, so timing it needs batch >= 2 (the paper's mix needs more)"
            )
        if any(not 16 <= int(side) <= 1024 for side in self.image_sizes):
            raise ValueError(f"image_sizes must be in [16, 1024] px, got {list(self.image_sizes)}")
        family = self.policy.removesuffix("_snapflow")
        # a family name is refused here, before its (real size: minutes of) build; a checkpoint in run_bench
        if self.image_sizes and family in FAMILIES and family != "smolvla":
            raise ValueError(
                f"image_sizes={list(self.image_sizes)}: {IMAGE_SIZES_SMOLVLA_ONLY}; policy={self.policy}"
            )
        check_opset(self.opset)  # the bench exports the same graph as snapflow-export
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"dtype must be auto, float32 or bfloat16, got {self.dtype!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device=cuda but no CUDA device is available here; use device=auto or cpu")
        # a runtime this machine lacks is refused before any work, as snapflow-run runtime=tensorrt is (it was
        # skipped with a note in the middle of the output, exit 0)
        if "tensorrt" in self.runtimes:
            from snapflow.deploy.tensorrt_engine import require_tensorrt

            require_tensorrt("runtimes lists tensorrt, which cannot run here (drop it)")
        if self.int8 and "onnxruntime_int8" not in self.runtimes:  # int8=true: the older spelling
            object.__setattr__(self, "runtimes", (*self.runtimes, "onnxruntime_int8"))
        if "torch" not in self.runtimes:  # torch eager is always measured (every ratio's baseline): say so
            object.__setattr__(self, "runtimes", ("torch", *self.runtimes))
        known = {"torch", *self.runtimes}
        known |= {f"{r}@{s}px" for r in known for s in self.image_sizes}
        unknown = set(self.best_of) - known
        if unknown:
            raise ValueError(f"best_of names {sorted(unknown)}, which this run does not measure")


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

    if not str(cfg.policy).strip():  # Path("") is "." and was searched as the working folder
        raise ValueError("policy= is empty: give a family name (smolvla, pi0, pi05) or a checkpoint folder")
    source = Path(cfg.policy).expanduser()
    if (source / "contract.json").is_file():
        raise ValueError(
            f"policy={cfg.policy} is a snapflow-export directory: the bench times checkpoints (and exports "
            "them itself); pass the checkpoint it came from"
        )
    if source.is_dir() and cfg.size != "tiny":
        raise ValueError(f"size={cfg.size} applies to family names; a checkpoint is timed at its own size")
    if source.is_dir():
        from snapflow.deploy.runtimes import TorchRuntime
        from snapflow.scripts.checkpoints import read_policy_config, resolve_pretrained

        source = resolve_pretrained(source)  # a training out dir too (its checkpoints/last), as elsewhere

        config = read_policy_config(source)
        kind = str(config.get("type", ""))
        if not kind.endswith("_snapflow"):  # the bench sets the NFE through the *_snapflow types' field
            raise ValueError(
                f"policy={cfg.policy} is an upstream {kind} checkpoint: the bench times *_snapflow policies "
                "(a snapflow-distill student, or a family name such as policy=smolvla for the architecture)"
            )
        if cfg.dtype != "auto":  # from_checkpoint builds the dtype the checkpoint was saved with
            raise ValueError(
                f"dtype={cfg.dtype} applies to family names; a checkpoint is timed in the dtype it was saved "
                f"with ({config.get('dtype', 'float32')}, its config.json): leave dtype=auto"
            )
        runtime = TorchRuntime.from_checkpoint(source, device=str(device))
        family = runtime.policy.config.type.removesuffix("_snapflow")
        side = next(iter(runtime.policy.config.image_features.values())).shape[-1]
        return family, runtime.policy.eval(), runtime.pre, side
    family = cfg.policy.removesuffix("_snapflow")
    if family not in FAMILIES:
        raise ValueError(f"policy must be one of {FAMILIES} (or a checkpoint directory), got {cfg.policy!r}")
    if family == "smolvla" and cfg.dtype != "auto":  # SmolVLA is timed in float32; the key would be ignored
        raise ValueError(f"dtype={cfg.dtype} applies to pi0 / pi05 only (SmolVLA is timed in float32)")
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


@contextlib.contextmanager
def resized(policy: torch.nn.Module, size: tuple[int, int] | None) -> Iterator[None]:
    """SmolVLA's ``resize_imgs_with_padding`` set to ``size`` inside the block (None: left as it is)."""
    if size is None:
        yield
        return
    saved = policy.config.resize_imgs_with_padding
    policy.config.resize_imgs_with_padding = size
    try:
        yield
    finally:
        policy.config.resize_imgs_with_padding = saved


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
        with resized(policy, resize):
            if (
                path == "cached"
            ):  # the upstream cached loop with one step (student's K > 1 code path at K = 1)
                return timer.timed_call(lambda: _cached_one_step(policy, batch))
            return timer.timed_call(lambda: policy.predict_action_chunk(batch))

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
    for s in cfg.image_sizes:  # SmolVLA only (check_image_sizes)
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
    from snapflow.deploy.bench_graph import graph_variants

    graph, graph_notes = graph_variants(cfg, family, policy, pre, side, batch, device)
    notes["skipped"] += graph_notes.pop("skipped", [])
    notes.update(graph_notes)
    return variants + graph, notes


def check_image_sizes(sizes: tuple[int, ...], family: str, policy: torch.nn.Module) -> None:
    """ValueError naming ``image_sizes`` unless every side passes snapflow-export's ``image_size=`` rule
    (``set_image_size``: whole patch groups of the policy's vision encoder), or when the policy is not SmolVLA:
    checked on the built policy, before any timing (a bad side ended in a transformers traceback)."""
    if not sizes:
        return
    if family != "smolvla":
        raise ValueError(f"image_sizes={list(sizes)}: {IMAGE_SIZES_SMOLVLA_ONLY}; the policy is {family}")
    from snapflow.scripts.export import set_image_size

    saved = policy.config.resize_imgs_with_padding
    try:
        for side in sizes:
            set_image_size(policy, int(side))
    except ValueError as e:
        raise ValueError(f"image_sizes={list(sizes)}: {e}") from None
    finally:
        policy.config.resize_imgs_with_padding = saved


def run_bench(cfg: BenchConfig) -> dict:
    """Build, warm up, measure round-robin; returns the bench dict (see bench_report.validate_bench)."""
    from snapflow.deploy.bench_report import assemble

    device = resolve_device(cfg.device)
    torch.set_num_threads(cfg.threads)
    start = time.perf_counter()
    family, policy, pre, side = build_policy(cfg, device)
    check_image_sizes(cfg.image_sizes, family, policy)
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
