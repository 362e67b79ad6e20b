"""Starting from a teacher checkpoint, refusing wrong ones, and clear errors on bad inputs."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from snapflow.policies.lerobot_plugin import PI05SnapFlowPolicy, SmolVLASnapFlowPolicy
from snapflow.policies.lerobot_plugin.checkpoint import TARGET_TIME_PREFIX, load_weights

from .helpers import raw_batch, tiny_student


@pytest.fixture(scope="module")
def smolvla(tiny_assets):
    return tiny_student("smolvla", tiny_assets)


def _save_as_teacher(student, path, family):
    """Write the student as an upstream flow-matching checkpoint: upstream type, no target-time keys."""
    student.save_pretrained(path)
    cfg = json.loads((path / "config.json").read_text())
    cfg["type"] = family
    cfg.pop("snapflow")
    (path / "config.json").write_text(json.dumps(cfg))
    sd = {
        k: v for k, v in load_file(path / "model.safetensors").items() if not k.startswith(TARGET_TIME_PREFIX)
    }
    save_file(sd, path / "model.safetensors")


def test_teacher_loads_with_only_target_time_missing(smolvla, tmp_path):
    student, _, _ = smolvla
    _save_as_teacher(student, tmp_path, "smolvla")
    loaded = SmolVLASnapFlowPolicy.from_pretrained(tmp_path, config=student.config)
    assert torch.count_nonzero(loaded.target_time_embedding.out_proj.weight) == 0
    for k, v in student.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v), k
    missing = load_weights(SmolVLASnapFlowPolicy(student.config), tmp_path)
    assert sorted(missing) == sorted(k for k in student.state_dict() if k.startswith(TARGET_TIME_PREFIX))
    assert len(missing) == 4


def test_pi05_teacher_loads_without_a_false_failure_message(tiny_assets, tmp_path, capsys):
    student, _, _ = tiny_student("pi05", tiny_assets)
    _save_as_teacher(student, tmp_path, "pi05")
    loaded = PI05SnapFlowPolicy.from_pretrained(tmp_path, config=student.config)
    out = capsys.readouterr().out
    assert "Could not load" not in out and "Warning" not in out
    k = "model.action_out_proj.weight"
    assert torch.equal(loaded.state_dict()[k], student.state_dict()[k])


def test_checkpoint_of_another_type_is_refused(smolvla, tmp_path):
    student, _, _ = smolvla
    _save_as_teacher(student, tmp_path, "pi05")
    with pytest.raises(ValueError, match="'pi05' policy"):
        SmolVLASnapFlowPolicy.from_pretrained(tmp_path, config=student.config)


def test_corrupt_or_mismatched_weights_are_refused(smolvla, tmp_path):
    student, _, _ = smolvla
    student.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    sd = load_file(weights)
    sd["model.action_out_proj.weight"] = torch.zeros(3, 3)
    save_file(sd, weights)
    with pytest.raises(ValueError, match="architecture"):
        SmolVLASnapFlowPolicy.from_pretrained(tmp_path)
    weights.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="corrupt"):
        SmolVLASnapFlowPolicy.from_pretrained(tmp_path)
    weights.unlink()
    with pytest.raises(ValueError, match=r"no model\.safetensors"):
        SmolVLASnapFlowPolicy.from_pretrained(tmp_path)


def test_a_damaged_processor_file_is_named_when_the_policy_loads(smolvla, tmp_path):
    """Newcomer pass 9, F08: lerobot-eval loads the policy first, then its processors, where a cut-short
    policy_preprocessor.json ended in a bare JSONDecodeError naming no file."""
    student, pre, _ = smolvla
    student.save_pretrained(tmp_path)
    pre.save_pretrained(tmp_path)
    SmolVLASnapFlowPolicy.from_pretrained(tmp_path)  # intact: loads
    (tmp_path / "policy_preprocessor.json").write_text('{"name": ')
    with pytest.raises(ValueError, match=r"policy_preprocessor\.json is not valid JSON"):
        SmolVLASnapFlowPolicy.from_pretrained(tmp_path)


def test_bad_inputs_get_clear_errors(smolvla):
    student, pre, _ = smolvla
    good = pre(raw_batch("smolvla", with_action=False))
    bad_state = dict(good, **{"observation.state": torch.zeros(2, 5)})
    with pytest.raises(ValueError, match=r"observation\.state has 5 dims"):
        student.predict_action_chunk(bad_state)
    nan_state = dict(good, **{"observation.state": torch.full((2, 8), float("nan"))})
    with pytest.raises(ValueError, match="NaN"):
        student.predict_action_chunk(nan_state)
    bad_image = dict(good, **{"observation.images.image": torch.zeros(2, 64, 64)})
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        student.predict_action_chunk(bad_image)
    missing_task = raw_batch("smolvla")
    del missing_task["task"]
    with pytest.raises((ValueError, KeyError), match="task"):
        student.forward(pre(missing_task))
    batch = pre(raw_batch("smolvla", with_action=False))  # newcomer pass 10, Q10: a noise of the wrong shape
    with pytest.raises(ValueError, match=r"noise has shape \(1, 3, 3\)"):
        student.predict_action_chunk(batch, noise=torch.zeros(1, 3, 3))
    steps = student.config.num_steps
    student.config.num_steps = 0  # pass 11, Q04: set after loading, it used to divide by zero
    try:
        with pytest.raises(ValueError, match=r"config\.num_steps=0: the NFE must be an integer >= 1"):
            student.predict_action_chunk(batch)
    finally:
        student.config.num_steps = steps


@pytest.mark.parametrize("family", ["smolvla", "pi05"])
def test_select_action_refuses_a_batch_the_queue_was_not_filled_for(family, smolvla, tiny_assets):
    """Upstream select_action would serve the batch-1 queue to a batch-2 observation; reset() clears it."""
    student, pre, _ = smolvla if family == "smolvla" else tiny_student(family, tiny_assets)
    student.eval()
    student.reset()
    first = student.select_action(pre(raw_batch(family, batch_size=1, with_action=False)))
    assert first.shape[0] == 1
    two = pre(raw_batch(family, batch_size=2, with_action=False))
    with pytest.raises(
        ValueError, match=r"batch of 2 observations while its action queue holds actions for 1"
    ):
        student.select_action(two)
    student.reset()
    assert student.select_action(two).shape[0] == 2
