"""Three ChunkRuntimes behind one interface: the LeRobot policy in torch, ONNX Runtime, TensorRT.

Each turns a raw observation into an unnormalised (H, A) action chunk through the checkpoint's saved LeRobot
processors (copied next to an export), and reports its latency split: preprocess, model, postprocess (ms).
"""

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from snapflow.deploy.contract import CONTRACT_FILE, Contract, load_contract
from snapflow.deploy.export_onnx import ort_session, pad_language
from snapflow.deploy.observation import check_features, to_lerobot_batch
from snapflow.deploy.runtime_base import ChunkResult


def load_processors(directory: str | Path, device: str = "cpu") -> tuple[object, object]:
    """The LeRobot pre/postprocessors saved in a checkpoint or export directory, loaded as lerobot-eval does."""
    from lerobot.configs.policies import PreTrainedConfig

    import lerobot_policy_snapflow  # noqa: F401  (registers our config types and processor steps)
    from snapflow.policies.lerobot_plugin.processor_check import load_checked_processors

    return load_checked_processors(PreTrainedConfig.from_pretrained(directory), directory, device)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1e3


class TorchRuntime:
    """The LeRobot policy itself (eager torch), e.g. a *_snapflow student or an upstream teacher."""

    def __init__(self, policy: torch.nn.Module, preprocessor: object, postprocessor: object):
        self.policy, self.pre, self.post = policy.eval(), preprocessor, postprocessor
        self.features = {k: tuple(ft.shape) for k, ft in policy.config.input_features.items()}

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu", nfe: int | None = None) -> "TorchRuntime":
        from lerobot.configs.policies import PreTrainedConfig
        from lerobot.policies.factory import get_policy_class

        import lerobot_policy_snapflow  # noqa: F401  (registers our types)

        cfg = PreTrainedConfig.from_pretrained(path)
        cfg.device = device
        if nfe is not None:
            from snapflow.policies.lerobot_plugin.sampler_config import configure_sampler

            configure_sampler(cfg, nfe)
        policy = get_policy_class(cfg.type).from_pretrained(path, config=cfg)
        return cls(policy, *load_processors(path, device))

    def predict_chunk(self, observation: dict) -> ChunkResult:
        start = time.perf_counter()
        raw = to_lerobot_batch(observation)
        check_features(raw, self.features)
        batch = self.pre(raw)
        t_pre = _ms(start)
        start = time.perf_counter()
        with torch.inference_mode():
            chunk = self.policy.predict_action_chunk(batch)
        t_model = _ms(start)
        start = time.perf_counter()
        actions = self.post(chunk)[0].float().cpu().numpy()
        return ChunkResult(actions, {"preprocess": t_pre, "model": t_model, "postprocess": _ms(start)})

    def reset(self) -> None:
        self.policy.reset()


class OrtRuntime:
    """An exported graph on ONNX Runtime (CPU): threads explicit, spinning off, provider checked live."""

    def __init__(
        self, export_dir: str | Path, threads: int = 1, seed: int = 0, session: object | None = None
    ):
        self.dir = Path(export_dir)
        self.contract: Contract = load_contract(self.dir)
        self.session = session or ort_session(self.dir / self.contract.onnx_file, threads)
        provider = self.session.get_providers()[0]
        if provider != "CPUExecutionProvider":  # a GPU-less host may claim CUDA yet run on CPU
            raise RuntimeError(f"expected the CPU execution provider, the live session uses {provider}")
        self.pre, self.post = load_processors(self.dir)
        self.rng = np.random.default_rng(seed)
        self.length = int(self.contract.tokenizer["max_length"])
        self.features = self.contract.observation_features()

    def run_batch(self, batch: dict, noise: np.ndarray | None = None) -> np.ndarray:
        """Preprocessed LeRobot batch -> normalised actions (B, H, A); ``noise`` defaults to a fresh draw."""
        feeds = {}
        tokens = mask = None
        for spec in self.contract.inputs:
            if spec.role == "image" or spec.role == "state":
                feeds[spec.name] = batch[spec.feature].float().cpu().numpy()
            elif spec.role in ("lang_tokens", "lang_mask") and tokens is None:
                tokens, mask = pad_language(
                    batch["observation.language.tokens"],
                    batch["observation.language.attention_mask"].bool(),
                    self.length,
                )
        size = next(iter(feeds.values())).shape[0] if feeds else tokens.shape[0]
        for spec in self.contract.inputs:
            if spec.role == "lang_tokens":
                feeds[spec.name] = tokens.cpu().numpy().astype(np.int64)
            elif spec.role == "lang_mask":
                feeds[spec.name] = mask.cpu().numpy().astype(bool)
            elif spec.role == "noise":
                shape = (size, *(int(d) for d in spec.shape[1:]))
                feeds[spec.name] = (
                    self.rng.standard_normal(shape, dtype=np.float32) if noise is None else noise
                )
        return self.session.run(None, feeds)[0]

    def predict_chunk(self, observation: dict) -> ChunkResult:
        start = time.perf_counter()
        raw = to_lerobot_batch(observation)
        check_features(raw, self.features)
        batch = self.pre(raw)
        t_pre = _ms(start)
        start = time.perf_counter()
        actions = self.run_batch(batch)
        t_model = _ms(start)
        start = time.perf_counter()
        out = self.post(torch.from_numpy(actions))
        return ChunkResult(
            out[0].float().numpy(), {"preprocess": t_pre, "model": t_model, "postprocess": _ms(start)}
        )

    def reset(self) -> None:
        pass


def is_hub_id(name: str) -> bool:
    """Whether ``name`` (as the user typed it) is a Hugging Face ``org/name`` left to LeRobot rather than a
    local path: one slash, no leading ``/``, ``.`` or ``~``, and nothing of that name here."""
    return not (name.startswith(("/", ".", "~")) or name.count("/") != 1 or Path(name).expanduser().exists())


def _from_hub(given: str, load: Callable[[], object]) -> object:
    """`load()` of a Hub id; a failed Hub lookup (offline, no such repo, not cached) becomes one
    FileNotFoundError that names what was typed, which is as often a mistyped local path (outputs/exprt)."""
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, OfflineModeIsEnabled

    try:
        return load()
    except (EntryNotFoundError, HfHubHTTPError, OfflineModeIsEnabled) as e:
        raise FileNotFoundError(
            f"{given}: no local folder of that name, and no Hugging Face Hub repo of that id could be read "
            f"({type(e).__name__}; HF_HUB_OFFLINE=1 reads only the local cache): check the path"
        ) from e


def load_runtime(
    path: str | Path, runtime: str = "auto", threads: int = 1, device: str = "cpu", nfe: int | None = None
) -> object:
    """A runtime for a checkpoint (torch) or an export directory (onnxruntime / tensorrt); a Hub id
    (``org/name``) is left to LeRobot. NotADirectoryError / FileNotFoundError name a local path that is a file
    or holds nothing (LeRobot would ask the Hub for it)."""
    given, path = str(path), Path(path)
    if not given.strip():
        raise ValueError("the policy path is empty: give a checkpoint (pretrained_model) or export directory")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ValueError(f"threads={threads!r}: a whole number >= 1 (0 = ONNX Runtime's own default)")
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            f"{path} is a file: give a checkpoint (pretrained_model) or export directory"
        )
    if not path.exists() and not is_hub_id(given):
        raise FileNotFoundError(
            f"{path}: no checkpoint or export directory there (and not an org/name Hub id)"
        )
    is_export = (path / CONTRACT_FILE).is_file()
    if runtime == "auto":
        runtime = "onnxruntime" if is_export else "torch"
    if runtime == "torch":
        if is_export:
            raise ValueError(
                f"{path} is an export directory; runtime=torch needs the checkpoint it came from"
            )
        load = lambda: TorchRuntime.from_checkpoint(path, device=device, nfe=nfe)  # noqa: E731
        return load() if path.exists() else _from_hub(given, load)
    if not is_export:
        raise ValueError(f"runtime={runtime} needs an export directory (with {CONTRACT_FILE}); got {path}")
    if nfe is not None:
        raise ValueError(
            f"nfe={nfe} applies to a torch checkpoint; an export's NFE is fixed when it is exported "
            f"({path / CONTRACT_FILE}); export again with snapflow-export nfe={nfe}"
        )
    if runtime == "onnxruntime":
        return OrtRuntime(path, threads=threads)
    if runtime == "tensorrt":
        from snapflow.deploy.tensorrt_engine import TrtRuntime

        return TrtRuntime(path)
    raise ValueError(f"unknown runtime {runtime!r}: torch, onnxruntime or tensorrt")
