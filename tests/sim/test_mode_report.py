"""Mode coverage in report.json / report.md / the plot, and the offline error to the nearest demonstrated
mode (policies/mode_reference.py) on a real multimodal dataset."""

from pathlib import Path

import numpy as np
import pytest
import torch

from snapflow.policies.mode_reference import ModeReference
from snapflow.sim.evaluate import EpisodeResult, RolloutResult
from snapflow.sim.mode_report import mode_entry, mode_tables
from snapflow.sim.record import MODE_KEY, collect_dataset
from snapflow.sim.report import build_report, validate_report, write_outputs

ZERO = 1e-12  # a chunk compared with itself: exactly zero up to float rounding
REL = 1e-6  # float32 rounding between two ways of averaging the same squared errors


def _episodes(spec: list[tuple[str, bool]]) -> list[EpisodeResult]:
    return [EpisodeResult(0, i, i, ok, 100, mode) for i, (mode, ok) in enumerate(spec)]


def test_mode_entry_counts_shares_between_and_success_per_mode() -> None:
    eps = _episodes(
        [("near", True), ("near", False), ("far", True), ("between", False), ("not_reached", False)]
    )
    entry = mode_entry(eps)
    assert entry["modes"] == {"near": 0.4, "far": 0.2}
    assert entry["between_modes"] == 1 and entry["not_reached"] == 1
    assert entry["success_by_mode"] == {"near": 0.5, "far": 1.0}
    assert entry["touched_barrier"] == 0  # no episode says it touched
    touched = [EpisodeResult(0, i, i, False, 100, "near", i < 2) for i in range(3)]
    assert mode_entry(touched)["touched_barrier"] == 2
    assert mode_entry([EpisodeResult(0, 0, 0, True, 10)]) == {}  # a benchmark suite: no mode fields


def test_report_carries_modes_under_suites_and_writes_table_and_plot(tmp_path: Path) -> None:
    results = {
        "multimodal": {
            "teacher_10": RolloutResult(_episodes([("near", True), ("far", True)]), [5.0]),
            "naive_1": RolloutResult(_episodes([("between", False), ("between", False)]), [1.0]),
        }
    }
    samplers = {"teacher_10": {"nfe": 10, "role": "teacher"}, "naive_1": {"nfe": 1, "role": "teacher"}}
    report = build_report(results, samplers, {}, {"n_action_steps": 10, "held_out": False})
    validate_report(report)
    naive = report["suites"]["multimodal"]["naive_1"]
    assert naive["between_modes"] == 2 and naive["modes"] == {"near": 0.0, "far": 0.0}
    assert report["episode_results"]["multimodal"]["teacher_10"][1]["mode"] == "far"
    table = mode_tables(report)
    assert "| naive_1 | 0% [0, 66] | 0% | 0% | 2 | 0 | 0 | – | – |" in table
    paths = write_outputs(report, tmp_path)
    assert paths["multimodal_modes_plot"].stat().st_size > 0
    assert "multimodal modes" in (tmp_path / "report.md").read_text()


@pytest.fixture(scope="module")
def mm_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return collect_dataset(
        "multimodal", 4, tmp_path_factory.mktemp("mm") / "ds", task_ids=[0], resolution=32, progress=False
    )


def test_nearest_mode_error_is_zero_for_either_demonstrated_mode_and_not_for_their_mean(
    mm_dataset: Path,
) -> None:
    ref = ModeReference(mm_dataset, chunk=10)
    assert set(ref.mode.tolist()) == {0, 1}  # seed 0 draws both strategies in four episodes
    # a frame of the carry, where the two strategies differ most
    e = int(ref.episode[0])
    rows = np.flatnonzero(ref.episode == e)
    frame = int(len(rows) * 0.55)
    own = ref._row[(e, frame)]
    (other,) = ref.others(e, frame)
    assert ref.mode[other] != ref.mode[own] and ref.episode[other] != e
    eps, frames = torch.tensor([e]), torch.tensor([frame])
    for row in (own, other):
        assert float(ref.nearest_mode_error(ref.chunks[row][None], eps, frames)) < ZERO
    mean = (ref.chunks[own] + ref.chunks[other])[None] / 2
    plain = float(((mean[0] - ref.chunks[own]) ** 2).mean())
    assert float(ref.nearest_mode_error(mean, eps, frames)) > 0.0
    assert float(ref.nearest_mode_error(mean, eps, frames)) <= plain * (1 + REL)


def test_nearest_mode_reference_refuses_a_dataset_without_modes(tmp_path: Path) -> None:
    root = collect_dataset("goal", 1, tmp_path / "goal", task_ids=[2], resolution=32, progress=False)
    with pytest.raises(KeyError, match=f"no '{MODE_KEY}' column"):
        ModeReference(root, chunk=10)
