"""SmolVLA adapter: VLAFlowMatching (lerobot/policies/smolvla/modeling_smolvla.py)."""

from typing import Any

import torch
from lerobot.policies.common.vla_utils import create_sinusoidal_pos_embedding, make_att_2d_masks
from lerobot.utils.constants import ACTION, OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS, OBS_STATE
from torch import Tensor, nn
from torch.nn import functional as F

from snapflow.policies.backbones.base import Prefix


class SmolVLAAdapter:
    """Time sinusoid (width h) is concatenated after the action embedding (width h) in action_time_mlp_in."""

    def time_width(self, model: nn.Module) -> int:
        return model.vlm_with_expert.expert_hidden_size

    def sample_args(self, policy: nn.Module, batch: dict[str, Tensor]) -> tuple:
        images, img_masks = policy.prepare_images(batch)
        lang = (batch[OBS_LANGUAGE_TOKENS], batch[OBS_LANGUAGE_ATTENTION_MASK])
        return (images, img_masks, *lang, policy.prepare_state(batch))

    def training_inputs(
        self, policy: nn.Module, batch: dict[str, Tensor]
    ) -> tuple[tuple, Tensor, Tensor | None]:
        if policy.config.adapt_to_pi_aloha:  # as upstream SmolVLAPolicy.forward
            batch[OBS_STATE] = policy._pi_aloha_decode_state(batch[OBS_STATE])
            batch[ACTION] = policy._pi_aloha_encode_actions_inv(batch[ACTION])
        is_pad = batch.get("action_is_pad")
        valid = None if is_pad is None else ~is_pad
        return self.sample_args(policy, batch), policy.prepare_action(batch), valid

    def prefix_from_sample_args(self, model: nn.Module, *args: Tensor) -> Prefix:
        images, img_masks, lang_tokens, lang_masks, state = args
        embs, pad_masks, att_masks = model.embed_prefix(
            images, img_masks, lang_tokens, lang_masks, state=state
        )
        return Prefix(embs, pad_masks, att_masks)

    def embed_suffix(
        self, model: nn.Module, x_t: Tensor, t: Tensor, time_cond: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Upstream ``VLAFlowMatching.embed_suffix`` with phi(s) = ``time_cond`` added to the sinusoid of t."""
        action_emb = model.action_in_proj(x_t)
        bsize, dtype, device = action_emb.shape[0], action_emb.dtype, action_emb.device
        time_emb = create_sinusoidal_pos_embedding(
            t, self.time_width(model), model.config.min_period, model.config.max_period, device=device
        ).type(dtype=dtype)
        if time_cond is not None:
            time_emb = time_emb + time_cond.to(dtype)
        time_emb = time_emb[:, None, :].expand_as(action_emb)
        action_time_emb = model.action_time_mlp_in(torch.cat([action_emb, time_emb], dim=2))
        embs = model.action_time_mlp_out(F.silu(action_time_emb))
        pad_masks = torch.ones(bsize, embs.shape[1], dtype=torch.bool, device=device)
        att_masks = torch.ones(bsize, model.config.chunk_size, dtype=embs.dtype, device=device)
        return embs, pad_masks, att_masks

    def velocity(
        self, model: nn.Module, prefix: Prefix, x_t: Tensor, t: Tensor, time_cond: Tensor | None
    ) -> Tensor:
        """Upstream ``VLAFlowMatching.forward`` up to v_t (joint pass, no cache)."""
        suffix_embs, suffix_pad_masks, suffix_att_masks = self.embed_suffix(model, x_t, t, time_cond)
        pad_masks = torch.cat([prefix.pad_masks, suffix_pad_masks], dim=1)
        att_masks = torch.cat([prefix.att_masks, suffix_att_masks], dim=1)
        (_, suffix_out), _ = model.vlm_with_expert.forward(
            attention_mask=make_att_2d_masks(pad_masks, att_masks),
            position_ids=torch.cumsum(pad_masks, dim=1) - 1,
            past_key_values=None,
            inputs_embeds=[prefix.embs, suffix_embs],
            use_cache=False,
        )
        suffix_out = suffix_out[:, -model.config.chunk_size :].to(dtype=torch.float32)
        return model.action_out_proj(suffix_out)

    def encode_prefix(self, model: nn.Module, prefix: Prefix) -> Any:
        """The prefix pass of upstream ``VLAFlowMatching.sample_actions``."""
        _, cache = model.vlm_with_expert.forward(
            attention_mask=make_att_2d_masks(prefix.pad_masks, prefix.att_masks),
            position_ids=torch.cumsum(prefix.pad_masks, dim=1) - 1,
            past_key_values=None,
            inputs_embeds=[prefix.embs, None],
            use_cache=model.config.use_cache,
        )
        return cache

    def velocity_cached(
        self, model: nn.Module, prefix: Prefix, cache: Any, x_t: Tensor, t: Tensor, time_cond: Tensor | None
    ) -> Tensor:
        """Upstream ``VLAFlowMatching.denoise_step`` with the explicit time conditioning."""
        suffix_embs, suffix_pad_masks, suffix_att_masks = self.embed_suffix(model, x_t, t, time_cond)
        batch_size, prefix_len = prefix.pad_masks.shape
        suffix_len = suffix_pad_masks.shape[1]
        prefix_pad_2d = prefix.pad_masks[:, None, :].expand(batch_size, suffix_len, prefix_len)
        full_att = torch.cat([prefix_pad_2d, make_att_2d_masks(suffix_pad_masks, suffix_att_masks)], dim=2)
        offsets = torch.sum(prefix.pad_masks, dim=-1)[:, None]
        outputs, _ = model.vlm_with_expert.forward(
            attention_mask=full_att,
            position_ids=offsets + torch.cumsum(suffix_pad_masks, dim=1) - 1,
            past_key_values=cache,
            inputs_embeds=[None, suffix_embs],
            use_cache=model.config.use_cache,
        )
        if cache is not None:  # self-attention layers append the suffix K/V in place; restore the prefix
            cache.crop(prefix_len)
        suffix_out = outputs[1][:, -model.config.chunk_size :].to(dtype=torch.float32)
        return model.action_out_proj(suffix_out)
