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


def check_server_flags(args: list[str]) -> None:
    """ValueError naming the flag when the server could not start on `args` (pass 18: --port=99999,
    --fps=0 and a port in use ended in draccus / ZeroDivisionError / gRPC tracebacks): parsed as the server
    parses them (draccus, PolicyServerConfig), then fps > 0 and host:port free to listen on."""
    import socket

    import draccus
    from lerobot.async_inference.configs import PolicyServerConfig

    try:
        cfg = draccus.parse(PolicyServerConfig, args=args)
    except Exception as e:  # draccus wraps the config's own ValueError ("Port must be between ...")
        reason = e.__cause__ or e
        if isinstance(reason, ZeroDivisionError) or "environment_dt" in str(reason):  # 1 / fps
            reason = "--fps must be > 0 (the robot's control rate in Hz)"
        raise ValueError(f"{' '.join(args)}: {reason}") from None
    if not cfg.host.strip():
        raise ValueError("--host is empty: name the address to listen on (e.g. 127.0.0.1)")
    with socket.socket() as probe:
        try:
            probe.bind((cfg.host, cfg.port))
        except OSError as e:
            raise ValueError(
                f"cannot listen on {cfg.host}:{cfg.port} ({e.strerror or e}): choose another --port"
            ) from None


def main() -> None:
    import sys

    from snapflow.scripts.cli_values import run_cli

    if {"-h", "--help"} & set(sys.argv[1:]):  # upstream's module makes ./logs/ on import: help writes nothing
        import draccus
        from lerobot.async_inference.configs import PolicyServerConfig

        print(__doc__)
        draccus.parse(PolicyServerConfig, args=["--help"])  # prints the server's flags and exits 0
    run_cli(lambda: check_server_flags(sys.argv[1:]))  # one line and exit 2 on a bad flag
    register_with_async_server()
    from lerobot.async_inference import policy_server

    policy_server.serve()


if __name__ == "__main__":
    main()
