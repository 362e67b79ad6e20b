"""SnapFlowStudent: what the three plugin policies add to their upstream LeRobot policy.

Mixed in before the upstream policy class (``class X(SnapFlowStudent, SmolVLAPolicy)``), it
  * wraps the upstream time layer in a TimeConditionedLinear and adds the zero-initialised target-time
    embedding phi(s) (policy-level parameters ``target_time_embedding.*``; the rest of the state dict keeps
    the upstream names, so a flow-matching teacher checkpoint loads with only phi missing);
  * trains with the SnapFlow loss in ``forward`` (frozen VLM by default, logs loss_fm / loss_sc / phi_gap);
  * samples through upstream ``predict_action_chunk`` / ``select_action`` unchanged: only the core model's
    ``sample_actions`` is replaced, by a dispatcher that runs NFE=1 as one joint prefix+suffix pass with no KV
    cache, and NFE=K>1 through the upstream cached Euler loop with s set per step. ``snapflow.multistep_mode``
    picks s: "target_time" (s = next grid time; at NFE=1 the t=1 -> s=0 jump) or "euler" (s = t).
"""

import logging
from pathlib import Path
from typing import Any, ClassVar

import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.utils.constants import OBS_LANGUAGE_TOKENS
from torch import Tensor

from snapflow.policies.backbones.base import BackboneAdapter, Prefix
from snapflow.policies.flow import sample_euler, sample_one_step
from snapflow.policies.lerobot_plugin.checkpoint import check_checkpoint_type, load_weights
from snapflow.policies.lerobot_plugin.validation import validate_batch
from snapflow.policies.snapflow.loss import snapflow_loss
from snapflow.policies.snapflow.target_time import TargetTimeEmbedding
from snapflow.policies.time_conditioning import TimeConditionedLinear, time_conditioning

logger = logging.getLogger(__name__)

_POLICY_KWARGS = ("dataset_stats", "dataset_meta")  # what make_policy passes on to the policy constructor


class SnapFlowStudent:
    """Mixin for an upstream flow-matching LeRobot policy; see the module docstring."""

    adapter: ClassVar[BackboneAdapter]
    steps_field: ClassVar[str]  # upstream config field holding the number of denoising steps
    teacher_type: ClassVar[str]  # the upstream flow-matching type this student distils

    def __init__(self, config: PreTrainedConfig, **kwargs: Any):
        super().__init__(config, **kwargs)
        self._install_snapflow()

    def _remap_keys(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Checkpoint key fixes before loading (identity; PI0/PI05 apply upstream's openpi remapping)."""
        return state_dict

    @classmethod
    def from_pretrained(
        cls, pretrained_name_or_path: str | Path, *, config: PreTrainedConfig | None = None, **kwargs: Any
    ) -> "SnapFlowStudent":
        """A teacher checkpoint of ``teacher_type`` or a student checkpoint of this type (strict, see
        checkpoint.py); the config comes from ``config`` (LeRobot's CLI) or the checkpoint."""
        check_checkpoint_type(pretrained_name_or_path, (cls.teacher_type, cls.name), **kwargs)
        if config is None:
            config = PreTrainedConfig.from_pretrained(pretrained_name_or_path, **kwargs)
        policy = cls(config, **{k: v for k, v in kwargs.items() if k in _POLICY_KWARGS})
        load_weights(policy, pretrained_name_or_path, remap=policy._remap_keys, **kwargs)
        policy.to(config.device)
        policy.eval()
        return policy

    def _install_snapflow(self) -> None:
        model = self.model
        offset, width = self.adapter.time_slice(model)
        layer = getattr(model, self.adapter.time_layer_name)
        setattr(model, self.adapter.time_layer_name, TimeConditionedLinear.wrap(layer, offset, width))
        self.target_time_embedding = TargetTimeEmbedding(
            width,
            self.config.snapflow.target_time_hidden_dim,
            min_period=self.config.min_period,
            max_period=self.config.max_period,
        ).to(device=layer.weight.device)
        self._upstream_sample_actions = model.sample_actions
        model.sample_actions = self._sample_actions  # instance attribute shadows the upstream method

    @property
    def _time_layer(self) -> TimeConditionedLinear:
        return getattr(self.model, self.adapter.time_layer_name)

    # ----------------------------------------------------------------------------------------- velocity
    def velocity(self, prefix: Prefix, x_t: Tensor, t: Tensor, s: Tensor) -> Tensor:
        """F(x_t, t, s | prefix): one joint pass with phi(s) added to the time embedding."""
        with time_conditioning(self._time_layer, self.target_time_embedding(s)):
            return self.adapter.velocity(self.model, prefix, x_t, t)

    @property
    def nfe(self) -> int:
        return int(getattr(self.config, self.steps_field))

    # ----------------------------------------------------------------------------------------- inference
    def _sample_actions(
        self, *args: Tensor, noise: Tensor | None = None, num_steps: int | None = None, **kwargs: Any
    ) -> Tensor:
        nfe = num_steps or self.nfe
        if nfe == 1:
            if kwargs.get("inference_delay") is not None:
                logger.warning("RTC guidance has no effect with one denoising step; it is skipped at NFE=1")
            prefix = self.adapter.prefix_from_sample_args(self.model, *args)
            if noise is None:
                shape = (prefix.embs.shape[0], self.config.chunk_size, self.config.max_action_dim)
                noise = self.model.sample_noise(shape, prefix.embs.device)
            # target_time: the jump (t=1 -> s=0); euler: s = t, i.e. naive one-step Euler of a model trained with
            # plain flow matching only (the alpha=1 control), whose phi never saw s != t.
            sampler = sample_euler if self.config.snapflow.multistep_mode == "euler" else sample_one_step
            return sampler(lambda x, t, s: self.velocity(prefix, x, t, s), noise, 1)
        return self._sample_multistep(args, noise, nfe, kwargs)

    def _sample_multistep(self, args: tuple, noise: Tensor | None, nfe: int, kwargs: dict) -> Tensor:
        """Upstream cached Euler loop; each denoise_step gets phi(s) with s = t - 1/K (or s = t)."""
        model = self.model
        upstream_denoise = model.denoise_step
        dt = -1.0 / nfe
        euler = self.config.snapflow.multistep_mode == "euler"

        def denoise_step(**step_kwargs: Any) -> Tensor:
            t = step_kwargs["timestep"]
            s = t if euler else (t + dt).clamp_min(0.0)
            with time_conditioning(self._time_layer, self.target_time_embedding(s)):
                return upstream_denoise(**step_kwargs)

        model.denoise_step = denoise_step
        try:
            if self.steps_field == "num_inference_steps":
                kwargs["num_steps"] = nfe
            elif nfe != self.nfe:
                raise ValueError(f"{type(self).__name__} takes its step count from config.{self.steps_field}")
            return self._upstream_sample_actions(*args, noise=noise, **kwargs)
        finally:
            del model.denoise_step  # back to the class method

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict[str, Tensor], *args: Any, **kwargs: Any) -> Tensor:
        validate_batch(self.config, batch, needs_action=False)
        return super().predict_action_chunk(batch, *args, **kwargs)

    @torch.no_grad()
    def select_action(self, batch: dict[str, Tensor], *args: Any, **kwargs: Any) -> Tensor:
        validate_batch(self.config, batch, needs_action=False)
        return super().select_action(batch, *args, **kwargs)

    # ----------------------------------------------------------------------------------------- training
    def forward(
        self,
        batch: dict[str, Tensor],
        noise: Tensor | None = None,
        time: Tensor | None = None,
        reduction: str = "mean",
    ) -> tuple[Tensor, dict[str, float]]:
        """SnapFlow loss (``noise``/``time`` are accepted for signature compatibility and not used: the
        method draws its own per-branch noise and times)."""
        validate_batch(self.config, batch, needs_action=True)
        if OBS_LANGUAGE_TOKENS not in batch:
            raise ValueError(
                "batch has no language tokens: run the policy preprocessor on a batch with 'task'"
            )
        args, actions, valid = self.adapter.training_inputs(self, batch)
        prefix = self.adapter.prefix_from_sample_args(self.model, *args)
        loss, metrics = snapflow_loss(
            lambda x, t, s, rows: self.velocity(prefix.select(rows), x, t, s),
            actions,
            sample_time=lambda n: self.model.sample_time(n, actions.device),
            cfg=self.config.snapflow,
            action_dim=self.config.output_features["action"].shape[0],
            valid=valid,
            reduction=reduction,
        )
        metrics["phi_gap"] = self.target_time_embedding.gap()
        return loss, metrics

    def get_optim_params(self) -> list[torch.nn.Parameter]:
        """Only what the recipe trains (the frozen VLM stays out of the optimizer)."""
        return [p for p in self.parameters() if p.requires_grad]
