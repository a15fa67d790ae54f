"""Level 3: lower several re-expressions of the circuit and keep the best result."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from qiskit.converters import circuit_to_dag, dag_to_circuit
from qiskit.dagcircuit import DAGCircuit
from qiskit.transpiler import PassManager, Target
from qiskit.transpiler.basepasses import TransformationPass

from ..target import spec_from_target
from .resynthesize_cnot_networks import ResynthesizeCnotNetworks
from .resynthesize_native import native_cost
from .resynthesize_shift_invariant import ResynthesizeShiftInvariant

#: Gate sets Qiskit's own level-3 optimizer rewrites the circuit into before lowering.
#: Each regroups two-qubit interactions differently (Qiskit's block consolidation,
#: commutative cancellation and KAK resynthesis at CX or RZZ cost), which sometimes
#: lets our per-pair Weyl resynthesis find fewer MS (e.g. amplitude estimation: 36 ->
#: 28 MS at 8 qubits; a 6-qubit quantum walk: 474 -> 468 with RZZ).
DEFAULT_PRE_BASES: tuple[tuple[str, ...], ...] = (("cx", "u"), ("rzz", "u"))

#: Rewrites among ``pre_bases`` whose result is lowered a second time after
#: :class:`ResynthesizeCnotNetworks` (CNOT ladders resynthesised as linear functions:
#: ``vqe_two_local`` at 8 qubits, 84 -> 21 MS).
DEFAULT_CNOT_NETWORK_BASES: tuple[tuple[str, ...], ...] = (("cx", "u"),)


def _walk(task):
    """``task`` and every task nested in its flow controllers."""
    yield task
    for sub in getattr(task, "tasks", None) or ():
        yield from _walk(sub)


def _two_qubit_count(dag: DAGCircuit) -> int:
    ops = dag.count_ops()
    return ops.get("ms", 0) + ops.get("zz", 0)


class LowerBestOfCandidates(TransformationPass):
    """Lower the circuit as is and after Qiskit level-3 rewrites; keep the best.

    Candidate ``0`` is the ordinary lowering (``lowering``, the level-2 passes). The
    others first run ``transpile(circuit, basis_gates=basis, optimization_level=3)`` for
    each basis in ``pre_bases`` and then the same lowering; the rewrites into a basis of
    ``cnot_network_bases`` are also lowered after :class:`ResynthesizeCnotNetworks`
    (one more candidate each, no second Qiskit run). With ``shift_invariant`` (the
    default), a small circuit whose unitary commutes with a register's cyclic shift is
    also lowered after :class:`ResynthesizeShiftInvariant` (rebuilt through the
    register's Fourier basis), directly and after the same Qiskit rewrites (a 6-qubit
    quantum walk: 474 -> 74 MS). A candidate replaces the
    current best only if it has no more two-qubit gates *and* no lower estimated success
    probability, and is strictly better on one of them (or on the native gate count), so
    the result is never worse than the ordinary lowering on either measure; candidates
    that fail are skipped.

    Guarantees: the output is one of the lowerings' outputs, so it keeps their contract
    (native gates only, same unitary up to global phase, or the same state from
    ``|0...0>`` with ``qubits_initially_zero``): Qiskit's rewrite is an exact unitary
    rewrite (it is run with ``qubits_initially_zero`` as given, and ``approximation_degree=1``).

    Args:
        target: The IonQ target (error model).
        lowering: Factory of the lowering passes (called once per candidate).
        pre_bases: Gate sets of the Qiskit level-3 rewrites.
        cnot_network_bases: Those of ``pre_bases`` whose rewrite also yields a candidate
            with its CNOT networks resynthesised.
        qubits_initially_zero: Whether the rewrites may assume qubits start in ``|0>``.
        shift_invariant: Also try :class:`ResynthesizeShiftInvariant`.
    """

    def __init__(
        self,
        target: Target | None,
        lowering: Callable[[], list],
        pre_bases: Sequence[Sequence[str]] = DEFAULT_PRE_BASES,
        qubits_initially_zero: bool = False,
        cnot_network_bases: Sequence[Sequence[str]] = DEFAULT_CNOT_NETWORK_BASES,
        shift_invariant: bool = True,
    ) -> None:
        super().__init__()
        self.spec = spec_from_target(target)
        self._lowering = lowering
        self.pre_bases = [tuple(b) for b in pre_bases]
        self.cnot_network_bases = {tuple(b) for b in cnot_network_bases}
        self.qubits_initially_zero = qubits_initially_zero
        self.shift_invariant = shift_invariant
        self._rewriters: dict[tuple[str, ...], PassManager] = {}

    def _rewriter(self, basis: tuple[str, ...]) -> PassManager:
        """Qiskit's level-3 preset pass manager for ``basis``, translating with Qiskit's
        *standard* equivalence library (not the process-global session library, which
        other packages such as qiskit-ionq extend and which would make the result depend
        on what else ran in the process)."""
        pm = self._rewriters.get(basis)
        if pm is None:
            # pylint: disable=import-outside-toplevel
            from qiskit.circuit.library.standard_gates.equivalence_library import (
                StandardEquivalenceLibrary,
            )
            from qiskit.transpiler import generate_preset_pass_manager
            from qiskit.transpiler.passes import BasisTranslator

            pm = generate_preset_pass_manager(
                optimization_level=3,
                basis_gates=list(basis),
                approximation_degree=1.0,
                qubits_initially_zero=self.qubits_initially_zero,
                seed_transpiler=11,
            )
            for stage in pm.expanded_stages:
                stage_pm = getattr(pm, stage, None)
                if stage_pm is None:
                    continue
                for task in _walk(stage_pm.to_flow_controller()):
                    if isinstance(task, BasisTranslator):
                        task._equiv_lib = StandardEquivalenceLibrary  # pylint: disable=protected-access
            self._rewriters[basis] = pm
        return pm

    def run(self, dag: DAGCircuit) -> DAGCircuit:
        circuit = dag_to_circuit(dag)
        best = circuit_to_dag(PassManager(self._lowering()).run(circuit))
        best_cost = native_cost(best, self.spec)
        state = [best, best_cost, (_two_qubit_count(best), best_cost[0])]

        def consider(variant) -> None:
            try:
                candidate = circuit_to_dag(PassManager(self._lowering()).run(variant))
            except Exception:  # noqa: BLE001 - a failing alternative is just not used
                return
            cost = native_cost(candidate, self.spec)
            two_q = _two_qubit_count(candidate)
            best_key = state[2]
            # Pareto: no more two-qubit gates *and* no lower estimated success.
            dominates = two_q <= best_key[0] and cost[0] <= best_key[1]
            if dominates and (two_q, cost) < (best_key[0], state[1]):
                state[:] = [candidate, cost, (two_q, cost[0])]

        sources = [circuit]
        if self.shift_invariant:
            shift = ResynthesizeShiftInvariant()
            rewritten = PassManager([shift]).run(circuit)
            if shift.stats.get("register"):
                consider(rewritten)
                sources.append(rewritten)
        for source in sources:
            for basis in self.pre_bases:
                try:
                    rewritten = self._rewriter(basis).run(source)
                except Exception:  # noqa: BLE001 - a failing alternative is just not used
                    continue
                if rewritten.num_qubits != circuit.num_qubits or rewritten.layout is not None:
                    continue  # not a pure rewrite on the same qubits
                consider(rewritten)
                if basis in self.cnot_network_bases:
                    consider(PassManager([ResynthesizeCnotNetworks()]).run(rewritten))
        return state[0]
