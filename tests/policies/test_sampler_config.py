"""The policy side sets a policy's sampler (NFE, target-time mode) and names bad values."""

import pytest

from snapflow.policies.lerobot_plugin.configuration_pi05_snapflow import PI05SnapFlowConfig
from snapflow.policies.lerobot_plugin.configuration_smolvla_snapflow import SmolVLASnapFlowConfig
from snapflow.policies.lerobot_plugin.sampler_config import configure_sampler


def test_sets_the_family_step_field_and_the_mode():
    smol, pi05 = SmolVLASnapFlowConfig(), PI05SnapFlowConfig()
    configure_sampler(smol, 4, "euler")
    configure_sampler(pi05, 2)
    assert smol.num_steps == 4 and smol.snapflow.multistep_mode == "euler"
    assert pi05.num_inference_steps == 2 and pi05.snapflow.multistep_mode == "target_time"


@pytest.mark.parametrize(
    ("nfe", "mode", "match"), [(0, None, "nfe"), (True, None, "nfe"), (2, "heun", "mode")]
)
def test_bad_values_are_named(nfe, mode, match):
    with pytest.raises(ValueError, match=match):
        configure_sampler(SmolVLASnapFlowConfig(), nfe, mode)


def test_mode_needs_a_student():
    from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig

    with pytest.raises(ValueError, match="snapflow"):
        configure_sampler(SmolVLAConfig(), 1, "euler")


def test_a_policy_without_a_step_field_is_refused():
    from lerobot.policies.act.configuration_act import ACTConfig

    with pytest.raises(ValueError, match="not a flow-matching policy"):
        configure_sampler(ACTConfig(), 1)
