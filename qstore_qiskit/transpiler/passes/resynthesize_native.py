"""Re-optimise a native IonQ circuit, keeping the result only if it is better."""

from __future__ import annotations

import math

from qiskit.dagcircuit import DAGCircuit
from qiskit.passmanager import PropertySet
from qiskit.transpiler import Target
from qiskit.transpiler.basepasses import TransformationPass
from qiskit.transpiler.passes import Collect2qBlocks, ConsolidateBlocks

from ..target import instruction_error, spec_from_target
from .absorb_pi_pulses import AbsorbPiPulses
from .lower_to_native import LowerToIonQNative

_NATIVE_GATES = frozenset({"gpi", "gpi2", "ms", "zz"})


def _cost_of(ops, spec) -> tuple[float, int]:
    """(-log estimated success, native gate count) of ``(name, params)`` pairs."""
    log_err = 0.0
    count = 0
    oneq = -math.log1p(-min(spec.oneq_error, 1.0 - 1e-15))
    for name, params in ops:
        if name not in _NATIVE_GATES:
            continue
        count += 1
        if name in ("gpi", "gpi2"):
            log_err += oneq  # the common case, without a call per gate
            continue
        err = instruction_error(name, params, spec)
        log_err -= math.log1p(-min(err, 1.0 - 1e-15))
    return log_err, count


def native_cost(dag: DAGCircuit, spec) -> tuple[float, int]:
    """(-log estimated success, native gate count) of a DAG; lower is better."""
    return _cost_of(
        ((node.op.name, node.op.params) for node in dag.op_nodes() if node.op.name in _NATIVE_GATES),
        spec,
    )


class ResynthesizeNativeBlocks(TransformationPass):
    """Consolidate native two-qubit blocks, resynthesise them, keep the better circuit.

    Guarantees: the output is unitary-equivalent (up to global phase) to the input
    (state-equivalent from ``|0...0>`` with ``qubits_initially_zero``), holds
    only native instructions, and its estimated success probability (ties broken by
    native gate count) is at least the input's: a candidate that is not strictly better
    is discarded, which makes the pass safe to run in Qiskit's optimization loop.

    The inner passes run on the DAG itself (no circuit round trip, which deep-copies
    every instruction twice); the input's instructions are recorded first so that it
    can be rebuilt when the candidate loses.

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
        self._lower = LowerToIonQNative(
            target,
            approximation_degree=approximation_degree,
            qubits_initially_zero=qubits_initially_zero,
        )
        self._absorb = AbsorbPiPulses()

    def run(self, dag: DAGCircuit) -> DAGCircuit:
        original = [(node.op, node.qargs, node.cargs) for node in dag.topological_op_nodes()]
        before = _cost_of(((op.name, op.params) for op, _, _ in original), self.spec)
        work = dag.copy_empty_like()
        for op, qargs, cargs in original:
            work.apply_operation_back(op, qargs, cargs, check=False)
        props = PropertySet()
        collect, consolidate = Collect2qBlocks(), ConsolidateBlocks(force_consolidate=True)
        collect.property_set = consolidate.property_set = props
        collect.run(work)
        work = consolidate.run(work)
        candidate = self._absorb.run(self._lower.run(work))
        if native_cost(candidate, self.spec) < before:
            return candidate
        return dag
