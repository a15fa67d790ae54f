"""Shared helpers of the template-cache tests."""

from __future__ import annotations

import threading

from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector

from ..test_payload import toy_compile


def ansatz(num_qubits: int, layers: int) -> QuantumCircuit:
    """ry+rz on every qubit and a cx ladder per layer (the benchmark ansatz)."""
    theta = ParameterVector("t", 2 * num_qubits * layers)
    qc = QuantumCircuit(num_qubits)
    k = 0
    for _ in range(layers):
        for q in range(num_qubits):
            qc.ry(theta[k], q)
            qc.rz(theta[k + 1], q)
            k += 2
        for q in range(num_qubits - 1):
            qc.cx(q, q + 1)
    return qc


class CountingCompile:
    """toy_compile that counts calls (thread-safe) and can be slowed down."""

    def __init__(self, delay: float = 0.0):
        self.calls = 0
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self, circuit, device, optimization_level):
        with self._lock:
            self.calls += 1
        if self.delay:
            threading.Event().wait(self.delay)
        return toy_compile(circuit, device, optimization_level)
