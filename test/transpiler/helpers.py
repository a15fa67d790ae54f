"""Small helpers shared by the transpiler tests."""

from __future__ import annotations

from qiskit import QuantumCircuit


def two_qubit_count(qc: QuantumCircuit) -> int:
    """Native two-qubit gates (MS and ZZ) of a compiled circuit."""
    ops = qc.count_ops()
    return ops.get("ms", 0) + ops.get("zz", 0)
