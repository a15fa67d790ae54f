"""A local server speaking IonQ's REST API (v0.4, with v0.3 paths), backed by a simulator.

It is the default target of the demo, tests and benchmarks: the official clients
(``qiskit-ionq``, ``cirq-ionq``) work against it unchanged::

    from qiskit_ionq import IonQProvider
    from qstore_qiskit.server import LocalServer

    with LocalServer(profile="cloud") as srv:
        backend = IonQProvider("any-key", url=srv.url).get_backend("simulator")

Modules: :mod:`.config` (``ServerConfig``, ``PROFILES``, every limit), :mod:`.simulator`
(state vectors), :mod:`.circuits` / :mod:`.qasm` / :mod:`.job_requests` (input
validation), :mod:`.jobs` (records and the budgeted store), :mod:`.sessions_store`,
:mod:`.pricing` (estimates and costs), :mod:`.runner` (latency model and execution),
:mod:`.faults` (seeded fault injection), :mod:`.routes` (the v0.4 handlers), :mod:`.app`
(middleware and route table), :mod:`.openapi` / :mod:`.openapi_spec` (the published
document), :mod:`.local_server` (background-thread runner), :mod:`.process` (the server
in a child process) and :mod:`.cli` (``qstore-qiskit serve``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .app import create_app as create_app
    from .config import FAULT_KINDS as FAULT_KINDS
    from .config import PROFILES as PROFILES
    from .config import ServerConfig as ServerConfig
    from .local_server import LocalServer as LocalServer
    from .process import ServerProcess as ServerProcess

# Public names are imported on first use, so that a module of this package can be
# imported without the whole server: the body-decoding worker
# (``python -m qstore_qiskit.server.decode_worker``) imports only the request
# validators, not aiohttp's application, Qiskit or Aer, and starts in a fraction of the
# time.
_LAZY = {
    "create_app": ".app",
    "FAULT_KINDS": ".config",
    "PROFILES": ".config",
    "ServerConfig": ".config",
    "LocalServer": ".local_server",
    "ServerProcess": ".process",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["LocalServer", "ServerProcess", "ServerConfig", "PROFILES", "FAULT_KINDS", "create_app"]
