"""Target-time embedding and the SnapFlow loss on a small torch velocity network.

The method core is backbone-agnostic; these tests drive it with a small real network whose velocity
depends on (x_t, t, s) the way a VLA expert does (the LeRobot backbones are tested in test_students.py).
"""

import pytest
import torch
from torch import Tensor, nn

from snapflow.policies.snapflow.config import ConfigError, SnapFlowConfig
from snapflow.policies.snapflow.loss import snapflow_loss, split_rows
from snapflow.policies.snapflow.target_time import TargetTimeEmbedding

H, A, D = 4, 3, 16


class SmallVelocityNet(nn.Module):
    """x_t (B,H,A), sinusoid(t) + phi(s) -> velocity; phi(s) is added to the time embedding, as the adapters do."""

    def __init__(self):
        super().__init__()
        self.time_in = nn.Linear(D, 32)
        self.net = nn.Sequential(nn.Linear(A + 32, 64), nn.SiLU(), nn.Linear(64, A))
        self.phi = TargetTimeEmbedding(D)
        self.context = nn.Parameter(torch.randn(8, 1, A))  # per-sample "observation" (8 samples)

    def forward(self, x_t, t, s, rows):
        from lerobot.policies.common.vla_utils import create_sinusoidal_pos_embedding

        emb = create_sinusoidal_pos_embedding(t, D, 4e-3, 4.0, device=t.device).float()
        h = self.time_in(emb + self.phi(s))[:, None, :].expand(-1, H, -1)
        return self.net(torch.cat([x_t + self.context[rows], h], dim=-1))


def test_target_time_embedding_zero_inits_only_its_last_layer():
    phi = TargetTimeEmbedding(D)
    assert torch.count_nonzero(phi.out_proj.weight) == 0 and torch.count_nonzero(phi.out_proj.bias) == 0
    assert torch.count_nonzero(phi.in_proj.weight) > 0
    assert torch.equal(phi(torch.rand(5)), torch.zeros(5, D))
    assert phi.gap() == 0.0


def test_split_rows_partitions_the_batch():
    fm, sc = split_rows(8, SnapFlowConfig(), torch.device("cpu"))
    assert len(fm) == 4 and len(sc) == 4
    assert sorted(torch.cat([fm, sc]).tolist()) == list(range(8))
    fm, sc = split_rows(8, SnapFlowConfig(alpha=1.0), torch.device("cpu"))
    assert len(fm) == 8 and len(sc) == 0
    fm, sc = split_rows(1000, SnapFlowConfig(split="bernoulli", alpha=0.3), torch.device("cpu"))
    assert 200 < len(fm) < 400 and len(fm) + len(sc) == 1000


def test_alpha_one_is_plain_flow_matching():
    net, actions = SmallVelocityNet(), torch.randn(8, H, A)
    torch.manual_seed(1)
    loss, metrics = snapflow_loss(
        net, actions, sample_time=lambda n: torch.rand(n), cfg=SnapFlowConfig(alpha=1.0), action_dim=A
    )
    torch.manual_seed(1)
    fm_rows, _ = split_rows(8, SnapFlowConfig(alpha=1.0), torch.device("cpu"))
    noise, t = torch.randn_like(actions[fm_rows]), torch.rand(8)
    x_t = t[:, None, None] * noise + (1 - t[:, None, None]) * actions[fm_rows]
    expected = (net(x_t, t, t, fm_rows) - (noise - actions[fm_rows])).pow(2).mean()
    assert torch.allclose(loss, expected, atol=1e-6)
    assert metrics["loss_sc"] == 0.0 and metrics["fm_fraction"] == 1.0


def test_consistency_targets_carry_no_gradient_and_weights_follow_the_paper():
    net, actions = SmallVelocityNet(), torch.randn(8, H, A)
    cfg = SnapFlowConfig(alpha=0.5, consistency_weight=0.1)
    _, m = snapflow_loss(net, actions, sample_time=lambda n: torch.rand(n), cfg=cfg, action_dim=A)
    assert abs(m["loss"] - (0.5 * m["loss_fm"] + 0.05 * m["loss_sc"])) < 1e-6
    # Gradient of L_sc alone must be the gradient of the student pass only: perturbing the targets'
    # weights through a detached copy changes nothing, so check the graph directly.
    calls = []

    def recording(x, t, s, rows):
        out = net(x, t, s, rows)
        calls.append((s.tolist(), out.requires_grad))
        return out

    snapflow_loss(
        recording, actions, sample_time=lambda n: torch.rand(n), cfg=SnapFlowConfig(alpha=0.0), action_dim=A
    )
    # Two target passes (s=1, s=0.5) without grad, then one student pass (s=0) with grad.
    assert [req for _, req in calls] == [False, False, True]
    assert calls[0][0] == [1.0] * 8 and calls[1][0] == [0.5] * 8 and calls[2][0] == [0.0] * 8


def test_per_sample_reduction_averages_to_the_scalar_loss_and_masks_padding():
    net, actions = SmallVelocityNet(), torch.randn(8, H, A)
    valid = torch.ones(8, H, dtype=torch.bool)
    valid[:, -1] = False
    torch.manual_seed(3)
    scalar, _ = snapflow_loss(
        net, actions, sample_time=lambda n: torch.rand(n), cfg=SnapFlowConfig(), action_dim=A, valid=valid
    )
    torch.manual_seed(3)
    per_sample, _ = snapflow_loss(
        net,
        actions,
        sample_time=lambda n: torch.rand(n),
        cfg=SnapFlowConfig(),
        action_dim=A,
        valid=valid,
        reduction="none",
    )
    assert per_sample.shape == (8,)
    assert torch.allclose(per_sample.mean(), scalar, atol=1e-6)
    # Padded steps do not count: changing the ground truth there leaves the loss unchanged.
    moved = actions.clone()
    moved[:, -1] += 100.0
    torch.manual_seed(3)
    again, _ = snapflow_loss(
        net, moved, sample_time=lambda n: torch.rand(n), cfg=SnapFlowConfig(), action_dim=A, valid=valid
    )
    assert torch.allclose(again, scalar, atol=1e-6)


class LinearField(nn.Module):
    """F(x, t, s | c_rows) = a*x + b*t + d*s + c_rows: every call's inputs are recoverable from its output."""

    A_X, B_T, D_S = 0.5, 2.0, -3.0

    def __init__(self, batch: int):
        super().__init__()
        self.context = nn.Parameter(torch.arange(batch, dtype=torch.float32).view(batch, 1, 1) * 10.0)
        self.calls: list[tuple[Tensor, Tensor, Tensor, Tensor, bool]] = []

    def forward(self, x, t, s, rows):
        self.calls.append((x.detach().clone(), t.clone(), s.clone(), rows.clone(), torch.is_grad_enabled()))
        return self.A_X * x + self.B_T * t[:, None, None] + self.D_S * s[:, None, None] + self.context[rows]


def test_consistency_target_has_the_analytic_value_on_a_linear_field():
    """Pins (x, t, s, rows) of every call and the target's value: a sign flip in the half step, a wrong t in
    a target pass, the target set to v_1/2 alone, or misaligned rows all change it."""
    batch, cfg = 6, SnapFlowConfig(alpha=0.5, target_clamp=0.0)
    net, actions = LinearField(batch), torch.randn(batch, H, A)
    torch.manual_seed(5)
    fm_rows, sc_rows = split_rows(batch, cfg, torch.device("cpu"))
    torch.manual_seed(5)
    _, m = snapflow_loss(net, actions, sample_time=lambda n: torch.rand(n), cfg=cfg, action_dim=A)
    (x1, t1, s1, r1, g1), (xh, th, sh, rh, gh), (xg, tg, sg, rg, gg) = net.calls
    n_sc = sc_rows.numel()
    assert torch.equal(r1, sc_rows) and torch.equal(rh, sc_rows) and not g1 and not gh and gg
    assert torch.equal(t1, torch.ones(n_sc)) and torch.equal(s1, torch.ones(n_sc))
    assert torch.equal(th, torch.full((n_sc,), 0.5)) and torch.equal(sh, torch.full((n_sc,), 0.5))
    c = net.context.detach()[sc_rows]
    a, b, d = LinearField.A_X, LinearField.B_T, LinearField.D_S
    v_1 = a * x1 + b + d + c
    x_half = x1 - 0.5 * v_1
    torch.testing.assert_close(xh, x_half)
    v_half = a * x_half + 0.5 * b + 0.5 * d + c
    target = 0.5 * (v_1 + v_half)
    # The gradient pass: FM rows first at s = t, then the SC rows at (t=1, s=0) on the same x_1.
    assert torch.equal(rg, torch.cat([fm_rows, sc_rows]))
    n_fm = fm_rows.numel()
    torch.testing.assert_close(xg[n_fm:], x1)
    assert torch.equal(tg[n_fm:], torch.ones(n_sc)) and torch.equal(sg[n_fm:], torch.zeros(n_sc))
    assert torch.equal(tg[:n_fm], sg[:n_fm])
    student = a * x1 + b + c
    assert m["loss_sc"] == pytest.approx((student - target).pow(2).mean().item(), rel=1e-5)
    assert m["sc_target_abs"] == pytest.approx(target.abs().mean().item(), rel=1e-5)


def test_per_sample_reduction_matches_the_scalar_loss_with_unequal_padding():
    net, actions = SmallVelocityNet(), torch.randn(8, H, A)
    valid = torch.ones(8, H, dtype=torch.bool)
    valid[::2, 1:] = False  # half the samples keep one step, the others all four
    kwargs = {
        "sample_time": lambda n: torch.rand(n),
        "cfg": SnapFlowConfig(),
        "action_dim": A,
        "valid": valid,
    }
    torch.manual_seed(4)
    scalar, _ = snapflow_loss(net, actions, **kwargs)
    torch.manual_seed(4)
    per_sample, _ = snapflow_loss(net, actions, reduction="none", **kwargs)
    assert torch.allclose(per_sample.mean(), scalar, atol=1e-6)


def test_target_clamp_bounds_the_targets():
    class Huge(nn.Module):
        def forward(self, x, t, s, rows):
            return torch.full_like(x, 1000.0) + 0 * x

    _, m = snapflow_loss(
        Huge(),
        torch.randn(4, H, A),
        sample_time=lambda n: torch.rand(n),
        cfg=SnapFlowConfig(alpha=0.0, target_clamp=20.0),
        action_dim=A,
    )
    assert m["sc_target_abs"] == pytest.approx(20.0)
    _, m = snapflow_loss(
        Huge(),
        torch.randn(4, H, A),
        sample_time=lambda n: torch.rand(n),
        cfg=SnapFlowConfig(alpha=0.0, target_clamp=0.0),
        action_dim=A,
    )
    assert m["sc_target_abs"] == pytest.approx(1000.0)


def test_training_separates_phi_of_zero_from_phi_of_one():
    torch.manual_seed(0)
    net, actions = SmallVelocityNet(), torch.randn(8, H, A)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(20):
        loss, _ = snapflow_loss(
            net, actions, sample_time=lambda n: torch.rand(n), cfg=SnapFlowConfig(), action_dim=A
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert net.phi.gap() > 1e-4


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alpha", 1.5),
        ("consistency_weight", -1.0),
        ("target_clamp", -1.0),
        ("split", "half"),
        ("multistep_mode", "heun"),
    ],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ConfigError, match=field):
        SnapFlowConfig(**{field: value})


@pytest.mark.parametrize("steps", [2, 4])
def test_k_step_consistency_target_is_the_models_own_k_step_euler_sampler(steps):
    """consistency_steps=k: the target is (x_1 - x_0) of k Euler steps with s = t (k=2 is the paper's)."""
    batch, cfg = 6, SnapFlowConfig(alpha=0.0, target_clamp=0.0, consistency_steps=steps)
    net, actions = LinearField(batch), torch.randn(batch, H, A)
    torch.manual_seed(3)
    _, m = snapflow_loss(net, actions, sample_time=lambda n: torch.rand(n), cfg=cfg, action_dim=A)
    assert len(net.calls) == steps + 1  # k stop-gradient passes, then the one gradient pass
    x = x1 = net.calls[0][0]
    c = net.context.detach()[net.calls[0][3]]  # the context of the consistency rows, in call order
    a, b, d = LinearField.A_X, LinearField.B_T, LinearField.D_S
    for k, (xk, tk, sk, _, grad) in enumerate(net.calls[:steps]):
        t = 1.0 - k / steps
        torch.testing.assert_close(xk, x)
        assert not grad and torch.allclose(tk, torch.full_like(tk, t)) and torch.equal(tk, sk)
        x = x - (a * x + (b + d) * t + c) / steps
    target = x1 - x
    student = a * x1 + b + c
    assert m["loss_sc"] == pytest.approx((student - target).pow(2).mean().item(), rel=1e-5)
    with pytest.raises(ConfigError, match="consistency_steps"):
        SnapFlowConfig(consistency_steps=1)
