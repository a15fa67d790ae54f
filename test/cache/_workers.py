"""Child-process code of the concurrent persistent-cache tests (kept light to import)."""

from __future__ import annotations

import json
import os
import time

from qiskit.circuit import Gate, QuantumCircuit

from qstore_qiskit.cache import TemplateCache


def slow_native_compile(circuit: QuantumCircuit, device: str, optimization_level: int) -> QuantumCircuit:
    """:func:`native_compile` that takes 0.3 s longer (a compile worth sharing)."""
    time.sleep(0.3)
    return native_compile(circuit, device, optimization_level)


def native_compile(circuit: QuantumCircuit, device: str, optimization_level: int) -> QuantumCircuit:
    """A deterministic, fast stand-in compiler: every angle becomes a frame."""
    out = QuantumCircuit(circuit.num_qubits)
    for inst in circuit.data:
        qs = [circuit.find_bit(q).index for q in inst.qubits]
        for p in inst.params:
            out.rz(p, qs[0])
            out.append(Gate("gpi2", 1, [0.25]), [qs[0]])
        if len(qs) == 2:
            out.append(Gate("ms", 2, [0.0, 0.0, 0.25]), qs)
    return out


def structure(i: int) -> QuantumCircuit:
    """Distinct parameterized structures: ``i + 1`` rzz entanglers after an rx layer."""
    from qiskit.circuit import ParameterVector

    p = ParameterVector("p", 3)
    qc = QuantumCircuit(3)
    for q in range(3):
        qc.rx(p[q], q)
    for k in range(i + 1):
        qc.rzz(p[k % 3], k % 2, k % 2 + 1)
    return qc


def compile_structures(directory: str, indices: list[int], barrier, out) -> None:
    """Ask for the given structures at the same moment as the other processes."""
    cache = TemplateCache(store=directory, compile_fn=slow_native_compile, compiler_id="slow-native")
    barrier.wait(timeout=120)
    bodies = {}
    for i in indices:
        qc = structure(i)
        bodies[i] = json.dumps(cache.payload(qc, [0.1, 0.2, 0.3]))
    stats = cache.stats()
    out.put((os.getpid(), stats["compiles"], stats, bodies))
