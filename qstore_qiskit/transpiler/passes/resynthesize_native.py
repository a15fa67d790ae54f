"""Re-optimise a native IonQ circuit, keeping the result only if it is better."""

from __future__ import annotations

import math

from qiskit.dagcircuit import DAGCircuit
from qiskit.transpiler import PassManager, Target
from qiskit.transpiler.basepasses import TransformationPass
from qiskit.transpiler.passes import Collect2qBlocks, ConsolidateBlocks

from ..target import instruction_error, spec_from_target
from .absorb_pi_pulses import AbsorbPiPulses
from .lower_to_native import LowerToIonQNative


def native_cost(dag: DAGCircuit, spec) -> tuple[float, int]:
    """(-log estimated success, native gate count) of a DAG; lower is better."""
    log_err = 0.0
    count = 0
    for node in dag.op_nodes():
        name = node.op.name
        if name in ("gpi", "gpi2", "ms", "zz"):
            count += 1
            err = instruction_error(name, node.op.params, spec)
            log_err -= math.log1p(-min(err, 1.0 - 1e-15))
    return log_err, count


class ResynthesizeNativeBlocks(TransformationPass):
    """Consolidate native two-qubit blocks, resynthesise them, keep the better circuit.

    Guarantees: the output is unitary-equivalent (up to global phase) to the input
    (state-equivalent from ``|0...0>`` with ``qubits_initially_zero``), holds
    only native instructions, and its estimated success probability (ties broken by
    native gate count) is at least the input's: a candidate that is not strictly better
    is discarded, which makes the pass safe to run in Qiskit's optimization loop.

    Args:
        target: The IonQ target (error rates and ZZ availability).
        approximation_degree: Forwarded to :class:`LowerToIonQNative`.
        qubits_initially_zero: Forwarded to :class:`LowerToIonQNative`; when true the
            output equals the input on ``|0...0>`` instead of as a unitary.
    """

    def __init__(
        self,
        target: Target | None = None,
        approximation_degree: float | None = 1.0,
        qubits_initially_zero: bool = False,
    ) -> None:
        super().__init__()
        self.spec = spec_from_target(target)
        self._inner = PassManager(
            [
                Collect2qBlocks(),
                ConsolidateBlocks(force_consolidate=True),
                LowerToIonQNative(
                    target,
                    approximation_degree=approximation_degree,
                    qubits_initially_zero=qubits_initially_zero,
                ),
                AbsorbPiPulses(),
            ]
        )

    def run(self, dag: DAGCircuit) -> DAGCircuit:
        from qiskit.converters import circuit_to_dag, dag_to_circuit

        candidate = circuit_to_dag(self._inner.run(dag_to_circuit(dag)))
        if native_cost(candidate, self.spec) < native_cost(dag, self.spec):
            return candidate
        return dag
