"""Packaging and layering rules."""

import ast
import importlib.metadata
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = ("policies", "sim", "deploy", "scripts", "configs")


def test_every_package_folder_is_installed_under_the_snapflow_namespace():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    for top in TOP_LEVEL:
        assert cfg["package-dir"][f"snapflow.{top}"] == top
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            name = "snapflow." + ".".join(rel.parts)
            assert name in listed, f"{rel} has an __init__.py but {name} is not in pyproject packages"


def test_distribution_name_makes_lerobot_import_the_plugin():
    # LeRobot imports distributions whose *metadata name* starts with lerobot_policy_ (underscores).
    dist = importlib.metadata.distribution("lerobot_policy_snapflow")
    assert dist.metadata["Name"] == "lerobot_policy_snapflow"
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.utils.import_utils import register_third_party_plugins

    register_third_party_plugins()
    choices = PreTrainedConfig.get_known_choices()
    assert {"smolvla_snapflow", "pi0_snapflow", "pi05_snapflow"} <= set(choices)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_method_core_never_imports_a_backbone_or_deployment_code():
    core = [
        *(ROOT / "policies" / "snapflow").glob("*.py"),
    ]
    for path in core:
        for name in _imports(path):
            assert not name.startswith(
                (
                    "lerobot.policies.smolvla",
                    "lerobot.policies.pi0",
                    "lerobot.policies.pi05",
                    "snapflow.policies.backbones",
                    "snapflow.policies.lerobot_plugin",
                    "snapflow.deploy",
                    "snapflow.sim",
                )
            ), f"{path.name} imports {name}"


def test_importing_the_package_never_imports_tensorrt():
    import subprocess
    import sys

    code = "import lerobot_policy_snapflow, snapflow.deploy, sys; print('tensorrt' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")
