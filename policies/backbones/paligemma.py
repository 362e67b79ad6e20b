"""PI0 and PI05 adapters: PI0Pytorch / PI05Pytorch over PaliGemmaWithExpertModel."""

import torch
from lerobot.policies.common.vla_utils import make_att_2d_masks, prepare_attention_masks_4d
from lerobot.utils.constants import OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS
from torch import Tensor, nn

from snapflow.policies.backbones.base import Prefix


def _joint_velocity(
    model: nn.Module, prefix: Prefix, suffix: tuple[Tensor, Tensor, Tensor, Tensor | None]
) -> Tensor:
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


class PI0Adapter:
    """Time sinusoid (width w) is concatenated after the action embedding in action_time_mlp_in;
    the state token is part of the suffix, so the prefix carries the state."""

    time_layer_name = "action_time_mlp_in"

    def time_slice(self, model: nn.Module) -> tuple[int, int]:
        width = model.action_in_proj.out_features
        return width, width

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

    def velocity(self, model: nn.Module, prefix: Prefix, x_t: Tensor, t: Tensor) -> Tensor:
        return _joint_velocity(model, prefix, model.embed_suffix(prefix.state, x_t, t))


class PI05Adapter:
    """Time sinusoid (width w) is the whole input of time_mlp_in (the adaRMS condition's MLP)."""

    time_layer_name = "time_mlp_in"

    def time_slice(self, model: nn.Module) -> tuple[int, int]:
        return 0, model.action_in_proj.out_features

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

    def velocity(self, model: nn.Module, prefix: Prefix, x_t: Tensor, t: Tensor) -> Tensor:
        return _joint_velocity(model, prefix, model.embed_suffix(x_t, t))
