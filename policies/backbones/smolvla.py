"""SmolVLA adapter: VLAFlowMatching (lerobot/policies/smolvla/modeling_smolvla.py)."""

import torch
from lerobot.policies.common.vla_utils import make_att_2d_masks
from lerobot.utils.constants import ACTION, OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS, OBS_STATE
from torch import Tensor, nn

from snapflow.policies.backbones.base import Prefix


class SmolVLAAdapter:
    """Time sinusoid (width h) is concatenated after the action embedding (width h) in action_time_mlp_in."""

    time_layer_name = "action_time_mlp_in"

    def time_slice(self, model: nn.Module) -> tuple[int, int]:
        width = model.vlm_with_expert.expert_hidden_size
        return width, width

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

    def velocity(self, model: nn.Module, prefix: Prefix, x_t: Tensor, t: Tensor) -> Tensor:
        suffix_embs, suffix_pad_masks, suffix_att_masks = model.embed_suffix(x_t, t)
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
