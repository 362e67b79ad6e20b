"""SnapFlowStudent: what the three plugin policies add to their upstream LeRobot policy.

Mixed in before the upstream policy class (``class X(SnapFlowStudent, SmolVLAPolicy)``), it
  * adds the zero-initialised target-time embedding phi(s) (policy-level parameters
    ``target_time_embedding.*``; the rest of the state dict keeps the upstream names, so a flow-matching
    teacher checkpoint loads with only phi missing);
  * computes velocities F(x_t, t, s) through its backbone adapter with t and phi(s) as explicit arguments
    (no state on modules: gradient checkpointing, ``torch.compile`` and concurrent callers see pure calls);
  * trains with the SnapFlow loss in ``forward`` (frozen VLM by default, logs loss_fm / loss_sc / phi_gap and
    phi_gap_ppm, the same in parts per million so that LeRobot's 3-decimal console log shows it early),
    the observation prefix encoded once per step for the two stop-gradient target passes;
  * samples in ``predict_action_chunk`` / ``select_action`` with its own sampler: NFE=1 is one joint
    prefix+suffix pass, NFE=K>1 a prefix KV cache and K suffix passes; both run through LeRobot's
    ``euler_integrate``, so Real-Time Chunking (``rtc_config``) guides them as it guides the upstream loop.
    ``snapflow.multistep_mode`` picks s: "target_time" (s = next grid time; at NFE=1 the t=1 -> s=0 jump)
    or "euler" (s = t).
"""

import dataclasses
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies.common.flow_matching import euler_integrate
from lerobot.utils.constants import OBS_LANGUAGE_TOKENS
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from snapflow.policies.backbones.base import BackboneAdapter, Prefix
from snapflow.policies.lerobot_plugin.checkpoint import (
    check_checkpoint_type,
    check_processor_files,
    is_resumable_checkpoint,
    load_weights,
)
from snapflow.policies.lerobot_plugin.validation import check_queue_batch, validate_batch
from snapflow.policies.snapflow.flow import target_time
from snapflow.policies.snapflow.loss import snapflow_loss
from snapflow.policies.snapflow.rtc import few_step_rtc
from snapflow.policies.snapflow.target_time import TargetTimeEmbedding

logger = logging.getLogger(__name__)

_POLICY_KWARGS = ("dataset_stats", "dataset_meta")  # what make_policy passes on to the policy constructor


def student_config_from(teacher: PreTrainedConfig, student_cls: type) -> PreTrainedConfig:
    """The student config for a teacher's config: every field the two share is the teacher's value, except
    where the student type's default differs from the teacher type's (the method's recipe: NFE, lr, frozen
    VLM), which stays the student's default."""
    teacher_defaults, student_defaults = type(teacher)(), student_cls()
    values = {}
    for f in dataclasses.fields(student_cls):
        if not f.init or not hasattr(teacher, f.name):
            continue
        if getattr(student_defaults, f.name) != getattr(teacher_defaults, f.name, None):
            continue  # a recipe default of the student type
        values[f.name] = getattr(teacher, f.name)
    return student_cls(**values)


class SnapFlowStudent:
    """Mixin for an upstream flow-matching LeRobot policy; see the module docstring."""

    adapter: ClassVar[BackboneAdapter]
    steps_field: ClassVar[str]  # upstream config field holding the number of denoising steps
    teacher_type: ClassVar[str]  # the upstream flow-matching type this student distils
    # Whether the student checkpoints whole velocity passes itself (families whose upstream model has no
    # gradient checkpointing of its own; PI0/PI05 checkpoint inside their backbone).
    checkpoint_velocity: ClassVar[bool] = False

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
        ckpt_type = check_checkpoint_type(pretrained_name_or_path, (cls.teacher_type, cls.name), **kwargs)
        check_processor_files(pretrained_name_or_path)
        if config is None:
            config = PreTrainedConfig.from_pretrained(pretrained_name_or_path, **kwargs)
            if not isinstance(config, cls.config_class):  # a teacher's config: derive the student's
                config = student_config_from(config, cls.config_class)
        policy = cls(config, **{k: v for k, v in kwargs.items() if k in _POLICY_KWARGS})
        missing = load_weights(policy, pretrained_name_or_path, remap=policy._remap_keys, **kwargs)
        if (
            ckpt_type == cls.name
            and not missing
            and policy.target_time_embedding.gap() > 0
            and not is_resumable_checkpoint(pretrained_name_or_path)
        ):
            # Said on the first training step (evaluating or exporting a trained student is the normal use).
            # A lerobot-train checkpoint with its training state is what `--resume=true` loads: continuing a
            # distillation is not "starting from a student" (snapflow-distill says so itself when a student
            # checkpoint is given as teacher=, see scripts/distill.py).
            policy._trained_phi_source = (str(pretrained_name_or_path), policy.target_time_embedding.gap())
        policy.to(config.device)
        policy.eval()
        return policy

    def _install_snapflow(self) -> None:
        width = self.adapter.time_width(self.model)
        self.target_time_embedding = TargetTimeEmbedding(
            width,
            self.config.snapflow.target_time_hidden_dim,
            min_period=self.config.min_period,
            max_period=self.config.max_period,
        ).to(device=self.model.action_in_proj.weight.device)

    # ----------------------------------------------------------------------------------------- velocity
    def velocity(self, prefix: Prefix, x_t: Tensor, t: Tensor, s: Tensor) -> Tensor:
        """F(x_t, t, s | prefix): one joint prefix+suffix pass, phi(s) added to the time embedding.

        x_t (B, H, A_pad); t, s (B,) or (1,) in [0, 1] -> (B, H, A_pad) float32. Under
        ``checkpoint_velocity`` with ``config.gradient_checkpointing`` in training, the pass is recomputed in
        backward instead of storing its activations (its inputs are all explicit, so the recomputation is
        the same pass)."""
        time_cond = self.target_time_embedding(s)
        if (
            self.checkpoint_velocity
            and self.training
            and getattr(self.config, "gradient_checkpointing", False)
        ):
            return checkpoint(
                self.adapter.velocity, self.model, prefix, x_t, t, time_cond, use_reentrant=False
            )
        return self.adapter.velocity(self.model, prefix, x_t, t, time_cond)

    def cached_velocity(self, prefix: Prefix) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
        """(x_t, t, s) -> F(x_t, t, s | prefix) on a KV cache of the prefix, encoded once here."""
        cache = self.adapter.encode_prefix(self.model, prefix)

        def velocity(x_t: Tensor, t: Tensor, s: Tensor) -> Tensor:
            time_cond = self.target_time_embedding(s)
            return self.adapter.velocity_cached(self.model, prefix, cache, x_t, t, time_cond)

        return velocity

    @property
    def nfe(self) -> int:
        return int(getattr(self.config, self.steps_field))

    # ----------------------------------------------------------------------------------------- inference
    def sample_chunk(self, sample_args: tuple, noise: Tensor | None = None, **rtc_kwargs: Any) -> Tensor:
        """The padded action chunk (B, chunk, max_action_dim) for upstream ``sample_actions`` arguments.

        ``rtc_kwargs`` (``inference_delay``, ``prev_chunk_left_over``, ``execution_horizon``) reach RTC's
        guidance when ``config.rtc_config`` enables it, with the guidance weight clamped at the NFE
        (``policies/snapflow/rtc.py``): at NFE=1 the single jump inpaints the previous chunk's leftover."""
        nfe, mode = self.nfe, self.config.snapflow.multistep_mode
        if nfe < 1:  # the config refuses it when built; a value set afterwards would divide by zero
            raise ValueError(f"config.{self.steps_field}={nfe}: the NFE must be an integer >= 1")
        prefix = self.adapter.prefix_from_sample_args(self.model, *sample_args)
        shape = (prefix.embs.shape[0], self.config.chunk_size, self.config.max_action_dim)
        if noise is None:
            noise = self.model.sample_noise(shape, prefix.embs.device)
        elif tuple(noise.shape) != shape:  # a wrong one fails deep in a matmul, naming no argument
            raise ValueError(
                f"noise has shape {tuple(noise.shape)}: the initial noise x_1 is (batch, chunk_size, "
                f"max_action_dim) = {shape}"
            )
        # NFE=1: a joint pass costs what a prefill plus one suffix pass costs, and needs no cache.
        if nfe == 1:
            velocity = lambda x, t, s: self.velocity(prefix, x, t, s)  # noqa: E731
        else:
            velocity = self.cached_velocity(prefix)
        rtc = self.model.rtc_processor
        rtc_enabled = rtc is not None and self._rtc_enabled()
        if rtc_enabled:  # guidance clamped so that no step overshoots the previous chunk (see rtc.py)
            rtc = few_step_rtc(rtc, nfe)
        return euler_integrate(
            lambda x, t: velocity(x, t, target_time(t, nfe, mode)),
            noise,
            nfe,
            rtc_processor=rtc,
            rtc_enabled=rtc_enabled,
            inference_delay=rtc_kwargs.get("inference_delay"),
            prev_chunk_left_over=rtc_kwargs.get("prev_chunk_left_over"),
            execution_horizon=rtc_kwargs.get("execution_horizon"),
        )

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict[str, Tensor], *args: Any, **kwargs: Any) -> Tensor:
        validate_batch(self.config, batch, needs_action=False)
        return super().predict_action_chunk(batch, *args, **kwargs)

    @torch.no_grad()
    def select_action(self, batch: dict[str, Tensor], *args: Any, **kwargs: Any) -> Tensor:
        validate_batch(self.config, batch, needs_action=False)
        queue = getattr(self, "_action_queue", None)  # PI0 / PI05 keep it here, SmolVLA in _queues
        check_queue_batch(queue if queue is not None else self._queues.get("action"), batch, self.config)
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
        source = self.__dict__.pop("_trained_phi_source", None)
        if source is not None:  # a warning, not a log line: CLIs may have disabled module loggers
            warnings.warn(
                f"training from {source[0]}, a {self.name} student whose target-time embedding is already "
                f"trained (phi gap {source[1]:.2e}): distillation does not start at a flow-matching teacher",
                UserWarning,
                stacklevel=2,
            )
        if OBS_LANGUAGE_TOKENS not in batch:
            raise ValueError(
                "batch has no language tokens: run the policy preprocessor on a batch with 'task'"
            )
        args, actions, valid = self.adapter.training_inputs(self, batch)
        prefix = self.adapter.prefix_from_sample_args(self.model, *args)
        loss, metrics = snapflow_loss(
            lambda x, t, s, rows: self.velocity(prefix.select(rows), x, t, s),
            actions,
            # The two stop-gradient target passes share one KV cache of their rows' prefix.
            target_passes=lambda rows: self.cached_velocity(prefix.select(rows)),
            sample_time=lambda n: self.model.sample_time(n, actions.device),
            cfg=self.config.snapflow,
            action_dim=self.config.output_features["action"].shape[0],
            valid=valid,
            reduction=reduction,
        )
        metrics["phi_gap"] = self.target_time_embedding.gap()
        # LeRobot's console log prints every metric with 3 decimals, so a gap of 1e-4 shows as 0.000 for the
        # first hundreds of steps; in parts per million it reads 100.000 (W&B gets phi_gap at full precision).
        metrics["phi_gap_ppm"] = metrics["phi_gap"] * 1e6
        return loss, metrics

    def get_optim_params(self) -> list[torch.nn.Parameter]:
        """Only what the recipe trains (the frozen VLM stays out of the optimizer)."""
        return [p for p in self.parameters() if p.requires_grad]
