"""The energy-score consistency option (snapflow.consistency_loss="energy", policies/snapflow/energy.py).

What it is for: a one-step jump trained with a paired squared error answers the average of two modes
wherever it has not learnt which noise goes to which mode; the energy score asks only for the targets'
distribution. The tests pin the estimator, the property the option exists for (free samples scored against
a two-mode target split onto both modes, where the paired squared error collapses them onto the mean),
and how snapflow_loss lays out the draws.
"""

import pytest
import torch
from torch import nn

from snapflow.policies.snapflow.config import ConfigError, SnapFlowConfig
from snapflow.policies.snapflow.energy import DISTANCE_EPS, energy_score, rms_distances
from snapflow.policies.snapflow.loss import snapflow_loss

H, A = 4, 3
# A small generator trained this many Adam steps against two-mode targets (modes at -1 and +1, so the
# targets' spread is 1): its outputs under the paired squared error stay within MEAN_TOL of the mean 0;
# under the energy score their spread is the targets' to within SPREAD_TOL (measured 0.91-1.18 over seeds
# 1-3 at 400 and 800 steps: the boundary between the modes is not yet sharp, the spread is), and each side
# of the mean gets at least MIN_MODE_SHARE of the noise (the 25 % bar for keeping both modes).
OPT_STEPS, MEAN_TOL, SPREAD_TOL, MIN_MODE_SHARE = 400, 0.3, 0.3, 0.25


def test_energy_score_matches_its_definition_on_a_small_case():
    samples = torch.tensor([[[0.0, 0.0], [2.0, 0.0]]])  # one observation, m = 2, D = 2
    targets = torch.tensor([[[0.0, 2.0]]])
    d = rms_distances(samples, targets)[0, :, 0]
    expected = d.mean() - 0.5 * rms_distances(samples, samples)[0, 0, 1]
    torch.testing.assert_close(energy_score(samples, targets), expected.view(1))
    # RMS over entries: |(2, 0) - (0, 0)| is 2 / sqrt(2) up to the epsilon under the root.
    assert rms_distances(samples, samples)[0, 0, 1].item() == pytest.approx((2.0 + DISTANCE_EPS) ** 0.5)


def test_samples_on_both_modes_score_better_than_their_mean():
    modes = torch.tensor([-1.0, 1.0]).view(1, 2, 1).expand(1, 2, 6)
    targets = modes.repeat(1, 4, 1)  # 8 target samples, half on each mode
    on_modes = modes.repeat(1, 2, 1)
    at_mean = torch.zeros(1, 4, 6) + 0.01 * torch.randn(1, 4, 6, generator=torch.Generator().manual_seed(0))
    assert energy_score(on_modes, targets).item() < energy_score(at_mean, targets).item()


def _train_generator(loss_fn, seed: int) -> torch.Tensor:
    """A small noise -> chunk generator trained against fresh two-mode targets; its outputs on held noise."""
    torch.manual_seed(seed)
    gen = nn.Sequential(nn.Linear(2, 32), nn.SiLU(), nn.Linear(32, 6))
    opt = torch.optim.Adam(gen.parameters(), lr=1e-2)
    for _ in range(OPT_STEPS):
        signs = torch.where(torch.rand(16, 8, 1) < 0.5, -1.0, 1.0)
        opt.zero_grad()
        loss_fn(gen(torch.randn(16, 8, 2)), signs.expand(16, 8, 6)).backward()
        opt.step()
    with torch.no_grad():
        return gen(torch.randn(400, 2)).mean(-1)


@pytest.mark.parametrize("seed", [1, 2])
def test_energy_score_trains_a_generator_to_the_targets_spread_where_paired_mse_averages(seed):
    """The targets' modes are drawn independently of the generator's noise, as a noise-to-mode map not yet
    learnt looks to the paired loss: the squared error drives every output to the mean (0), between the
    modes; the energy score spreads the outputs as the targets are spread, on both sides."""
    paired = _train_generator(lambda y, z: (y - z).pow(2).mean(), seed=seed)
    energy = _train_generator(lambda y, z: energy_score(y, z).mean(), seed=seed)
    assert paired.abs().max().item() < MEAN_TOL
    assert abs(energy.std().item() - 1.0) < SPREAD_TOL
    assert min((energy > 0).float().mean().item(), (energy < 0).float().mean().item()) > MIN_MODE_SHARE


def test_energy_score_refuses_a_single_sample_and_mismatched_shapes():
    with pytest.raises(ValueError, match="at least 2 samples"):
        energy_score(torch.zeros(2, 1, 5), torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match=r"\(G, m, D\)"):
        energy_score(torch.zeros(2, 3, 5), torch.zeros(3, 3, 5))


class RecordingField(nn.Module):
    """F(x, t, s | c_rows) = x / 2 + c_rows, recording the rows and gradient mode of every call."""

    def __init__(self, batch: int):
        super().__init__()
        self.context = nn.Parameter(torch.randn(batch, 1, A))
        self.calls: list[tuple[torch.Tensor, bool]] = []
        self.xs: list[torch.Tensor] = []

    def forward(self, x, t, s, rows):
        self.calls.append((rows.clone(), torch.is_grad_enabled()))
        self.xs.append(x.detach().clone())
        return 0.5 * x + self.context[rows]


@pytest.mark.parametrize("draws", [2, 5])
def test_snapflow_loss_draws_energy_samples_per_consistency_row(draws):
    batch = 6
    cfg = SnapFlowConfig(alpha=0.5, consistency_loss="energy", energy_samples=draws)
    net, actions = RecordingField(batch), torch.randn(batch, H, A)
    torch.manual_seed(2)
    loss, m = snapflow_loss(net, actions, sample_time=lambda n: torch.rand(n), cfg=cfg, action_dim=A)
    (tgt_rows, g1), (_, g2), (rows, g3) = net.calls
    assert not g1 and not g2 and g3
    sc_rows = tgt_rows[::draws]
    assert torch.equal(tgt_rows, sc_rows.repeat_interleave(draws))  # each SC row's draws side by side
    assert torch.equal(rows[-sc_rows.numel() * draws :], tgt_rows)
    loss.backward()
    assert net.context.grad[sc_rows].abs().sum() > 0  # the score trains the jump of the SC rows
    # loss_sc is the energy score of the jumps x_1 - F(x_1) against the 2-step targets x_1 - v_tgt.
    x_1, c = net.xs[0], net.context.detach()[tgt_rows]
    v_1 = 0.5 * x_1 + c
    v_half = 0.5 * (x_1 - 0.5 * v_1) + c
    jumps = (x_1 - (0.5 * x_1 + c)).reshape(-1, draws, H * A)
    targets = (x_1 - (v_1 + v_half) / 2).reshape(-1, draws, H * A)
    assert m["loss_sc"] == pytest.approx(energy_score(jumps, targets).mean().item(), rel=1e-5)
    torch.manual_seed(2)
    per_sample, _ = snapflow_loss(
        net, actions, sample_time=lambda n: torch.rand(n), cfg=cfg, action_dim=A, reduction="none"
    )
    assert per_sample.shape == (batch,)
    assert per_sample.mean().item() == pytest.approx(loss.item(), rel=1e-5)


@pytest.mark.parametrize(("field", "value"), [("consistency_loss", "huber"), ("energy_samples", 1)])
def test_config_refuses_bad_energy_values(field, value):
    with pytest.raises(ConfigError, match=field):
        SnapFlowConfig(**{field: value})
