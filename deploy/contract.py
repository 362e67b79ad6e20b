"""contract.json: everything a runtime needs to drive an exported graph, validated on load.

Written next to ``model.onnx`` by snapflow-export. A runtime reads only this file (and, when it wants
LeRobot's exact preprocessing, the processor files copied beside it): input names, shapes and dtypes with
the LeRobot feature each is read from, normalisation modes and statistics, the tokenizer, chunk length,
action dimension, control rate, NFE and the hashes tying it to its source checkpoint and graph file.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from snapflow.scripts.outputs import PARTIAL_MARK, RESULTS_MARK

CONTRACT_VERSION = 1
CONTRACT_FILE = "contract.json"
ROLES = ("image", "lang_tokens", "lang_mask", "state", "noise")
DTYPES = {"float32": 1, "int64": 7, "bool": 9}  # numpy name -> ONNX TensorProto elem type


class ContractError(ValueError):
    """An export directory whose contract is missing, incomplete, or disagrees with its graph."""


@dataclass
class TensorSpec:
    name: str
    role: str
    feature: str | None
    shape: list[int | str]  # "batch" marks the symbolic axis
    dtype: str


@dataclass
class Contract:
    policy_type: str
    nfe: int
    sampler: str
    chunk_size: int
    action_dim: int
    n_action_steps: int
    fps: float
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    normalization: dict[str, dict]  # feature -> {"mode": str, "stats": {name: list}}
    tokenizer: dict  # {"name", "max_length", "padding_side"}
    source_checkpoint: str
    source_sha256: str
    onnx_file: str = "model.onnx"
    onnx_sha256: str = ""
    opset: int = 23
    int8: bool = False
    version: int = CONTRACT_VERSION
    extra: dict = field(default_factory=dict)
    files_sha256: dict[str, str] = field(default_factory=dict)  # every file that changes the actions
    # sha256 of the contract's own fields (the files' hashes cannot cover the file that holds them): a
    # hand-edited fps or chunk size is refused by name. Exports written before it have none and are read.
    contract_sha256: str = ""

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / CONTRACT_FILE
        fields = asdict(self)
        fields["contract_sha256"] = contract_digest(fields)
        path.write_text(json.dumps(fields, indent=2))
        return path

    def observation_features(self) -> dict[str, tuple[int, ...]]:
        """{LeRobot key: shape without the batch axis} of the camera and state inputs the graph reads (the
        state raw, before normalisation): what a runtime checks each observation against."""
        return {
            s.feature: tuple(int(d) for d in s.shape[1:]) for s in self.inputs if s.role in ("image", "state")
        }

    def input(self, role: str) -> list[TensorSpec]:
        return [spec for spec in self.inputs if spec.role == role]


def contract_digest(fields: dict) -> str:
    """sha256 of a contract's JSON fields, ``contract_sha256`` itself left out (key order does not count)."""
    body = {k: v for k, v in fields.items() if k != "contract_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# reports about the export, not inputs to it; the markers of a folder still being built (removed when done)
# and of a snapflow command's results folder (scripts/outputs.py)
UNHASHED = ("contract.json", "parity.json", PARTIAL_MARK, RESULTS_MARK)
UNHASHED_DIRS = ("trt_cache",)  # engines rebuilt from the (hashed) graph, keyed by its hash


def hash_export_files(directory: str | Path) -> dict[str, str]:
    """{relative path: sha256} of every file of an export directory that changes the actions.

    That is the graph and its external weights (`model.onnx.data`), any int8 graph, the LeRobot processor
    files (normalisation statistics, tokenizer settings) and config.json (chunk and action sizes).
    """
    directory = Path(directory)
    out = {}
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if path.is_file() and rel.name not in UNHASHED and rel.parts[0] not in UNHASHED_DIRS:
            out[str(rel)] = sha256_file(path)
    return out


def _check_files(directory: Path, contract: "Contract") -> None:
    """Refuse, by file name, an export whose files differ from what the contract recorded."""
    if not contract.files_sha256:
        raise ContractError(
            f"{directory}/{CONTRACT_FILE} records no file hashes: re-export with snapflow-export"
        )
    actual = hash_export_files(directory)
    changed = sorted(f for f, h in contract.files_sha256.items() if actual.get(f) != h and f in actual)
    missing = sorted(set(contract.files_sha256) - set(actual))
    extra = sorted(set(actual) - set(contract.files_sha256))
    if changed or missing or extra:
        raise ContractError(
            f"{directory} does not match {CONTRACT_FILE}: changed {changed}, missing {missing}, "
            f"not part of the export {extra} (a tampered or mixed export directory; re-export it)"
        )


def load_contract(directory: str | Path, *, check_graph: bool = True) -> Contract:
    """Read and validate ``directory/contract.json``; with ``check_graph`` also against model.onnx."""
    directory = Path(directory)
    path = directory / CONTRACT_FILE
    if not directory.is_dir():
        raise ContractError(
            f"{directory} does not exist (or is not a folder): name a snapflow-export directory"
        )
    if not path.is_file():
        raise ContractError(f"{directory} has no {CONTRACT_FILE}: not a snapflow-export directory")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ContractError(f"{path} is not valid JSON: {e}") from e
    if raw.get("version") != CONTRACT_VERSION:
        raise ContractError(
            f"{path}: contract version {raw.get('version')!r}, this runtime reads {CONTRACT_VERSION}"
        )
    missing = sorted(
        k
        for k in (
            "policy_type",
            "nfe",
            "chunk_size",
            "action_dim",
            "inputs",
            "outputs",
            "normalization",
            "tokenizer",
            "fps",
        )
        if k not in raw
    )
    if missing:
        raise ContractError(f"{path} is missing {missing}")
    if raw.get("contract_sha256") and contract_digest(raw) != raw["contract_sha256"]:
        raise ContractError(
            f"{path} was edited after the export: its fields no longer match its contract_sha256 "
            "(re-export instead of editing it)"
        )
    try:
        raw["inputs"] = [TensorSpec(**s) for s in raw["inputs"]]
        raw["outputs"] = [TensorSpec(**s) for s in raw["outputs"]]
        contract = Contract(**raw)
    except TypeError as e:
        raise ContractError(f"{path} has unexpected or malformed fields: {e}") from e
    for spec in contract.inputs:
        if spec.role not in ROLES or spec.dtype not in DTYPES:
            raise ContractError(f"{path}: input {spec.name!r} has role {spec.role!r} / dtype {spec.dtype!r}")
    if check_graph:
        _check_files(directory, contract)
        _check_graph(directory, contract)
    return contract


def _check_graph(directory: Path, contract: Contract) -> None:
    import onnx

    onnx_path = directory / contract.onnx_file
    if not onnx_path.is_file():
        raise ContractError(f"{directory} has no {contract.onnx_file}")
    if contract.onnx_sha256 and sha256_file(onnx_path) != contract.onnx_sha256:
        raise ContractError(
            f"{onnx_path} does not match the sha256 recorded in {CONTRACT_FILE} (changed file?)"
        )
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    actual = {i.name: i.type.tensor_type for i in graph.input}
    for spec in contract.inputs:
        if spec.name not in actual:
            raise ContractError(
                f"{onnx_path} has no input {spec.name!r} named in the contract ({sorted(actual)})"
            )
        ttype = actual[spec.name]
        dims = [d.dim_param or d.dim_value for d in ttype.shape.dim]
        if ttype.elem_type != DTYPES[spec.dtype] or len(dims) != len(spec.shape):
            raise ContractError(
                f"input {spec.name!r}: graph has {dims} of elem type {ttype.elem_type}, "
                f"contract says {spec.shape} {spec.dtype}"
            )
        for got, want in zip(dims, spec.shape, strict=True):
            if isinstance(want, int) and got != want:
                raise ContractError(f"input {spec.name!r}: graph shape {dims} != contract shape {spec.shape}")
    if set(actual) != {s.name for s in contract.inputs}:
        raise ContractError(
            f"graph inputs {sorted(actual)} != contract inputs {[s.name for s in contract.inputs]}"
        )
    # the graph's (batch, chunk, action) output must be what the contract promises the control loop
    out_dims = [d.dim_param or d.dim_value for d in graph.output[0].type.tensor_type.shape.dim]
    promised = ["batch", contract.chunk_size, contract.action_dim]
    if len(out_dims) != 3 or out_dims[1:] != promised[1:] or contract.outputs[0].shape[1:] != promised[1:]:
        raise ContractError(
            f"the graph outputs {out_dims}, the contract says chunk_size={contract.chunk_size}, "
            f"action_dim={contract.action_dim}, outputs {contract.outputs[0].shape} (an edited contract?)"
        )


def quantized_parity_failure(directory: str | Path) -> str | None:
    """A warning when the export in ``directory`` deploys a quantized graph that failed its own parity
    tolerance against torch (parity.json, written by deploy/export_onnx.py: quantized parity is reported,
    not enforced, because int8 error is the price asked for); None when it passed or nothing is quantized."""
    path = Path(directory) / "parity.json"
    if not path.is_file():
        return None
    try:
        int8 = json.loads(path.read_text()).get("int8")
    except (json.JSONDecodeError, AttributeError):
        return None  # parity.json is a report, not an input (UNHASHED); the contract names tampering
    if not isinstance(int8, dict) or int8.get("passed") is not False:
        return None
    return (
        f"the deployed {int8.get('method', 'int8')} graph of {directory} differs from torch by up to "
        f"{float(int8.get('max_abs_err', float('nan'))):.3g} (> its parity tolerance "
        f"{float(int8.get('tolerance', float('nan'))):g}, parity.json): measure its closed-loop success "
        "(snapflow-eval exports={name: <dir>}) before a robot runs it"
    )
