"""Export + ONNX Runtime parity for the three tiny students, the contract, and the ONNX-backed policy."""

import json
import warnings

import numpy as np
import onnx
import pytest
import torch

from snapflow.deploy.contract import ContractError, contract_digest, load_contract
from snapflow.deploy.export_onnx import PARITY_ATOL, export_onnx
from snapflow.deploy.lerobot_onnx import SnapFlowOnnxPolicy
from snapflow.deploy.runtimes import OrtRuntime, TorchRuntime, load_runtime
from snapflow.deploy.tensorrt_engine import TensorRTUnavailable, build_engine, trt_usable
from tests.policies.helpers import FAMILIES, TASK, image_size, raw_batch, tiny_student

# The ONNX-backed LeRobot policy pads tokens to the contract length while torch pads to the longest prompt:
# masked positions change float summation order only, so the same PARITY_ATOL bound applies.
POLICY_ATOL = PARITY_ATOL


def _bad_observation(family: str, case: str) -> dict:
    raw = _raw_observation(family)
    size = image_size(family)
    if case == "camera_missing":
        raw["pixels"] = {"image": raw["pixels"]["image"]}
    elif case == "grey_image":
        raw["pixels"]["image"] = np.zeros((size, size), np.uint8)
    elif case == "small_image":
        raw["pixels"] = {k: np.zeros((size // 2, size // 2, 3), np.uint8) for k in raw["pixels"]}
    elif case == "short_state":
        raw["agent_pos"] = np.zeros(7, np.float32)
    elif case == "empty_task":
        raw["task"] = "  "
    elif case == "camera_key_typo":
        frame = raw.pop("pixels")["image"]
        raw = {"observation.images.img": frame, "observation.images.image2": frame, "observation.state":
               raw.pop("agent_pos"), "task": TASK}  # fmt: skip
    return raw


OBSERVATION_REFUSALS = {
    "camera_missing": "has no observation.images.image2",
    "grey_image": "pixels.image must be an HxWx3 uint8 image",
    "small_image": "the policy expects \\[3, 64, 64\\]",
    "short_state": "observation.state has shape \\[7\\], the policy expects \\[8\\]",
    "empty_task": "non-empty 'task'",
    "camera_key_typo": "has no observation.images.image ",
}


@pytest.mark.parametrize("exported", ["smolvla"], indirect=True)
@pytest.mark.parametrize("case", sorted(OBSERVATION_REFUSALS))
def test_both_runtimes_refuse_the_same_bad_raw_observations(exported, case):
    """The torch and the ONNX Runtime runtime name the same mistake; neither returns actions for it (the torch
    policy alone would run on the camera left, or on a blank instruction)."""
    family, ckpt, out, _, _ = exported
    for runtime in (load_runtime(out), load_runtime(ckpt)):
        with pytest.raises(ValueError, match=OBSERVATION_REFUSALS[case]):
            runtime.predict_chunk(_bad_observation(family, case))


def _raw_observation(family: str) -> dict:
    """A raw sim observation (the env's keys, uint8 frames) of the family's image size."""
    size = image_size(family)
    frame = np.zeros((size, size, 3), np.uint8)
    return {
        "pixels": {"image": frame, "image2": frame.copy()},
        "agent_pos": np.zeros(8, np.float32),
        "task": TASK,
    }


def _observation(family: str) -> dict:
    size = image_size(family)
    return {
        "observation.images.image": torch.rand(3, size, size),
        "observation.images.image2": torch.rand(3, size, size),
        "observation.state": torch.randn(8),
        "task": TASK,
    }


@pytest.fixture(scope="module", params=FAMILIES)
def exported(request, tiny_assets, tmp_path_factory):
    family = request.param
    torch.manual_seed(0)
    policy, pre, post = tiny_student(family, tiny_assets)
    torch.nn.init.normal_(policy.target_time_embedding.out_proj.weight, std=0.1)  # a trained-looking phi
    ckpt = tmp_path_factory.mktemp(f"{family}_ckpt")
    policy.save_pretrained(ckpt)
    pre.save_pretrained(ckpt)
    post.save_pretrained(ckpt)
    out = tmp_path_factory.mktemp(f"{family}_export")
    contract, parity = export_onnx(policy.eval(), pre, _observation(family), out, source_dir=ckpt, nfe=1)
    return family, ckpt, out, contract, parity


def test_export_writes_the_three_files_with_passing_parity(exported):
    family, _ckpt, out, contract, _parity = exported
    assert (out / "model.onnx").is_file() and (out / "contract.json").is_file()
    report = json.loads((out / "parity.json").read_text())
    assert {"max_abs_err", "max_rel_err", "tolerance", "passed"} <= set(report)
    assert report["passed"] and report["max_abs_err"] <= PARITY_ATOL and report["batches"] == [1, 3]
    graph = onnx.load(str(out / "model.onnx"), load_external_data=False).graph
    assert all(i.type.tensor_type.shape.dim[0].dim_param for i in graph.input)  # symbolic batch
    assert contract.nfe == 1 and contract.policy_type == f"{family}_snapflow" and contract.action_dim == 7
    assert set(contract.normalization) == {"observation.state", "action"}
    assert json.loads((out / "config.json").read_text())["type"] == "snapflow_onnx"


def test_contract_is_validated_on_load(exported, tmp_path):
    _, _, out, contract, _ = exported
    assert load_contract(out).inputs == contract.inputs
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in out.iterdir():
        (bad / f.name).symlink_to(f)
    (bad / "contract.json").unlink()
    raw = json.loads((out / "contract.json").read_text())
    raw["fps"] = 50.0  # a hand edit: the contract's own digest no longer matches
    (bad / "contract.json").write_text(json.dumps(raw))
    with pytest.raises(ContractError, match="edited after the export"):
        load_contract(bad)

    def write(fields: dict) -> None:  # a consistent but wrong contract (its digest recomputed)
        (bad / "contract.json").write_text(json.dumps({**fields, "contract_sha256": contract_digest(fields)}))

    raw = json.loads((out / "contract.json").read_text())
    raw["inputs"][0]["name"] = "camera"
    write(raw)
    with pytest.raises(ContractError, match="no input 'camera'"):
        load_contract(bad)
    raw = json.loads((out / "contract.json").read_text())
    raw["chunk_size"] = 20  # the graph predicts 10 actions: a loop trusting 20 would index past the chunk
    write(raw)
    with pytest.raises(ContractError, match="chunk_size=20"):
        load_contract(bad)
    raw = json.loads((out / "contract.json").read_text())
    raw["onnx_sha256"] = "0" * 64
    write(raw)
    with pytest.raises(ContractError, match="sha256"):
        load_contract(bad)
    del raw["tokenizer"]
    write(raw)
    with pytest.raises(ContractError, match="missing"):
        OrtRuntime(bad)


def test_onnx_policy_matches_the_torch_policy(exported):
    family, ckpt, out, _, _ = exported
    torch_rt = TorchRuntime.from_checkpoint(ckpt)
    onnx_policy = SnapFlowOnnxPolicy.from_pretrained(out)
    batch = torch_rt.pre(raw_batch(family, batch_size=2, with_action=False))
    noise = torch.randn(2, 10, torch_rt.policy.config.max_action_dim)
    with torch.no_grad():
        ref = torch_rt.policy.predict_action_chunk(dict(batch), noise=noise).numpy()
    got = onnx_policy.runtime.run_batch(dict(batch), noise=noise.numpy())
    assert got.shape == ref.shape == (2, 10, 7)
    assert np.abs(got - ref).max() <= POLICY_ATOL


def test_runtimes_turn_raw_observations_into_unnormalised_chunks(exported):
    family, ckpt, out, _, _ = exported
    raw = _raw_observation(family)
    for runtime in (load_runtime(out), load_runtime(ckpt)):
        result = runtime.predict_chunk(raw)
        assert result.actions.shape == (10, 7) and np.isfinite(result.actions).all()
        assert set(result.timings_ms) == {"preprocess", "model", "postprocess"}
    with pytest.raises(ValueError, match="task"):
        load_runtime(out).predict_chunk({k: v for k, v in raw.items() if k != "task"})


@pytest.mark.parametrize("method", ["int8", "int8_static"])
def test_int8_export_quantises_every_weight_matmul_and_reports_its_parity(tiny_assets, tmp_path, method):
    """Every MatMul whose weight is an initializer (or a transposed one: SigLIP's Linear layers export as
    MatMul(x, Transpose(W))) becomes int8; only activation x activation products (attention) stay float."""
    from snapflow.deploy.calibration import calibration_feeds
    from snapflow.sim.record import collect_dataset

    policy, pre, _post = tiny_student("smolvla", tiny_assets)
    policy.save_pretrained(tmp_path / "ckpt")
    pre.save_pretrained(tmp_path / "ckpt")
    calibration = None
    if method == "int8_static":  # real frames: a two-episode mini-LIBERO dataset at the policy's camera size
        data = collect_dataset("goal", 1, tmp_path / "data", task_ids=[0, 1], resolution=image_size("smolvla"),
                               progress=False)  # fmt: skip
        calibration = calibration_feeds(policy, pre, data, frames=4)
        other = collect_dataset("goal", 1, tmp_path / "d16", task_ids=[0], resolution=16, progress=False)
        with pytest.raises(ValueError, match=r"is \[16, 16, 3\] there, the policy takes"):  # newcomer H74
            calibration_feeds(policy, pre, other, frames=4)
        assert len(calibration) == 4 and {"image_0", "lang_tokens", "noise"} <= set(calibration[0])
    contract, parity = export_onnx(
        policy.eval(), pre, _observation("smolvla"), tmp_path / "out", source_dir=tmp_path / "ckpt",
        quantize=method, calibration=calibration,
    )  # fmt: skip
    file = {"int8": "model.int8.onnx", "int8_static": "model.int8_static.onnx"}[method]
    assert contract.int8 and contract.onnx_file == file and contract.extra["quantize"] == method
    assert parity.int8["method"] == method and np.isfinite(parity.int8["max_abs_err"])
    float_graph = onnx.load(str(tmp_path / "out" / "model.onnx"), load_external_data=False).graph
    weights = {i.name for i in float_graph.initializer}
    made_by = {out: n for n in float_graph.node for out in n.output}
    weight_matmuls = sum(
        n.op_type == "MatMul"
        and (n.input[1] in weights or (n.input[1] in made_by and made_by[n.input[1]].input[0] in weights))
        for n in float_graph.node
    )
    graph = onnx.load(str(tmp_path / "out" / file), load_external_data=False).graph
    if method == "int8":
        int8_matmuls = sum(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for n in graph.node)
    else:  # QDQ: a DequantizeLinear of an int8 weight initializer feeds each quantised MatMul
        int8_weights = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.INT8}
        dequantized = {
            n.output[0] for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in int8_weights
        }
        int8_matmuls = sum(n.op_type == "MatMul" and n.input[1] in dequantized for n in graph.node)
    assert weight_matmuls > 0 and int8_matmuls >= weight_matmuls


def test_stats_keyed_under_other_names_are_refused_by_name(exported, tmp_path):
    """A checkpoint whose (un)normaliser stats do not match its features would act unnormalised."""
    import shutil

    from safetensors.torch import load_file, save_file

    from snapflow.deploy.runtimes import load_processors

    _family, ckpt, *_ = exported
    bad = tmp_path / "ckpt"
    shutil.copytree(ckpt, bad)
    for path in bad.glob("*normalizer_processor.safetensors"):
        save_file({f"so100.buffer.{k}": v for k, v in load_file(str(path)).items()}, str(path))
    with pytest.raises(ValueError, match=r"no statistics for .*observation.state"):
        load_processors(bad)


def test_bf16_checkpoint_exports_a_float32_graph_that_runs(tiny_assets, tmp_path, capsys):
    policy, pre, _post = tiny_student("pi05", tiny_assets, dtype="bfloat16")
    assert any(p.dtype == torch.bfloat16 for p in policy.parameters())
    policy.save_pretrained(tmp_path / "ckpt")
    pre.save_pretrained(tmp_path / "ckpt")
    _contract, parity = export_onnx(
        policy.eval(), pre, _observation("pi05"), tmp_path / "out", source_dir=tmp_path / "ckpt"
    )
    assert "exporting in float32" in capsys.readouterr().out
    assert parity.passed and (tmp_path / "out" / "contract.json").is_file()
    graph = onnx.load(str(tmp_path / "out" / "model.onnx"), load_external_data=False).graph
    assert all(i.data_type != onnx.TensorProto.BFLOAT16 for i in graph.initializer)


def test_tensorrt_says_clearly_when_it_cannot_run(exported):
    usable, reason = trt_usable()
    if usable:
        pytest.skip(f"TensorRT is usable here ({reason}); the trt-marked test covers it")
    with pytest.raises(TensorRTUnavailable, match=r"tensorrt|CUDA|Builder"):
        build_engine(exported[2])


@pytest.mark.trt
def test_tensorrt_engine_matches_onnx_runtime(exported):
    usable, reason = trt_usable()
    if not usable:
        pytest.skip(reason)
    from snapflow.deploy.tensorrt_engine import TrtRuntime

    family, _, out, _, _ = exported
    raw = _raw_observation(family)
    result = TrtRuntime(out).predict_chunk(raw)
    assert result.actions.shape == (10, 7) and np.isfinite(result.actions).all()


def _snapflow_run(export: object, *args: str, task: str = "spatial/0") -> object:
    """`snapflow-run` on the sim (``task``) as a subprocess; returns the CompletedProcess."""
    import subprocess
    import sys
    from pathlib import Path

    robot = [] if any(a.startswith("robot=") for a in args) else ["robot=sim"]
    cmd = [
        str(Path(sys.executable).parent / "snapflow-run"),
        f"policy={export}",
        *robot,
        f"task={task}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_snapflow_run_drives_the_sim_from_an_export(exported, tmp_path):
    """A short real-time run of the CLI on the exported graph (loose checks: real clock, shared CPU)."""

    _, _, out, _, _ = exported
    proc = _snapflow_run(out, "seconds=2", "crossfade_steps=1", f"out={tmp_path}")  # resolution: the export's
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["chunking"]["crossfade_steps"] == 1 and run["chunking"]["actions_per_chunk"] is None  # as run
    assert isinstance(run["chunking"]["queue_low_watermark"], int)
    for key in (
        "target_hz",
        "achieved_hz",
        "ticks",
        "missed_ticks",
        "jitter_ms",
        "latency_ms",
        "held_ticks",
        "watchdog_ticks",
        "success",
    ):
        assert key in run, key
    assert run["target_hz"] == 20 and run["ticks"] > 0 and run["success"] in (True, False)
    assert {"p50", "p95", "p99", "max"} <= set(run["latency_ms"])
    assert (tmp_path / "latency_hist.png").is_file()
    assert f"outputs: {tmp_path}" in proc.stdout
    assert run["inference"] in ("inline_blocking", "thread")  # inference=auto chose from the measured latency


@pytest.mark.parametrize(
    "exported", ["smolvla"], indirect=True
)  # the CLI's checks do not depend on the family
@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["resolution=48"], 2, "observation.images.image has shape [3, 48, 48], the policy expects"),
        (["max_delta=0"], 2, "max_delta > 0"),
        (["action_low=[0,0]"], 2, "action_low has 2 values"),
        (["robot=arm"], 2, "robot='arm' is not a robot kind"),
        (["hz=0"], 2, "hz=0.0: the control rate must be a finite number > 0 Hz"),
        (["hz=40"], 0, "warning: hz=40 but the export's contract records 20 Hz"),  # pass 16: it was silent
        (["nfe=2"], 2, "nfe=2 applies to a torch checkpoint"),
        (["fault=crash", "fault_after=1", "seconds=4"], 1, "fault: "),
    ],
)
def test_snapflow_run_refuses_bad_settings_by_name(exported, tmp_path, args, code, message):
    """Refused settings end in one line naming the field (exit 2); a faulted run exits 1 with its reason; a
    rate other than the contract's runs, and says so."""

    _, _, out, _, _ = exported
    given = {a.split("=", 1)[0] for a in args}  # each key once: a repeated key is itself refused
    defaults = [a for a in ("seconds=1", "robot=sim") if a.split("=", 1)[0] not in given]
    proc = _snapflow_run(out, *defaults, f"out={tmp_path / 'run'}", *args)
    assert proc.returncode == code, proc.stderr[-3000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-3000:]


@pytest.mark.parametrize("exported", ["smolvla"], indirect=True)
def test_snapflow_run_keeps_earlier_results(exported, tmp_path):

    _, _, out, _, _ = exported
    (tmp_path / "run.json").write_text("{}")
    proc = _snapflow_run(out, "seconds=1", f"out={tmp_path}")
    assert proc.returncode == 2 and "overwrite=true" in proc.stderr
    assert (tmp_path / "run.json").read_text() == "{}"


@pytest.mark.parametrize("exported", ["smolvla"], indirect=True)
def test_snapflow_run_names_a_chunk_it_cannot_serve_and_a_bad_task_id(exported, tmp_path):
    _, _, out, _, _ = exported
    proc = _snapflow_run(out, "seconds=1", "actions_per_chunk=50", f"out={tmp_path / 'a'}")
    assert proc.returncode == 2 and "actions_per_chunk=50: choose 1..10" in proc.stderr, proc.stderr
    proc = _snapflow_run(out, "seconds=1", f"out={tmp_path / 'b'}", task="spatial/abc")
    assert (
        proc.returncode == 2
        and "task=spatial/abc: the task id after '/' must be a whole number" in proc.stderr
    )
    assert not list(tmp_path.iterdir())


def _bad(batch: dict, case: str) -> dict:
    batch = dict(batch)
    if case == "nan_state":
        batch["observation.state"] = batch["observation.state"].clone().fill_(float("nan"))
    elif case == "uint8_image":
        batch["observation.images.image"] = (batch["observation.images.image"] * 255).to(torch.uint8)
    elif case == "0_255_float_image":
        batch["observation.images.image"] = batch["observation.images.image"] * 255
    elif case == "renamed_camera":
        batch["observation.images.front"] = batch.pop("observation.images.image")
        batch.pop("observation.images.image2")
    elif case == "one_camera_missing":  # upstream would act on the other camera alone
        batch.pop("observation.images.image2")
    elif case == "float64_state":
        batch["observation.state"] = batch["observation.state"].double()
    elif case == "float16_state":
        batch["observation.state"] = batch["observation.state"].half()
    elif case == "batch_size_mismatch":
        batch["observation.state"] = torch.cat([batch["observation.state"]] * 2)
    elif case == "state_with_a_time_axis":  # (B, 1, 8): upstream would run it without a word
        batch["observation.state"] = batch["observation.state"][:, None]
    elif case == "long_state":
        batch["observation.state"] = torch.cat([batch["observation.state"]] * 2, dim=-1)
    elif case == "not_preprocessed":  # the raw task string, no tokens: the preprocessor was skipped
        batch.pop("observation.language.tokens")
        batch.pop("observation.language.attention_mask")
    return batch


BAD_INPUTS = {
    "nan_state": "observation.state contains NaN",
    "uint8_image": "torch.uint8: images must be float in \\[0, 1\\]",
    "0_255_float_image": "images must be float in \\[0, 1\\]",
    "renamed_camera": r"the batch has no \['observation.images.image', 'observation.images.image2'\]",
    "one_camera_missing": r"the batch has no \['observation.images.image2'\]: the policy was trained on cameras",
    "float64_state": "observation.state is torch.float64: the policy takes float32",
    "float16_state": "observation.state is torch.float16: the policy takes float32",
    "batch_size_mismatch": "disagree on the batch size",
    "state_with_a_time_axis": r"observation.state must be a \(B, 8\) batch, got shape \(1, 1, 8\)",
    "long_state": "observation.state has",
    "not_preprocessed": "missing observation.language.tokens: the batch did not go through the policy's preprocessor",
}


@pytest.mark.parametrize("exported", ["smolvla"], indirect=True)
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_onnx_policy_and_student_refuse_the_same_bad_inputs(exported, case):
    """The exported policy checks its inputs as the torch student does: a named error, never an action."""
    family, ckpt, out, _, _ = exported
    torch_rt = TorchRuntime.from_checkpoint(ckpt)
    onnx_policy = SnapFlowOnnxPolicy.from_pretrained(out)
    batch = _bad(torch_rt.pre(raw_batch(family, batch_size=1, with_action=False)), case)
    for policy in (onnx_policy, torch_rt.policy):
        with pytest.raises(ValueError, match=BAD_INPUTS[case]):
            policy.predict_action_chunk(dict(batch))


@pytest.mark.parametrize("exported", ["smolvla"], indirect=True)
def test_onnx_policy_names_an_image_size_its_graph_cannot_take(exported):
    family, ckpt, out, _, _ = exported
    pre = TorchRuntime.from_checkpoint(ckpt).pre
    batch = pre(raw_batch(family, batch_size=1, with_action=False))
    batch["observation.images.image"] = batch["observation.images.image"][..., ::2, ::2]  # half the size
    with pytest.raises(
        ValueError, match=r"observation.images.image has shape \[3, 32, 32\], the exported graph"
    ):
        SnapFlowOnnxPolicy.from_pretrained(out).predict_action_chunk(batch)


@pytest.mark.parametrize("exported", ["smolvla"], indirect=True)
def test_onnx_policy_refuses_more_action_steps_than_its_chunk(exported):
    from lerobot.configs.policies import PreTrainedConfig

    _, _, out, _, _ = exported
    config = PreTrainedConfig.from_pretrained(out)
    config.n_action_steps = config.chunk_size + 10
    with pytest.raises(ValueError, match="n_action_steps=20 must be in \\[1, chunk_size=10\\]"):
        config.__post_init__()


@pytest.mark.parametrize("exported", ["smolvla"], indirect=True)
def test_every_file_that_changes_the_actions_is_hash_checked(exported, tmp_path):
    """Perturbed external weights or stats, or a stray graph, are refused by name before any action."""
    import shutil

    _, _, out, contract, _ = exported
    assert {"model.onnx", "model.onnx.data", "config.json"} <= set(contract.files_sha256)
    assert any(f.startswith("policy_preprocessor") for f in contract.files_sha256)
    assert "stats" not in json.dumps(contract.normalization)  # the stats live only in the processor files
    stats = next(f for f in contract.files_sha256 if f.endswith("normalizer_processor.safetensors"))
    for target, edit in (("model.onnx.data", "flip"), (stats, "flip"), ("model.int8.onnx", "add")):
        bad = tmp_path / f"bad_{edit}_{target.replace('.', '_')}"
        shutil.copytree(out, bad)
        path = bad / target
        if edit == "flip":
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))
        else:
            path.write_bytes(b"stale graph of an earlier export")
        with pytest.raises(ContractError, match=target.replace(".", "\\.")):
            OrtRuntime(bad)


@pytest.mark.parametrize("exported", ["smolvla"], indirect=True)
def test_snapflow_export_cli_stages_refusals_and_atomic_out(exported, tmp_path):
    """The CLI shows its stages, refuses nfe=0 and a non-empty out= by name, and writes out= whole."""
    import subprocess
    import sys
    from pathlib import Path

    _, ckpt, _, _, _ = exported
    exe = str(Path(sys.executable).parent / "snapflow-export")
    out = tmp_path / "export"
    proc = subprocess.run([exe, f"policy={ckpt}", f"out={out}"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[1/3]" in proc.stdout and "[3/3]" in proc.stdout
    assert (out / "contract.json").is_file() and not out.with_name("export.partial").exists()
    load_contract(out)
    again = subprocess.run([exe, f"policy={ckpt}", f"out={out}"], capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "overwrite=true" in again.stderr
    zero = subprocess.run([exe, f"policy={ckpt}", f"out={tmp_path / 'z'}", "nfe=0"], capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert zero.returncode == 2 and "nfe=0" in zero.stderr and "Traceback" not in zero.stderr
    assert "deployed graph (contract.json): model.onnx, float32" in proc.stdout
    for bad, named in (("quantize=fp4", "quantize="), ("int8=true", "quantize=int8")):
        refused = subprocess.run([exe, f"policy={ckpt}", f"out={tmp_path / 'q'}", bad], capture_output=True,
                                 text=True, timeout=600)  # fmt: skip
        assert refused.returncode == 2 and named in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.parametrize("exported", ["smolvla"], indirect=True)
def test_snapflow_eval_runs_an_export_beside_its_checkpoint(exported, tmp_path):
    """exports={name: dir} evaluates the graph on ONNX Runtime as its own sampler, next to the torch student;
    an export's NFE is fixed, so a sampler asking another NFE of it is refused by name."""
    import subprocess
    import sys
    from pathlib import Path

    _, ckpt, out, _, _ = exported
    exe = str(Path(sys.executable).parent / "snapflow-eval")
    common = [
        "suites=[goal]",
        "task_ids=[0]",
        "episodes=2",
        "batch_size=2",
        "max_steps=20",
        "latency_calls=2",
    ]
    proc = subprocess.run(
        [exe, f"exports={{graph: {out}}}", f"student={ckpt}", "samplers=[snapflow_1,graph]",
         f"out={tmp_path / 'ev'}", *common],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["samplers"]["graph"]["policy_type"] == "snapflow_onnx"
    assert report["samplers"]["graph"]["nfe"] == 1
    assert report["suites"]["goal"]["graph"]["episodes"] == 2
    clash = subprocess.run(
        [exe, f"exports={{naive_1: {out}}}", f"out={tmp_path / 'c'}", *common],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert clash.returncode == 2 and "exports ['naive_1'] would replace samplers" in clash.stderr
    import shutil

    tampered = tmp_path / "tampered"  # named before any rollout (its hashes were read only at load, pass 14)
    shutil.copytree(out, tampered)
    with open(tampered / "model.onnx", "ab") as f:
        f.write(b"\0")
    proc = subprocess.run(
        [exe, f"exports={{graph: {tampered}}}", "samplers=[graph]", f"out={tmp_path / 't'}", *common],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert (
        proc.returncode == 2 and "exports.graph:" in proc.stderr and "changed ['model.onnx']" in proc.stderr
    ), proc.stderr
    assert "episode" not in proc.stdout and not (tmp_path / "t").exists()


@pytest.mark.parametrize("exported", ["smolvla"], indirect=True)
def test_ort_profile_splits_kernel_time_by_model_part(exported):
    from snapflow.deploy.ort_profile import profile

    _, _, out, _, _ = exported
    result = profile(out / "model.onnx", threads=1, runs=2)
    parts = result["by_part"]
    assert {"vision encoder", "language model", "action expert"} <= set(parts)
    assert (
        result["kernel_ms"] > 0
        and abs(sum(parts.values()) - result["kernel_ms"]) < 1e-6 * result["kernel_ms"] + 1e-9
    )
    assert "MatMul" in result["by_op"]


RAW_BAD = {  # a raw observation as a user hands it to the export's preprocessor -> the named error
    "no_task": ("task", None, "task=None: the policy needs the instruction"),
    "blank_task": ("task", ["  "], "the policy needs the instruction"),
    "short_state": ("observation.state", torch.zeros(1, 7), r"observation.state has shape \(1, 7\)"),
    "two_tasks_one_row": ("task", ["a", "b"], "task has 2 instructions for a batch of \\[1\\] rows"),
    "no_wrist_camera": ("observation.images.image2", None, r"the observation has no \['observation.images.image2'\]"),
    "int_state": ("observation.state", torch.zeros(1, 8, dtype=torch.int64), "observation.state has dtype torch.int64"),
    "image_batch_2": ("observation.images.image", lambda b: b.repeat(2, 1, 1, 1), "entries disagree on the batch size"),
    "uint8_image": ("observation.images.image", lambda b: (b * 255).to(torch.uint8), "has dtype torch.uint8"),
    "no_observation": ("*", None, r"the observation has no \['observation.images.image', "),
}  # fmt: skip


def test_the_check_follows_a_rename_step_that_renames():
    """The check names the policy's keys, so with a non-empty rename_map it runs after the renaming."""
    from snapflow.policies.lerobot_plugin.observation_check import STEP_NAME, insert_into

    rename = {"registry_name": "rename_observations_processor", "config": {"rename_map": {"cam": "image"}}}
    steps = insert_into({"steps": [rename, {"registry_name": "device_processor"}]}, {})["steps"]
    assert [s["registry_name"] for s in steps] == [
        "rename_observations_processor",
        STEP_NAME,
        "device_processor",
    ]
    rename["config"]["rename_map"] = {}
    assert insert_into({"steps": [rename]}, {})["steps"][0]["registry_name"] == STEP_NAME


@pytest.mark.parametrize("exported", ["smolvla"], indirect=True)
@pytest.mark.parametrize("case", sorted(RAW_BAD))
def test_the_exports_preprocessor_names_a_bad_raw_observation(exported, case):
    """LeRobot's own steps would end in KeyError: 'task' or a tensor-size error; the export's preprocessor
    checks first (policies/lerobot_plugin/observation_check.py), for every user of the export's processors."""
    from snapflow.deploy.runtimes import load_processors

    family, _, out, _, _ = exported
    steps = json.loads((out / "policy_preprocessor.json").read_text())["steps"]
    # first: the rename step renames nothing here, and would refuse an observation without any
    # observation.* key in words that do not say what is missing
    assert [s["registry_name"] for s in steps[:2]] == [
        "snapflow_observation_check",
        "rename_observations_processor",
    ]
    pre, _ = load_processors(out)
    pre(raw_batch(family, batch_size=1, with_action=False))  # a good observation passes
    key, value, match = RAW_BAD[case]
    batch = raw_batch(family, batch_size=1, with_action=False)
    if key == "*":  # only the instruction: no observation.* entry at all
        batch = {"task": batch["task"]}
    elif value is None and key != "task":
        batch.pop(key)
    elif callable(value):  # a changed copy of the good entry
        batch[key] = value(batch[key])
    else:
        batch[key] = value
    with pytest.raises(ValueError, match=match):
        pre(batch)


@pytest.mark.parametrize("exported", ["smolvla"], indirect=True)
def test_a_camera_the_policy_does_not_read_is_named_once(exported):
    """A robot may carry more cameras than the policy reads (LeRobot ignores them); the check says so once."""
    from snapflow.deploy.runtimes import load_processors

    family, _, out, _, _ = exported
    pre, _ = load_processors(out)
    batch = raw_batch(family, batch_size=1, with_action=False)
    batch["observation.images.image3"] = batch["observation.images.image"].clone()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # count every call's warning, not Python's once-per-place default
        pre(dict(batch))
        pre(dict(batch))
    said = [str(w.message) for w in caught if "image3" in str(w.message)]
    assert len(said) == 1 and "the policy ignores ['observation.images.image3']" in said[0], said


@pytest.mark.parametrize("exported", ["smolvla"], indirect=True)
def test_onnx_policy_select_action_refuses_a_batch_its_queue_was_not_filled_for(exported):
    """As the torch student: queued actions of one batch are never served to a batch of another size."""
    family, ckpt, out, _, _ = exported
    pre = TorchRuntime.from_checkpoint(ckpt).pre
    policy = SnapFlowOnnxPolicy.from_pretrained(out)
    assert policy.select_action(pre(raw_batch(family, batch_size=1, with_action=False))).shape[0] == 1
    two = pre(raw_batch(family, batch_size=2, with_action=False))
    with pytest.raises(ValueError, match=r"call policy\.reset\(\)"):
        policy.select_action(two)
    policy.reset()
    assert policy.select_action(two).shape[0] == 2
