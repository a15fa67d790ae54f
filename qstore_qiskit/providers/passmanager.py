"""A native-gate pass manager backed by a backend's template cache."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from qiskit.circuit import QuantumCircuit
from qiskit.transpiler import PassManager

if TYPE_CHECKING:  # pragma: no cover
    from .backend import QStoreBackend


def _first_appearance(circuit: QuantumCircuit) -> list:
    """The circuit's parameters in order of first appearance (what structural keys use)."""
    seen: dict = {}
    for inst in circuit.data:
        for param in inst.operation.params:
            for p in getattr(param, "parameters", ()):
                seen.setdefault(p, None)
    return list(seen)


class CachedIonQPassManager(PassManager):
    """``run(circuits)`` compiles to native gates, each structure only once.

    A bound circuit is looked up in the backend's :class:`~qstore_qiskit.TemplateCache`
    by structure (numeric angles lifted to parameters): a seen structure costs a bind,
    not a compile. A circuit with free parameters compiles once per structure to a
    parameterized native circuit. qiskit-machine-learning re-runs its pass manager on
    every shifted circuit of every gradient step; with this pass manager those runs are
    binds. Outputs keep the input's qubits (trivial layout) and parameters.

    Args:
        backend: The backend whose cache and target to use.
        optimization_level: Compiler optimization level.
    """

    def __init__(self, backend: "QStoreBackend", optimization_level: int = 2) -> None:
        super().__init__([])
        self.backend = backend
        self.optimization_level = optimization_level
        self._symbolic: dict[str, tuple[QuantumCircuit, list]] = {}
        self._lock = threading.Lock()

    def _run_one(self, circuit: QuantumCircuit) -> QuantumCircuit:
        device = self.backend.device
        if circuit.parameters:
            from ..cache import structural_key

            key = structural_key(circuit)
            order = _first_appearance(circuit)
            with self._lock:
                hit = self._symbolic.get(key)
            if hit is None:
                native = self.backend._compile(circuit, device, self.optimization_level)
                with self._lock:
                    self._symbolic[key] = (native, order)
                out = native.copy()
            else:
                # Same structure, maybe other Parameter objects: rename by position.
                native, seen_order = hit
                mapping = {old: new for old, new in zip(seen_order, order) if old is not new}
                out = native.assign_parameters(mapping) if mapping else native.copy()
        else:
            template, values = self.backend._cache.get_template(
                circuit, device=device, optimization_level=self.optimization_level
            )
            out = template.to_circuit(values)
        out.name = circuit.name
        out.metadata = dict(circuit.metadata or {})
        return out

    def run(self, circuits: Any, output_name: str | None = None, callback=None, num_processes=None):  # noqa: D102
        if isinstance(circuits, QuantumCircuit):
            return self._run_one(circuits)
        return [self._run_one(c) for c in circuits]
