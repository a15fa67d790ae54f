"""Lower to native gates and resynthesise the result's blocks in one pass."""

from __future__ import annotations

from qiskit.dagcircuit import DAGCircuit
from qiskit.transpiler import Target
from qiskit.transpiler.basepasses import TransformationPass

from ...gc_pause import pauses_cyclic_gc
from ..native_ops import entries_cost, entries_to_dag
from .absorb_pi_pulses import absorb_entries
from .lower_to_native import LowerToIonQNative
from .resynthesize_native import consolidate_and_lower, resynthesis_key, working_dag


class LowerAndResynthesize(TransformationPass):
    """:class:`LowerToIonQNative` (with pi-pulse absorption), then one round of
    :class:`ResynthesizeNativeBlocks`, as one pass.

    Guarantees: the output is node for node the circuit that
    ``LowerToIonQNative(absorb_pi_pulses=True)`` followed by ``ResynthesizeNativeBlocks``
    (same target and options) produce, hence has all their guarantees (native
    instructions only, equivalent to the input as a unitary, or as a state from
    ``|0...0>`` with ``qubits_initially_zero``). What is saved is the bookkeeping
    around the two passes: the lowering's result is priced from its light entry list
    (:mod:`~qstore_qiskit.transpiler.native_ops`) instead of from the circuit, and the
    optimization stage does not run the same round again (below); the lowering and the
    resynthesis share one cache of synthesis plans.

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
        self.spec = self._lower.spec
        self._key = resynthesis_key(self.spec, approximation_degree, qubits_initially_zero)

    @pauses_cyclic_gc
    def run(self, dag: DAGCircuit) -> DAGCircuit:
        entries = self._lower.lower_entries(dag)
        entries = absorb_entries(entries, dag.qubits) or entries
        # The round consolidates the lowering's circuit: ``working_dag`` builds it in the
        # form ``consolidate_and_lower`` reads fastest (the same block matrices as the
        # native circuit's); the native circuit is built once, from the better entries.
        candidate = consolidate_and_lower(
            working_dag(dag, entries), self._lower, dag.qubits, entries_cost(entries, self.spec)
        )
        if candidate is not None:
            entries = candidate
        out = entries_to_dag(dag, entries)
        self.property_set["ionq_resynthesized"] = (out, self._key)
        return out
