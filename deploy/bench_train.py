"""Training-step cost of SnapFlow against plain flow matching on the same policy (``snapflow-bench train=true``).

One step = forward + backward of one batch (no optimizer update, which is the same for both), measured
round-robin after warm-up, in one process:

* ``fm``: the upstream policy's own training ``forward`` (its flow-matching loss: one joint prefix+suffix
  pass), called on the student's weights;
* ``snapflow``: the student's ``forward`` with its configured recipe (alpha, split): one gradient-carrying
  joint pass over the batch plus, for the consistency rows, one prefix pass and two suffix passes under
  ``no_grad`` on a shared KV cache.
"""

import time
from collections.abc import Callable

import torch

from snapflow.deploy.bench_timing import percentiles


def training_batch(raw: dict, chunk: int, action_dim: int, seed: int) -> dict:
    """``raw`` plus a random action chunk (B, chunk, action_dim) in [-1, 1] and an all-valid padding mask."""
    g = torch.Generator().manual_seed(seed + 1)
    batch_size = raw["observation.state"].shape[0]
    return {
        **raw,
        "action": torch.rand(batch_size, chunk, action_dim, generator=g) * 2 - 1,
        "action_is_pad": torch.zeros(batch_size, chunk, dtype=torch.bool),
    }


def _upstream_class(policy: torch.nn.Module) -> type:
    return next(c for c in type(policy).__mro__ if getattr(c, "name", None) == policy.teacher_type)


def _step_ms(policy: torch.nn.Module, loss_fn: Callable[[], torch.Tensor], device: torch.device) -> float:
    policy.zero_grad(set_to_none=True)
    start = time.perf_counter()
    loss_fn().backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) * 1e3


def time_training_steps(
    policy: torch.nn.Module, batch: dict, device: torch.device, repeats: int, warmup: int, seed: int
) -> dict:
    """{fm_step_ms, snapflow_step_ms, ratio, fm_step, snapflow_step} (p50s; percentiles beside) of one run.

    ``batch`` is a preprocessed batch with actions. The policy is put in train mode and back in eval mode.
    """
    upstream_forward = _upstream_class(policy).forward

    def fm() -> torch.Tensor:
        return upstream_forward(policy, dict(batch))[0]

    def snapflow() -> torch.Tensor:
        return policy.forward(dict(batch))[0]

    samples: dict[str, list[float]] = {"fm": [], "snapflow": []}
    steps = [("fm", fm), ("snapflow", snapflow)]
    policy.train()
    try:
        torch.manual_seed(seed)
        for r in range(warmup + repeats):
            for name, fn in steps[r % 2 :] + steps[: r % 2]:  # alternate which goes first
                ms = _step_ms(policy, fn, device)
                if r >= warmup:
                    samples[name].append(ms)
    finally:
        policy.zero_grad(set_to_none=True)
        policy.eval()
    fm_p, sf_p = percentiles(samples["fm"]), percentiles(samples["snapflow"])
    return {
        "fm_step_ms": round(fm_p["p50"], 1),
        "snapflow_step_ms": round(sf_p["p50"], 1),
        "ratio": round(sf_p["p50"] / fm_p["p50"], 3),
        "fm_step": fm_p,
        "snapflow_step": sf_p,
        "recipe": {"alpha": policy.config.snapflow.alpha, "split": policy.config.snapflow.split},
        "batch": int(batch["observation.state"].shape[0]),
    }
