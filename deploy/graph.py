"""The exportable inference graph of a SnapFlow student: preprocessed tensors in, action chunk out.

Inputs, in this order (B is symbolic):
  one image per camera      (B, 3, H, W) float32 in [0, 1]  (LeRobot's preprocessed images)
  lang_tokens               (B, L) int64                     (tokenizer output, padded to L = max length)
  lang_mask                 (B, L) bool
  state                     (B, S) float32, normalised       (SmolVLA, PI0; PI05 writes the state into the prompt)
  noise                     (B, chunk, max_action_dim) float32, the t=1 sample
Output: actions (B, chunk, action_dim) float32, still normalised (the runtime unnormalises).

NFE=1 is one joint prefix+suffix pass; NFE=K>1 unrolls K joint passes of the student's sampler (no KV cache,
so the graph is a pure function). Normalisation and tokenisation stay outside, described by contract.json.
"""

from dataclasses import dataclass

import torch
from lerobot.utils.constants import OBS_LANGUAGE_ATTENTION_MASK, OBS_LANGUAGE_TOKENS, OBS_STATE
from torch import Tensor, nn

from snapflow.policies.snapflow.flow import SAMPLERS

SNAPFLOW_TYPES = ("smolvla_snapflow", "pi0_snapflow", "pi05_snapflow")


@dataclass(frozen=True)
class GraphInput:
    name: str  # ONNX input name
    role: str  # image | lang_tokens | lang_mask | state | noise
    feature: str | None  # LeRobot batch key it is read from (None for noise)
    shape: tuple[int, ...]  # without the batch axis
    dtype: str  # numpy dtype name


def graph_inputs(policy: nn.Module, lang_length: int) -> list[GraphInput]:
    """The graph's input signature for ``policy`` (a *_snapflow policy)."""
    cfg = policy.config
    inputs = [
        GraphInput(f"image_{i}", "image", key, tuple(ft.shape), "float32")
        for i, (key, ft) in enumerate(cfg.image_features.items())
    ]
    inputs += [
        GraphInput("lang_tokens", "lang_tokens", OBS_LANGUAGE_TOKENS, (lang_length,), "int64"),
        GraphInput("lang_mask", "lang_mask", OBS_LANGUAGE_ATTENTION_MASK, (lang_length,), "bool"),
    ]
    if cfg.type != "pi05_snapflow":
        inputs.append(
            GraphInput("state", "state", OBS_STATE, tuple(cfg.robot_state_feature.shape), "float32")
        )
    inputs.append(GraphInput("noise", "noise", None, (cfg.chunk_size, cfg.max_action_dim), "float32"))
    return inputs


class InferenceGraph(nn.Module):
    """Wraps a *_snapflow policy as ``forward(*graph inputs) -> actions`` for export and parity checks."""

    def __init__(self, policy: nn.Module, nfe: int, lang_length: int):
        super().__init__()
        if policy.config.type not in SNAPFLOW_TYPES:
            raise ValueError(f"export needs a *_snapflow policy, got type {policy.config.type!r}")
        if getattr(policy.config, "adapt_to_pi_aloha", False):
            raise ValueError(
                "adapt_to_pi_aloha policies are not exportable (their state/action transforms run in eager code)"
            )
        self.policy = policy
        self.nfe = nfe
        self.inputs = graph_inputs(policy, lang_length)
        mode = policy.config.snapflow.multistep_mode
        mode = "one_step" if nfe == 1 and mode == "target_time" else mode
        self.sampler = SAMPLERS[mode]
        self.action_dim = policy.config.action_feature.shape[0]

    def forward(self, *tensors: Tensor) -> Tensor:
        batch = {spec.feature: t for spec, t in zip(self.inputs, tensors, strict=True) if spec.feature}
        noise = tensors[-1]
        policy = self.policy
        args = policy.adapter.sample_args(policy, batch)
        prefix = policy.adapter.prefix_from_sample_args(policy.model, *args)
        # t and s as (1,) constants: the time embeddings fold into float32 constants of the graph.
        x_0 = self.sampler(lambda x, t, s: policy.velocity(prefix, x, t, s), noise, self.nfe, time_batch=1)
        return x_0[:, :, : self.action_dim]

    def example_inputs(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        lang: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, ...]:
        """Random inputs of the right shapes; ``lang`` = (tokens (1, L), mask (1, L)) to use real tokens."""
        out = []
        for spec in self.inputs:
            shape = (batch_size, *spec.shape)
            if spec.role == "image":
                out.append(torch.rand(shape, generator=generator))
            elif spec.role in ("state", "noise"):
                out.append(torch.randn(shape, generator=generator))
            elif spec.role == "lang_tokens":
                out.append(
                    lang[0].expand(batch_size, -1).clone() if lang else torch.ones(shape, dtype=torch.long)
                )
            else:
                out.append(
                    lang[1].expand(batch_size, -1).clone() if lang else torch.ones(shape, dtype=torch.bool)
                )
        return tuple(out)


def graph_feeds(policy: torch.nn.Module, batch: dict, seed: int) -> dict:
    """The exported graph's inputs {name: array} from a preprocessed LeRobot batch: language padded to the
    graph's length, noise drawn from ``seed`` (bench, calibration; the runtimes draw their own noise)."""
    from snapflow.deploy.export_onnx import pad_language

    length = int(policy.config.tokenizer_max_length)
    specs = graph_inputs(policy, length)
    tokens, mask = pad_language(
        batch["observation.language.tokens"].cpu(),
        batch["observation.language.attention_mask"].cpu().bool(),
        length,
    )
    g = torch.Generator().manual_seed(seed)
    feeds = {}
    for spec in specs:
        if spec.role == "lang_tokens":
            feeds[spec.name] = tokens.numpy()
        elif spec.role == "lang_mask":
            feeds[spec.name] = mask.numpy()
        elif spec.role == "noise":
            feeds[spec.name] = torch.randn(tokens.shape[0], *spec.shape, generator=g).numpy()
        else:
            feeds[spec.name] = batch[spec.feature].float().cpu().numpy()
    return feeds
