"""``qstore-qiskit serve`` / ``python -m qstore_qiskit.server``: run the local server.

The first line written to stdout is the API base URL (``http://HOST:PORT/v0.4``), so
scripts can start the server with ``--port 0`` and read where it listens. On SIGINT
or SIGTERM the server stops and prints the injected fault counts as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import Any

from .config import FAULT_KINDS, PROFILES

# Environment variable read for the API key when ``--api-key`` is not given.
API_KEY_ENV = "QSTORE_SERVER_API_KEY"


def _fault_weight(text: str) -> tuple[str, float]:
    kind, sep, weight = text.partition("=")
    if not sep or kind not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(
            f"expected KIND=WEIGHT with KIND one of {', '.join(FAULT_KINDS)}"
        )
    try:
        return kind, float(weight)
    except ValueError:
        raise argparse.ArgumentTypeError(f"weight must be a number, got {weight!r}") from None


def _config_setting(text: str) -> tuple[str, Any]:
    """``FIELD=VALUE`` with a JSON value (``null``, numbers, booleans) or a plain string."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected FIELD=VALUE, e.g. job_store_bytes=1e8")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    if isinstance(parsed, float) and parsed.is_integer():
        parsed = int(parsed)  # 1e8 for an integer limit
    return name, parsed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options to ``parser``."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default: 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, default=0,
                        help="port to bind; 0 picks a free one (default: 0)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="instant",
                        help="latency/capacity profile (default: instant)")
    parser.add_argument("--api-key", default=None,
                        help="require this API key (default: $QSTORE_SERVER_API_KEY if set, "
                             "else accept any key); prefer the environment variable, "
                             "command lines are visible to other local users")
    parser.add_argument("--fault-rate", type=float, default=0.0,
                        help="probability of an injected fault per /jobs request")
    parser.add_argument("--fault-weight", type=_fault_weight, action="append", default=[],
                        metavar="KIND=WEIGHT",
                        help="relative weight of a fault kind (repeatable; kinds not "
                             "named get weight 0 once any is given)")
    parser.add_argument("--slow-response-delay", type=float, default=None, metavar="SECONDS",
                        help="stall of a slow_response fault (default from the profile: 5)")
    parser.add_argument("--late-result-delay", type=float, default=None, metavar="SECONDS",
                        help="extra running time of a late_result fault (default: 2)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed for the fault schedule, noise and sampling")
    parser.add_argument("--max-qubits", type=int, default=None,
                        help="widest circuit accepted (default from the profile)")
    parser.add_argument("--set", type=_config_setting, action="append", default=[],
                        dest="settings", metavar="FIELD=VALUE",
                        help="set any ServerConfig field, e.g. --set job_store_bytes=1e8 "
                             "--set max_job_work=null (repeatable; JSON values)")
    parser.add_argument("--access-log", action="store_true",
                        help="write an aiohttp access log to stderr (never includes headers)")


def main(args: argparse.Namespace) -> int:
    """Run the server until SIGINT/SIGTERM. Returns the exit status."""
    from .local_server import LocalServer  # pylint: disable=import-outside-toplevel

    overrides: dict[str, Any] = {}
    if args.fault_weight:
        overrides["fault_weights"] = dict(args.fault_weight)
    for name in ("max_qubits", "slow_response_delay", "late_result_delay"):
        if getattr(args, name, None) is not None:
            overrides[name] = getattr(args, name)
    overrides.update(dict(getattr(args, "settings", None) or []))
    if args.access_log:
        import logging  # pylint: disable=import-outside-toplevel

        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
        overrides["access_log"] = True
    api_key = args.api_key or os.environ.get(API_KEY_ENV) or None
    try:
        server = LocalServer(
            profile=args.profile,
            api_key=api_key,
            host=args.host,
            port=args.port,
            seed=args.seed,
            fault_rate=args.fault_rate,
            **overrides,
        )
    except (TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _on_signal(signum, _frame):  # pragma: no cover - exercised via subprocess
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
    except RuntimeError as exc:  # e.g. the port is taken
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        print(server.url, flush=True)
        print(f"qstore local IonQ API server, profile {args.profile!r}, "
              f"auth {'required' if api_key else 'disabled'}; Ctrl-C to stop",
              file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        counts = server.fault_counts()
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(json.dumps({"fault_counts": counts}), flush=True)
    return 0


def run(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run (the ``python -m qstore_qiskit.server`` entry point)."""
    parser = argparse.ArgumentParser(
        prog="python -m qstore_qiskit.server", description="Run the local IonQ-API server."
    )
    add_arguments(parser)
    return main(parser.parse_args(argv))


__all__ = ["add_arguments", "main", "run"]
