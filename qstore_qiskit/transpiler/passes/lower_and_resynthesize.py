"""Lower to native gates and resynthesise the result's blocks in one pass."""

from __future__ import annotations

from qiskit.dagcircuit import DAGCircuit
from qiskit.transpiler import Target
from qiskit.transpiler.basepasses import TransformationPass

from ..native_ops import entries_cost
from .absorb_pi_pulses import absorb_entries
from .lower_to_native import LowerToIonQNative
from .resynthesize_native import (
    ResynthesizeNativeBlocks,
    consolidate_and_lower,
    dag_from_entries_and_ops,
    work_dag_from_entries,
)


class LowerAndResynthesize(TransformationPass):
    """:class:`LowerToIonQNative` (with pi-pulse absorption), then one round of
    :class:`ResynthesizeNativeBlocks`, without building the intermediate circuit twice.

    Guarantees: the output is node for node the circuit that
    ``LowerToIonQNative(absorb_pi_pulses=True)`` followed by ``ResynthesizeNativeBlocks``
    (same target and options) produce, hence has all their guarantees (native
    instructions only, equivalent to the input as a unitary, or as a state from
    ``|0...0>`` with ``qubits_initially_zero``). What is saved is the bookkeeping
    around the two passes: the lowering's result is kept as a light entry list
    (:mod:`~qstore_qiskit.transpiler.native_ops`), priced from it, and the working
    circuit the resynthesis consolidates is built from it directly (its bound ``gpi2``
    already as shared unitaries) instead of copying the native circuit and substituting
    nodes; the native circuit is built once, from the entries that win.

    The pass records its output in ``property_set["ionq_resynthesized"]``; a
    :class:`ResynthesizeNativeBlocks` with the same options that later receives that
    very circuit (Qiskit's optimization stage, ``optimization_method="qstore"``) returns
    it as it is instead of running the same round again.

    Args:
        target: The IonQ target (error rates and ZZ availability).
        approximation_degree: Forwarded to both passes.
        qubits_initially_zero: Forwarded to both passes.
    """

    def __init__(
        self,
        target: Target | None = None,
        approximation_degree: float | None = 1.0,
        qubits_initially_zero: bool = False,
    ) -> None:
        super().__init__()
        # The lowering's synthesis plans are a pure function of each block's matrix, so
        # one instance (one plan cache) serves both the lowering and the resynthesis.
        self._lower = LowerToIonQNative(
            target,
            approximation_degree=approximation_degree,
            qubits_initially_zero=qubits_initially_zero,
        )
        self._resynthesis = ResynthesizeNativeBlocks(
            target,
            approximation_degree=approximation_degree,
            qubits_initially_zero=qubits_initially_zero,
        )
        self.spec = self._lower.spec

    def run(self, dag: DAGCircuit) -> DAGCircuit:
        entries = self._lower.lower_entries(dag)
        entries = absorb_entries(entries, dag.qubits) or entries
        work, ops = work_dag_from_entries(dag, entries)
        candidate = consolidate_and_lower(work, self._lower, dag.qubits)
        if entries_cost(candidate, self.spec) < entries_cost(entries, self.spec):
            out = dag_from_entries_and_ops(dag, candidate, [None] * len(candidate))
        else:
            out = dag_from_entries_and_ops(dag, entries, ops)
        self.property_set["ionq_resynthesized"] = (out, self._resynthesis.options_key)
        return out
