"""`snapflow-policy-server`: LeRobot's async gRPC policy server, accepting the SnapFlow policy types.

LeRobot 0.6.1's server checks a hard-coded SUPPORTED_POLICIES list and does not load third-party plugins
(lerobot/async_inference/constants.py), so this launcher imports the plugin, appends our types to that list and then runs the
upstream server with the same command-line flags, e.g.
    snapflow-policy-server --host=127.0.0.1 --port=8080 --fps=20
"""

import lerobot_policy_snapflow  # noqa: F401  (registers the policy types)

SNAPFLOW_TYPES = ("smolvla_snapflow", "pi0_snapflow", "pi05_snapflow", "snapflow_onnx")


def register_with_async_server() -> list[str]:
    """Append our types to the server's list (the same list object as in constants); return the list."""
    from lerobot.async_inference import constants

    for policy_type in SNAPFLOW_TYPES:
        if policy_type not in constants.SUPPORTED_POLICIES:
            constants.SUPPORTED_POLICIES.append(policy_type)
    return constants.SUPPORTED_POLICIES


def main() -> None:
    import sys

    if {"-h", "--help"} & set(sys.argv[1:]):  # upstream's module makes ./logs/ on import: help writes nothing
        import draccus
        from lerobot.async_inference.configs import PolicyServerConfig

        print(__doc__)
        draccus.parse(PolicyServerConfig, args=["--help"])  # prints the server's flags and exits 0
    register_with_async_server()
    from lerobot.async_inference import policy_server

    policy_server.serve()


if __name__ == "__main__":
    main()
