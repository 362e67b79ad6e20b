"""`snapflow_onnx` has no processor factory: its processors are the source checkpoint's, copied by snapflow-export."""

from typing import Any


def make_snapflow_onnx_pre_post_processors(config: Any, dataset_stats: dict | None = None) -> tuple:
    raise ValueError(
        "snapflow_onnx processors are loaded from the export directory (--policy.path=<export dir>)"
    )
