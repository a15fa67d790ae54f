"""The ``qstore-qiskit`` command: ``serve``, ``demo``, ``bench`` and ``run``.

Each sub-command lives in its own module and is imported only when used, so the
command starts fast and one sub-command's dependencies never burden another.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command -> (module, help). Each module defines ``add_arguments(parser)`` and
# ``main(args) -> int``.
_COMMANDS = {
    "serve": ("qstore_qiskit.server.cli", "run the local IonQ-API server"),
    "demo": ("qstore_qiskit.demo", "run the end-to-end demo against the local server"),
    "bench": ("qstore_qiskit.bench", "reproduce the performance table against the local server"),
    "run": ("qstore_qiskit.run_qasm", "run OpenQASM 2/3 files and print counts"),
}


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available sub-command."""
    from .version import __version__

    parser = argparse.ArgumentParser(prog="qstore-qiskit", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in _COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:  # a real import error inside the module
                raise
            continue  # a sub-command whose module is not part of this build
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_main=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qstore-qiskit`` console script."""
    args = build_parser().parse_args(argv)
    return int(args._main(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
