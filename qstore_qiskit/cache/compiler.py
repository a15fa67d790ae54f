"""The default native compiler behind :class:`~qstore_qiskit.cache.CompiledTemplate`."""

from __future__ import annotations

import threading
from collections.abc import Callable

from qiskit.circuit import QuantumCircuit

from .errors import QStoreCacheError

__all__ = ["CompileFn", "default_compile"]

#: ``f(circuit, device, optimization_level) -> native circuit``.
CompileFn = Callable[[QuantumCircuit, str, int], QuantumCircuit]

# Pass managers are memoised per thread: passes keep per-run state (``property_set``) on
# the pass objects, so one instance must not run in two threads at once.
_PM_LOCAL = threading.local()


def default_compile(circuit: QuantumCircuit, device: str, optimization_level: int) -> QuantumCircuit:
    """Compile with :func:`qstore_qiskit.transpiler.generate_ionq_pass_manager` (memoised)."""
    cache = getattr(_PM_LOCAL, "pms", None)
    if cache is None:
        cache = _PM_LOCAL.pms = {}
    key = (device, optimization_level)
    pm = cache.get(key)
    if pm is None:
        try:
            from ..transpiler import generate_ionq_pass_manager
        except ImportError as exc:  # pragma: no cover - depends on the compiler being present
            raise QStoreCacheError(
                "qstore_qiskit.transpiler.generate_ionq_pass_manager is not available; "
                "pass compile_fn= to use another native compiler"
            ) from exc
        pm = cache[key] = generate_ionq_pass_manager(
            device=device, optimization_level=optimization_level
        )
    return pm.run(circuit)
