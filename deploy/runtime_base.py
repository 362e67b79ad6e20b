"""The interface every inference runtime (torch, ONNX Runtime, TensorRT) offers to the control loop.

A runtime turns one raw observation into one chunk of UNnormalised environment actions and reports
how long each stage took. Queues, timing and safety live in the control loop, never in a runtime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class ChunkResult:
    """One predicted action chunk.

    Attributes:
        actions: (H, A) float32, unnormalised env actions; row i is meant for the i-th control tick
            after the observation was taken (row 0 = the tick of the observation).
        timings_ms: latency of each stage in milliseconds, e.g. {"preprocess": .., "model": ..,
            "postprocess": ..}. Keys are free-form; the control loop reports percentiles per key.
    """

    actions: np.ndarray
    timings_ms: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class ChunkRuntime(Protocol):
    """Predicts action chunks from raw observations."""

    def predict_chunk(self, observation: dict) -> ChunkResult:
        """Predict a chunk from a raw env observation dict (plus "task": str, the instruction)."""
        ...

    def reset(self) -> None:
        """Forget any per-episode state (called once before the loop starts)."""
        ...
