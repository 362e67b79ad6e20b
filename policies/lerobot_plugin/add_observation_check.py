"""``python -m snapflow.policies.lerobot_plugin.add_observation_check <pretrained_model> ...``: put the input check
(observation_check.py) into checkpoints this package did not write, e.g. a student trained by raw
``lerobot-train``, which keeps its teacher's processors. Its own module because running observation_check.py
itself as ``__main__`` would register the processor step a second time."""

import argparse
import json
import sys
from pathlib import Path

from snapflow.policies.lerobot_plugin.observation_check import STEP_NAME, add_to_checkpoint


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when every checkpoint got the check (idempotent), 2 naming a folder without a readable
    ``config.json`` / ``policy_preprocessor.json`` (then nothing is changed)."""
    parser = argparse.ArgumentParser(description="Add the observation check to LeRobot policy checkpoints.")
    parser.add_argument("pretrained_model", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for path in args.pretrained_model:  # all checked before any is changed
        for name in ("config.json", "policy_preprocessor.json"):
            try:
                json.loads((path / name).read_text())
            except (OSError, ValueError) as e:
                print(
                    f"add_observation_check: {path / name} is not a readable JSON file ({e})", file=sys.stderr
                )
                return 2
    for path in args.pretrained_model:
        steps = json.loads((path / "policy_preprocessor.json").read_text()).get("steps", [])
        had = any(isinstance(s, dict) and s.get("registry_name") == STEP_NAME for s in steps)
        add_to_checkpoint(path)  # a check already there is rewritten with the config's features
        verb = "updated" if had else "added"  # pass 17: "added" also when it was already there
        print(f"{verb} {STEP_NAME} in {path / 'policy_preprocessor.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
