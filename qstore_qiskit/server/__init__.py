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

from .app import create_app
from .config import FAULT_KINDS, PROFILES, ServerConfig
from .local_server import LocalServer
from .process import ServerProcess

__all__ = ["LocalServer", "ServerProcess", "ServerConfig", "PROFILES", "FAULT_KINDS", "create_app"]
