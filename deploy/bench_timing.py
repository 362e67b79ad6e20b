"""Timing probes for snapflow-bench: wall-clock time of the named stages inside one ``predict_action_chunk``.

``StageTimer`` shadows a few methods with timing wrappers, as instance attributes, for the duration of one
call (a measurement probe only: installed per call and removed in ``finally``). On CUDA every probe synchronises before and after,
so a stage's time is its device time, not its launch time. Stages (ms):

  image_prep    policy.prepare_images / _preprocess_images (resize with padding, [-1, 1] scaling)
  vision        backbone.embed_image, summed over cameras (vision encoder + connector / projector)
  lang_embed    backbone.embed_language_tokens
  embed_prefix  model.embed_prefix (vision + language (+ state) embeddings; contains vision and lang_embed)
  prefill       backbone.forward over the prefix only (VLM layers; builds the KV cache; K > 1 path)
  joint         backbone.forward over prefix + suffix at once (the 1-NFE pass: VLM layers and expert)
  step          the adapter's velocity_cached, one sample per step (expert on the cached prefix; K > 1 path)
"""

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn

PERCENTILES = (50, 95, 99)


def percentiles(samples_ms: list[float]) -> dict[str, float] | None:
    """{p50, p95, p99} in ms (numpy's linear interpolation), or None without samples."""
    if not samples_ms:
        return None
    values = np.percentile(np.asarray(samples_ms, dtype=np.float64), PERCENTILES)
    return {f"p{p}": round(float(v), 3) for p, v in zip(PERCENTILES, values, strict=True)}


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def backbone_of(model: nn.Module) -> nn.Module:
    """SmolVLA's vlm_with_expert or PI0/PI05's paligemma_with_expert."""
    for name in ("vlm_with_expert", "paligemma_with_expert"):
        if hasattr(model, name):
            return getattr(model, name)
    raise TypeError(f"{type(model).__name__} has no known VLM+expert backbone")


def _forward_stage(kwargs: dict[str, Any]) -> str:
    embeds = kwargs.get("inputs_embeds")
    if embeds is None:  # upstream always passes it by keyword; never seen, kept visible rather than guessed
        return "forward"
    prefix, suffix = embeds
    if suffix is None:
        return "prefill"
    return "expert" if prefix is None else "joint"  # "expert" = the backbone part of one denoise_step


class StageTimer:
    """Collects per-stage times (ms) of calls made inside ``probe()``; one ``calls`` entry per probe."""

    def __init__(self, policy: nn.Module, device: torch.device | str):
        self.policy, self.device = policy, device
        self.calls: list[dict[str, list[float]]] = []

    def _wrap(self, owner: object, attr: str, stage: str | Callable[[dict], str], record: dict) -> None:
        original = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            synchronize(self.device)
            start = time.perf_counter()
            out = original(*args, **kwargs)
            synchronize(self.device)
            name = stage(kwargs) if callable(stage) else stage
            record[name].append((time.perf_counter() - start) * 1e3)
            return out

        setattr(owner, attr, timed)

    @contextmanager
    def probe(self) -> Iterator[dict[str, list[float]]]:
        """Time the stages of the calls made in the block; yields the (filled on exit) stage record."""
        record: dict[str, list[float]] = defaultdict(list)
        policy, model = self.policy, self.policy.model
        backbone = backbone_of(model)
        prep = "prepare_images" if hasattr(policy, "prepare_images") else "_preprocess_images"
        targets = [
            (policy, prep, "image_prep"),
            (backbone, "embed_image", "vision"),
            (backbone, "embed_language_tokens", "lang_embed"),
            (model, "embed_prefix", "embed_prefix"),
            (backbone, "forward", _forward_stage),
            (policy.adapter, "velocity_cached", "step"),
        ]
        for owner, attr, stage in targets:
            self._wrap(owner, attr, stage, record)
        try:
            yield record
        finally:
            for owner, attr, _ in targets:
                owner.__dict__.pop(attr, None)  # back to the class method
            self.calls.append(dict(record))

    def timed_call(self, fn: Callable[[], Any]) -> tuple[float, dict[str, list[float]]]:
        """(end-to-end ms, stage record) of ``fn()`` under the probes."""
        with self.probe() as record:
            synchronize(self.device)
            start = time.perf_counter()
            fn()
            synchronize(self.device)
            e2e = (time.perf_counter() - start) * 1e3
        return e2e, dict(record)


def wall_ms(fn: Callable[[], Any], device: torch.device | str) -> float:
    """Synchronised wall time of ``fn()`` in ms."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return (time.perf_counter() - start) * 1e3


def peak_memory_mb(device: torch.device | str) -> dict[str, float]:
    """Peak resident memory of this process (ru_maxrss) and, on CUDA, torch's peak allocation (MiB)."""
    import resource

    out = {"peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if torch.device(device).type == "cuda":
        out["cuda_max_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out
