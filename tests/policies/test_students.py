"""The three LeRobot plugin students on tiny real backbones: identity at init, NFE, training, round trip."""

import copy
import dataclasses
import json
import math

import pytest
import torch
from lerobot.policies.pi0.modeling_pi0 import PI0Policy
from lerobot.policies.pi05.modeling_pi05 import PI05Policy
from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

from snapflow.policies.lerobot_plugin.checkpoint import TARGET_TIME_PREFIX
from snapflow.policies.snapflow.config import ConfigError
from snapflow.policies.snapflow.flow import sample_target_time
from snapflow.policies.tiny_paligemma import (
    fix_tiny_projector,
    is_tiny,
    tiny_variants_enabled,
    tiny_vlm_width,
)

from .helpers import FAMILIES, raw_batch, tiny_student

UPSTREAM = {"smolvla": SmolVLAPolicy, "pi0": PI0Policy, "pi05": PI05Policy}
# A KV-cached denoise step and a joint uncached pass are the same maths in a different order of float32
# operations; up to 2.4e-7 was measured on tiny SmolVLA. 1e-5 leaves room without hiding a bug
# (a wrong time or mask changes outputs at the 1e-2 level).
CACHE_VS_JOINT_ATOL = 1e-5
# The same computation in another order or another thread (checkpoint recomputation, concurrent callers):
# float32 rounding only, far below the 1e-2 a wrong time or mask causes.
SAME_MATH_ATOL = 1e-6
# RTC's inpainting computes pred + 1 * (leftover - pred) in float32: rounding of values of order 1.
INPAINT_ATOL = 1e-5


def upstream_teacher(family, student):
    """The upstream policy class on the same (tiny) config, with the student's weights."""
    cls = UPSTREAM[family]
    if is_tiny(student.config):
        with tiny_variants_enabled(f"lerobot.policies.{family}.modeling_{family}"):
            teacher = cls(copy.deepcopy(student.config))
        fix_tiny_projector(teacher.model, tiny_vlm_width(student.config.paligemma_variant))
    else:
        teacher = cls(copy.deepcopy(student.config))
    sd = {k: v for k, v in student.state_dict().items() if not k.startswith(TARGET_TIME_PREFIX)}
    teacher.load_state_dict(sd, strict=True)
    return teacher.eval()


def with_trained_phi(student):
    """A copy of ``student`` whose target-time embedding has moved off its zero init (as after training)."""
    student = copy.deepcopy(student)
    torch.nn.init.normal_(student.target_time_embedding.out_proj.weight, std=0.1)
    return student


@pytest.fixture(scope="module", params=FAMILIES)
def family_setup(request, tiny_assets):
    family = request.param
    torch.manual_seed(0)
    student, pre, post = tiny_student(family, tiny_assets)
    return family, student.eval(), pre, post


def test_student_velocity_at_s_equal_t_is_the_teachers_exactly(family_setup):
    family, student, pre, _ = family_setup
    teacher = upstream_teacher(family, student)
    batch = pre(raw_batch(family, batch_size=3))
    args, actions, _ = student.adapter.training_inputs(student, dict(batch))
    noise, t = torch.randn_like(actions), torch.tensor([0.9, 0.5, 0.1])
    captured = []
    hook = teacher.model.action_out_proj.register_forward_hook(lambda m, i, o: captured.append(o))
    with torch.no_grad():
        teacher.model.forward(*args, actions, noise, t)  # upstream training forward; v_t captured by the hook
        prefix = student.adapter.prefix_from_sample_args(student.model, *args)
        x_t = t[:, None, None] * noise + (1 - t[:, None, None]) * actions
        v_student = student.velocity(prefix, x_t, t, t)
    hook.remove()
    assert torch.equal(v_student, captured[0])


def test_one_nfe_equals_upstream_one_step_euler(family_setup):
    family, student, pre, _ = family_setup
    teacher = upstream_teacher(family, student)
    setattr(teacher.config, student.steps_field, 1)
    batch = pre(raw_batch(family, batch_size=2, with_action=False))
    noise = torch.randn(2, student.config.chunk_size, student.config.max_action_dim)
    ours = student.sample_chunk(_sample_args(student, batch), noise=noise)
    theirs = teacher.model.sample_actions(*_sample_args(student, batch), noise=noise, **_steps(family, 1))
    assert torch.allclose(ours, theirs, atol=CACHE_VS_JOINT_ATOL)


def _sample_args(student, batch):
    return student.adapter.sample_args(student, batch)


def _steps(family, k):
    return {} if family == "smolvla" else {"num_steps": k}


@pytest.mark.parametrize("nfe", [1, 4])
def test_counting_hook_sees_one_expert_pass_per_nfe(family_setup, nfe):
    family, student, pre, _ = family_setup
    backbone = student.model.vlm_with_expert if family == "smolvla" else student.model.paligemma_with_expert
    expert_calls, cache_flags = [], []
    h1 = student.model.action_out_proj.register_forward_hook(lambda *a: expert_calls.append(1))
    upstream_forward = backbone.forward

    def recording_forward(*args, **kwargs):  # upstream calls .forward() directly, so hooks would not fire
        cache_flags.append((kwargs.get("use_cache"), kwargs["inputs_embeds"][0] is not None))
        return upstream_forward(*args, **kwargs)

    backbone.forward = recording_forward
    old = getattr(student.config, student.steps_field)
    setattr(student.config, student.steps_field, nfe)
    try:
        out = student.predict_action_chunk(pre(raw_batch(family, with_action=False)))
    finally:
        setattr(student.config, student.steps_field, old)
        h1.remove()
        del backbone.forward
    assert out.shape == (2, 10, 7)
    assert len(expert_calls) == nfe
    if nfe == 1:
        assert cache_flags == [(False, True)]  # one joint prefix+suffix pass, no KV cache
    else:
        # One prefix prefill, then one suffix-only expert call per step.
        assert [has_prefix for _, has_prefix in cache_flags] == [True] + [False] * nfe


def test_multistep_uses_the_target_time_schedule(family_setup):
    """After phi has moved, the cached K-step path equals the reference sampler on joint passes."""
    family, student, pre, _ = family_setup
    student = with_trained_phi(student)
    batch = pre(raw_batch(family, with_action=False))
    args = _sample_args(student, batch)
    noise = torch.randn(2, 10, student.config.max_action_dim)
    setattr(student.config, student.steps_field, 4)
    with torch.no_grad():
        cached = student.sample_chunk(args, noise=noise)
        prefix = student.adapter.prefix_from_sample_args(student.model, *args)
        reference = sample_target_time(lambda x, t, s: student.velocity(prefix, x, t, s), noise, 4)
    assert torch.allclose(cached, reference, atol=10 * CACHE_VS_JOINT_ATOL)


def _train(student, batch, steps, lr=3e-3):
    opt = torch.optim.AdamW(student.get_optim_params(), lr=lr)
    history = []
    for _ in range(steps):
        torch.manual_seed(0)  # same split and noise each step: a fixed objective on a fixed batch
        loss, metrics = student.forward(dict(batch))
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert all(isinstance(v, float) for v in metrics.values())
        history.append(metrics)
    return history


def test_training_steps_move_phi_and_keep_the_vlm_frozen(family_setup):
    family, student, pre, _ = family_setup
    student = copy.deepcopy(student).train()
    frozen = {n: p.detach().clone() for n, p in student.named_parameters() if not p.requires_grad}
    assert frozen, "the VLM must be frozen by the default recipe"
    assert all(p.requires_grad for p in student.target_time_embedding.parameters())
    assert student.config.snapflow.alpha == 0.5 and student.config.snapflow.consistency_weight == 0.1
    history = _train(student, pre(raw_batch(family, batch_size=4)), steps=6)
    assert {"loss_fm", "loss_sc", "phi_gap"} <= set(history[-1])
    assert student.target_time_embedding.gap() > 0.0  # phi(0) != phi(1)
    for name, p in student.named_parameters():
        if name in frozen:
            assert torch.equal(p, frozen[name]), name


def test_consistency_loss_decreases_under_its_own_gradient(family_setup):
    """With the FM term off (alpha=0) the step is the consistency objective's own; its loss must fall.
    (With alpha=0.5 on a random-weight model the FM term dominates and moves the targets.)"""
    family, student, pre, _ = family_setup
    student = copy.deepcopy(student).train()
    student.config.snapflow.alpha = 0.0
    history = _train(student, pre(raw_batch(family, batch_size=4)), steps=10)
    sc = [m["loss_sc"] for m in history]
    assert sum(sc[-3:]) < sum(sc[:3]), sc


def test_energy_consistency_option_trains_through_the_backbone(family_setup):
    """consistency_loss="energy": every consistency row is drawn energy_samples times, through the shared
    (KV-cached) prefix of its observation; the step is finite and trains the jump (phi moves)."""
    family, student, pre, _ = family_setup
    student = copy.deepcopy(student).train()
    student.config.snapflow = dataclasses.replace(
        student.config.snapflow, alpha=0.0, consistency_loss="energy", energy_samples=3
    )
    history = _train(student, pre(raw_batch(family, batch_size=2)), steps=3)
    assert all(math.isfinite(m["loss_sc"]) for m in history)
    assert student.target_time_embedding.gap() > 0.0


def test_save_load_round_trip(family_setup, tmp_path):
    family, student, pre, _ = family_setup
    student = with_trained_phi(student)
    student.config.snapflow.alpha = 0.3
    student.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["type"] == f"{family}_snapflow"
    loaded = type(student).from_pretrained(tmp_path)
    assert type(loaded) is type(student) and loaded.config.snapflow == student.config.snapflow
    batch = pre(raw_batch(family, with_action=False))
    noise = torch.randn(2, 10, student.config.max_action_dim)
    a = student.sample_chunk(_sample_args(student, batch), noise=noise)
    b = loaded.sample_chunk(_sample_args(loaded, batch), noise=noise)
    assert torch.equal(a, b)


def test_euler_mode_at_one_step_is_naive_euler_with_s_equal_t(family_setup):
    """The FM control (alpha=1) never trains phi at s != t, so its 1-step sample must use s = t."""
    family, student, pre, _ = family_setup
    student = with_trained_phi(student)
    student.config.snapflow.multistep_mode = "euler"
    args = _sample_args(student, pre(raw_batch(family, with_action=False)))
    noise = torch.randn(2, 10, student.config.max_action_dim)
    setattr(student.config, student.steps_field, 1)
    with torch.no_grad():
        got = student.sample_chunk(args, noise=noise)
        prefix = student.adapter.prefix_from_sample_args(student.model, *args)
        ones = torch.ones(2)
        expected = noise - student.velocity(prefix, noise, ones, ones)
    assert torch.equal(got, expected)


def _time_mlp(family, model):
    return model.time_mlp_in if family == "pi05" else model.action_time_mlp_in


def _loss_and_grads(student, family, batch, checkpointing):
    student = copy.deepcopy(student).train()
    student.config.gradient_checkpointing = checkpointing
    if family != "smolvla":  # upstream PI0/PI05 switch their own backbone checkpointing
        toggle = "enable" if checkpointing else "disable"
        getattr(student.model, f"gradient_checkpointing_{toggle}")()
    calls = []
    hook = _time_mlp(family, student.model).register_forward_hook(lambda *a: calls.append(1))
    torch.manual_seed(0)
    loss, _ = student.forward(dict(batch))
    forward_calls = len(calls)
    loss.backward()
    hook.remove()
    grads = {n: p.grad.clone() for n, p in student.named_parameters() if p.grad is not None}
    return loss.detach(), grads, len(calls) - forward_calls


def test_gradient_checkpointing_trains_with_the_same_loss_and_gradients(family_setup):
    """Upstream recomputes the time MLP in backward; with time as an explicit input the recomputation is the
    same pass (it used to raise torch's CheckpointError when s lived on a module)."""
    family, student, pre, _ = family_setup
    batch = pre(raw_batch(family, batch_size=4))
    loss, grads, recomputed_off = _loss_and_grads(student, family, batch, checkpointing=False)
    loss_gc, grads_gc, recomputed_on = _loss_and_grads(student, family, batch, checkpointing=True)
    assert recomputed_off == 0 and recomputed_on >= 1  # checkpointing really recomputed in backward
    assert torch.equal(loss, loss_gc)
    assert grads.keys() == grads_gc.keys() and grads
    for name, g in grads.items():
        torch.testing.assert_close(grads_gc[name], g, rtol=0, atol=SAME_MATH_ATOL, msg=name)


def test_no_upstream_method_is_replaced_and_no_time_state_lives_on_modules(family_setup):
    _, student, _, _ = family_setup
    for name in ("sample_actions", "denoise_step", "embed_suffix", "forward"):
        assert name not in vars(student.model), name
    for module in student.modules():
        assert not hasattr(module, "time_cond"), type(module).__name__


@pytest.mark.parametrize("bad", [0, -1])
def test_nfe_below_one_is_refused_when_the_config_is_built(bad):
    from snapflow.policies.lerobot_plugin.configuration_pi05_snapflow import PI05SnapFlowConfig
    from snapflow.policies.lerobot_plugin.configuration_smolvla_snapflow import SmolVLASnapFlowConfig

    with pytest.raises(ConfigError, match="num_steps"):
        SmolVLASnapFlowConfig(num_steps=bad)
    with pytest.raises(ConfigError, match="num_inference_steps"):
        PI05SnapFlowConfig(num_inference_steps=bad)


def test_compile_model_is_refused_with_a_reason():
    from snapflow.policies.lerobot_plugin.configuration_smolvla_snapflow import SmolVLASnapFlowConfig

    with pytest.raises(ConfigError, match=r"compile_model.*snapflow-export"):
        SmolVLASnapFlowConfig(compile_model=True)


def test_from_pretrained_of_a_teacher_without_config_derives_the_student_config(family_setup, tmp_path):
    family, student, pre, _ = family_setup
    teacher = upstream_teacher(family, student)
    teacher.save_pretrained(tmp_path)
    loaded = type(student).from_pretrained(tmp_path)
    assert isinstance(loaded.config, type(student.config))
    assert loaded.nfe == 1  # the student's NFE, not the teacher's step count
    assert loaded.config.input_features == teacher.config.input_features
    assert loaded.config.chunk_size == teacher.config.chunk_size
    batch = pre(raw_batch(family, with_action=False))
    noise = torch.randn(2, 10, student.config.max_action_dim)
    assert torch.equal(
        loaded.sample_chunk(_sample_args(loaded, batch), noise=noise),
        student.sample_chunk(_sample_args(student, batch), noise=noise),
    )


def test_training_from_a_student_with_trained_phi_is_named(family_setup, tmp_path):
    family, student, pre, _ = family_setup
    trained = with_trained_phi(student)
    trained.save_pretrained(tmp_path)
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*already trained")  # loading it (to evaluate) is silent
        loaded = type(student).from_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="already trained"):
        loaded.train().forward(pre(raw_batch(family, batch_size=2)))


def test_resuming_a_students_own_checkpoint_is_silent(family_setup, tmp_path):
    """lerobot-train --resume=true loads <run>/checkpoints/<step>/pretrained_model beside its training_state:
    continuing a distillation must not warn that it does not start at a teacher (the plain save above does)."""
    import warnings

    from lerobot.utils.constants import OPTIMIZER_STATE, PRETRAINED_MODEL_DIR, TRAINING_STATE_DIR
    from safetensors.torch import save_file

    family, student, pre, _ = family_setup
    step_dir = tmp_path / "checkpoints" / "000004"
    with_trained_phi(student).save_pretrained(step_dir / PRETRAINED_MODEL_DIR)
    (step_dir / TRAINING_STATE_DIR).mkdir()
    save_file({"state.0.step": torch.zeros(1)}, step_dir / TRAINING_STATE_DIR / OPTIMIZER_STATE)
    loaded = type(student).from_pretrained(step_dir / PRETRAINED_MODEL_DIR)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*already trained")
        loaded.train().forward(pre(raw_batch(family, batch_size=2)))
    # Without its training state the same weights are a student given as a starting point: named.
    (step_dir / TRAINING_STATE_DIR / OPTIMIZER_STATE).unlink()
    with pytest.warns(UserWarning, match="already trained"):
        type(student).from_pretrained(step_dir / PRETRAINED_MODEL_DIR).train().forward(
            pre(raw_batch(family, batch_size=2))
        )


def test_lerobot_rollout_accepts_the_students_for_rtc(family_setup):
    """lerobot-rollout --inference.type=rtc checks exactly this before it drives a policy."""
    from lerobot.rollout.inference.rtc import supports_rtc_inference

    _, student, _, _ = family_setup
    assert supports_rtc_inference(student)


@pytest.mark.parametrize("nfe", [1, 2])
def test_rtc_at_few_nfe_inpaints_the_previous_chunk(family_setup, nfe):
    """RTC's guidance clamped at the NFE: the 1-NFE jump (and the 2-step target-time schedule) lands on the
    leftover where its prefix weight is 1 (the actions executed during inference) and is unguided past the
    execution horizon."""
    from lerobot.policies.rtc.configuration_rtc import RTCConfig

    family, student, pre, _ = family_setup
    student = copy.deepcopy(student)
    setattr(student.config, student.steps_field, nfe)
    student.config.rtc_config = RTCConfig(execution_horizon=6)
    student.init_rtc_processor()
    batch = pre(raw_batch(family, with_action=False))
    noise = torch.randn(2, 10, student.config.max_action_dim)
    free = student.predict_action_chunk(dict(batch), noise=noise)
    leftover = torch.randn(2, 8, free.shape[-1])
    guided = student.predict_action_chunk(
        dict(batch), noise=noise, inference_delay=2, prev_chunk_left_over=leftover
    )
    torch.testing.assert_close(guided[:, :2], leftover[:, :2], rtol=0, atol=INPAINT_ATOL)
    if nfe == 1:  # with more steps the guided first step changes what the later steps attend to
        torch.testing.assert_close(guided[:, 6:], free[:, 6:], rtol=0, atol=INPAINT_ATOL)
    between = (guided[:, 2:6] - free[:, 2:6]).abs().amax()
    assert between > 1e-3  # the blend region moved towards the leftover


def test_concurrent_callers_get_the_sequential_results(family_setup):
    """The async policy server's worker threads share one policy: no per-call state may leak between them."""
    from concurrent.futures import ThreadPoolExecutor

    family, student, pre, _ = family_setup
    student = with_trained_phi(student)
    batch = pre(raw_batch(family, with_action=False))
    args = _sample_args(student, batch)
    noises = [torch.randn(2, 10, student.config.max_action_dim) for _ in range(6)]
    with torch.no_grad():
        sequential = [student.sample_chunk(args, noise=n) for n in noises]
        with ThreadPoolExecutor(3) as pool:
            concurrent = list(pool.map(lambda n: student.sample_chunk(args, noise=n), noises))
    for a, b in zip(sequential, concurrent, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=SAME_MATH_ATOL)
