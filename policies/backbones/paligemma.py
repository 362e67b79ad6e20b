"""PI0 and PI05 adapters: PI0Pytorch / PI05Pytorch over PaliGemmaWithExpertModel
(lerobot/policies/pi0/modeling_pi0.py, lerobot/policies/pi05/modeling_pi05.py)."""

from typing import Any

import torch
from lerobot.policies.common.vla_utils import (
    clone_past_key_values,
    create_sinusoidal_pos_embedding,
    make_att_2d_masks,
    prepare_attention_masks_4d,
)
from lerobot.utils.constants import OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS
from torch import Tensor, nn
from torch.nn import functional as F

from snapflow.policies.backbones.base import Prefix

Suffix = tuple[Tensor, Tensor, Tensor, Tensor | None]  # embs, pad_masks, att_masks, adarms_cond


def _time_sinusoid(model: nn.Module, t: Tensor, time_cond: Tensor | None) -> Tensor:
    """sinusoid(t) (+ phi(s)), as the first lines of upstream PI0/PI05 ``embed_suffix``."""
    time_emb = create_sinusoidal_pos_embedding(
        t,
        model.action_in_proj.out_features,
        min_period=model.config.min_period,
        max_period=model.config.max_period,
        device=t.device,
    ).type(dtype=t.dtype)
    return time_emb if time_cond is None else time_emb + time_cond.to(time_emb.dtype)


def _action_att_masks(bsize: int, chunk: int, like: Tensor, leading: list[int]) -> Tensor:
    att = torch.tensor(leading + [1] + [0] * (chunk - 1), dtype=like.dtype, device=like.device)
    return att[None, :].expand(bsize, att.numel())


def _joint_velocity(model: nn.Module, prefix: Prefix, suffix: Suffix) -> Tensor:
    """The body of upstream PI0/PI05 ``forward`` after embedding, returning v_t instead of the loss."""
    suffix_embs, suffix_pad_masks, suffix_att_masks, adarms_cond = suffix
    prefix_embs = prefix.embs
    q_dtype = model.paligemma_with_expert.paligemma.model.language_model.layers[
        0
    ].self_attn.q_proj.weight.dtype
    if q_dtype == torch.bfloat16:
        suffix_embs = suffix_embs.to(dtype=torch.bfloat16)
        prefix_embs = prefix_embs.to(dtype=torch.bfloat16)
    pad_masks = torch.cat([prefix.pad_masks, suffix_pad_masks], dim=1)
    att_masks = torch.cat([prefix.att_masks, suffix_att_masks], dim=1)
    (_, suffix_out), _ = model.paligemma_with_expert.forward(
        attention_mask=prepare_attention_masks_4d(make_att_2d_masks(pad_masks, att_masks)),
        position_ids=torch.cumsum(pad_masks, dim=1) - 1,
        past_key_values=None,
        inputs_embeds=[prefix_embs, suffix_embs],
        use_cache=False,
        adarms_cond=[None, adarms_cond],
    )
    suffix_out = suffix_out[:, -model.config.chunk_size :].to(dtype=torch.float32)
    return model.action_out_proj(suffix_out)


def _encode_prefix(model: nn.Module, prefix: Prefix) -> Any:
    """The prefix pass of upstream PI0/PI05 ``sample_actions``."""
    att_4d = prepare_attention_masks_4d(make_att_2d_masks(prefix.pad_masks, prefix.att_masks))
    model.paligemma_with_expert.paligemma.model.language_model.config._attn_implementation = "eager"
    _, cache = model.paligemma_with_expert.forward(
        attention_mask=att_4d,
        position_ids=torch.cumsum(prefix.pad_masks, dim=1) - 1,
        past_key_values=None,
        inputs_embeds=[prefix.embs, None],
        use_cache=True,
    )
    return cache


def _cached_velocity(model: nn.Module, prefix: Prefix, cache: Any, suffix: Suffix) -> Tensor:
    """The body of upstream PI0/PI05 ``denoise_step`` after embedding (the cache is cloned, not changed)."""
    suffix_embs, suffix_pad_masks, suffix_att_masks, adarms_cond = suffix
    batch_size, prefix_len = prefix.pad_masks.shape
    suffix_len = suffix_pad_masks.shape[1]
    prefix_pad_2d = prefix.pad_masks[:, None, :].expand(batch_size, suffix_len, prefix_len)
    full_att = torch.cat([prefix_pad_2d, make_att_2d_masks(suffix_pad_masks, suffix_att_masks)], dim=2)
    offsets = torch.sum(prefix.pad_masks, dim=-1)[:, None]
    model.paligemma_with_expert.gemma_expert.model.config._attn_implementation = "eager"
    outputs, _ = model.paligemma_with_expert.forward(
        attention_mask=prepare_attention_masks_4d(full_att),
        position_ids=offsets + torch.cumsum(suffix_pad_masks, dim=1) - 1,
        past_key_values=clone_past_key_values(cache),
        inputs_embeds=[None, suffix_embs],
        use_cache=False,
        adarms_cond=[None, adarms_cond],
    )
    suffix_out = outputs[1][:, -model.config.chunk_size :].to(dtype=torch.float32)
    return model.action_out_proj(suffix_out)


class _PaliGemmaAdapter:
    def time_width(self, model: nn.Module) -> int:
        return model.action_in_proj.out_features

    def encode_prefix(self, model: nn.Module, prefix: Prefix) -> Any:
        return _encode_prefix(model, prefix)

    def embed_suffix(
        self, model: nn.Module, prefix: Prefix, x_t: Tensor, t: Tensor, c: Tensor | None
    ) -> Suffix:
        raise NotImplementedError

    def velocity(
        self, model: nn.Module, prefix: Prefix, x_t: Tensor, t: Tensor, time_cond: Tensor | None
    ) -> Tensor:
        return _joint_velocity(model, prefix, self.embed_suffix(model, prefix, x_t, t, time_cond))

    def velocity_cached(
        self, model: nn.Module, prefix: Prefix, cache: Any, x_t: Tensor, t: Tensor, time_cond: Tensor | None
    ) -> Tensor:
        return _cached_velocity(model, prefix, cache, self.embed_suffix(model, prefix, x_t, t, time_cond))


class PI0Adapter(_PaliGemmaAdapter):
    """Time sinusoid (width w) is concatenated after the action embedding in action_time_mlp_in;
    the state token is part of the suffix, so the prefix carries the state."""

    def sample_args(self, policy: nn.Module, batch: dict[str, Tensor]) -> tuple:
        images, img_masks = policy._preprocess_images(batch)
        tokens, masks = batch[OBS_LANGUAGE_TOKENS], batch[OBS_LANGUAGE_ATTENTION_MASK]
        return (images, img_masks, tokens, masks, policy.prepare_state(batch))

    def training_inputs(
        self, policy: nn.Module, batch: dict[str, Tensor]
    ) -> tuple[tuple, Tensor, Tensor | None]:
        # Upstream PI0 does not mask padded steps in its loss; neither do we.
        return self.sample_args(policy, batch), policy.prepare_action(batch), None

    def prefix_from_sample_args(self, model: nn.Module, *args: Tensor) -> Prefix:
        images, img_masks, lang_tokens, lang_masks, state = args
        embs, pad_masks, att_masks = model.embed_prefix(images, img_masks, lang_tokens, lang_masks)
        return Prefix(embs, pad_masks, att_masks, state=state)

    def embed_suffix(
        self, model: nn.Module, prefix: Prefix, x_t: Tensor, t: Tensor, c: Tensor | None
    ) -> Suffix:
        """Upstream ``PI0Pytorch.embed_suffix`` with phi(s) = ``c`` added to the sinusoid of t; the projections
        and the MLP run under upstream ``_apply_checkpoint`` with explicit inputs, as upstream."""
        state = prefix.state
        if model.state_proj.weight.dtype == torch.float32:
            state = state.to(torch.float32)
        state_emb = model._apply_checkpoint(model.state_proj, state)
        time_emb = _time_sinusoid(model, t, c)
        action_emb = model._apply_checkpoint(model.action_in_proj, x_t)
        action_time_emb = torch.cat([action_emb, time_emb[:, None, :].expand_as(action_emb)], dim=2)

        def mlp_func(action_time_emb: Tensor) -> Tensor:
            return model.action_time_mlp_out(F.silu(model.action_time_mlp_in(action_time_emb)))

        action_time_emb = model._apply_checkpoint(mlp_func, action_time_emb)
        embs = torch.cat([state_emb[:, None, :], action_time_emb], dim=1)
        bsize = embs.shape[0]
        pad_masks = torch.ones(bsize, embs.shape[1], dtype=torch.bool, device=t.device)
        return embs, pad_masks, _action_att_masks(bsize, model.config.chunk_size, embs, [1]), None


class PI05Adapter(_PaliGemmaAdapter):
    """Time sinusoid (width w) is the whole input of time_mlp_in (the adaRMS condition's MLP)."""

    def sample_args(self, policy: nn.Module, batch: dict[str, Tensor]) -> tuple:
        images, img_masks = policy._preprocess_images(batch)
        return (images, img_masks, batch[OBS_LANGUAGE_TOKENS], batch[OBS_LANGUAGE_ATTENTION_MASK])

    def training_inputs(
        self, policy: nn.Module, batch: dict[str, Tensor]
    ) -> tuple[tuple, Tensor, Tensor | None]:
        return self.sample_args(policy, batch), policy.prepare_action(batch), None

    def prefix_from_sample_args(self, model: nn.Module, *args: Tensor) -> Prefix:
        images, img_masks, tokens, masks = args
        embs, pad_masks, att_masks = model.embed_prefix(images, img_masks, tokens, masks)
        return Prefix(embs, pad_masks, att_masks)

    def embed_suffix(
        self, model: nn.Module, prefix: Prefix, x_t: Tensor, t: Tensor, c: Tensor | None
    ) -> Suffix:
        """Upstream ``PI05Pytorch.embed_suffix`` with phi(s) = ``c`` added to the sinusoid of t (the input of
        the checkpointed time MLP, so its recomputation in backward sees the same value)."""
        time_emb = _time_sinusoid(model, t, c)
        action_emb = model._apply_checkpoint(model.action_in_proj, x_t)

        def time_mlp_func(time_emb: Tensor) -> Tensor:
            return F.silu(model.time_mlp_out(F.silu(model.time_mlp_in(time_emb))))

        adarms_cond = model._apply_checkpoint(time_mlp_func, time_emb)
        bsize, chunk = action_emb.shape[:2]
        pad_masks = torch.ones(bsize, chunk, dtype=torch.bool, device=t.device)
        return (
            action_emb,
            pad_masks,
            _action_att_masks(bsize, model.config.chunk_size, action_emb, []),
            adarms_cond,
        )
