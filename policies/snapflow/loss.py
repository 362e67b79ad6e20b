"""The SnapFlow objective: flow matching mixed with a two-step-Euler consistency target (SnapFlow paper, arXiv 2604.05656).

Backbone-agnostic: the network is reached only through a ``RowVelocityFn``
``(x_t (N,H,A), t (N,), s (N,), rows (N,) long) -> F(x_t, t, s | c_rows)``, where ``rows`` index the batch
samples whose (already encoded) observation context c conditions the call. The observation prefix is thus
encoded once per batch and shared by all passes.

Per step, with B_fm + B_sc = B:
  FM branch (B_fm rows):   t ~ base policy's sampler, x_t = t*eps + (1-t)*a,  L_fm = |F(x_t, t, s=t) - (eps - a)|^2
  SC branch (B_sc rows):   x_1 ~ N(0, I), from the *current* weights under stop-gradient
                           v_1 = F(x_1, 1, 1),  x_half = x_1 - 0.5*v_1,  v_half = F(x_half, 0.5, 0.5),
                           L_sc = |F(x_1, 1, s=0) - (v_1 + v_half)/2|^2
                           (option consistency_steps=k: the mean velocity of the model's own k-step Euler)
                           (option consistency_loss="energy": m noise draws per SC row, and the energy score
                           of the jump's samples x_1 - F against the target's samples x_1 - v_tgt; energy.py)
  L = alpha * L_fm + (1 - alpha) * lambda * L_sc
The two gradient-carrying evaluations run as one batched pass over all B rows (static shapes), the two
target evaluations as B_sc-row passes under torch.no_grad: 1 + 2*B_sc/B expert passes per sample. A caller
whose network can encode the observation once (a KV cache of the prefix) passes ``target_passes``: the
two target passes then reuse that encoding instead of recomputing it.
"""

from collections.abc import Callable

import torch
from torch import Tensor

from snapflow.policies.snapflow.config import SnapFlowConfig
from snapflow.policies.snapflow.energy import energy_score
from snapflow.policies.snapflow.flow import VelocityFn, interpolate, target_velocity

RowVelocityFn = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
# sc_rows (N,) -> a VelocityFn (x_t, t, s) -> F(x_t, t, s | c_sc_rows), called only under torch.no_grad.
TargetVelocityFactory = Callable[[Tensor], VelocityFn]


def split_rows(batch_size: int, cfg: SnapFlowConfig, device: torch.device) -> tuple[Tensor, Tensor]:
    """Return (fm_rows, sc_rows): a random partition of range(batch_size)."""
    perm = torch.randperm(batch_size, device=device)
    if cfg.split == "bernoulli":
        is_fm = torch.rand(batch_size, device=device) < cfg.alpha
        return torch.nonzero(is_fm).flatten(), torch.nonzero(~is_fm).flatten()
    n_fm = round(cfg.alpha * batch_size)
    if 0.0 < cfg.alpha < 1.0 and batch_size >= 2:
        n_fm = min(max(n_fm, 1), batch_size - 1)  # both branches present whenever both are asked for
    elif 0.0 < cfg.alpha < 1.0:  # a single sample: route it at random with probability alpha
        n_fm = int(torch.rand(()).item() < cfg.alpha)
    return perm[:n_fm], perm[n_fm:]


def consistency_target(velocity: VelocityFn, x_1: Tensor, target_clamp: float, steps: int = 2) -> Tensor:
    """Average velocity from t=1 to 0 of the model's own `steps`-step Euler sampler (instantaneous
    velocities, s = t). steps=2 is the paper's target: v_1 = F(x_1, 1, 1), x_half = x_1 - v_1 / 2,
    v_half = F(x_half, 1/2, 1/2), target (v_1 + v_half) / 2. Each velocity is clamped to +-target_clamp."""
    ones = torch.ones(x_1.shape[0], device=x_1.device)
    x, total = x_1, torch.zeros_like(x_1)
    with torch.no_grad():
        for k in range(steps):
            t = (1.0 - k / steps) * ones
            v = velocity(x, t, t)
            if target_clamp > 0:
                v = v.clamp(-target_clamp, target_clamp)
            x, total = x - v / steps, total + v
    return (total / steps).detach()


def _consistency_per_row(v: Tensor, v_tgt: Tensor, x_1: Tensor, draws: int, action_dim: int) -> Tensor:
    """The consistency loss of each SC row, (n_sc,), from its ``draws`` jump velocities ``v`` (n_sc * draws,
    H, A) and targets: the mean squared error (draws = 1, the paper's), or the energy score of the samples
    x_1 - v against x_1 - v_tgt (draws >= 2; samples, not velocities: the score pairs different draws)."""
    if draws == 1:
        return (v - v_tgt)[..., :action_dim].pow(2).mean(dim=(1, 2))
    jumps = (x_1 - v)[..., :action_dim].reshape(-1, draws, v.shape[1] * action_dim)
    targets = (x_1 - v_tgt)[..., :action_dim].reshape(-1, draws, v.shape[1] * action_dim)
    return energy_score(jumps, targets.detach())


def snapflow_loss(
    velocity: RowVelocityFn,
    actions: Tensor,
    *,
    sample_time: Callable[[int], Tensor],
    cfg: SnapFlowConfig,
    action_dim: int,
    valid: Tensor | None = None,
    reduction: str = "mean",
    target_passes: TargetVelocityFactory | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """SnapFlow loss on a batch of (normalised, padded) action chunks.

    Args:
        velocity: the student network as a RowVelocityFn (see module docstring).
        actions: (B, H, A_pad) ground-truth chunks; only the FM branch uses them.
        sample_time: the base policy's training-time sampler, n -> (n,) times in (0, 1].
        cfg: alpha, consistency_weight, target_clamp, split, and the options consistency_steps,
            consistency_loss and energy_samples (SnapFlowConfig).
        action_dim: the real action dimension; padded dims beyond it are not scored.
        valid: optional (B, H) bool mask of in-episode steps (``~action_is_pad``); honoured in the FM branch
            exactly as SmolVLA does. The consistency branch never uses dataset actions, so it is unmasked.
        reduction: "mean" (scalar) or "none" (per-sample (B,), weighted so that its mean is the scalar loss).
        target_passes: optional factory for the stop-gradient target passes (see the module docstring);
            by default they call ``velocity`` with the SC rows.

    Returns:
        (loss, metrics) with Python-float metrics: loss, loss_fm, loss_sc, fm_fraction, sc_target_abs.
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    batch_size, device = actions.shape[0], actions.device
    fm_rows, sc_rows = split_rows(batch_size, cfg, device)
    n_fm, n_sc = fm_rows.numel(), sc_rows.numel()

    # FM branch inputs: s = t.
    a_fm = actions[fm_rows]
    noise = torch.randn_like(a_fm)
    t_fm = sample_time(n_fm).to(device) if n_fm else actions.new_zeros(0)
    x_t = interpolate(noise, a_fm, t_fm)
    u_t = target_velocity(noise, a_fm)

    # SC branch inputs: fresh pure noise at t=1 (`draws` per SC row), target from stop-gradient passes of
    # the current weights.
    draws = cfg.energy_samples if cfg.consistency_loss == "energy" else 1
    draw_rows = sc_rows.repeat_interleave(draws)
    n_draws = draw_rows.numel()
    x_1 = torch.randn((n_draws, *actions.shape[1:]), device=device, dtype=actions.dtype)
    if target_passes is None:
        target_fn: VelocityFn = lambda x, t, s: velocity(x, t, s, draw_rows)  # noqa: E731
    else:
        with torch.no_grad():
            target_fn = target_passes(draw_rows) if n_sc else None
    v_tgt = consistency_target(target_fn, x_1, cfg.target_clamp, cfg.consistency_steps) if n_sc else x_1

    # One gradient pass over all rows: FM rows at (t, s=t), SC rows at (t=1, s=0).
    v = velocity(
        torch.cat([x_t, x_1]),
        torch.cat([t_fm, torch.ones(n_draws, device=device)]),
        torch.cat([t_fm, torch.zeros(n_draws, device=device)]),
        torch.cat([fm_rows, draw_rows]),
    )
    err_fm = (v[:n_fm] - u_t)[..., :action_dim].pow(2)
    sc_per_row = _consistency_per_row(v[n_fm:], v_tgt, x_1, draws, action_dim)

    if valid is not None:
        mask = valid[fm_rows].unsqueeze(-1).to(err_fm.dtype)
        err_fm = err_fm * mask
        count_fm = (mask.sum(dim=(1, 2)) * action_dim).clamp_min(1)
    else:
        count_fm = torch.full((n_fm,), err_fm.shape[1] * action_dim, device=device, dtype=err_fm.dtype)
    loss_fm = err_fm.sum() / count_fm.sum().clamp_min(1) if n_fm else actions.new_zeros(())
    loss_sc = sc_per_row.mean() if n_sc else actions.new_zeros(())
    w_fm, w_sc = cfg.alpha, (1.0 - cfg.alpha) * cfg.consistency_weight
    loss = w_fm * loss_fm + w_sc * loss_sc

    metrics = {
        "loss": loss.item(),
        "loss_fm": loss_fm.item(),
        "loss_sc": loss_sc.item(),
        "fm_fraction": n_fm / batch_size,
        "sc_target_abs": v_tgt.abs().mean().item() if n_sc else 0.0,
    }
    if reduction == "mean":
        return loss, metrics
    # Per-sample losses whose batch mean equals the scalar loss, also with unequal padding (for LeRobot's
    # RA-BC sample weighting).
    per_sample = actions.new_zeros(batch_size)
    if n_fm:
        # Each FM sample's summed error over the branch's pooled count: with unequal padding the per-sample
        # means would weight short episodes up and no longer average to loss_fm.
        per_sample[fm_rows] = w_fm * err_fm.sum(dim=(1, 2)) / count_fm.sum().clamp_min(1) * batch_size
    if n_sc:
        per_sample[sc_rows] = w_sc * sc_per_row * batch_size / n_sc
    return per_sample, metrics
